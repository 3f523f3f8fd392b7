package train

import (
	"math"
	"slices"
	"testing"

	"github.com/edgedet/edgedet/internal/testenv"
	"github.com/edgedet/edgedet/onnx"
)

// TestYOLOXTrainingStep runs forward and backward of the shared
// yolox_nano at batch 2 and checks that each image's output equals its
// batch-1 output and that every Conv weight and bias receives a gradient.
func TestYOLOXTrainingStep(t *testing.T) {
	if testing.Short() {
		t.Skip("yolox_nano forward+backward takes a few seconds")
	}
	m, err := onnx.LoadModel(testenv.Shared(t, "models", "yolox_nano_416.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	g, err := Build(m, Options{})
	if err != nil {
		t.Fatal(err)
	}
	dog := testenv.Shared(t, "datasets", "samples", "dog.jpg")
	one := bgrInput(t, dog, 416, true, 1)
	x := NewTensor(2, 3, 416, 416)
	copy(x.Data, one.Data)
	for i := range one.Data {
		x.Data[len(one.Data)+i] = 255 - one.Data[i]
	}
	outs, tape, err := g.ForwardTrain(map[string]*Tensor{"images": x})
	if err != nil {
		t.Fatal(err)
	}
	y := outs["output"]
	if !slices.Equal(y.Shape, []int{2, 3549, 85}) {
		t.Fatalf("output shape %v, want [2 3549 85]", y.Shape)
	}
	half := len(y.Data) / 2
	for b, img := range [][]float32{x.Data[:len(one.Data)], x.Data[len(one.Data):]} {
		single, err := g.Forward(map[string]*Tensor{"images": mustData(img, 1, 3, 416, 416)})
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range single["output"].Data {
			if d := math.Abs(float64(v - y.Data[b*half+i])); d > 1e-5*math.Max(1, math.Abs(float64(v))) {
				t.Fatalf("image %d value %d: %g in the batch, %g alone", b, i, y.Data[b*half+i], v)
			}
		}
	}
	if err := tape.Backward(map[string]*Tensor{"output": y}); err != nil {
		t.Fatal(err)
	}
	if len(g.Params()) != 2*113 {
		t.Errorf("%d params, want weight and bias of 113 Convs", len(g.Params()))
	}
	for _, p := range g.Params() {
		nonzero := false
		for _, v := range p.Grad.Data {
			if v != 0 {
				nonzero = true
				break
			}
		}
		if !nonzero {
			t.Errorf("%s received no gradient", p.Name)
		}
	}
}
