package main

import (
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgedet/edgedet/internal/testenv"
)

// TestPruneDistillFlags: --distill alone distils on --calib, --distill=DATA
// on DATA; --distill-steps alone drops the default time budget; the
// distillation flags need --distill, a budget and frames.
func TestPruneDistillFlags(t *testing.T) {
	base := []string{"--model", "m.onnx", "--out", "o.onnx", "--calib", "calib"}
	for _, tc := range []struct {
		args  []string
		data  string
		steps int
		time  time.Duration
	}{
		{[]string{"--distill"}, "calib", 0, 25 * time.Minute},
		{[]string{"--distill=frames", "--distill-steps", "7"}, "frames", 7, 0},
		{[]string{"--distill", "--distill-steps", "7", "--distill-time", "1m"}, "calib", 7, time.Minute},
	} {
		f, err := parsePruneFlags(append(base, tc.args...), io.Discard)
		if err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		d := f.distill
		if !d.distill.set || d.data(f.calib) != tc.data || d.steps != tc.steps || d.duration != tc.time {
			t.Errorf("%v: distill %v on %q, %d steps, %v; want on %q, %d steps, %v", tc.args, d.distill.set, d.data(f.calib), d.steps, d.duration, tc.data, tc.steps, tc.time)
		}
	}
	f, err := parsePruneFlags(base, io.Discard)
	if err != nil || f.distill.distill.set {
		t.Errorf("without --distill: distill %v, err %v; want off", f != nil && f.distill.distill.set, err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--distill-time", "1m", "--distill-steps", "3"}, "--distill-steps, --distill-time need --distill"},
		{[]string{"--distill", "frames"}, "give distillation data as --distill=DATA"},
		{[]string{"--distill", "--distill-time", "0"}, "no distillation budget"},
		{[]string{"--distill", "--distill-steps", "-1"}, "must not be negative"},
		{[]string{"--distill", "--distill-batch", "0"}, "--distill-batch must be >= 1"},
		{[]string{"--distill", "--distill-lr", "0"}, "--distill-lr must be > 0"},
	} {
		if _, err := parsePruneFlags(append(base, tc.args...), io.Discard); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want one mentioning %q", tc.args, err, tc.want)
		}
	}
	_, err = parsePruneFlags([]string{"--model", "m.onnx", "--out", "o.onnx", "--refit=false", "--importance", "l1", "--distill"}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "--distill needs frames") {
		t.Errorf("--distill without frames: %v", err)
	}
}

// TestCLIPruneDistill: prune --distill with a two-step budget writes the
// pruned model after distillation, with the distillation's metadata next
// to the pruning's and the detector's spec; --eval scores the original,
// the pruned model before distillation and the written one.
func TestCLIPruneDistill(t *testing.T) {
	model := testenv.Shared(t, "models", "yolox_nano_416.onnx")
	out := filepath.Join(t.TempDir(), "pruned.onnx")
	data := evalData(t, 2)
	stdout, stderr, code := runCLI(t, "prune", "--model", model, "--calib", data, "--max-images", "2", "--samples", "8",
		"--target", "flops=0.97", "--distill", "--distill-steps", "2", "--distill-batch", "1", "--eval", data, "--out", out)
	if code != 0 {
		t.Fatalf("prune --distill exit %d: %s", code, stderr)
	}
	t.Log(stdout)
	for _, want := range []string{"wrote " + out, "distilled: 2 steps on 2 frames", "block-wise", "end-to-end",
		"mAP@0.5:0.95 yolox_nano_416.onnx", "mAP@0.5:0.95 pruned-undistilled.onnx", "mAP@0.5:0.95 pruned.onnx"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	meta, sum := checkDistillMetadata(t, out, model, "2", "2 images")
	if meta["edgedet.prune.source_sha256"] != sum {
		t.Errorf("metadata %v lacks the pruning's source %s", meta, sum)
	}
}
