package main

import (
	"encoding/json"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/edgedet/edgedet/internal/testenv"
)

// TestCLIBenchEval: --eval scores every benchmarked model exactly as
// edgedet eval does (same mAP), prints it next to the speed, carries it
// in --json (rounds too) and --plot draws the PNG.
func TestCLIBenchEval(t *testing.T) {
	fp32 := testenv.Shared(t, "models", "yolox_nano_416.onnx")
	fastest := testenv.Shared(t, "models", "yolo-fastestv2_352.onnx")
	dog := testenv.Shared(t, "datasets", "samples", "dog.jpg")
	data := evalData(t, 4)
	want := map[string]float64{}
	for _, m := range []string{fp32, fastest} {
		out, errOut, code := runCLI(t, "eval", "--model", m, "--data", data)
		if code != 0 {
			t.Fatalf("eval %s exit %d: %s", m, code, errOut)
		}
		want[strings.TrimSuffix(filepath.Base(m), ".onnx")] = statLine(t, out, labelAP)[0]
	}
	plot := filepath.Join(t.TempDir(), "tradeoff.png")
	out, errOut, code := runCLI(t, "bench", "--model", fp32, "--model", fastest, "--runs", "2", "--warmup", "1",
		"--eval", data, "--plot", plot, dog)
	if code != 0 {
		t.Fatalf("bench --eval exit %d: %s", code, errOut)
	}
	_, table, ok := strings.Cut(out, "speed and accuracy")
	if !ok || !strings.Contains(table, "4 images") {
		t.Fatalf("bench --eval prints no speed and accuracy table for 4 images:\n%s", out)
	}
	for name, ap := range want {
		var row []string
		for _, line := range strings.Split(table, "\n") {
			if f := strings.Fields(line); len(f) == 7 && f[0] == name {
				row = f
			}
		}
		if row == nil {
			t.Fatalf("no row for %s:\n%s", name, table)
		}
		// Both print three decimals of the same summary.
		if got, err := strconv.ParseFloat(row[3], 64); err != nil || math.Abs(got-ap) > 5e-4 {
			t.Errorf("%s: bench --eval mAP %s, edgedet eval %.3f", name, row[3], ap)
		}
		// The first model has no interval; the other one has its delta's.
		if first := name == "yolox_nano_416"; first != (row[6] == "-") || !first && !strings.HasPrefix(row[6], "[") {
			t.Errorf("%s: interval column %q", name, row[6])
		}
	}
	if !strings.Contains(errOut, "wrote "+plot) {
		t.Errorf("stderr does not say the plot was written:\n%s", errOut)
	}
	f, err := os.Open(plot)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if cfg, err := png.DecodeConfig(f); err != nil || cfg.Width == 0 {
		t.Errorf("plot: %+v, %v", cfg, err)
	}

	out, errOut, code = runCLI(t, "bench", "--model", fp32, "--model", fastest, "--runs", "2", "--warmup", "1",
		"--rounds", "2", "--eval", data, "--json", dog)
	if code != 0 {
		t.Fatalf("bench --rounds --eval --json exit %d: %s", code, errOut)
	}
	var rep roundsReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for i, m := range rep.Models {
		if m.Accuracy == nil || m.Accuracy.Images != 4 || math.Abs(m.Accuracy.MAP-want[m.Model]) > 5e-4 || m.Accuracy.MAP50 < m.Accuracy.MAP {
			t.Errorf("%s: accuracy %+v, want mAP %.3f on 4 images", m.Model, m.Accuracy, want[m.Model])
		}
		if iv := m.Accuracy.DeltaInterval; (i == 0) != (iv == nil) || iv != nil && (iv.Resamples != bootstrapResamples || iv.AP[0] > iv.AP[1]) {
			t.Errorf("%s: delta interval %+v (model %d)", m.Model, iv, i)
		}
	}
}

// TestCLIBenchEvalErrors: --eval and --plot are checked before any model
// is timed, with errors naming the flag.
func TestCLIBenchEvalErrors(t *testing.T) {
	fp32 := testenv.Shared(t, "models", "yolox_nano_416.onnx")
	dog := testenv.Shared(t, "datasets", "samples", "dog.jpg")
	missing := filepath.Join(t.TempDir(), "nothing-here")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--plot", "p.png", dog}, "--plot needs --eval"},
		{[]string{"--eval", missing, dog}, "--eval: stat " + missing},
		{[]string{"--eval", dog, dog}, "--eval " + dog + ": not a directory"},
		{[]string{"--eval", t.TempDir(), "--video", "clip.avi"}, "no --eval"},
	} {
		args := append([]string{"bench", "--model", fp32}, tc.args...)
		_, errOut, code := runCLI(t, args...)
		if code == 0 || !strings.Contains(errOut, tc.want) {
			t.Errorf("bench %v: exit %d, stderr %q, want it to contain %q", tc.args, code, errOut, tc.want)
		}
	}
}
