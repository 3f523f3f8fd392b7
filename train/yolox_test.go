package train

import (
	"testing"

	"github.com/edgedet/edgedet/internal/testenv"
	"github.com/edgedet/edgedet/onnx"
)

// TestYOLOXTrainingStep runs forward and backward of the shared
// yolox_nano at batch 2 and checks that every Conv weight and bias
// receives a gradient and that the two images' outputs differ (the batch
// is not collapsed).
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
	half := len(y.Data) / 2
	same := true
	for i := range half {
		if y.Data[i] != y.Data[half+i] {
			same = false
			break
		}
	}
	if same {
		t.Fatal("both images of the batch gave the same output")
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
