package distill

import (
	"math"
	"strings"
	"testing"

	"github.com/edgedet/edgedet/train"
)

// TestScaledOptimizerStepsRelativeToSize: Adam's first step moves every
// element by the learning rate; scaled, by the learning rate times its
// tensor's RMS, and a bias by at least its Conv weight's RMS.
func TestScaledOptimizerStepsRelativeToSize(t *testing.T) {
	m := tinyDetector(1, 2)
	g, err := train.Build(m, train.Options{})
	if err != nil {
		t.Fatal(err)
	}
	before := map[string][]float32{}
	for _, p := range g.Params() {
		before[p.Name] = append([]float32(nil), p.Value.Data...)
		for i := range p.Grad.Data {
			p.Grad.Data[i] = 1
		}
	}
	g.Param("c1.b").Value.Data[0] = 0 // still moves: its scale is the weight's at least
	before["c1.b"][0] = 0
	o := newScaledOptimizer(g, m, false)
	if err := o.step(0.01); err != nil {
		t.Fatal(err)
	}
	for _, p := range g.Params() {
		scale := rms(before[p.Name])
		if strings.HasSuffix(p.Name, ".b") {
			scale = max(scale, rms(before[p.Name[:len(p.Name)-1]+"w"]))
		}
		for i, v := range p.Value.Data {
			if d := float64(before[p.Name][i] - v); math.Abs(d-0.01*scale) > 1e-6*scale+1e-7 {
				t.Fatalf("%s[%d] moved by %g, want 0.01·%g", p.Name, i, d, scale)
			}
		}
	}
}

func TestLearningRateSchedule(t *testing.T) {
	for _, c := range []struct{ done, want float64 }{{0, 1}, {0.5, 0.525}, {1, 0.05}, {2, 0.05}, {-1, 1}} {
		if got := cosineLR(1, 0.05, c.done); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("cosineLR at %g = %g, want %g", c.done, got, c.want)
		}
	}
	for _, c := range []struct {
		steps   int
		limited bool
		want    int
	}{{1000, true, 10}, {50, true, 5}, {5, true, 0}, {0, false, 10}} {
		if got := warmupSteps(c.steps, c.limited); got != c.want {
			t.Errorf("warmupSteps(%d, %v) = %d, want %d", c.steps, c.limited, got, c.want)
		}
	}
}
