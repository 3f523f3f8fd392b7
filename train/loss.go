package train

import (
	"fmt"
	"slices"
	"sort"
)

// MSE is the mean squared error between chosen outputs and their targets,
// summed over the outputs with weights: loss = Σ_k w_k · mean((y_k − t_k)²).
// outputs and targets are keyed by tensor name; weights gives w_k for each
// name to match (a name missing from weights is not matched). It returns
// the loss and, for each matched name, its gradient with respect to y_k —
// ready for Tape.Backward. Outputs and targets must have the same shapes.
func MSE(outputs, targets map[string]*Tensor, weights map[string]float64) (float64, map[string]*Tensor, error) {
	names := make([]string, 0, len(weights))
	for name := range weights {
		names = append(names, name)
	}
	sort.Strings(names)
	var loss float64
	grads := make(map[string]*Tensor, len(names))
	for _, name := range names {
		y, t := outputs[name], targets[name]
		switch {
		case y == nil:
			return 0, nil, fmt.Errorf("mse: no output %q", name)
		case t == nil:
			return 0, nil, fmt.Errorf("mse: no target for %q", name)
		case !slices.Equal(y.Shape, t.Shape) || len(y.Data) != len(t.Data):
			return 0, nil, fmt.Errorf("mse: output %q has shape %v, its target %v", name, y.Shape, t.Shape)
		case len(y.Data) == 0:
			continue
		}
		w := weights[name]
		n := float64(len(y.Data))
		g := NewTensor(y.Shape...)
		var sum float64
		for i, v := range y.Data {
			d := float64(v) - float64(t.Data[i])
			sum += d * d
			g.Data[i] = float32(2 * w * d / n)
		}
		loss += w * sum / n
		grads[name] = g
	}
	return loss, grads, nil
}
