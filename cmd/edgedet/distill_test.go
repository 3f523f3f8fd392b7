package main

import (
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/edgedet/edgedet/detection"
	"github.com/edgedet/edgedet/distill"
	"github.com/edgedet/edgedet/internal/testenv"
	"github.com/edgedet/edgedet/onnx"
	"github.com/edgedet/edgedet/prune"
)

// prunedYOLOX writes yolox_nano_416 with two channels removed from its
// first prunable group (pure Go: prune.Apply, no reconstruction), as a
// student that differs from its teacher in one region.
func prunedYOLOX(t *testing.T, teacher string) string {
	t.Helper()
	m, err := onnx.LoadModel(teacher)
	if err != nil {
		t.Fatal(err)
	}
	folded, a, err := prune.FoldAndAnalyze(m)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range a.Groups {
		if !g.Prunable || g.Channels < 8 {
			continue
		}
		pruned, err := prune.Apply(folded, a, map[int][]int{g.ID: {0, 1}})
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), "student.onnx")
		if err := onnx.SaveModel(path, pruned); err != nil {
			t.Fatal(err)
		}
		return path
	}
	t.Fatal("yolox_nano_416 has no prunable group")
	return ""
}

// TestCLIDistill: two steps on two images write a model ONNX Runtime
// runs, with the teacher's hash, the data, the steps and the final loss
// in its metadata (and the detector's spec), after a block-wise and an
// end-to-end step.
func TestCLIDistill(t *testing.T) {
	teacher := testenv.Shared(t, "models", "yolox_nano_416.onnx")
	student := prunedYOLOX(t, teacher)
	out := filepath.Join(t.TempDir(), "distilled.onnx")
	stdout, stderr, code := runCLI(t, "distill", "--teacher", teacher, "--student", student, "--data", calibDir(t, 2),
		"--steps", "2", "--batch", "1", "--block-share", "0.5", "--out", out)
	if code != 0 {
		t.Fatalf("distill exit %d: %s", code, stderr)
	}
	t.Log(stdout)
	for _, want := range []string{"wrote " + out + ": 2 steps on 2 frames", "block-wise regions: 1", "head tensors: 9", "block-wise", "end-to-end"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if n := strings.Count(stdout, " 1 step in "); n != 2 {
		t.Errorf("%d phases of 1 step, want 2", n)
	}
	checkDistillMetadata(t, out, teacher, "2", "2 images")
	if _, stderr, code := runCLI(t, "detect", "--model", out, "--json", testenv.Shared(t, "datasets", "samples", "dog.jpg")); code != 0 {
		t.Errorf("detect with the distilled model: %s", stderr)
	}
}

func TestCLIDistillRejectsBadInput(t *testing.T) {
	teacher := testenv.Shared(t, "models", "yolox_nano_416.onnx")
	dir := t.TempDir()
	out := filepath.Join(dir, "out.onnx")
	empty := filepath.Join(dir, "empty")
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	data := testenv.Shared(t, "datasets", "samples")
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"missing flags", []string{"--teacher", teacher, "--out", out}, 2, "--teacher, --student, --data and --out are required"},
		{"no budget", []string{"--teacher", teacher, "--student", teacher, "--data", data, "--out", out, "--time", "0"}, 2, "no budget"},
		{"bad batch", []string{"--teacher", teacher, "--student", teacher, "--data", data, "--out", out, "--batch", "0"}, 2, "--batch"},
		{"unknown head loss", []string{"--teacher", teacher, "--student", teacher, "--data", data, "--out", out, "--head-loss", "l1"}, 2, `--head-loss is "l1"`},
		{"mosaic above 1", []string{"--teacher", teacher, "--student", teacher, "--data", data, "--out", out, "--mosaic", "1.5"}, 2, "--mosaic is 1.5"},
		{"negative feature weight", []string{"--teacher", teacher, "--student", teacher, "--data", data, "--out", out, "--feature-weight", "-1"}, 2, "--feature-weight"},
		{"out is the teacher", []string{"--teacher", teacher, "--student", teacher, "--data", data, "--out", teacher}, 1, "is the input model"},
		{"unknown format", []string{"--teacher", teacher, "--student", teacher, "--data", data, "--out", out, "--format", "yolo9"}, 1, `format: "yolo9" is not one of`},
		{"quantized student", []string{"--teacher", teacher, "--student", testenv.Shared(t, "models", "yolo11n_int8dyn_320.onnx"), "--data", data, "--out", out}, 1, "is quantized"},
		{"empty data", []string{"--teacher", teacher, "--student", teacher, "--data", empty, "--out", out, "--steps", "1"}, 1, "has no images"},
		{"unknown data", []string{"--teacher", teacher, "--student", teacher, "--data", filepath.Join(dir, "nope"), "--out", out, "--steps", "1", "-c", filepath.Join(dir, "none.toml")}, 1, `--data "` + filepath.Join(dir, "nope") + `" is not a directory`},
		{"unreadable video", []string{"--teacher", teacher, "--student", teacher, "--data", teacher, "--out", out, "--steps", "1"}, 1, "--data " + teacher},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, stderr, code := runCLI(t, append([]string{"distill"}, tc.args...)...)
			if code != tc.code || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want exit %d and an error mentioning %q", code, stderr, tc.code, tc.want)
			}
			if _, err := os.Stat(out); err == nil {
				t.Errorf("%s was written", out)
			}
		})
	}
}

// TestDistillStatusLines: off a terminal, a status line is written at each
// phase change and then at most every 30 s of the injected clock.
func TestDistillStatusLines(t *testing.T) {
	var b strings.Builder
	now := time.Unix(0, 0)
	s := newDistillStatus(&b, func() time.Time { return now })
	for i, phase := range []string{distill.PhaseBlockwise, distill.PhaseBlockwise, distill.PhaseEndToEnd, distill.PhaseEndToEnd, distill.PhaseEndToEnd} {
		s.update(distill.Progress{Phase: phase, Step: i + 1, Steps: 5, Elapsed: time.Duration(i) * 20 * time.Second, Budget: time.Minute, Loss: 0.5})
		now = now.Add(20 * time.Second)
	}
	s.finish()
	want := "distill block-wise: step 1/5, 0s of 1m0s, loss 0.5000\n" +
		"distill end-to-end: step 3/5, 40s of 1m0s, loss 0.5000\n" +
		"distill end-to-end: step 5/5, 1m20s of 1m0s, loss 0.5000\n"
	if b.String() != want {
		t.Errorf("status lines:\n%s\nwant:\n%s", b.String(), want)
	}
}

// TestDistillBudgetFlags: --steps alone drops the default time budget;
// with --time too, both hold.
func TestDistillBudgetFlags(t *testing.T) {
	base := []string{"--teacher", "t.onnx", "--student", "s.onnx", "--data", "d", "--out", "o.onnx"}
	for _, tc := range []struct {
		args  []string
		steps int
		time  time.Duration
	}{
		{nil, 0, 25 * time.Minute},
		{[]string{"--steps", "50"}, 50, 0},
		{[]string{"--steps", "50", "--time", "10m"}, 50, 10 * time.Minute},
	} {
		f, err := parseDistillFlags(append(base, tc.args...), io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if f.steps != tc.steps || f.duration != tc.time {
			t.Errorf("%v: steps %d time %v, want %d and %v", tc.args, f.steps, f.duration, tc.steps, tc.time)
		}
	}
}

func TestLossCurve(t *testing.T) {
	got := lossCurve([]float64{1, 3, 5, 7, 9, 11}, 3)
	if want := []float64{2, 6, 10}; !slices.Equal(got, want) {
		t.Errorf("curve %v, want %v", got, want)
	}
	if got := lossCurve([]float64{4, 2}, 10); !slices.Equal(got, []float64{4, 2}) {
		t.Errorf("curve of 2 steps %v, want them both", got)
	}
}

// checkDistillMetadata checks that the model at out records its teacher's
// hash, the steps, a final loss, the data (a substring) and the detector
// spec, and returns its metadata and the teacher's hash.
func checkDistillMetadata(t *testing.T, out, teacher, steps, data string) (map[string]string, string) {
	t.Helper()
	m, err := onnx.LoadModel(out)
	if err != nil {
		t.Fatal(err)
	}
	sum, err := onnx.ModelSHA256(teacher)
	if err != nil {
		t.Fatal(err)
	}
	meta := onnx.Metadata(m)
	if meta[distill.MetaTeacherSHA256] != sum || meta[distill.MetaSteps] != steps || meta[distill.MetaFinalLoss] == "" ||
		!strings.Contains(meta[distill.MetaData], data) || meta[detection.MetadataSpecKey] == "" {
		t.Errorf("metadata %v lacks the teacher's hash %s, %s steps, the final loss, the data %q or the spec", meta, sum, steps, data)
	}
	return meta, sum
}
