package train

import (
	"math"
	"math/rand/v2"
	"testing"
)

// randTensor fills a tensor of shape with values uniform in [-1, 1).
func randTensor(rng *rand.Rand, shape ...int) *Tensor {
	t := NewTensor(shape...)
	for i := range t.Data {
		t.Data[i] = rng.Float32()*2 - 1
	}
	return t
}

// awayFromZero fills a tensor with values whose magnitude is at least 0.1,
// so kinks at zero (Relu) are not straddled by finite differences.
func awayFromZero(rng *rand.Rand, shape ...int) *Tensor {
	t := randTensor(rng, shape...)
	for i, v := range t.Data {
		t.Data[i] = float32(math.Copysign(0.1+0.9*math.Abs(float64(v)), float64(v)))
	}
	return t
}

// distinct fills a tensor with a shuffled ladder of values 0.01 apart, so
// no two candidates of a max are within a finite-difference step.
func distinct(rng *rand.Rand, shape ...int) *Tensor {
	t := NewTensor(shape...)
	for i, p := range rng.Perm(len(t.Data)) {
		t.Data[i] = float32(p)*0.01 - float32(len(t.Data))*0.005
	}
	return t
}

func ints(v ...int64) *Tensor { return intTensor(v, len(v)) }

// weightedSum is Σ r·y over all outputs in float64: a scalar loss whose
// gradient with respect to output j is r[j].
func weightedSum(outs []*Tensor, r [][]float64) float64 {
	var s float64
	for j, y := range outs {
		for i, v := range y.Data {
			s += r[j][i] * float64(v)
		}
	}
	return s
}

// checkGradients compares the kernel's backward against central finite
// differences of a random weighted sum of its outputs, for every float
// input listed in wrt, on up to 60 sampled elements each.
func checkGradients(t *testing.T, k kernel, ins []*Tensor, wrt ...int) {
	t.Helper()
	rng := rand.New(rand.NewPCG(7, 11))
	outs, state, err := k.forward(ins)
	if err != nil {
		t.Fatalf("forward: %v", err)
	}
	r := make([][]float64, len(outs))
	gOuts := make([]*Tensor, len(outs))
	for j, y := range outs {
		r[j] = make([]float64, len(y.Data))
		gOuts[j] = NewTensor(y.Shape...)
		for i := range r[j] {
			r[j][i] = rng.Float64()*2 - 1
			gOuts[j].Data[i] = float32(r[j][i])
		}
	}
	grads, err := k.backward(ins, outs, state, gOuts)
	if err != nil {
		t.Fatalf("backward: %v", err)
	}
	const eps = 1e-3
	loss := func() float64 {
		o, _, err := k.forward(ins)
		if err != nil {
			t.Fatalf("forward: %v", err)
		}
		return weightedSum(o, r)
	}
	for _, i := range wrt {
		x := ins[i]
		g := grads[i]
		if g == nil {
			t.Fatalf("input %d: no gradient", i)
		}
		if len(g.Data) != len(x.Data) {
			t.Fatalf("input %d: gradient has %d values, input %d", i, len(g.Data), len(x.Data))
		}
		samples := rng.Perm(len(x.Data))
		if len(samples) > 60 {
			samples = samples[:60]
		}
		for _, e := range samples {
			orig := x.Data[e]
			x.Data[e] = orig + eps
			up := loss()
			x.Data[e] = orig - eps
			down := loss()
			x.Data[e] = orig
			num := (up - down) / (2 * eps)
			ana := float64(g.Data[e])
			if math.Abs(num-ana) > 2e-3+2e-3*math.Abs(num) {
				t.Errorf("input %d element %d: backward %.6f, finite difference %.6f", i, e, ana, num)
			}
		}
	}
}
