package detector_test

import (
	"context"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/edgedet/edgedet/detector"
	"github.com/edgedet/edgedet/internal/testenv"
)

// TestSetScoreThreshold: a config reload's new score_threshold applies to
// every label without its own min_scores entry, including labels whose own
// entry happens to equal the old threshold, and lowers the decoder's cut
// when it goes down. YOLOX nano on dog.jpg scores dog 0.86, bicycle 0.80,
// car 0.80, truck 0.31, cat 0.26, bicycle 0.21, car 0.16, person 0.13.
func TestSetScoreThreshold(t *testing.T) {
	img := readImage(t, testenv.Shared(t, "datasets", "samples", "dog.jpg"))
	cfg := detector.DefaultConfig()
	cfg.Model = testenv.Shared(t, "models", "yolox_nano_416.onnx")
	cfg.MinScores = map[string]float32{"truck": 0.25} // its own, equal to score_threshold
	d := newDetector(t, cfg)
	labels := func() []string {
		t.Helper()
		res, err := d.Detect(context.Background(), img, nil)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, det := range res.Detections {
			out = append(out, det.Label)
		}
		slices.Sort(out)
		return out
	}
	for _, step := range []struct {
		threshold float32
		want      []string
	}{
		{0.25, []string{"bicycle", "car", "cat", "dog", "truck"}},
		{0.5, []string{"bicycle", "car", "dog", "truck"}},
		{0.1, []string{"bicycle", "bicycle", "car", "car", "cat", "dog", "person", "truck"}},
		{1, []string{"truck"}}, // its own 0.25 stays
	} {
		if step.threshold != 0.25 {
			if err := d.SetScoreThreshold(step.threshold); err != nil {
				t.Fatalf("SetScoreThreshold(%g): %v", step.threshold, err)
			}
		}
		if got := labels(); !slices.Equal(got, step.want) {
			t.Errorf("score_threshold %g: labels %v, want %v", step.threshold, got, step.want)
		}
	}
	if err := d.SetScoreThreshold(0); err != nil {
		t.Errorf("SetScoreThreshold(0): %v", err)
	}
	for _, bad := range []float32{-0.01, 1.01, float32(math.NaN())} {
		if err := d.SetScoreThreshold(bad); err == nil || !strings.Contains(err.Error(), "score_threshold") {
			t.Errorf("SetScoreThreshold(%g) = %v, want an error naming score_threshold", bad, err)
		}
	}
}
