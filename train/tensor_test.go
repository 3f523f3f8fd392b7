package train

import (
	"slices"
	"strings"
	"testing"
)

func TestTensorBasics(t *testing.T) {
	x := NewTensor(2, 3, 4)
	if x.Len() != 24 || len(x.Data) != 24 {
		t.Fatalf("NewTensor(2,3,4): Len %d, %d values", x.Len(), len(x.Data))
	}
	if _, err := FromData(make([]float32, 5), 2, 3); err == nil || !strings.Contains(err.Error(), "[2 3]") {
		t.Errorf("FromData with 5 values for [2 3]: %v", err)
	}
	y, err := FromData([]float32{1, 2, 3, 4, 5, 6}, 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	c := y.Clone()
	c.Data[0], c.Shape[0] = 9, 7
	if y.Data[0] != 1 || y.Shape[0] != 2 {
		t.Errorf("Clone shares storage with the original: %v %v", y.Shape, y.Data)
	}
}

func TestGraphAccessors(t *testing.T) {
	g, err := Build(tinyYOLO(1), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(g.Inputs(), []string{"x"}) || !slices.Equal(g.Outputs(), []string{"box", "obj", "objsilu"}) {
		t.Errorf("inputs %v outputs %v", g.Inputs(), g.Outputs())
	}
	if g.Param("scales") != nil || g.Param("c1.w") == nil {
		t.Error("Param: scales must not be a parameter, c1.w must")
	}
	outs, tape, err := g.ForwardTrain(map[string]*Tensor{"x": NewTensor(1, 3, 8, 8)})
	if err != nil {
		t.Fatal(err)
	}
	if err := tape.Backward(map[string]*Tensor{"obj": onesLike(outs["obj"])}); err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(g.Param("objc.b").Grad.Data, func(v float32) bool { return v != 0 }) {
		t.Fatal("backward left objc.b's gradient zero")
	}
	g.ZeroGrad()
	for _, p := range g.Params() {
		if slices.ContainsFunc(p.Grad.Data, func(v float32) bool { return v != 0 }) {
			t.Fatalf("%s: gradient not cleared by ZeroGrad", p.Name)
		}
	}
}
