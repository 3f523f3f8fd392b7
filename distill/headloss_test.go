package distill

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/edgedet/edgedet/onnx/onnxpb"
	"github.com/edgedet/edgedet/onnx/onnxtest/graphgen"
	"github.com/edgedet/edgedet/train"
)

// withClassHead adds to tinyDetector a head "h3" of classes channels read
// by a Sigmoid (output "cls"), next to h1 (box) and h2 (objectness).
func withClassHead(m *onnxpb.ModelProto, classes int) *onnxpb.ModelProto {
	b := newBuilder(5, 5)
	b.Conv("a3", "h3", 6, classes, 1, 1, 1)
	b.Node("Sigmoid", []string{"h3"}, []string{"cls"})
	g := m.GetGraph()
	g.Node = append(g.Node, b.Nodes...)
	g.Initializer = append(g.Initializer, b.Inits...)
	g.Output = append(g.Output, graphgen.ValueInfo("cls", 1, int64(classes), 8, 8))
	return m
}

func termsOf(t *testing.T, m *onnxpb.ModelProto) map[string]headTerm {
	t.Helper()
	p, err := makePlan(m, m)
	if err != nil {
		t.Fatal(err)
	}
	terms := map[string]headTerm{}
	for _, h := range p.detection {
		terms[h.name] = h
	}
	return terms
}

// TestDetectionTermsFromGraph: heads read by a Sigmoid are logits; a
// single-channel logit (objectness) is matched everywhere and the level's
// other heads are weighed by the confidence of its logits; without an
// objectness the logits are matched everywhere; without any logit nothing
// is weighed.
func TestDetectionTermsFromGraph(t *testing.T) {
	check := func(name string, got headTerm, logit bool, confidence []string) {
		t.Helper()
		if got.logit != logit || !slices.Equal(got.confidence, confidence) {
			t.Errorf("%s: logit %v, confidence %v; want %v, %v", name, got.logit, got.confidence, logit, confidence)
		}
	}
	terms := termsOf(t, withClassHead(tinyDetector(1, 1), 3))
	check("box", terms["h1"], false, []string{"h2", "h3"})
	check("objectness", terms["h2"], true, nil)
	check("classes", terms["h3"], true, []string{"h2", "h3"})

	terms = termsOf(t, tinyDetector(1, 2)) // two logit channels, no objectness
	check("box without objectness", terms["h1"], false, []string{"h2"})
	check("logits without objectness", terms["h2"], true, nil)

	m := tinyDetector(1, 1) // h2 is an output itself: no Sigmoid reads it
	g := m.GetGraph()
	g.Node = slices.DeleteFunc(g.Node, func(n *onnxpb.NodeProto) bool { return n.GetOpType() == "Sigmoid" && n.GetInput()[0] == "h2" })
	g.Output[1].Name = proto.String("h2")
	terms = termsOf(t, m)
	check("box, no logit", terms["h1"], false, nil)
	check("raw head", terms["h2"], false, nil)
}

// objectScene is a teacher's heads on a [1 C 2 2] level: cells 0–2 are
// background (objectness logit −10), cell 3 an object (+4).
func objectScene() map[string]*train.Tensor {
	box := train.NewTensor(1, 4, 2, 2)
	for i := range box.Data {
		box.Data[i] = float32(i%4) * 0.5
	}
	obj := train.NewTensor(1, 1, 2, 2)
	copy(obj.Data, []float32{-10, -10, -10, 4})
	return map[string]*train.Tensor{"box": box, "obj": obj}
}

// miss is the teacher's heads with the box off by 1 in every channel and
// the objectness logit lowered by 2 at cell (none when cell < 0).
func miss(tv map[string]*train.Tensor, cell int) map[string]*train.Tensor {
	got := map[string]*train.Tensor{}
	for k, v := range tv {
		c := train.NewTensor(v.Shape...)
		copy(c.Data, v.Data)
		got[k] = c
	}
	if cell < 0 {
		return got
	}
	for ch := range 4 {
		got["box"].Data[ch*4+cell]++
	}
	got["obj"].Data[cell] -= 2
	return got
}

// TestDetectionLossWeighsObjects: the same error costs next to nothing at
// a background cell and a lot at the object's cell, where the squared
// error on the logits charges both alike.
func TestDetectionLossWeighsObjects(t *testing.T) {
	tv := objectScene()
	detection := []headTerm{{name: "box", confidence: []string{"obj"}}, {name: "obj", logit: true}}
	loss := func(terms []headTerm, cell int) float64 {
		w, err := termWeights(terms, tv, 1)
		if err != nil {
			t.Fatal(err)
		}
		l, _, err := headLoss(terms, miss(tv, cell), tv, w)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	background, object := loss(detection, 0), loss(detection, 3)
	if background > 1e-3*object || object < 0.1 {
		t.Errorf("detection loss: background miss %g, object miss %g; want the first < 1e-3 of the second", background, object)
	}
	mse := mseTerms([]string{"box", "obj"})
	if b, o := loss(mse, 0), loss(mse, 3); math.Abs(b-o) > 1e-9*o {
		t.Errorf("squared error: background miss %g, object miss %g; want them equal", b, o)
	}
	if l := loss(detection, -1); l != 0 {
		t.Errorf("loss of the teacher itself %g, want 0", l)
	}
}

// TestTermWeightsScoreMeanAsOne: a student predicting the teacher's
// (confidence-weighted) mean scores 1 in every term kind.
func TestTermWeightsScoreMeanAsOne(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	tv := map[string]*train.Tensor{"box": train.NewTensor(2, 4, 3, 3), "obj": train.NewTensor(2, 1, 3, 3), "cls": train.NewTensor(2, 3, 3, 3)}
	for _, v := range tv {
		for i := range v.Data {
			v.Data[i] = float32(rng.NormFloat64() * 3)
		}
	}
	terms := []headTerm{{name: "box", confidence: []string{"obj", "cls"}}, {name: "obj", logit: true}, {name: "cls", logit: true, confidence: []string{"obj", "cls"}}}
	w, err := termWeights(terms, tv, 1)
	if err != nil {
		t.Fatal(err)
	}
	cells := cellWeights(terms, tv)
	for _, h := range terms {
		c := cells[fmt.Sprint(h.confidence)]
		mean := train.NewTensor(tv[h.name].Shape...)
		m := weightedMean(tv[h.name], c, h.logit)
		for i := range mean.Data {
			mean.Data[i] = float32(m)
		}
		l, _, err := headLoss([]headTerm{h}, map[string]*train.Tensor{h.name: mean}, tv, w)
		if err != nil {
			t.Fatal(err)
		}
		if want := 1.0 / 3; math.Abs(l-want) > 1e-5 {
			t.Errorf("%s: loss of the mean %g, want %g", h.name, l, want)
		}
	}
}

// TestHeadLossGradient compares headLoss's gradients with finite
// differences, confidence weights and logits included.
func TestHeadLossGradient(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	tv := map[string]*train.Tensor{"box": train.NewTensor(1, 2, 2, 2), "obj": train.NewTensor(1, 1, 2, 2), "cls": train.NewTensor(1, 2, 2, 2)}
	got := map[string]*train.Tensor{}
	for k, v := range tv {
		g := train.NewTensor(v.Shape...)
		for i := range v.Data {
			v.Data[i] = float32(rng.NormFloat64() * 2)
			g.Data[i] = float32(rng.NormFloat64() * 2)
		}
		got[k] = g
	}
	terms := []headTerm{{name: "box", confidence: []string{"obj", "cls"}}, {name: "obj", logit: true}, {name: "cls", logit: true, confidence: []string{"obj", "cls"}}}
	w, err := termWeights(terms, tv, 1)
	if err != nil {
		t.Fatal(err)
	}
	_, grads, err := headLoss(terms, got, tv, w)
	if err != nil {
		t.Fatal(err)
	}
	const eps = 1e-3
	for k, y := range got {
		for i := range y.Data {
			orig := y.Data[i]
			y.Data[i] = orig + eps
			up, _, _ := headLoss(terms, got, tv, w)
			y.Data[i] = orig - eps
			down, _, _ := headLoss(terms, got, tv, w)
			y.Data[i] = orig
			num := (up - down) / (2 * eps)
			if ana := float64(grads[k].Data[i]); math.Abs(num-ana) > 1e-4+3e-3*math.Abs(num) {
				t.Errorf("%s[%d]: gradient %.6g, finite difference %.6g", k, i, ana, num)
			}
		}
	}
}
