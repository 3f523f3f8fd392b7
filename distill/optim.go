package distill

import (
	"math"

	"github.com/edgedet/edgedet/onnx/onnxpb"
	"github.com/edgedet/edgedet/train"
)

// scaledOptimizer updates each parameter tensor with its own learning rate,
// the common rate times the tensor's scale (its RMS at the start), so
// that a step changes every tensor by about the same share of its size
// (as LARS and LAMB do). A pretrained detector needs it: the first Conv of
// a model fed 0–255 pixels has weights a hundred times smaller than the
// others, and one Adam step of an absolute size wrecks it.
type scaledOptimizer struct {
	params []*train.Param
	scale  []float64
	steps  []func(lr float64) error
}

// newScaledOptimizer makes per-tensor Adam (or SGD with momentum 0.9)
// optimisers for g's parameters. A bias's scale is at least its Conv
// weight's, so a bias that starts at 0 can still move.
func newScaledOptimizer(g *train.Graph, m *onnxpb.ModelProto, sgd bool) *scaledOptimizer {
	weightOf := map[string]string{} // bias → weight of the same Conv
	for _, n := range m.GetGraph().GetNode() {
		if n.GetOpType() == "Conv" && len(n.GetInput()) > 2 {
			weightOf[n.GetInput()[2]] = n.GetInput()[1]
		}
	}
	o := &scaledOptimizer{}
	for _, p := range g.Params() {
		s := rms(p.Value.Data)
		if w := g.Param(weightOf[p.Name]); w != nil {
			s = max(s, rms(w.Value.Data))
		}
		if s == 0 {
			s = 1
		}
		o.params = append(o.params, p)
		o.scale = append(o.scale, s)
		if sgd {
			opt := &train.SGD{Momentum: 0.9}
			o.steps = append(o.steps, func(lr float64) error {
				opt.LR = float32(lr)
				return opt.Step([]*train.Param{p})
			})
		} else {
			opt := &train.Adam{}
			o.steps = append(o.steps, func(lr float64) error {
				opt.LR = float32(lr)
				return opt.Step([]*train.Param{p})
			})
		}
	}
	return o
}

// step updates every parameter from its gradient at learning rate lr.
func (o *scaledOptimizer) step(lr float64) error {
	for i, step := range o.steps {
		if err := step(lr * o.scale[i]); err != nil {
			return err
		}
	}
	return nil
}

func rms(x []float32) float64 {
	if len(x) == 0 {
		return 0
	}
	var sq float64
	for _, v := range x {
		sq += float64(v) * float64(v)
	}
	return math.Sqrt(sq / float64(len(x)))
}
