package train

import (
	"fmt"
	"math"
)

// Optimizer updates parameters from their accumulated gradients, then
// clamps each into its Bounds. It does not clear the gradients: call
// Graph.ZeroGrad before the next backward.
type Optimizer interface {
	Step(params []*Param) error
}

// SGD is stochastic gradient descent with (heavy-ball) momentum and L2
// weight decay: g' = g + WeightDecay·w; v = Momentum·v + g'; w −= LR·v.
type SGD struct {
	LR, Momentum, WeightDecay float32
	velocity                  map[*Param][]float32
}

// Step applies one update.
func (o *SGD) Step(params []*Param) error {
	if o.velocity == nil {
		o.velocity = map[*Param][]float32{}
	}
	for _, p := range params {
		if err := checkParam(p); err != nil {
			return err
		}
		v := o.velocity[p]
		if v == nil {
			v = make([]float32, len(p.Value.Data))
			o.velocity[p] = v
		}
		w := p.Value.Data
		for i, g := range p.Grad.Data {
			g += o.WeightDecay * w[i]
			v[i] = o.Momentum*v[i] + g
			w[i] -= o.LR * v[i]
		}
		p.clamp()
	}
	return nil
}

// Adam is the Adam optimiser with bias correction; WeightDecay is decoupled
// (AdamW): w −= LR·WeightDecay·w on every step. Zero Beta1, Beta2 and Eps
// take the usual defaults 0.9, 0.999 and 1e-8.
type Adam struct {
	LR, Beta1, Beta2, Eps, WeightDecay float32
	steps                              int
	m, v                               map[*Param][]float32
}

// Step applies one update.
func (o *Adam) Step(params []*Param) error {
	if o.m == nil {
		o.m, o.v = map[*Param][]float32{}, map[*Param][]float32{}
	}
	b1, b2, eps := o.Beta1, o.Beta2, o.Eps
	if b1 == 0 {
		b1 = 0.9
	}
	if b2 == 0 {
		b2 = 0.999
	}
	if eps == 0 {
		eps = 1e-8
	}
	o.steps++
	c1 := 1 - math.Pow(float64(b1), float64(o.steps))
	c2 := 1 - math.Pow(float64(b2), float64(o.steps))
	lr := float32(float64(o.LR) * math.Sqrt(c2) / c1)
	for _, p := range params {
		if err := checkParam(p); err != nil {
			return err
		}
		m, v := o.m[p], o.v[p]
		if m == nil {
			m, v = make([]float32, len(p.Value.Data)), make([]float32, len(p.Value.Data))
			o.m[p], o.v[p] = m, v
		}
		w := p.Value.Data
		for i, g := range p.Grad.Data {
			m[i] = b1*m[i] + (1-b1)*g
			v[i] = b2*v[i] + (1-b2)*g*g
			w[i] -= lr*m[i]/(float32(math.Sqrt(float64(v[i])))+eps) + o.LR*o.WeightDecay*w[i]
		}
		p.clamp()
	}
	return nil
}

func checkParam(p *Param) error {
	if p == nil || p.Value == nil || p.Grad == nil || len(p.Value.Data) != len(p.Grad.Data) {
		return fmt.Errorf("optimizer: parameter %v has no gradient of its size", paramName(p))
	}
	return nil
}

func paramName(p *Param) string {
	if p == nil {
		return "<nil>"
	}
	return fmt.Sprintf("%q", p.Name)
}
