package main

import (
	"encoding/json"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/edgedet/edgedet/internal/testenv"
)

func report(model string, inf, total float64) benchReport {
	return benchReport{Model: model, Inference: stageStats{P50: inf}, Total: stageStats{P50: total}}
}

// TestSummarizeRoundsSameRoundRatios: the ratio divides values of the same
// round (0.6, 0.4, 0.7 here), not the medians of each model (14/20 = 0.7).
func TestSummarizeRoundsSameRoundRatios(t *testing.T) {
	rounds := [][]benchReport{
		{report("fp32", 10, 11), report("int8", 6, 7), report("other", 20, 21)},
		{report("fp32", 40, 41), report("int8", 16, 17), report("other", 40, 41)},
		{report("fp32", 20, 21), report("int8", 14, 15), report("other", 10, 11)},
	}
	rep := summarizeRounds(rounds)
	if rep.Rounds != 3 || len(rep.Models) != 3 {
		t.Fatalf("summary %+v", rep)
	}
	base, int8, other := rep.Models[0], rep.Models[1], rep.Models[2]
	if base.Ratio != nil || base.RatioTo != "" {
		t.Errorf("first model has a ratio: %+v", base)
	}
	want := []struct {
		name string
		got  spread
		want spread
	}{
		{"fp32 inference", base.InferenceP50, spread{Median: 20, Min: 10, Max: 40}},
		{"fp32 total", base.TotalP50, spread{Median: 21, Min: 11, Max: 41}},
		{"int8 inference", int8.InferenceP50, spread{Median: 14, Min: 6, Max: 16}},
		{"int8 ratio", *int8.Ratio, spread{Median: 0.6, Min: 0.4, Max: 0.7}},
		{"other ratio", *other.Ratio, spread{Median: 1, Min: 0.5, Max: 2}},
	}
	for _, w := range want {
		if !near(w.got, w.want) {
			t.Errorf("%s: %+v, want %+v", w.name, w.got, w.want)
		}
	}
	if int8.RatioTo != "fp32" || int8.Rounds != 3 || len(int8.PerRound) != 3 || int8.PerRound[1].Inference.P50 != 16 {
		t.Errorf("int8 summary %+v", int8)
	}
}

func near(a, b spread) bool {
	const eps = 1e-9
	return math.Abs(a.Median-b.Median) < eps && math.Abs(a.Min-b.Min) < eps && math.Abs(a.Max-b.Max) < eps
}

func TestSpreadOf(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want spread
	}{
		{nil, spread{}},
		{[]float64{3}, spread{3, 3, 3}},
		{[]float64{4, 1}, spread{2.5, 1, 4}},
		{[]float64{5, 1, 3, 2}, spread{2.5, 1, 5}},
	} {
		in := slices.Clone(tc.in)
		if got := spreadOf(in); !near(got, tc.want) {
			t.Errorf("spreadOf(%v) = %+v, want %+v", tc.in, got, tc.want)
		}
		if !slices.Equal(in, tc.in) {
			t.Errorf("spreadOf changed its input to %v", in)
		}
	}
}

// TestRoundOrderRotates: each model leads one round in turn.
func TestRoundOrderRotates(t *testing.T) {
	for r, want := range [][]int{{0, 1, 2}, {1, 2, 0}, {2, 0, 1}, {0, 1, 2}} {
		if got := roundOrder(3, r); !slices.Equal(got, want) {
			t.Errorf("round %d: %v, want %v", r, got, want)
		}
	}
}

// TestCLIBenchRounds: --rounds 2 --json reports both models over 2 rounds,
// the fused activations of the QDQ INT8 model, and ratios made of the
// same-round p50s it lists; --no-fuse turns the fusion off; the text form
// prints the ratio line.
func TestCLIBenchRounds(t *testing.T) {
	fp32 := testenv.Shared(t, "models", "yolox_nano_416.onnx")
	int8 := testenv.Shared(t, "models", "yolov8n_int8qdq_320.onnx")
	dog := testenv.Shared(t, "datasets", "samples", "dog.jpg")
	args := []string{"bench", "--model", fp32, "--model", int8, "--rounds", "2", "--runs", "3", "--warmup", "1", "--threads", "1"}
	out, errOut, code := runCLI(t, append(args, "--json", dog)...)
	if code != 0 {
		t.Fatalf("bench --rounds exit %d: %s", code, errOut)
	}
	var rep roundsReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("bench --rounds --json: %v\n%s", err, out)
	}
	if rep.Rounds != 2 || len(rep.Models) != 2 {
		t.Fatalf("report %+v", rep)
	}
	base, q := rep.Models[0], rep.Models[1]
	if base.Model != "yolox_nano_416" || q.Model != "yolov8n_int8qdq_320" || len(base.PerRound) != 2 || len(q.PerRound) != 2 {
		t.Fatalf("models %+v", rep.Models)
	}
	if base.FusedActivations != 0 || q.FusedActivations == 0 {
		t.Errorf("fused activations: fp32 %d, int8 %d", base.FusedActivations, q.FusedActivations)
	}
	var ratios []float64
	for r := range 2 {
		ratios = append(ratios, q.PerRound[r].Inference.P50/base.PerRound[r].Inference.P50)
	}
	if q.Ratio == nil || q.RatioTo != base.Model || !near(*q.Ratio, spreadOf(ratios)) {
		t.Errorf("ratio %+v to %q, want %+v from the rounds' p50s", q.Ratio, q.RatioTo, spreadOf(ratios))
	}

	out, errOut, code = runCLI(t, append(args, "--no-fuse", dog)...)
	if code != 0 {
		t.Fatalf("bench --rounds --no-fuse exit %d: %s", code, errOut)
	}
	for _, want := range []string{"2 rounds", "model yolov8n_int8qdq_320 (int8, 1 thread,", "ratio to yolox_nano_416: median "} {
		if !strings.Contains(out, want) {
			t.Errorf("bench --rounds output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "activations fused") {
		t.Errorf("--no-fuse still fused:\n%s", out)
	}
	if _, errOut, code = runCLI(t, "bench", "--model", fp32, "--rounds", "0", dog); code == 0 || !strings.Contains(errOut, "--rounds") {
		t.Errorf("--rounds 0: exit %d, %s", code, errOut)
	}
}

// TestCLIBenchProfileShowsFusedActivations: --profile of a QDQ INT8 model
// lists the fused activations' operator, and the report counts them.
func TestCLIBenchProfileShowsFusedActivations(t *testing.T) {
	int8 := testenv.Shared(t, "models", "yolov8n_int8qdq_320.onnx")
	dog := testenv.Shared(t, "datasets", "samples", "dog.jpg")
	out, errOut, code := runCLI(t, "bench", "--model", int8, "--runs", "2", "--warmup", "1", "--threads", "1", "--profile", "--json", dog)
	if code != 0 {
		t.Fatalf("bench --profile exit %d: %s", code, errOut)
	}
	var r benchReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("bench --profile --json: %v\n%s", err, out)
	}
	lut := 0
	for _, o := range r.Operators {
		if strings.HasPrefix(o.Op, "LutActivation") {
			lut += o.Count
		}
	}
	if r.FusedActivations == 0 || lut != r.FusedActivations {
		t.Errorf("fused activations %d, LutActivation nodes in the profile %d; operators %+v", r.FusedActivations, lut, r.Operators)
	}
}
