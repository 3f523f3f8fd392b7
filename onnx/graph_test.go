package onnx_test

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/edgedet/edgedet/onnx"
	"github.com/edgedet/edgedet/onnx/onnxpb"
	"github.com/edgedet/edgedet/onnx/onnxtest"
)

func TestGraphSharedModels(t *testing.T) {
	for _, path := range onnxtest.SharedModels(t) {
		t.Run(filepath.Base(path), func(t *testing.T) {
			m := onnxtest.LoadModel(t, path)
			g := onnx.NewGraph(m)
			gp := m.GetGraph()
			if g.Opset() < 7 {
				t.Errorf("Opset() = %d", g.Opset())
			}

			// Index consistency, both ways.
			for _, n := range gp.GetNode() {
				for _, o := range n.GetOutput() {
					if o != "" && g.Producer(o) != n {
						t.Fatalf("Producer(%q) is not the node that outputs it", o)
					}
				}
				for _, in := range n.GetInput() {
					if in == "" {
						continue
					}
					if !slices.Contains(g.Consumers(in), n) {
						t.Fatalf("Consumers(%q) lacks a node that reads it", in)
					}
					if g.Producer(in) == nil && g.Initializer(in) == nil && !g.IsInput(in) {
						t.Fatalf("input %q has no producer, initializer or graph input", in)
					}
				}
			}
			seen := map[string]bool{}
			for _, n := range gp.GetNode() {
				for _, in := range n.GetInput() {
					if in == "" || seen[in] {
						continue
					}
					seen[in] = true
					for _, c := range g.Consumers(in) {
						if !slices.Contains(c.GetInput(), in) {
							t.Fatalf("Consumers(%q) holds a node that does not read it", in)
						}
					}
				}
			}
			for _, init := range gp.GetInitializer() {
				if g.Initializer(init.GetName()) != init {
					t.Fatalf("Initializer(%q) is not the graph's initializer", init.GetName())
				}
				if g.Producer(init.GetName()) != nil {
					t.Fatalf("initializer %q has a producer", init.GetName())
				}
			}
			for _, o := range gp.GetOutput() {
				if !g.IsOutput(o.GetName()) || g.ValueInfo(o.GetName()) != o {
					t.Fatalf("output %q not indexed", o.GetName())
				}
			}
			if g.Producer("no such tensor") != nil || g.Consumers("no such tensor") != nil || g.Initializer("no such tensor") != nil {
				t.Error("unknown names should give nil")
			}

			sorted, err := g.TopoSort()
			if err != nil {
				t.Fatal(err)
			}
			if len(sorted) != len(gp.GetNode()) {
				t.Fatalf("TopoSort returned %d nodes, graph has %d", len(sorted), len(gp.GetNode()))
			}
			checkTopo(t, g, sorted)
			// The stored order of an exported model is already valid, and
			// TopoSort keeps a valid order as it is.
			if validOrder(g, gp.GetNode()) && !slices.Equal(sorted, gp.GetNode()) {
				t.Error("TopoSort reordered a graph whose order was already valid")
			}

			// A reversed node list sorts back into a valid order.
			rev := slices.Clone(gp.GetNode())
			slices.Reverse(rev)
			gp.Node = rev
			g.Reindex()
			sorted, err = g.TopoSort()
			if err != nil {
				t.Fatal(err)
			}
			checkTopo(t, g, sorted)
		})
	}
}

// checkTopo fails unless every node comes after the producers of its inputs.
func checkTopo(t *testing.T, g *onnx.Graph, order []*onnxpb.NodeProto) {
	t.Helper()
	if !validOrder(g, order) {
		t.Fatal("TopoSort order puts a node before a producer of its inputs")
	}
	seen := map[*onnxpb.NodeProto]bool{}
	for _, n := range order {
		if seen[n] {
			t.Fatal("TopoSort returned a node twice")
		}
		seen[n] = true
	}
}

func validOrder(g *onnx.Graph, order []*onnxpb.NodeProto) bool {
	done := map[*onnxpb.NodeProto]bool{}
	for _, n := range order {
		for _, in := range n.GetInput() {
			if p := g.Producer(in); p != nil && !done[p] {
				return false
			}
		}
		done[n] = true
	}
	return true
}

func node(name, op string, in, out []string, attrs ...*onnxpb.AttributeProto) *onnxpb.NodeProto {
	return &onnxpb.NodeProto{Name: proto.String(name), OpType: proto.String(op), Input: in, Output: out, Attribute: attrs}
}

func valueInfo(name string, dims ...int64) *onnxpb.ValueInfoProto {
	d := make([]*onnxpb.TensorShapeProto_Dimension, len(dims))
	for i, v := range dims {
		d[i] = &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: v}}
	}
	return &onnxpb.ValueInfoProto{
		Name: proto.String(name),
		Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{TensorType: &onnxpb.TypeProto_Tensor{
			ElemType: proto.Int32(int32(onnxpb.TensorProto_FLOAT)),
			Shape:    &onnxpb.TensorShapeProto{Dim: d},
		}}},
	}
}

func TestTopoSortCycle(t *testing.T) {
	for _, tc := range []struct {
		name  string
		nodes []*onnxpb.NodeProto
		on    []string // nodes on the cycle; the error names one of them
	}{
		{"two nodes", []*onnxpb.NodeProto{
			node("head", "Relu", []string{"x"}, []string{"h"}),
			node("a", "Add", []string{"h", "b_out"}, []string{"a_out"}),
			node("b", "Relu", []string{"a_out"}, []string{"b_out"}),
			node("tail", "Relu", []string{"b_out"}, []string{"y"}),
		}, []string{`"a"`, `"b"`}},
		{"self loop", []*onnxpb.NodeProto{
			node("tail", "Relu", []string{"s"}, []string{"y"}),
			node("self", "Add", []string{"x", "s"}, []string{"s"}),
		}, []string{`"self"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := &onnxpb.ModelProto{IrVersion: proto.Int64(8), Graph: &onnxpb.GraphProto{Node: tc.nodes}}
			_, err := onnx.NewGraph(m).TopoSort()
			if err == nil {
				t.Fatal("TopoSort succeeded on a cyclic graph")
			}
			if !strings.Contains(err.Error(), "cycle") || !slices.ContainsFunc(tc.on, func(s string) bool { return strings.Contains(err.Error(), s) }) {
				t.Errorf("error %q does not name a node on the cycle %v", err, tc.on)
			}
		})
	}
}

// A node whose subgraph reads a main-graph tensor consumes it, and sorts
// after its producer.
func TestGraphSubgraphReads(t *testing.T) {
	body := &onnxpb.GraphProto{
		Node:   []*onnxpb.NodeProto{node("inner", "Add", []string{"w", "local"}, []string{"z"})},
		Input:  []*onnxpb.ValueInfoProto{valueInfo("local")},
		Output: []*onnxpb.ValueInfoProto{valueInfo("z")},
	}
	ifNode := node("if", "If", []string{"cond"}, []string{"y"},
		&onnxpb.AttributeProto{Name: proto.String("then_branch"), G: body},
		&onnxpb.AttributeProto{Name: proto.String("else_branch"), G: body})
	m := &onnxpb.ModelProto{
		IrVersion:   proto.Int64(8),
		OpsetImport: []*onnxpb.OperatorSetIdProto{{Domain: proto.String("ai.onnx.ml"), Version: proto.Int64(3)}, {Version: proto.Int64(17)}},
		Graph: &onnxpb.GraphProto{Node: []*onnxpb.NodeProto{
			ifNode,
			node("make_w", "Relu", []string{"x"}, []string{"w"}),
		}},
	}
	g := onnx.NewGraph(m)
	if c := g.Consumers("w"); len(c) != 1 || c[0] != ifNode {
		t.Errorf("Consumers(w) = %v, want the If node", c)
	}
	if c := g.Consumers("local"); c != nil {
		t.Errorf("Consumers(local) = %v, want none (subgraph-local)", c)
	}
	sorted, err := g.TopoSort()
	if err != nil {
		t.Fatal(err)
	}
	if sorted[0].GetName() != "make_w" {
		t.Errorf("TopoSort order %s, %s: want make_w first", sorted[0].GetName(), sorted[1].GetName())
	}
	if g.Opset() != 17 {
		t.Errorf("Opset() = %d, want 17 (the default domain's)", g.Opset())
	}
}
