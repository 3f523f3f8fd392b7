package train

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/edgedet/edgedet/onnx"
	"github.com/edgedet/edgedet/onnx/onnxpb"
	"github.com/edgedet/edgedet/onnx/onnxtest/graphgen"
)

func param(vals ...float32) *Param {
	return &Param{Name: "p", Value: mustData(vals, len(vals)), Grad: NewTensor(len(vals))}
}

func TestSGDMomentum(t *testing.T) {
	p := param(1, -2)
	o := &SGD{LR: 0.1, Momentum: 0.9, WeightDecay: 0.5}
	p.Grad.Data[0], p.Grad.Data[1] = 2, 0
	if err := o.Step([]*Param{p}); err != nil {
		t.Fatal(err)
	}
	// g' = 2+0.5·1 = 2.5, v = 2.5, w = 1−0.25; g' = 0−1, v = −1, w = −2+0.1.
	want := []float32{0.75, -1.9}
	for i := range want {
		if math.Abs(float64(p.Value.Data[i]-want[i])) > 1e-6 {
			t.Fatalf("after one step %v, want %v", p.Value.Data, want)
		}
	}
	p.Grad.Data[0], p.Grad.Data[1] = 0, 0
	if err := o.Step([]*Param{p}); err != nil {
		t.Fatal(err)
	}
	// v = 0.9·2.5 + 0.5·0.75 = 2.625, w = 0.75 − 0.2625.
	if got := p.Value.Data[0]; math.Abs(float64(got-0.4875)) > 1e-6 {
		t.Fatalf("momentum step gave %g, want 0.4875", got)
	}
}

func TestAdamFirstStepIsLR(t *testing.T) {
	p := param(1, 1, 1)
	p.Grad.Data = []float32{1e-3, -5, 0}
	o := &Adam{LR: 0.01}
	if err := o.Step([]*Param{p}); err != nil {
		t.Fatal(err)
	}
	// With bias correction the first step is LR·sign(g) whatever |g| is.
	want := []float32{0.99, 1.01, 1}
	for i := range want {
		if math.Abs(float64(p.Value.Data[i]-want[i])) > 1e-5 {
			t.Fatalf("after one step %v, want %v", p.Value.Data, want)
		}
	}
}

func TestOptimizersMinimiseQuadratic(t *testing.T) {
	for name, o := range map[string]Optimizer{
		"sgd":  &SGD{LR: 0.05, Momentum: 0.9},
		"adam": &Adam{LR: 0.05},
	} {
		p := param(3, -4)
		for range 500 {
			// loss = (w0−1)² + 3(w1+2)²
			p.Grad.Data[0] = 2 * (p.Value.Data[0] - 1)
			p.Grad.Data[1] = 6 * (p.Value.Data[1] + 2)
			if err := o.Step([]*Param{p}); err != nil {
				t.Fatal(err)
			}
		}
		if math.Abs(float64(p.Value.Data[0]-1)) > 1e-2 || math.Abs(float64(p.Value.Data[1]+2)) > 1e-2 {
			t.Errorf("%s ended at %v, want [1 -2]", name, p.Value.Data)
		}
	}
	bad := &Param{Name: "broken", Value: NewTensor(2), Grad: NewTensor(3)}
	if err := (&Adam{LR: 1}).Step([]*Param{bad}); err == nil || !strings.Contains(err.Error(), "broken") {
		t.Errorf("mismatched gradient: %v", err)
	}
}

func TestMSE(t *testing.T) {
	y := map[string]*Tensor{"a": mustData([]float32{1, 2, 3, 4}, 2, 2), "b": mustData([]float32{0, 0}, 2)}
	tg := map[string]*Tensor{"a": mustData([]float32{1, 2, 3, 6}, 2, 2), "b": mustData([]float32{1, -1}, 2)}
	loss, grads, err := MSE(y, tg, map[string]float64{"a": 1, "b": 0.5})
	if err != nil {
		t.Fatal(err)
	}
	// a: mean(0,0,0,4) = 1; b: 0.5·mean(1,1) = 0.5.
	if math.Abs(loss-1.5) > 1e-9 {
		t.Fatalf("loss %g, want 1.5", loss)
	}
	if g := grads["a"].Data[3]; math.Abs(float64(g)-(-1)) > 1e-6 { // 2·(4−6)/4
		t.Errorf("grad a[3] = %g, want -1", g)
	}
	if g := grads["b"].Data[1]; math.Abs(float64(g)-0.5) > 1e-6 { // 0.5·2·(0+1)/2
		t.Errorf("grad b[1] = %g, want 0.5", g)
	}
	_, _, err = MSE(y, map[string]*Tensor{"a": NewTensor(4)}, map[string]float64{"a": 1})
	if err == nil || !strings.Contains(err.Error(), "[2 2]") || !strings.Contains(err.Error(), "[4]") {
		t.Errorf("shape mismatch error %v, want both shapes named", err)
	}
	if _, _, err := MSE(y, tg, map[string]float64{"c": 1}); err == nil {
		t.Error("unknown output accepted")
	}
}

// smallNet is a trainable miniature of a YOLO block on [N,3,6,6]: Conv +
// SiLU, stride-2 depthwise Conv + SiLU, nearest ×2 Resize, Concat with the
// first block, 1×1 Conv head "y".
func smallNet(seed uint64, width int) *onnxpb.ModelProto {
	b := graphgen.New(seed, 1)
	b.Conv("x", "c1", 3, width, 3, 1, 1)
	b.SiLU("c1", "a1")
	b.Conv("a1", "c2", width, width, 3, 2, width)
	b.SiLU("c2", "a2")
	b.Inits = append(b.Inits, onnx.Float32Vector("roi", nil), onnx.Float32Vector("scales", []float32{1, 1, 2, 2}))
	b.Node("Resize", []string{"a2", "roi", "scales"}, []string{"up"}, graphgen.String("mode", "nearest"),
		graphgen.String("coordinate_transformation_mode", "asymmetric"), graphgen.String("nearest_mode", "floor"))
	b.Node("Concat", []string{"up", "a1"}, []string{"cat"}, onnx.IntAttr("axis", 1))
	b.Conv("cat", "y", 2*width, 3, 1, 1, 1)
	return b.Model([]*onnxpb.ValueInfoProto{graphgen.ValueInfo("x", -1, 3, 6, 6)}, []*onnxpb.ValueInfoProto{graphgen.ValueInfo("y", -1, 3, 6, 6)})
}

// fit trains student to reproduce teacher's "y" on batches of random
// inputs and returns the last loss.
func fit(t *testing.T, teacher, student *Graph, o Optimizer, steps int, rng *rand.Rand) float64 {
	t.Helper()
	var loss float64
	for range steps {
		x := map[string]*Tensor{"x": randTensor(rng, 8, 3, 6, 6)}
		want, err := teacher.Forward(x)
		if err != nil {
			t.Fatal(err)
		}
		got, tape, err := student.ForwardTrain(x)
		if err != nil {
			t.Fatal(err)
		}
		var grads map[string]*Tensor
		loss, grads, err = MSE(got, want, map[string]float64{"y": 1})
		if err != nil {
			t.Fatal(err)
		}
		student.ZeroGrad()
		if err := tape.Backward(grads); err != nil {
			t.Fatal(err)
		}
		if err := o.Step(student.Params()); err != nil {
			t.Fatal(err)
		}
	}
	return loss
}

// TestStudentLearnsTeacher trains a randomly initialised copy of a small
// graph to match its teacher on random inputs (Adam, learning rate divided
// by 4 every 1000 steps): the loss falls to ~0 (below 1e-5 of the teacher
// output's mean square) and on fresh inputs the student's outputs equal
// the teacher's to within 1 % of their range. (Recovery is not bit-exact
// in a few thousand steps: with small weights the SiLUs are nearly linear
// and the last digits converge slowly.)
func TestStudentLearnsTeacher(t *testing.T) {
	teacher, err := Build(smallNet(1, 4), Options{})
	if err != nil {
		t.Fatal(err)
	}
	student, err := Build(smallNet(2, 4), Options{})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 3))
	probe := map[string]*Tensor{"x": randTensor(rng, 16, 3, 6, 6)}
	before := maxDeviation(t, teacher, student, probe)
	var first, last float64
	for phase := range 4 {
		last = fit(t, teacher, student, &Adam{LR: 0.01 / float32(int(1)<<(2*phase))}, 1000, rng)
		if phase == 0 {
			first = last
		}
	}
	after := maxDeviation(t, teacher, student, probe)
	ms, peak := outputStats(t, teacher, probe)
	t.Logf("loss %.3g after 1000 steps, %.3g after 4000 (teacher output mean square %.3g); max |student − teacher| on fresh inputs %.3g → %.3g (teacher max |y| %.3g)",
		first, last, ms, before, after, peak)
	if last > 1e-5*ms {
		t.Errorf("loss %g is not ~0 next to the teacher output's mean square %g", last, ms)
	}
	if after > 0.01*peak {
		t.Errorf("student deviates from the teacher by %g on fresh inputs (outputs reach %g)", after, peak)
	}
}

func maxDeviation(t *testing.T, a, b *Graph, in map[string]*Tensor) float64 {
	t.Helper()
	ya, err := a.Forward(in)
	if err != nil {
		t.Fatal(err)
	}
	yb, err := b.Forward(in)
	if err != nil {
		t.Fatal(err)
	}
	var d float64
	for i, v := range ya["y"].Data {
		d = max(d, math.Abs(float64(v-yb["y"].Data[i])))
	}
	return d
}

// TestCopyOfTeacherStaysPut: a student identical to its teacher has loss
// 0 and its weights do not move under either optimiser.
func TestCopyOfTeacherStaysPut(t *testing.T) {
	for name, o := range map[string]Optimizer{"adam": &Adam{LR: 0.01}, "sgd": &SGD{LR: 0.1, Momentum: 0.9}} {
		teacher, err := Build(smallNet(1, 4), Options{})
		if err != nil {
			t.Fatal(err)
		}
		student, err := Build(smallNet(1, 4), Options{})
		if err != nil {
			t.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(4, 4))
		if loss := fit(t, teacher, student, o, 20, rng); loss != 0 {
			t.Errorf("%s: loss %g, want 0", name, loss)
		}
		for i, p := range student.Params() {
			for j, v := range p.Value.Data {
				if v != teacher.Params()[i].Value.Data[j] {
					t.Fatalf("%s: %s[%d] moved from %g to %g", name, p.Name, j, teacher.Params()[i].Value.Data[j], v)
				}
			}
		}
	}
}

// outputStats are the mean square and the largest magnitude of g's "y".
func outputStats(t *testing.T, g *Graph, in map[string]*Tensor) (meanSquare, peak float64) {
	t.Helper()
	y, err := g.Forward(in)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range y["y"].Data {
		meanSquare += float64(v) * float64(v)
		peak = max(peak, math.Abs(float64(v)))
	}
	return meanSquare / float64(len(y["y"].Data)), peak
}
