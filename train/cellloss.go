package train

import (
	"fmt"
	"math"
	"slices"
)

// CellSquaredError is the weighted mean squared error between y and its
// target t, each element weighed by the weight of its cell:
// loss = Σ_i c_i·(y_i − t_i)² / Σ_i c_i, where c_i is cells' value at
// element i's position without its channel. y and t have the shape
// [N C …]; cells the shape [N 1 …] (the same with one channel), or is nil
// for equal weights (plain MSE). It returns the loss and its gradient
// with respect to y. When all weights are zero, so are both.
func CellSquaredError(y, t, cells *Tensor) (float64, *Tensor, error) {
	return cellLoss("squared error", y, t, cells, func(y, t float64) (float64, float64) {
		d := y - t
		return d * d, 2 * d
	})
}

// CellSigmoidKL is the weighted mean, over the elements of logits y and
// target logits t, of the Bernoulli Kullback-Leibler divergence
// KL(σ(t)‖σ(y)) = p·ln(p/q) + (1−p)·ln((1−p)/(1−q)) with p = σ(t) and
// q = σ(y): zero where the two probabilities agree, and small where both
// are near 0 or near 1 whatever the logits (−10 against −8 costs 3e-4
// where −1 against +1 costs 0.46). Weights, shapes and the result are as
// for CellSquaredError; the gradient of an element's term is σ(y) − σ(t).
func CellSigmoidKL(y, t, cells *Tensor) (float64, *Tensor, error) {
	return cellLoss("sigmoid KL", y, t, cells, func(y, t float64) (float64, float64) {
		p := sigmoid64(t)
		// KL = [softplus(y) − p·y] − [softplus(t) − p·t], stable for any logit.
		return softplus(y) - softplus(t) - p*(y-t), sigmoid64(y) - p
	})
}

func sigmoid64(x float64) float64 {
	if x >= 0 {
		return 1 / (1 + math.Exp(-x))
	}
	e := math.Exp(x)
	return e / (1 + e)
}

// softplus is ln(1 + eˣ) without overflow.
func softplus(x float64) float64 { return max(x, 0) + math.Log1p(math.Exp(-math.Abs(x))) }

// cellLoss computes Σ_i c_i·f(y_i, t_i) / Σ_i c_i and its gradient, where
// f returns an element's term and its derivative in y.
func cellLoss(what string, y, t, cells *Tensor, f func(y, t float64) (float64, float64)) (float64, *Tensor, error) {
	switch {
	case y == nil || t == nil:
		return 0, nil, fmt.Errorf("%s: missing output or target", what)
	case !slices.Equal(y.Shape, t.Shape) || len(y.Data) != len(t.Data):
		return 0, nil, fmt.Errorf("%s: output has shape %v, its target %v", what, y.Shape, t.Shape)
	}
	g := NewTensor(y.Shape...)
	if len(y.Data) == 0 {
		return 0, g, nil
	}
	var channels, inner int
	if cells != nil {
		want := slices.Clone(y.Shape)
		if len(want) < 2 {
			return 0, nil, fmt.Errorf("%s: cell weights need an output of shape [N C …], got %v", what, y.Shape)
		}
		want[1] = 1
		if !slices.Equal(cells.Shape, want) || len(cells.Data) != numElements(want) {
			return 0, nil, fmt.Errorf("%s: cell weights have shape %v, want %v for an output of shape %v", what, cells.Shape, want, y.Shape)
		}
		channels, inner = y.Shape[1], numElements(y.Shape[2:])
	}
	weight := func(i int) float64 {
		if cells == nil {
			return 1
		}
		return float64(cells.Data[i/(channels*inner)*inner+i%inner])
	}
	var total float64
	for i := range y.Data {
		total += weight(i)
	}
	if total <= 0 {
		return 0, g, nil
	}
	var loss float64
	for i, v := range y.Data {
		w := weight(i)
		if w == 0 {
			continue
		}
		term, d := f(float64(v), float64(t.Data[i]))
		loss += w * term
		g.Data[i] = float32(w * d / total)
	}
	return loss / total, g, nil
}
