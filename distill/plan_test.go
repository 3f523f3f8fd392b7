package distill

import (
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/edgedet/edgedet/onnx/onnxpb"
)

// TestPlanFindsRegions: pruning c1 makes {c1, its SiLU, c2} one region
// fed by the image and producing c2; pruning c3 makes {c3, its SiLU, both
// heads} another, fed by a2. The heads are h1 and h2 (box goes through a
// Reshape, obj through a Sigmoid, neither through another Conv).
func TestPlanFindsRegions(t *testing.T) {
	teacher := tinyDetector(1, 2)
	student := tinyDetector(1, 2)
	pruneOutputs(student, "c1", "a1", 0, 3)
	pruneOutputs(student, "c3", "a3", 5)
	p, err := makePlan(teacher, student)
	if err != nil {
		t.Fatal(err)
	}
	want := []region{
		{nodes: []string{"c1_Conv", "a1.sig_Sigmoid", "a1_Mul", "c2_Conv"}, inputs: []string{"x"}, outputs: []string{"c2"}},
		{nodes: []string{"c3_Conv", "a3.sig_Sigmoid", "a3_Mul", "h1_Conv", "h2_Conv"}, inputs: []string{"a2"}, outputs: []string{"h1", "h2"}},
	}
	if len(p.regions) != len(want) {
		t.Fatalf("regions %+v, want %+v", p.regions, want)
	}
	for i, r := range p.regions {
		if !slices.Equal(r.nodes, want[i].nodes) || !slices.Equal(r.inputs, want[i].inputs) || !slices.Equal(r.outputs, want[i].outputs) {
			t.Errorf("region %d is %+v, want %+v", i, r, want[i])
		}
	}
	if !slices.Equal(p.heads, []string{"h1", "h2"}) {
		t.Errorf("heads %v, want [h1 h2]", p.heads)
	}
	for _, a := range []string{"x", "c2", "a2", "h1", "box", "obj"} {
		if !p.anchors[a] {
			t.Errorf("%s is not an anchor", a)
		}
	}
	for _, d := range []string{"c1", "a1", "a3", "boxshape"} {
		if p.anchors[d] {
			t.Errorf("%s is an anchor", d)
		}
	}
	if p.input != "x" || !slices.Equal(p.inShape, []int64{1, 3, 8, 8}) {
		t.Errorf("input %s %v, want x [1 3 8 8]", p.input, p.inShape)
	}
}

// TestPlanCopyHasNoRegions: an unpruned copy differs nowhere.
func TestPlanCopyHasNoRegions(t *testing.T) {
	p, err := makePlan(tinyDetector(1, 2), tinyDetector(2, 2))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.regions) != 0 || !slices.Equal(p.heads, []string{"h1", "h2"}) {
		t.Errorf("regions %+v heads %v, want none and [h1 h2]", p.regions, p.heads)
	}
}

func TestPlanRejectsIncompatibleModels(t *testing.T) {
	renamed := tinyDetector(1, 2)
	renamed.Graph.Input[0].Name = proto.String("images")
	renamed.Graph.Node[0].Input[0] = "images"
	outputs := tinyDetector(1, 2)
	outputs.Graph.Output = outputs.Graph.Output[:1]
	for _, tc := range []struct {
		name    string
		student *onnxpb.ModelProto
		want    string
	}{
		{"output shape", tinyDetector(1, 3), `student output "obj" is [1 3 8 8], teacher's is [1 2 8 8]`},
		{"input name", renamed, `student input 0 is "images", teacher's is "x"`},
		{"output count", outputs, "student has 1 outputs, teacher 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := makePlan(tinyDetector(1, 2), tc.student)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}
