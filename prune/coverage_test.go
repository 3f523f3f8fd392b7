package prune_test

import (
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/edgedet/edgedet/onnx"
	"github.com/edgedet/edgedet/onnx/onnxpb"
	"github.com/edgedet/edgedet/prune"
)

// costModel has one node of every operator Cost counts, with MACs and
// parameters worked out by hand in TestCostOperators.
func costModel() *onnxpb.ModelProto {
	b := newGraphBuilder(nil, 3)
	x := b.input("x", 1, 3, 8, 8)
	c1 := b.conv("c1", x, 4, 3, 1) // weight 4·3·3·3 + bias 4
	i8 := func(name string, dims ...int64) string {
		b.inits = append(b.inits, onnx.Int8Tensor(name, dims, make([]int8, onnx.NumElements(&onnxpb.TensorProto{Dims: dims}))))
		return name
	}
	s := onnx.Float32Scalar("s", 0.5) // one parameter
	z := onnx.Uint8Scalar("z", 0)
	bt := onnx.Float16Tensor("bt", []int64{10, 192}, make([]float32, 1920))
	b2 := onnx.Float32Tensor("b2", []int64{1, 5}, make([]float32, 5))
	wd := &onnxpb.TensorProto{Name: proto.String("wd"), DataType: proto.Int32(int32(onnxpb.TensorProto_DOUBLE)),
		Dims: []int64{10, 6}, DoubleData: make([]float64, 60)}
	b3 := onnx.Float32Tensor("b3", []int64{192, 7}, make([]float32, 192*7))
	b.inits = append(b.inits, s, z, bt, b2, b3, wd)
	ci := b.node("ConvInteger", "ci", []string{c1, i8("wi", 2, 4, 1, 1)}, nil)
	qc := b.node("QLinearConv", "qc", []string{ci, "s", "z", i8("wq", 3, 2, 1, 1), "s", "z", "s", "z"}, nil)
	flat := b.node("Flatten", "flat", []string{qc}, nil)
	g := b.node("Gemm", "g", []string{flat, "bt"}, nil, intAttr("transB", 1))
	b.node("Gemm", "gt", []string{flat, "b2"}, nil, intAttr("transA", 1))
	b.node("Gemm", "g3", []string{flat, "b3"}, nil)
	b.node("MatMul", "mm", []string{g, "wd"}, nil)
	b.node("MatMulInteger", "mi", []string{g, i8("wmi", 10, 2)}, nil)
	b.node("QLinearMatMul", "qm", []string{g, "s", "z", i8("wqm", 10, 3), "s", "z", "s", "z"}, nil)
	// Neither counted nor reported: another domain's Conv, a Conv without outputs.
	b.nodes = append(b.nodes,
		&onnxpb.NodeProto{Name: proto.String("ms"), OpType: proto.String("Conv"), Domain: proto.String("com.microsoft"),
			Input: []string{"nowhere", "c1.weight"}, Output: []string{"ms_out"}},
		&onnxpb.NodeProto{Name: proto.String("void"), OpType: proto.String("Conv"), Input: []string{"nowhere", "c1.weight"}})
	return b.model()
}

// costParams counts costModel's float initializers.
const costParams = 108 + 4 + 1 + 1920 + 5 + 192*7 + 60

func TestCostOperators(t *testing.T) {
	params, macs, err := prune.Cost(costModel(), []int64{1, 3, 8, 8})
	if err != nil {
		t.Fatal(err)
	}
	// Float initializers: c1 weight and bias, the scale s, bt (FLOAT16), b2, b3, wd (DOUBLE).
	if want := int64(costParams); params != want {
		t.Errorf("params %d, want %d", params, want)
	}
	want := int64(0 +
		4*64*27 + // c1: output 1·4·8·8, 3·3·3 per output
		2*64*4 + // ci: 1×1 over 4 channels
		3*64*2 + // qc: its weight comes after x's scale and zero point
		10*192 + // g: K = 192 (transB does not change K)
		192*5*1 + // gt: transA makes A 192×1, K = 1
		7*192 + // g3: K is A's 192 columns, not B's 7
		6*10 + 2*10 + 3*10) // mm, mi, qm: K = 10
	if macs != want {
		t.Errorf("MACs %d, want %d", macs, want)
	}
	// A batch of two doubles the MACs, not the parameters.
	params2, macs2, err := prune.Cost(costModel(), []int64{2, 3, 8, 8})
	// (gt's M, A's 192 columns, stays; its K, A's rows, doubles.)
	if err != nil || params2 != params || macs2 != 2*macs {
		t.Errorf("batch 2: params %d, MACs %d, err %v; want %d, %d", params2, macs2, err, params, 2*macs)
	}
}

func TestCostIncompleteError(t *testing.T) {
	b := newGraphBuilder(t, 1)
	x := b.input("x", inShape...)
	b.inputs = append(b.inputs, tensorInfo("shape", onnxpb.TensorProto_INT64, []int64{4}))
	r := b.node("Reshape", "reshape", []string{x, "shape"}, nil)
	b.shapes[r] = inShape
	for _, name := range []string{"a", "b", "", "d"} {
		b.conv(name, r, 2, 1, 1)
	}
	b.nodes[3].Name = nil // unnamed: listed by position
	b.node("Gemm", "gemm", []string{r, "a.weight"}, nil)
	b.node("MatMul", "matmul", []string{r, "a.weight"}, nil)
	b.node("Gemm", "gemm3", []string{x, "a.weight"}, nil) // known but rank 4
	b.node("MatMul", "matmul0", []string{"scalar", "a.weight"}, nil)
	b.inits = append(b.inits, onnx.Float32Scalar("scalar", 1))
	_, _, err := prune.Cost(b.model(), inShape)
	var inc *prune.IncompleteError
	if !errors.As(err, &inc) {
		t.Fatalf("err %v, want an IncompleteError", err)
	}
	if want := []string{"a", "b", "#3", "d", "gemm", "matmul", "gemm3", "matmul0"}; !slices.Equal(inc.Nodes, want) {
		t.Errorf("uncounted %v, want %v", inc.Nodes, want)
	}
	if want := "cost: input shape unknown, MACs not counted for a, b, #3, d, gemm and 3 more"; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
	short := &prune.IncompleteError{Nodes: []string{"a", "b", "c", "d", "e"}}
	if want := "cost: input shape unknown, MACs not counted for a, b, c, d, e"; short.Error() != want {
		t.Errorf("five nodes: %q, want %q", short.Error(), want)
	}
}

func TestCostErrors(t *testing.T) {
	if _, _, err := prune.Cost(&onnxpb.ModelProto{}, inShape); err == nil || !strings.Contains(err.Error(), "no graph") {
		t.Errorf("no graph: err %v", err)
	}
	params, macs, err := prune.Cost(costModel(), []int64{1, 3, 8})
	if err == nil || !strings.HasPrefix(err.Error(), "cost: ") || !strings.Contains(err.Error(), "rank 3") {
		t.Errorf("wrong rank: err %v", err)
	}
	var inc *prune.IncompleteError
	if errors.As(err, &inc) {
		t.Errorf("wrong rank is not an IncompleteError: %v", err)
	}
	// The parameter count does not depend on the input and is still made.
	if params != costParams || macs != 0 {
		t.Errorf("wrong rank: params %d, MACs %d", params, macs)
	}
}

// TestRemovedRowsAndColumns checks both sides of a plan behind a Concat:
// the producer loses rows at their own index, the consumer columns at the
// Concat offset.
func TestRemovedRowsAndColumns(t *testing.T) {
	b := newGraphBuilder(t, 2)
	x := b.input("x", inShape...)
	a := b.conv("convA", x, 4, 3, 1)
	a2 := b.conv("convA2", x, 2, 3, 1)
	b.output(b.conv("convC", b.concat("cat", a, a2), 3, 1, 1))
	an := analyze(t, b.model())
	id := -1
	for _, g := range an.Groups {
		if slices.Equal(g.Producers, []string{"convA2"}) {
			id = g.ID
		}
	}
	if id < 0 {
		t.Fatalf("no group produced by convA2 in %+v", an.Groups)
	}
	rows, err := an.RemovedOutputs(map[int][]int{id: {1, 0, 1}})
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string][]int{"convA2": {0, 1}}; !maps.EqualFunc(rows, want, slices.Equal) {
		t.Errorf("rows %v, want %v", rows, want)
	}
	cols, err := an.RemovedInputs(map[int][]int{id: {1}})
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string][]int{"convC": {5}}; !maps.EqualFunc(cols, want, slices.Equal) {
		t.Errorf("columns %v, want %v", cols, want)
	}
	for _, bad := range []int{-1, len(an.Groups)} {
		if _, err := an.RemovedOutputs(map[int][]int{bad: {0}}); err == nil || !strings.Contains(err.Error(), "no group") {
			t.Errorf("group %d: err %v", bad, err)
		}
	}
}
