package detector

import (
	"context"
	"strings"
	"testing"

	ort "github.com/yalue/onnxruntime_go"
)

// TestDetectRunFailureIsAnError: when ONNX Runtime fails to run the model
// (here: the output bound to a tensor of the wrong shape), Detect returns
// the error naming the model, not an empty or stale result.
func TestDetectRunFailureIsAnError(t *testing.T) {
	d, _ := loadShared(t, "yolox_nano_416.onnx", func(c *Config) { c.Sessions, c.Slots = 1, 1 })
	img := readDog(t)
	defer img.Close()
	wrong, err := ort.NewEmptyTensor[float32](ort.NewShape(1))
	if err != nil {
		t.Fatal(err)
	}
	defer wrong.Destroy()
	j := d.jobs[0]
	rebind := func(v ort.Value) {
		if err := j.bindings[0].BindOutput(d.info.OutputName, v); err != nil {
			t.Fatalf("bind output: %v", err)
		}
	}
	d.runHook = func(_ int, running bool) {
		if running {
			rebind(wrong)
		} else {
			rebind(j.output)
		}
	}
	res, err := d.Detect(context.Background(), img, nil)
	if err == nil || !strings.Contains(err.Error(), "run model") {
		t.Fatalf("Detect with a failing run = %+v, %v; want the run's error", res, err)
	}
	if len(res.Detections) != 0 {
		t.Errorf("Detect with a failing run returned %d detections", len(res.Detections))
	}
}
