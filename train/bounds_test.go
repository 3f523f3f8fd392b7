package train

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

func TestSetBounds(t *testing.T) {
	rng := rand.New(rand.NewPCG(51, 52))
	w, ws := qdqWeights(rng)
	g := mustBuild(t, qdqConvModel(w, ws, false))
	n := len(w)
	lower, upper := make([]float32, n), make([]float32, n)
	for i := range n {
		lower[i], upper[i] = -1, 1
	}
	swapped := slices.Clone(upper)
	swapped[3] = -2
	withNaN := slices.Clone(lower)
	withNaN[5] = float32(math.NaN())
	for _, c := range []struct {
		name, param string
		b           *Bounds
		want        []string
	}{
		{"unknown parameter", "nope", &Bounds{lower, upper}, []string{`"nope"`, "no such parameter"}},
		{"scale is no parameter", "W.s", &Bounds{lower[:3], upper[:3]}, []string{`"W.s"`, "no such parameter"}},
		{"short lower", "W", &Bounds{lower[1:], upper}, []string{`"W"`, "53 lower and 54 upper limits for 54 values"}},
		{"short upper", "W", &Bounds{lower, upper[:2]}, []string{`"W"`, "54 lower and 2 upper limits for 54 values"}},
		{"lower above upper", "W", &Bounds{lower, swapped}, []string{`"W"`, "element 3", "lower limit -1 above upper limit -2"}},
		{"NaN limit", "W", &Bounds{withNaN, upper}, []string{`"W"`, "element 5"}},
	} {
		err := g.SetBounds(c.param, c.b)
		for _, w := range c.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %v, want an error containing %q", c.name, err, w)
			}
		}
	}
	if p := g.Param("W"); p.Bounds != nil {
		t.Fatalf("a refused SetBounds left bounds %v", p.Bounds)
	}
	b := &Bounds{lower, upper}
	if err := g.SetBounds("W", b); err != nil || g.Param("W").Bounds != b {
		t.Fatalf("SetBounds: %v, bounds %p, want %p", err, g.Param("W").Bounds, b)
	}
	if err := g.SetBounds("W", nil); err != nil || g.Param("W").Bounds != nil {
		t.Fatalf("SetBounds(nil): %v, bounds %v", err, g.Param("W").Bounds)
	}
}

// TestOptimizersClampIntoBounds: a step that would leave the bounds ends on
// them, values inside them are untouched, and without bounds the step is
// the unclamped one.
func TestOptimizersClampIntoBounds(t *testing.T) {
	start := []float32{0, 0.5, -0.5, 1, 0.3}
	grad := []float32{5, -5, 5, -5, 0}
	bounds := &Bounds{Lower: []float32{-0.1, 0, -1, 0.9, 0}, Upper: []float32{0.1, 1, 0, 1.1, 1}}
	for _, c := range []struct {
		name      string
		optimizer func() Optimizer
		free      []float32 // the first step without bounds
	}{
		{"sgd", func() Optimizer { return &SGD{LR: 10} }, []float32{-50, 50.5, -50.5, 51, 0.3}},
		{"sgd momentum", func() Optimizer { return &SGD{LR: 10, Momentum: 0.9} }, []float32{-50, 50.5, -50.5, 51, 0.3}},
		{"adam", func() Optimizer { return &Adam{LR: 10} }, []float32{-10, 10.5, -10.5, 11, 0.3}},
	} {
		t.Run(c.name, func(t *testing.T) {
			free, bounded := param(slices.Clone(start)...), param(slices.Clone(start)...)
			bounded.Bounds = bounds
			free.Grad.Data, bounded.Grad.Data = slices.Clone(grad), slices.Clone(grad)
			of, ob := c.optimizer(), c.optimizer()
			if err := of.Step([]*Param{free}); err != nil {
				t.Fatal(err)
			}
			for i, v := range free.Value.Data {
				if math.Abs(float64(v-c.free[i])) > 1e-4 {
					t.Fatalf("unbounded step gave %v, want %v", free.Value.Data, c.free)
				}
			}
			for step := range 3 {
				if err := ob.Step([]*Param{bounded}); err != nil {
					t.Fatal(err)
				}
				for i, v := range bounded.Value.Data {
					if want := min(max(c.free[i], bounds.Lower[i]), bounds.Upper[i]); step == 0 && v != want {
						t.Errorf("step 0 element %d: %g, want %g", i, v, want)
					}
					if v < bounds.Lower[i] || v > bounds.Upper[i] {
						t.Errorf("step %d element %d: %g outside [%g, %g]", step, i, v, bounds.Lower[i], bounds.Upper[i])
					}
				}
			}
		})
	}
}
