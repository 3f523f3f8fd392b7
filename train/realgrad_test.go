package train

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/edgedet/edgedet/internal/testenv"
	"github.com/edgedet/edgedet/onnx"
)

// TestRealModelGradients checks backward through the shared models' real
// graphs against finite differences on dog.jpg: every Conv gets a
// gradient, and for the largest-gradient element of chosen parameters the
// backward value matches a central difference of a random weighted sum of
// the output. yolox (SiLU, smooth; through Focus Slices, SPP MaxPools,
// Resize, head Reshape/Transpose) is checked at four depths. fastestv2 is
// checked on its heads only: upstream of its 46 Relus a ±eps step flips
// enough units across the kink that central differences are off by
// several percent (with the Relus swapped for SiLU they agree, up to
// float32 noise).
func TestRealModelGradients(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the shared models a few dozen times")
	}
	dog := testenv.Shared(t, "datasets", "samples", "dog.jpg")
	spread := func(ps []*Param) []*Param {
		return []*Param{ps[0], ps[len(ps)/3], ps[2*len(ps)/3], ps[len(ps)-2]}
	}
	heads := func(ps []*Param) []*Param {
		return slices.DeleteFunc(slices.Clone(ps), func(p *Param) bool { return !strings.HasPrefix(p.Name, "output_") })
	}
	for _, c := range []struct {
		model     string
		size      int
		letterbox bool
		scale     float32
		check     func([]*Param) []*Param
	}{
		{"yolo-fastestv2_352.onnx", 352, false, 1.0 / 255, heads},
		{"yolox_nano_416.onnx", 416, true, 1, spread},
	} {
		t.Run(c.model, func(t *testing.T) {
			m, err := onnx.LoadModel(testenv.Shared(t, "models", c.model))
			if err != nil {
				t.Fatal(err)
			}
			g, err := Build(m, Options{})
			if err != nil {
				t.Fatal(err)
			}
			in := map[string]*Tensor{g.Inputs()[0]: bgrInput(t, dog, c.size, c.letterbox, c.scale)}
			out := g.Outputs()[0]
			outs, tape, err := g.ForwardTrain(in)
			if err != nil {
				t.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(31, 32))
			r := NewTensor(outs[out].Shape...)
			for i := range r.Data {
				r.Data[i] = rng.Float32()*2 - 1
			}
			if err := tape.Backward(map[string]*Tensor{out: r}); err != nil {
				t.Fatal(err)
			}
			for _, p := range g.Params() {
				if !slices.ContainsFunc(p.Grad.Data, func(v float32) bool { return v != 0 }) {
					t.Errorf("%s received no gradient", p.Name)
				}
			}
			loss := func() float64 {
				o, err := g.Forward(in)
				if err != nil {
					t.Fatal(err)
				}
				var s float64
				for i, v := range o[out].Data {
					s += float64(r.Data[i]) * float64(v)
				}
				return s
			}
			checked := c.check(g.Params())
			if len(checked) < 4 {
				t.Fatalf("only %d parameters to check", len(checked))
			}
			for _, p := range checked {
				e := 0
				for i, v := range p.Grad.Data {
					if math.Abs(float64(v)) > math.Abs(float64(p.Grad.Data[e])) {
						e = i
					}
				}
				orig := p.Value.Data[e]
				eps := float32(1e-3 * math.Max(1, math.Abs(float64(orig))))
				p.Value.Data[e] = orig + eps
				up := loss()
				p.Value.Data[e] = orig - eps
				down := loss()
				p.Value.Data[e] = orig
				num := (up - down) / float64(2*eps)
				ana := float64(p.Grad.Data[e])
				t.Logf("%s[%d]: backward %.5g, finite difference %.5g", p.Name, e, ana, num)
				if math.Abs(num-ana) > 1e-2*math.Abs(num)+1e-3 {
					t.Errorf("%s[%d]: backward %.6g, finite difference %.6g", p.Name, e, ana, num)
				}
			}
		})
	}
}
