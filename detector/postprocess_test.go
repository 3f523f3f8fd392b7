package detector_test

import (
	"context"
	"testing"

	"gocv.io/x/gocv"

	"github.com/edgedet/edgedet/detector"
	"github.com/edgedet/edgedet/internal/testenv"
)

// TestNothingCarriedOverBetweenFrames: a frame with nothing on it, after
// one with objects, reports nothing (each Job reuses its candidate buffer;
// one slot, so every frame goes through the same Job).
func TestNothingCarriedOverBetweenFrames(t *testing.T) {
	cfg := yoloxConfig(t)
	cfg.Slots = 1
	d := newDetector(t, cfg)
	dog := readImage(t, testenv.Shared(t, "datasets", "samples", "dog.jpg"))
	grey := gocv.NewMatWithSizeFromScalar(gocv.NewScalar(128, 128, 128, 0), 576, 768, gocv.MatTypeCV8UC3)
	defer grey.Close()
	for i, img := range []gocv.Mat{dog, grey, dog, grey} {
		res, err := d.Detect(context.Background(), img, nil)
		if err != nil {
			t.Fatal(err)
		}
		if n := len(res.Detections); (i%2 == 0) != (n > 0) {
			t.Errorf("frame %d (%s): %d detections: %+v", i, map[bool]string{true: "dog", false: "grey"}[i%2 == 0], n, res.Detections)
		}
	}
}

// TestMinAreaBelowOnePixel: min_area applies below one square pixel too.
// reshapeModel's boxes on a uniform 64x64 frame are 100/255 input (and
// frame) pixels square: 0.154 px².
func TestMinAreaBelowOnePixel(t *testing.T) {
	model := writeModel(t, reshapeModel("{0: 'a', 1: 'b'}"))
	img := gocv.NewMatWithSizeFromScalar(gocv.NewScalar(200, 100, 100, 0), 64, 64, gocv.MatTypeCV8UC3)
	defer img.Close()
	for minArea, want := range map[float32]int{0.1: 1, 0.5: 0} {
		cfg := detector.DefaultConfig()
		cfg.Model, cfg.Threads, cfg.MinArea = model, 1, minArea
		res, err := newDetector(t, cfg).Detect(context.Background(), img, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Detections) != want {
			t.Errorf("min_area %g: %d detections, want %d: %+v", minArea, len(res.Detections), want, res.Detections)
		}
	}
}
