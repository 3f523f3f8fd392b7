package prune_test

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/edgedet/edgedet/onnx/onnxpb"
	"github.com/edgedet/edgedet/prune"
)

// TestCheck: a pruned model must run and keep the original's output
// shapes.
func TestCheck(t *testing.T) {
	initORT(t)
	m := chainModel(t)
	a := analyze(t, m)
	p, err := prune.Apply(m, a, map[int][]int{0: {1, 2, 3}})
	if err != nil {
		t.Fatal(err)
	}
	if err := prune.Check(m, p, chainShape); err != nil {
		t.Errorf("a pruned model: %v", err)
	}

	// An output with other channels: the shapes differ.
	b := newGraphBuilder(t, 5)
	b.output(b.conv("convC", b.input("x", chainShape...), 3, 3, 1))
	if err := prune.Check(m, b.model(), chainShape); err == nil || !strings.Contains(err.Error(), "output 0 has shape [1 3 16 16] instead of [1 4 16 16]") {
		t.Errorf("other output shape: %v", err)
	}
	// A second output: the counts differ.
	two := proto.Clone(m).(*onnxpb.ModelProto)
	two.Graph.Output = append(two.Graph.Output, proto.Clone(two.Graph.Output[0]).(*onnxpb.ValueInfoProto))
	if err := prune.Check(m, two, chainShape); err == nil || !strings.Contains(err.Error(), "2 outputs instead of 1") {
		t.Errorf("two outputs: %v", err)
	}
	// An original without a single image input.
	noInput := proto.Clone(m).(*onnxpb.ModelProto)
	noInput.Graph.Input = nil
	if err := prune.Check(noInput, p, chainShape); err == nil || !strings.Contains(err.Error(), "original: model has 0 inputs") {
		t.Errorf("original without inputs: %v", err)
	}
	// A model that loads but cannot run: its output reshaped to a size it
	// does not have.
	bad := proto.Clone(p).(*onnxpb.ModelProto)
	out := bad.Graph.Output[0].GetName()
	bad.Graph.Node = append(bad.Graph.Node, &onnxpb.NodeProto{Name: proto.String("reshape"), OpType: proto.String("Reshape"),
		Input: []string{out, "bad_shape"}, Output: []string{"reshaped"}})
	bad.Graph.Initializer = append(bad.Graph.Initializer, &onnxpb.TensorProto{Name: proto.String("bad_shape"),
		DataType: proto.Int32(int32(onnxpb.TensorProto_INT64)), Dims: []int64{2}, Int64Data: []int64{7, 7}})
	bad.Graph.Output = []*onnxpb.ValueInfoProto{{Name: proto.String("reshaped"), Type: bad.Graph.Output[0].Type}}
	if err := prune.Check(m, bad, chainShape); err == nil || !strings.Contains(err.Error(), "run in ONNX Runtime") {
		t.Errorf("a model failing at run time: %v", err)
	}
	// A model ONNX Runtime cannot load.
	broken := proto.Clone(p).(*onnxpb.ModelProto)
	broken.Graph.Initializer = broken.Graph.Initializer[1:]
	if err := prune.Check(m, broken, chainShape); err == nil || !strings.Contains(err.Error(), "ONNX Runtime") {
		t.Errorf("broken model: %v", err)
	}
}
