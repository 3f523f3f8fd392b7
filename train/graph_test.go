package train

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/edgedet/edgedet/onnx"
	"github.com/edgedet/edgedet/onnx/onnxpb"
	"github.com/edgedet/edgedet/onnx/onnxtest/graphgen"
)

func TestBuildParams(t *testing.T) {
	g, err := Build(tinyYOLO(1), Options{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range g.Params() {
		names = append(names, p.Name)
		if !slices.Equal(p.Grad.Shape, p.Value.Shape) {
			t.Errorf("%s: grad shape %v, value %v", p.Name, p.Grad.Shape, p.Value.Shape)
		}
	}
	want := []string{"c1.w", "c1.b", "c2.w", "c2.b", "c3.w", "c3.b", "c4.w", "c4.b", "boxc.w", "boxc.b", "objc.w", "objc.b"}
	if !slices.Equal(names, want) {
		t.Fatalf("params %v, want %v (Resize scales and the Reshape target are not parameters)", names, want)
	}
	var ops []string
	for _, n := range g.nodes {
		ops = append(ops, n.op)
	}
	if got := strings.Count(strings.Join(ops, " "), "SiLU"); got != 3 {
		t.Errorf("%d fused SiLU in %v, want 3 (the obj head's sigmoid is an output and stays)", got, ops)
	}
}

func TestBuildUnsupported(t *testing.T) {
	if _, err := Build(&onnxpb.ModelProto{}, Options{}); err == nil || !strings.Contains(err.Error(), "no graph") {
		t.Errorf("model without graph: %v", err)
	}
	m := tinyYOLO(1)
	m.Graph.Node[3].OpType = proto.String("Gelu")
	_, err := Build(m, Options{})
	if err == nil || !strings.Contains(err.Error(), "Gelu") || !strings.Contains(err.Error(), m.Graph.Node[3].GetName()) {
		t.Fatalf("error %v, want one naming the node %q and the operator Gelu", err, m.Graph.Node[3].GetName())
	}
	m = tinyYOLO(1)
	m.Graph.Node[0].Attribute = append(m.Graph.Node[0].Attribute, graphgen.String("auto_pad", "SAME_UPPER"))
	if _, err := Build(m, Options{}); err == nil || !strings.Contains(err.Error(), "auto_pad") {
		t.Fatalf("error %v, want one about auto_pad", err)
	}
}

func TestForwardErrors(t *testing.T) {
	g, err := Build(tinyYOLO(1), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.Forward(map[string]*Tensor{}); err == nil || !strings.Contains(err.Error(), `"x"`) {
		t.Errorf("missing input: %v", err)
	}
	if _, err := g.Forward(map[string]*Tensor{"x": NewTensor(1, 3, 8, 8), "y": NewTensor(1)}); err == nil {
		t.Error("unknown input accepted")
	}
	if _, err := g.Forward(map[string]*Tensor{"x": NewTensor(1, 4, 8, 8)}); err == nil || !strings.Contains(err.Error(), "c1_Conv") {
		t.Errorf("wrong channel count: %v, want an error naming the Conv", err)
	}
	if _, err := g.Forward(map[string]*Tensor{"x": NewTensor(1, 3, 8, 8)}, "nope"); err == nil {
		t.Error("unknown wanted tensor accepted")
	}
}

// TestCompositeAndFusedAgree runs the graph with SiLU fused and as
// Sigmoid→Mul: outputs and parameter gradients must agree.
func TestCompositeAndFusedAgree(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 3))
	x := randTensor(rng, 2, 3, 8, 8)
	var results [2][]float32
	for i, keep := range []bool{false, true} {
		g, err := Build(tinyYOLO(4), Options{KeepCompositeSiLU: keep})
		if err != nil {
			t.Fatal(err)
		}
		outs, tape, err := g.ForwardTrain(map[string]*Tensor{"x": x})
		if err != nil {
			t.Fatal(err)
		}
		grads := map[string]*Tensor{}
		for _, name := range g.Outputs() {
			grads[name] = onesLike(outs[name])
			results[i] = append(results[i], outs[name].Data...)
		}
		if err := tape.Backward(grads); err != nil {
			t.Fatal(err)
		}
		for _, p := range g.Params() {
			results[i] = append(results[i], p.Grad.Data...)
		}
	}
	if len(results[0]) != len(results[1]) {
		t.Fatalf("%d vs %d values", len(results[0]), len(results[1]))
	}
	for i := range results[0] {
		if d := math.Abs(float64(results[0][i] - results[1][i])); d > 1e-5*max(1, math.Abs(float64(results[0][i]))) {
			t.Fatalf("value %d: fused %g, composite %g", i, results[0][i], results[1][i])
		}
	}
}

func onesLike(t *Tensor) *Tensor {
	o := NewTensor(t.Shape...)
	for i := range o.Data {
		o.Data[i] = 1
	}
	return o
}

// TestGraphGradients checks the whole tiny graph's parameter gradients
// (batch 2, both SiLU forms) against central finite differences of a
// random weighted sum of all its outputs.
func TestGraphGradients(t *testing.T) {
	for _, keep := range []bool{false, true} {
		g, err := Build(tinyYOLO(5), Options{KeepCompositeSiLU: keep})
		if err != nil {
			t.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(6, 7))
		in := map[string]*Tensor{"x": randTensor(rng, 2, 3, 8, 8)}
		outs, tape, err := g.ForwardTrain(in)
		if err != nil {
			t.Fatal(err)
		}
		r := map[string][]float64{}
		grads := map[string]*Tensor{}
		for _, name := range g.Outputs() {
			y := outs[name]
			grads[name] = NewTensor(y.Shape...)
			r[name] = make([]float64, len(y.Data))
			for i := range y.Data {
				r[name][i] = rng.Float64()*2 - 1
				grads[name].Data[i] = float32(r[name][i])
			}
		}
		if err := tape.Backward(grads); err != nil {
			t.Fatal(err)
		}
		loss := func() float64 {
			o, err := g.Forward(in)
			if err != nil {
				t.Fatal(err)
			}
			var s float64
			for name, y := range o {
				for i, v := range y.Data {
					s += r[name][i] * float64(v)
				}
			}
			return s
		}
		const eps = 1e-3
		base := loss()
		checked, kinks := 0, 0
		for _, p := range g.Params() {
			for _, e := range rng.Perm(len(p.Value.Data))[:min(12, len(p.Value.Data))] {
				orig := p.Value.Data[e]
				p.Value.Data[e] = orig + eps
				up := loss()
				p.Value.Data[e] = orig - eps
				down := loss()
				p.Value.Data[e] = orig
				num := (up - down) / (2 * eps)
				// A MaxPool argmax that changes within ±eps makes the loss
				// non-smooth there: the one-sided slopes disagree. Skip.
				if right, left := (up-base)/eps, (base-down)/eps; math.Abs(right-left) > 1e-2+1e-2*math.Abs(num) {
					kinks++
					continue
				}
				ana := float64(p.Grad.Data[e])
				if math.Abs(num-ana) > 5e-3+5e-3*math.Abs(num) {
					t.Errorf("composite=%v %s[%d]: backward %.6f, finite difference %.6f", keep, p.Name, e, ana, num)
				}
				checked++
			}
		}
		if checked < 80 || kinks > checked/10 {
			t.Fatalf("%d elements checked, %d skipped at kinks", checked, kinks)
		}
		t.Logf("composite=%v: %d parameter elements checked, %d skipped at kinks", keep, checked, kinks)
	}
}

// TestBackwardOnce: a tape is consumed by Backward, and gradients for
// tensors that are not in the graph are an error.
func TestBackwardErrors(t *testing.T) {
	g, err := Build(tinyYOLO(1), Options{})
	if err != nil {
		t.Fatal(err)
	}
	x := NewTensor(1, 3, 8, 8)
	outs, tape, err := g.ForwardTrain(map[string]*Tensor{"x": x})
	if err != nil {
		t.Fatal(err)
	}
	if err := tape.Backward(map[string]*Tensor{"nope": NewTensor(1)}); err == nil {
		t.Error("gradient for an unknown tensor accepted")
	}
	_, tape, _ = g.ForwardTrain(map[string]*Tensor{"x": x})
	if err := tape.Backward(map[string]*Tensor{"obj": NewTensor(1, 1, 4, 4)}); err == nil || !strings.Contains(err.Error(), "shape") {
		t.Errorf("wrong gradient shape: %v", err)
	}
	_, tape, _ = g.ForwardTrain(map[string]*Tensor{"x": x})
	if err := tape.Backward(map[string]*Tensor{"obj": onesLike(outs["obj"])}); err != nil {
		t.Fatal(err)
	}
	if err := tape.Backward(map[string]*Tensor{"obj": onesLike(outs["obj"])}); err == nil {
		t.Error("second Backward on one tape accepted")
	}
}

// TestModelWritesParams: Model returns the graph's current weights.
func TestModelWritesParams(t *testing.T) {
	g, err := Build(tinyYOLO(1), Options{})
	if err != nil {
		t.Fatal(err)
	}
	g.Param("c1.w").Value.Data[0] = 42
	m := g.Model()
	g2, err := Build(m, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if v := g2.Param("c1.w").Value.Data[0]; v != 42 {
		t.Fatalf("rebuilt c1.w[0] = %g, want 42", v)
	}
}

// TestBackwardFromIntermediate: a loss on an intermediate tensor (block-wise
// matching) reaches exactly the parameters upstream of it.
func TestBackwardFromIntermediate(t *testing.T) {
	g, err := Build(tinyYOLO(1), Options{})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(8, 8))
	outs, tape, err := g.ForwardTrain(map[string]*Tensor{"x": randTensor(rng, 2, 3, 8, 8)}, "a2")
	if err != nil {
		t.Fatal(err)
	}
	if got := outs["a2"].Shape; !slices.Equal(got, []int{2, 4, 4, 4}) {
		t.Fatalf("a2 has shape %v, want [2 4 4 4]", got)
	}
	if err := tape.Backward(map[string]*Tensor{"a2": onesLike(outs["a2"])}); err != nil {
		t.Fatal(err)
	}
	upstream := map[string]bool{"c1.w": true, "c1.b": true, "c2.w": true, "c2.b": true}
	for _, p := range g.Params() {
		nonzero := slices.ContainsFunc(p.Grad.Data, func(v float32) bool { return v != 0 })
		if nonzero != upstream[p.Name] {
			t.Errorf("%s: gradient nonzero = %v, want %v", p.Name, nonzero, upstream[p.Name])
		}
	}
}

// TestMalformedNodes: wrong input counts, missing required inputs and
// integer tensors where floats are read are errors naming the node.
func TestMalformedNodes(t *testing.T) {
	for name, edit := range map[string]func(m *onnxpb.ModelProto){
		"conv without weight": func(m *onnxpb.ModelProto) { m.Graph.Node[0].Input = m.Graph.Node[0].Input[:1] },
		"conv empty weight":   func(m *onnxpb.ModelProto) { m.Graph.Node[0].Input[1] = "" },
		"conv int weight":     func(m *onnxpb.ModelProto) { m.Graph.Node[0].Input[1] = "boxshape" },
		"add three inputs":    func(m *onnxpb.ModelProto) { nodeNamed(m, "res_Add").Input = []string{"r4", "c4", "c4"} },
		"node without output": func(m *onnxpb.ModelProto) { nodeNamed(m, "res_Add").Output = nil },
	} {
		m := tinyYOLO(1)
		edit(m)
		g, err := Build(m, Options{})
		if err == nil {
			_, err = g.Forward(map[string]*Tensor{"x": NewTensor(1, 3, 8, 8)})
		}
		if err == nil {
			t.Errorf("%s: no error", name)
			continue
		}
		t.Logf("%s: %v", name, err)
	}
}

func nodeNamed(m *onnxpb.ModelProto, name string) *onnxpb.NodeProto {
	for _, n := range m.GetGraph().GetNode() {
		if n.GetName() == name {
			return n
		}
	}
	return nil
}

// TestForwardFromIntermediate runs the tail of the graph on features
// given by name: the result equals the full run, only the operators the
// wanted tensor depends on run (what they need and nobody gave is an error
// naming it), and gradients stop at the given features.
func TestForwardFromIntermediate(t *testing.T) {
	g, err := Build(tinyYOLO(3), Options{})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(9, 9))
	full, err := g.Forward(map[string]*Tensor{"x": randTensor(rng, 2, 3, 8, 8)}, "a1", "a2", "box")
	if err != nil {
		t.Fatal(err)
	}
	feats := map[string]*Tensor{"a1": full["a1"], "a2": full["a2"]}
	tail, tape, err := g.ForwardTrain(feats, "box")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(tail["box"].Data, full["box"].Data) {
		t.Fatal("box from the given features differs from the full run")
	}
	if err := tape.Backward(map[string]*Tensor{"box": onesLike(tail["box"])}); err != nil {
		t.Fatal(err)
	}
	for _, p := range g.Params() {
		nonzero := slices.ContainsFunc(p.Grad.Data, func(v float32) bool { return v != 0 })
		want := !strings.HasPrefix(p.Name, "c1.") && !strings.HasPrefix(p.Name, "c2.") && !strings.HasPrefix(p.Name, "objc.")
		if nonzero != want {
			t.Errorf("%s: gradient nonzero = %v, want %v", p.Name, nonzero, want)
		}
	}
	// Without a1 the graph would have to compute it from x.
	if _, err := g.Forward(map[string]*Tensor{"a2": full["a2"]}, "box"); err == nil || !strings.Contains(err.Error(), `"x"`) {
		t.Errorf("without a1: %v, want an error naming x", err)
	}
	if _, err := g.Forward(map[string]*Tensor{"x": NewTensor(1, 3, 8, 8)}, "a1"); err != nil {
		t.Errorf("an early tensor from x alone: %v", err)
	}
	if _, err := g.Forward(map[string]*Tensor{"scales": NewTensor(4)}, "up"); err == nil {
		t.Error("overriding a constant accepted")
	}
}

// TestConcurrentForward runs one graph from several goroutines (run with
// -race): results equal a sequential run, and a Cast of a constant leaves
// the constant intact for the next run.
func TestConcurrentForward(t *testing.T) {
	m := tinyYOLO(2)
	b := &graphgen.Builder{}
	b.Node("Cast", []string{"scales"}, []string{"scales_f"}, onnx.IntAttr("to", int64(onnxpb.TensorProto_FLOAT)))
	m.Graph.Node = append(b.Nodes, m.Graph.Node...)
	nodeNamed(m, "up_Resize").Input[2] = "scales_f"
	g, err := Build(m, Options{})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(10, 10))
	x := randTensor(rng, 1, 3, 8, 8)
	want, err := g.Forward(map[string]*Tensor{"x": x})
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			got, err := g.Forward(map[string]*Tensor{"x": x})
			if err == nil && !slices.Equal(got["box"].Data, want["box"].Data) {
				err = errors.New("concurrent run differs from the sequential one")
			}
			errs <- err
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}
