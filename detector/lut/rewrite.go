package lut

import (
	"fmt"
	"math"
	"slices"

	"google.golang.org/protobuf/proto"

	"github.com/edgedet/edgedet/onnx"
	"github.com/edgedet/edgedet/onnx/onnxpb"
)

// msDomain is ONNX Runtime's contrib operator domain, where its optimised
// graphs keep QLinearSigmoid, QLinearMul, QLinearLeakyRelu and QuickGelu.
const msDomain = "com.microsoft"

// A match is one activation between a quantised producer and a quantised
// consumer: nodes (all removed) compute out = f(in) element-wise.
type match struct {
	nodes   []*onnxpb.NodeProto
	name    string // of the new node
	kind    string // for the node's doc string
	xq, yq  string // the quantised input and output tensors, kept
	inQ     QParams
	outQ    QParams
	f       func(float64) float64
	scratch []string // float or intermediate tensors that disappear
}

// Rewrite replaces, in m, each element-wise activation between a quantised
// producer and a quantised consumer with one Domain node that maps the input
// bytes through a 256-entry table, and returns how many it replaced.
//
// It recognises, with per-tensor quantisation and the same 8-bit type in
// and out:
//   - QDQ SiLU: DQ → Sigmoid → Mul(x, ·) → Q, the Sigmoid's output either
//     float or itself passed through Q → DQ (the table then reproduces that
//     rounding, so the rewritten model computes what the graph did);
//   - QDQ Sigmoid, LeakyRelu, HardSwish or com.microsoft QuickGelu alone
//     between DQ and Q;
//   - ONNX Runtime's optimised forms: com.microsoft QLinearSigmoid feeding
//     QLinearMul(x, ·), and QLinearSigmoid or QLinearLeakyRelu alone.
//
// A pattern whose tensors have any other consumer, or are graph outputs, is
// left alone. Tensor names and shapes outside the pattern do not change;
// initializers only the removed nodes used are dropped. Sessions for the
// rewritten model need Register. A model with nothing to rewrite is left
// untouched (0, nil).
func Rewrite(m *onnxpb.ModelProto) (int, error) {
	if m.GetGraph() == nil {
		return 0, fmt.Errorf("lut rewrite: model has no graph")
	}
	g := onnx.NewGraph(m)
	used := map[*onnxpb.NodeProto]bool{}
	var found []*match
	for _, n := range m.Graph.Node {
		if used[n] {
			continue
		}
		mt, err := matchAt(g, n)
		if err != nil {
			return 0, fmt.Errorf("lut rewrite: node %q: %w", n.GetName(), err)
		}
		if mt == nil || slices.ContainsFunc(mt.nodes, func(x *onnxpb.NodeProto) bool { return used[x] }) {
			continue
		}
		for _, x := range mt.nodes {
			used[x] = true
		}
		found = append(found, mt)
	}
	if len(found) == 0 {
		return 0, nil
	}
	if err := apply(g, found); err != nil {
		return 0, err
	}
	return len(found), nil
}

// apply edits the graph: each match's last node is replaced by the LUT node
// (so the order stays topological), the others are removed.
func apply(g *onnx.Graph, found []*match) error {
	gp := g.Model.Graph
	names := map[string]bool{}
	for _, t := range gp.Initializer {
		names[t.GetName()] = true
	}
	for _, n := range gp.Node {
		names[n.GetName()] = true
		for _, o := range n.Output {
			names[o] = true
		}
	}
	replace := map[*onnxpb.NodeProto]*onnxpb.NodeProto{}
	removed := map[*onnxpb.NodeProto]bool{}
	maybeUnused := map[string]bool{}
	gone := map[string]bool{}
	// Every table first, so that an error leaves the model as it was.
	tables := make([]*[256]byte, len(found))
	for i, mt := range found {
		t, err := Table(mt.f, mt.inQ, mt.outQ)
		if err != nil {
			return fmt.Errorf("lut rewrite: %s: %w", mt.name, err)
		}
		tables[i] = t
	}
	for i, mt := range found {
		table := tables[i]
		tname := onnx.UniqueName(names, mt.yq+"_lut_table")
		dt, op := onnxpb.TensorProto_UINT8, OpUint8
		if mt.inQ.Signed {
			dt, op = onnxpb.TensorProto_INT8, OpInt8
		}
		gp.Initializer = append(gp.Initializer, onnx.NewInitializer(tname, dt, []int64{256}, table[:]))
		last := mt.nodes[len(mt.nodes)-1]
		replace[last] = &onnxpb.NodeProto{
			Name:      proto.String(onnx.UniqueName(names, mt.name+"_lut")),
			OpType:    proto.String(op),
			Domain:    proto.String(Domain),
			Input:     []string{mt.xq, tname},
			Output:    []string{mt.yq},
			DocString: proto.String(fmt.Sprintf("%s as a 256-entry table (edgedet lut rewrite)", mt.kind)),
		}
		for _, n := range mt.nodes {
			removed[n] = true
			for _, in := range n.Input {
				maybeUnused[in] = true
			}
		}
		for _, s := range mt.scratch {
			gone[s] = true
		}
	}
	nodes := gp.Node[:0]
	for _, n := range gp.Node {
		switch {
		case replace[n] != nil:
			nodes = append(nodes, replace[n])
		case !removed[n]:
			nodes = append(nodes, n)
		}
	}
	gp.Node = nodes
	gp.ValueInfo = slices.DeleteFunc(gp.ValueInfo, func(v *onnxpb.ValueInfoProto) bool { return gone[v.GetName()] })
	g.Reindex()
	gp.Initializer = slices.DeleteFunc(gp.Initializer, func(t *onnxpb.TensorProto) bool {
		return maybeUnused[t.GetName()] && len(g.Consumers(t.GetName())) == 0 && !g.IsOutput(t.GetName())
	})
	addOpset(g.Model)
	return nil
}

func addOpset(m *onnxpb.ModelProto) {
	for _, o := range m.OpsetImport {
		if o.GetDomain() == Domain {
			return
		}
	}
	m.OpsetImport = append(m.OpsetImport, &onnxpb.OperatorSetIdProto{Domain: proto.String(Domain), Version: proto.Int64(1)})
}

// matchAt tries every pattern anchored at activation node n.
func matchAt(g *onnx.Graph, n *onnxpb.NodeProto) (*match, error) {
	if len(n.Input) == 0 || len(n.Output) != 1 || n.Input[0] == "" || n.Output[0] == "" {
		return nil, nil
	}
	dom := n.GetDomain()
	std := dom == "" || dom == "ai.onnx"
	switch {
	case std && n.GetOpType() == "Sigmoid":
		if mt, err := matchQDQSiLU(g, n); mt != nil || err != nil {
			return mt, err
		}
		return matchQDQUnary(g, n, "sigmoid", Sigmoid)
	case std && n.GetOpType() == "LeakyRelu":
		return matchQDQUnary(g, n, "leakyrelu", LeakyReLU(float64(attrFloat(n, "alpha", 0.01))))
	case std && n.GetOpType() == "HardSwish":
		return matchQDQUnary(g, n, "hardswish", HardSwish)
	case dom == msDomain && n.GetOpType() == "QuickGelu":
		return matchQDQUnary(g, n, "quickgelu", QuickGelu(float64(attrFloat(n, "alpha", 1.702))))
	case dom == msDomain && n.GetOpType() == "QLinearSigmoid":
		if mt, err := matchQLinearSiLU(g, n); mt != nil || err != nil {
			return mt, err
		}
		return matchQLinearUnary(g, n, "sigmoid", Sigmoid)
	case dom == msDomain && n.GetOpType() == "QLinearLeakyRelu":
		return matchQLinearUnary(g, n, "leakyrelu", LeakyReLU(float64(attrFloat(n, "alpha", 0.01))))
	}
	return nil, nil
}

// only reports whether tensor t is read by exactly the nodes want (in any
// order) and is not a graph output.
func only(g *onnx.Graph, t string, want ...*onnxpb.NodeProto) bool {
	if g.IsOutput(t) {
		return false
	}
	c := g.Consumers(t)
	if len(c) != len(want) {
		return false
	}
	for _, w := range want {
		if !slices.Contains(c, w) {
			return false
		}
	}
	return true
}

// single is the one consumer of t with op type op, or nil.
func single(g *onnx.Graph, t, op string) *onnxpb.NodeProto {
	c := g.Consumers(t)
	if len(c) != 1 || c[0].GetOpType() != op || g.IsOutput(t) {
		return nil
	}
	return c[0]
}

// producerOf is the producer of t if it has op type op.
func producerOf(g *onnx.Graph, t, op string) *onnxpb.NodeProto {
	p := g.Producer(t)
	if p == nil || p.GetOpType() != op {
		return nil
	}
	return p
}

// matchQDQSiLU: Xq → DQ → x; Sigmoid(x) → s [→ Q → DQ → s']; Mul(x, s') → m;
// Q(m) → Yq. The Mul may read x from a twin DQ of the same Xq with the same
// parameters (ONNX Runtime duplicates a DQ that has several consumers).
func matchQDQSiLU(g *onnx.Graph, sig *onnxpb.NodeProto) (*match, error) {
	x, s := sig.Input[0], out0(sig)
	dq := producerOf(g, x, "DequantizeLinear")
	if dq == nil {
		return nil, nil
	}
	nodes := []*onnxpb.NodeProto{dq, sig}
	scratch := []string{x, s}
	f := SiLU
	mul, sv := single(g, s, "Mul"), s
	if mul == nil {
		sq := single(g, s, "QuantizeLinear")
		if sq == nil {
			return nil, nil
		}
		sdq := single(g, out0(sq), "DequantizeLinear")
		if sdq == nil {
			return nil, nil
		}
		sv = out0(sdq)
		if mul = single(g, sv, "Mul"); mul == nil {
			return nil, nil
		}
		sigQ, ok, err := qparamsAt(g, sq.Input, 1, 2)
		if !ok || err != nil {
			return nil, err
		}
		sigDQ, ok, err := qparamsAt(g, sdq.Input, 1, 2)
		if !ok || err != nil {
			return nil, err
		}
		f = SiLUQuantisedSigmoid(sigQ, sigDQ)
		nodes = append(nodes, sq, sdq)
		scratch = append(scratch, out0(sq), sv)
	}
	if len(mul.Input) != 2 || mul.Input[0] == mul.Input[1] {
		return nil, nil
	}
	x2 := mul.Input[0]
	if x2 == sv {
		x2 = mul.Input[1]
	}
	switch twin := producerOf(g, x2, "DequantizeLinear"); {
	case x2 == x:
		if !only(g, x, sig, mul) {
			return nil, nil
		}
	case twin != nil && twin != dq && slices.Equal(twin.Input, dq.Input):
		if !only(g, x, sig) || !only(g, x2, mul) {
			return nil, nil
		}
		nodes = append(nodes, twin)
		scratch = append(scratch, x2)
	default:
		return nil, nil
	}
	q := single(g, out0(mul), "QuantizeLinear")
	if q == nil {
		return nil, nil
	}
	nodes = append(nodes, mul, q)
	scratch = append(scratch, out0(mul))
	return qdqMatch(g, dq, q, nodes, scratch, sig.GetName(), "silu", f)
}

// matchQDQUnary: Xq → DQ → x; op(x) → y; Q(y) → Yq.
func matchQDQUnary(g *onnx.Graph, n *onnxpb.NodeProto, kind string, f func(float64) float64) (*match, error) {
	if len(n.Input) < 1 {
		return nil, nil
	}
	x := n.Input[0]
	dq := producerOf(g, x, "DequantizeLinear")
	if dq == nil || !only(g, x, n) {
		return nil, nil
	}
	q := single(g, out0(n), "QuantizeLinear")
	if q == nil {
		return nil, nil
	}
	return qdqMatch(g, dq, q, []*onnxpb.NodeProto{dq, n, q}, []string{x, out0(n)}, n.GetName(), kind, f)
}

func qdqMatch(g *onnx.Graph, dq, q *onnxpb.NodeProto, nodes []*onnxpb.NodeProto, scratch []string,
	name, kind string, f func(float64) float64) (*match, error) {
	inQ, ok, err := qparamsAt(g, dq.Input, 1, 2)
	if !ok || err != nil {
		return nil, err
	}
	outQ, ok, err := qparamsAt(g, q.Input, 1, 2)
	if !ok || err != nil {
		return nil, err
	}
	return sameType(&match{nodes: nodes, name: name, kind: kind, xq: dq.Input[0], yq: out0(q),
		inQ: inQ, outQ: outQ, f: f, scratch: scratch}), nil
}

// matchQLinearSiLU: QLinearSigmoid(Xq) → Sq; QLinearMul(Xq, Sq) → Yq (com.microsoft).
func matchQLinearSiLU(g *onnx.Graph, sig *onnxpb.NodeProto) (*match, error) {
	if len(sig.Input) != 5 {
		return nil, nil
	}
	xq, sq := sig.Input[0], out0(sig)
	mul := single(g, sq, "QLinearMul")
	if mul == nil || mul.GetDomain() != msDomain || len(mul.Input) != 8 || !only(g, xq, sig, mul) {
		return nil, nil
	}
	var xi int // where Xq sits in the Mul: inputs 0 (A) or 3 (B)
	switch {
	case mul.Input[0] == xq && mul.Input[3] == sq:
		xi = 0
	case mul.Input[3] == xq && mul.Input[0] == sq:
		xi = 3
	default:
		return nil, nil
	}
	inQ, ok, err := qparamsAt(g, sig.Input, 1, 2)
	if !ok || err != nil {
		return nil, err
	}
	// The Mul's own parameters for x must be the same as the Sigmoid's.
	mulIn, ok, err := qparamsAt(g, mul.Input, xi+1, xi+2)
	if !ok || err != nil || mulIn != inQ {
		return nil, err
	}
	outQ, ok, err := qparamsAt(g, mul.Input, 6, 7)
	if !ok || err != nil {
		return nil, err
	}
	sigQ, ok, err := qparamsAt(g, sig.Input, 3, 4)
	if !ok || err != nil {
		return nil, err
	}
	si := 3 - xi // where Sq sits in the Mul
	sigDQ, ok, err := qparamsAt(g, mul.Input, si+1, si+2)
	if !ok || err != nil {
		return nil, err
	}
	return sameType(&match{nodes: []*onnxpb.NodeProto{sig, mul}, name: sig.GetName(), kind: "silu", xq: xq,
		yq: out0(mul), inQ: inQ, outQ: outQ, f: SiLUQuantisedSigmoid(sigQ, sigDQ), scratch: []string{sq}}), nil
}

// matchQLinearUnary: QLinearSigmoid / QLinearLeakyRelu(Xq, Xs, Xzp, Ys, Yzp) → Yq.
func matchQLinearUnary(g *onnx.Graph, n *onnxpb.NodeProto, kind string, f func(float64) float64) (*match, error) {
	if len(n.Input) != 5 {
		return nil, nil
	}
	inQ, ok, err := qparamsAt(g, n.Input, 1, 2)
	if !ok || err != nil {
		return nil, err
	}
	outQ, ok, err := qparamsAt(g, n.Input, 3, 4)
	if !ok || err != nil {
		return nil, err
	}
	return sameType(&match{nodes: []*onnxpb.NodeProto{n}, name: n.GetName(), kind: kind, xq: n.Input[0],
		yq: out0(n), inQ: inQ, outQ: outQ, f: f}), nil
}

func sameType(mt *match) *match {
	if mt.inQ.Signed != mt.outQ.Signed {
		return nil
	}
	return mt
}

func out0(n *onnxpb.NodeProto) string {
	if len(n.Output) == 0 {
		return ""
	}
	return n.Output[0]
}

func attrFloat(n *onnxpb.NodeProto, name string, def float32) float32 {
	for _, a := range n.Attribute {
		if a.GetName() == name {
			return a.GetF()
		}
	}
	return def
}

// qparamsAt reads the per-tensor scale and zero point at inputs[si] and
// inputs[zi] (zi may be absent: uint8 zero). ok is false when they are not
// scalar initializers (left alone); err is for initializers that are broken.
func qparamsAt(g *onnx.Graph, inputs []string, si, zi int) (q QParams, ok bool, err error) {
	if si >= len(inputs) {
		return q, false, nil
	}
	st := g.Initializer(inputs[si])
	if st == nil || onnx.NumElements(st) != 1 || st.GetDataType() != int32(onnxpb.TensorProto_FLOAT) {
		return q, false, nil
	}
	v, err := onnx.TensorFloats(st)
	if err != nil {
		return q, false, fmt.Errorf("scale %s: %w", inputs[si], err)
	}
	q.Scale = v[0]
	if !(q.Scale > 0) || math.IsInf(float64(q.Scale), 0) {
		return q, false, fmt.Errorf("scale %s is %v", inputs[si], q.Scale)
	}
	if zi >= len(inputs) || inputs[zi] == "" {
		return q, true, nil
	}
	zt := g.Initializer(inputs[zi])
	if zt == nil || onnx.NumElements(zt) != 1 {
		return q, false, nil
	}
	switch onnxpb.TensorProto_DataType(zt.GetDataType()) {
	case onnxpb.TensorProto_UINT8:
	case onnxpb.TensorProto_INT8:
		q.Signed = true
	default:
		return q, false, nil // 16-bit, 4-bit, float8: not a byte table
	}
	b, err := scalarByte(zt)
	if err != nil {
		return q, false, fmt.Errorf("zero point %s: %w", inputs[zi], err)
	}
	q.Zero = q.value(b)
	return q, true, nil
}

// scalarByte is the one 8-bit value of t, from raw_data or int32_data.
func scalarByte(t *onnxpb.TensorProto) (byte, error) {
	if t.GetDataLocation() == onnxpb.TensorProto_EXTERNAL {
		return 0, fmt.Errorf("data is stored externally")
	}
	if t.RawData != nil {
		if len(t.RawData) != 1 {
			return 0, fmt.Errorf("raw_data has %d bytes, want 1", len(t.RawData))
		}
		return t.RawData[0], nil
	}
	if len(t.Int32Data) != 1 {
		return 0, fmt.Errorf("has %d values, want 1", len(t.Int32Data))
	}
	return byte(t.Int32Data[0]), nil
}
