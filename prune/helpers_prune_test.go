package prune_test

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	ort "github.com/yalue/onnxruntime_go"
	"google.golang.org/protobuf/proto"

	"github.com/edgedet/edgedet/detector"
	"github.com/edgedet/edgedet/internal/testenv"
	"github.com/edgedet/edgedet/onnx"
	"github.com/edgedet/edgedet/onnx/onnxpb"
	"github.com/edgedet/edgedet/prune"
)

// graphBuilder builds small float models node by node. Every Conv has
// random weights and bias, and every intermediate tensor gets a value_info
// with its shape, so that stale shapes after pruning would show.
type graphBuilder struct {
	t       testing.TB
	rng     *rand.Rand
	nodes   []*onnxpb.NodeProto
	inits   []*onnxpb.TensorProto
	vi      []*onnxpb.ValueInfoProto
	inputs  []*onnxpb.ValueInfoProto
	outputs []*onnxpb.ValueInfoProto
	shapes  map[string][]int64
}

func newGraphBuilder(t testing.TB, seed uint64) *graphBuilder {
	return &graphBuilder{t: t, rng: rand.New(rand.NewPCG(seed, 7)), shapes: map[string][]int64{}}
}

func tensorInfo(name string, elem onnxpb.TensorProto_DataType, shape []int64) *onnxpb.ValueInfoProto {
	tt := &onnxpb.TypeProto_Tensor{ElemType: proto.Int32(int32(elem))}
	if shape != nil {
		tt.Shape = &onnxpb.TensorShapeProto{}
		for _, d := range shape {
			tt.Shape.Dim = append(tt.Shape.Dim, &onnxpb.TensorShapeProto_Dimension{
				Value: &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: d},
			})
		}
	}
	return &onnxpb.ValueInfoProto{Name: proto.String(name), Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{TensorType: tt}}}
}

func intsAttr(name string, v ...int64) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_INTS.Enum(), Ints: v}
}

func intAttr(name string, v int64) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_INT.Enum(), I: proto.Int64(v)}
}

func (b *graphBuilder) input(name string, shape ...int64) string {
	b.inputs = append(b.inputs, tensorInfo(name, onnxpb.TensorProto_FLOAT, shape))
	b.shapes[name] = shape
	return name
}

func (b *graphBuilder) randoms(n int, scale float64) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32((b.rng.Float64()*2 - 1) * scale)
	}
	return v
}

// node adds a node whose output (named after the node) has shape.
func (b *graphBuilder) node(op, name string, inputs []string, shape []int64, attrs ...*onnxpb.AttributeProto) string {
	out := name + "_out"
	b.nodes = append(b.nodes, &onnxpb.NodeProto{
		Name: proto.String(name), OpType: proto.String(op),
		Input: inputs, Output: []string{out}, Attribute: attrs,
	})
	if shape != nil {
		b.shapes[out] = shape
		b.vi = append(b.vi, tensorInfo(out, onnxpb.TensorProto_FLOAT, shape))
	}
	return out
}

// conv adds a k×k, stride 1, same-padding Conv with cout outputs.
func (b *graphBuilder) conv(name, x string, cout, k, group int64) string {
	xs := b.shapes[x]
	cin := xs[1]
	w := onnx.Float32Tensor(name+".weight", []int64{cout, cin / group, k, k}, b.randoms(int(cout*cin/group*k*k), 0.5))
	bias := onnx.Float32Vector(name+".bias", b.randoms(int(cout), 0.2))
	b.inits = append(b.inits, w, bias)
	p := k / 2
	return b.node("Conv", name, []string{x, w.GetName(), bias.GetName()}, []int64{xs[0], cout, xs[2], xs[3]},
		intsAttr("kernel_shape", k, k), intsAttr("pads", p, p, p, p), intAttr("group", group))
}

// bn adds an inference BatchNormalization with random parameters.
func (b *graphBuilder) bn(name, x string) string {
	c := int(b.shapes[x][1])
	var names []string
	for _, p := range []struct {
		suffix   string
		lo, span float64
	}{{".scale", 0.5, 1}, {".B", -0.3, 0.6}, {".mean", -0.3, 0.6}, {".var", 0.5, 1}} {
		v := make([]float32, c)
		for i := range v {
			v[i] = float32(p.lo + b.rng.Float64()*p.span)
		}
		t := onnx.Float32Vector(name+p.suffix, v)
		b.inits = append(b.inits, t)
		names = append(names, t.GetName())
	}
	return b.node("BatchNormalization", name, append([]string{x}, names...), b.shapes[x])
}

func (b *graphBuilder) unary(op, name, x string, attrs ...*onnxpb.AttributeProto) string {
	return b.node(op, name, []string{x}, b.shapes[x], attrs...)
}

func (b *graphBuilder) add(name, x, y string) string {
	return b.node("Add", name, []string{x, y}, b.shapes[x])
}

func (b *graphBuilder) concat(name string, xs ...string) string {
	shape := slices.Clone(b.shapes[xs[0]])
	shape[1] = 0
	for _, x := range xs {
		shape[1] += b.shapes[x][1]
	}
	return b.node("Concat", name, xs, shape, intAttr("axis", 1))
}

func (b *graphBuilder) reshape(name, x string, shape ...int64) string {
	s := onnx.NewInitializer(name+".shape", onnxpb.TensorProto_INT64, []int64{int64(len(shape))}, int64Bytes(shape))
	b.inits = append(b.inits, s)
	return b.node("Reshape", name, []string{x, s.GetName()}, shape)
}

func int64Bytes(v []int64) []byte {
	out := make([]byte, 0, 8*len(v))
	for _, x := range v {
		for k := 0; k < 8; k++ {
			out = append(out, byte(uint64(x)>>(8*k)))
		}
	}
	return out
}

// output makes x a graph output (its value_info moves there).
func (b *graphBuilder) output(x string) {
	b.vi = slices.DeleteFunc(b.vi, func(vi *onnxpb.ValueInfoProto) bool { return vi.GetName() == x })
	b.outputs = append(b.outputs, tensorInfo(x, onnxpb.TensorProto_FLOAT, b.shapes[x]))
}

func (b *graphBuilder) model() *onnxpb.ModelProto {
	return &onnxpb.ModelProto{
		IrVersion:   proto.Int64(8),
		OpsetImport: []*onnxpb.OperatorSetIdProto{{Version: proto.Int64(13)}},
		Graph: &onnxpb.GraphProto{
			Name: proto.String("test"), Node: b.nodes, Initializer: b.inits,
			Input: b.inputs, Output: b.outputs, ValueInfo: b.vi,
		},
	}
}

// initializer finds a model's initializer by name, failing the test.
func initializer(t testing.TB, m *onnxpb.ModelProto, name string) *onnxpb.TensorProto {
	t.Helper()
	for _, in := range m.GetGraph().GetInitializer() {
		if in.GetName() == name {
			return in
		}
	}
	t.Fatalf("no initializer %q", name)
	return nil
}

func node(t testing.TB, m *onnxpb.ModelProto, name string) *onnxpb.NodeProto {
	t.Helper()
	for _, n := range m.GetGraph().GetNode() {
		if n.GetName() == name {
			return n
		}
	}
	t.Fatalf("no node %q", name)
	return nil
}

// setRows sets rows (output channels) of a parameter tensor to v.
func setRows(t testing.TB, m *onnxpb.ModelProto, name string, rows []int, v float32) {
	t.Helper()
	in := initializer(t, m, name)
	vals, err := onnx.TensorFloats(in)
	if err != nil {
		t.Fatal(err)
	}
	per := len(vals) / int(in.GetDims()[0])
	for _, r := range rows {
		for k := r * per; k < (r+1)*per; k++ {
			vals[k] = v
		}
	}
	onnx.SetTensorFloats(in, vals)
}

// silence makes the listed output channels of a Conv exactly zero: zero
// filters and bias.
func silence(t testing.TB, m *onnxpb.ModelProto, conv string, rows []int) {
	t.Helper()
	n := node(t, m, conv)
	setRows(t, m, n.GetInput()[1], rows, 0)
	setRows(t, m, n.GetInput()[2], rows, 0)
}

func initORT(t testing.TB) {
	t.Helper()
	if err := detector.InitRuntime(testenv.ORTLibrary(t)); err != nil {
		t.Fatal(err)
	}
}

// result is one output of a model run.
type result struct {
	shape []int64
	data  []float32
}

// runModel runs m once in ONNX Runtime (CPU, graph optimisations off) on
// the given float input and returns every output by name.
func runModel(t testing.TB, m *onnxpb.ModelProto, shape []int64, in []float32) map[string]result {
	t.Helper()
	initORT(t)
	data, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var outNames []string
	for _, o := range m.GetGraph().GetOutput() {
		outNames = append(outNames, o.GetName())
	}
	opts, err := ort.NewSessionOptions()
	if err != nil {
		t.Fatal(err)
	}
	defer opts.Destroy()
	if err := opts.SetGraphOptimizationLevel(ort.GraphOptimizationLevelDisableAll); err != nil {
		t.Fatal(err)
	}
	if err := opts.SetIntraOpNumThreads(1); err != nil {
		t.Fatal(err)
	}
	inName := m.GetGraph().GetInput()[0].GetName()
	s, err := ort.NewDynamicAdvancedSessionWithONNXData(data, []string{inName}, outNames, opts)
	if err != nil {
		t.Fatalf("onnx runtime rejects the model: %v", err)
	}
	defer s.Destroy()
	x, err := ort.NewTensor(ort.NewShape(shape...), in)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Destroy()
	outs := make([]ort.Value, len(outNames))
	if err := s.Run([]ort.Value{x}, outs); err != nil {
		t.Fatalf("run: %v", err)
	}
	res := map[string]result{}
	for i, o := range outs {
		defer o.Destroy()
		ft, ok := o.(*ort.Tensor[float32])
		if !ok {
			t.Fatalf("output %q is %T, want a float32 tensor", outNames[i], o)
		}
		res[outNames[i]] = result{shape: slices.Clone([]int64(ft.GetShape())), data: slices.Clone(ft.GetData())}
	}
	return res
}

// randomInput is n uniform values in [-1, 1).
func randomInput(seed uint64, n int) []float32 {
	rng := rand.New(rand.NewPCG(seed, 11))
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(rng.Float64()*2 - 1)
	}
	return v
}

// sameOutputs fails unless got and want have the same outputs, shapes and
// values within tol·max(1,|want|).
func sameOutputs(t testing.TB, got, want map[string]result, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d outputs, want %d", len(got), len(want))
	}
	for name, w := range want {
		g, ok := got[name]
		if !ok {
			t.Fatalf("output %q missing", name)
		}
		if !slices.Equal(g.shape, w.shape) {
			t.Fatalf("output %q shape %v, want %v", name, g.shape, w.shape)
		}
		worst, at := 0.0, 0
		for i := range w.data {
			d := math.Abs(float64(g.data[i])-float64(w.data[i])) / max(1, math.Abs(float64(w.data[i])))
			if d > worst {
				worst, at = d, i
			}
		}
		if worst > tol {
			t.Errorf("output %q[%d] = %g, want %g (scaled diff %.3g > %g)", name, at, g.data[at], w.data[at], worst, tol)
		}
	}
}

func analyze(t testing.TB, m *onnxpb.ModelProto) *prune.Analysis {
	t.Helper()
	a, err := prune.Analyze(m)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func cost(t testing.TB, m *onnxpb.ModelProto, shape []int64) (params, macs int64) {
	t.Helper()
	params, macs, err := prune.Cost(m, shape)
	if err != nil {
		t.Fatal(err)
	}
	return params, macs
}

func dims(t testing.TB, m *onnxpb.ModelProto, name string) []int64 {
	t.Helper()
	return initializer(t, m, name).GetDims()
}
