package train

import (
	"fmt"
	"testing"

	"github.com/edgedet/edgedet/internal/testenv"
	"github.com/edgedet/edgedet/onnx"
)

// yoloxBatch builds yolox_nano and a batch of n copies of dog.jpg.
func yoloxBatch(b *testing.B, n int) (*Graph, map[string]*Tensor) {
	b.Helper()
	m, err := onnx.LoadModel(testenv.Shared(b, "models", "yolox_nano_416.onnx"))
	if err != nil {
		b.Fatal(err)
	}
	g, err := Build(m, Options{})
	if err != nil {
		b.Fatal(err)
	}
	one := bgrInput(b, testenv.Shared(b, "datasets", "samples", "dog.jpg"), 416, true, 1)
	x := NewTensor(n, 3, 416, 416)
	for i := range n {
		copy(x.Data[i*len(one.Data):], one.Data)
	}
	return g, map[string]*Tensor{"images": x}
}

func reportImages(b *testing.B, batch int) {
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "images/s")
}

// BenchmarkYOLOXForward is inference of yolox_nano_416 at batch 1 and 4.
func BenchmarkYOLOXForward(b *testing.B) {
	for _, batch := range []int{1, 4} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			g, in := yoloxBatch(b, batch)
			b.ResetTimer()
			for range b.N {
				if _, err := g.Forward(in); err != nil {
					b.Fatal(err)
				}
			}
			reportImages(b, batch)
		})
	}
}

// BenchmarkYOLOXTrainStep is one forward + backward of yolox_nano_416
// with the output as its own gradient, at batch 1 and 4.
func BenchmarkYOLOXTrainStep(b *testing.B) {
	for _, batch := range []int{1, 4} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			g, in := yoloxBatch(b, batch)
			b.ResetTimer()
			for range b.N {
				outs, tape, err := g.ForwardTrain(in)
				if err != nil {
					b.Fatal(err)
				}
				if err := tape.Backward(outs); err != nil {
					b.Fatal(err)
				}
			}
			reportImages(b, batch)
		})
	}
}
