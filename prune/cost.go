package prune

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/edgedet/edgedet/onnx"
	"github.com/edgedet/edgedet/onnx/onnxpb"
)

// IncompleteError is Cost's error when it could not infer the input shape
// of some Conv, Gemm or MatMul nodes: their MACs are missing from the
// counts Cost returns along with it (the parameter count is complete).
type IncompleteError struct {
	Nodes []string // the uncounted nodes, in graph order
}

func (e *IncompleteError) Error() string {
	names := e.Nodes
	more := ""
	if len(names) > 5 {
		names, more = names[:5], fmt.Sprintf(" and %d more", len(e.Nodes)-5)
	}
	return fmt.Sprintf("cost: input shape unknown, MACs not counted for %s%s", strings.Join(names, ", "), more)
}

// floatTypes are the data types whose initializers count as parameters.
var floatTypes = map[int32]bool{
	int32(onnxpb.TensorProto_FLOAT):    true,
	int32(onnxpb.TensorProto_FLOAT16):  true,
	int32(onnxpb.TensorProto_BFLOAT16): true,
	int32(onnxpb.TensorProto_DOUBLE):   true,
}

// Cost counts m's parameters (elements of all floating-point initializers)
// and the multiply-accumulates of its Conv, Gemm and MatMul nodes (and
// their quantised forms ConvInteger, QLinearConv, MatMulInteger and
// QLinearMatMul, whose integer weights are not counted as parameters) for one
// input of shape inShape (NCHW), given to the model's first graph input
// that is not an initializer; other inputs use their declared static
// shapes.
//
// Shapes are inferred by walking the graph: Conv and pooling from kernel,
// strides, pads and dilations; element-wise operators broadcast; Concat
// adds up; Resize scales by its constant scales or sizes; Slice, Reshape,
// Transpose, Flatten, Squeeze, Unsqueeze, Gather, Split and Shape work
// when their shape arguments are constants or computed from shapes. When
// the input shape of a Conv, Gemm or MatMul cannot be inferred, its MACs
// are left out and the error is an *IncompleteError naming it, returned
// with the counts made so far.
func Cost(m *onnxpb.ModelProto, inShape []int64) (params int64, macs int64, err error) {
	gp := m.GetGraph()
	if gp == nil {
		return 0, 0, errors.New("cost: model has no graph")
	}
	for _, t := range gp.GetInitializer() {
		if floatTypes[t.GetDataType()] {
			if n := onnx.NumElements(t); n > 0 {
				params += n
			}
		}
	}
	si, err := inferShapes(m, inShape)
	if err != nil {
		return params, 0, fmt.Errorf("cost: %w", err)
	}
	var uncounted []string
	for _, i := range si.order {
		n := gp.GetNode()[i]
		if !defaultDomain(n.GetDomain()) || len(n.GetOutput()) == 0 {
			continue
		}
		in := append(slices.Clone(n.GetInput()), "", "")
		op := n.GetOpType()
		if op == "QLinearConv" || op == "QLinearMatMul" {
			in = []string{in[0], in[3]} // a, b after their scales and zero points
		}
		switch op {
		case "Conv", "ConvInteger", "QLinearConv":
			w := si.shape(in[1])
			y := si.shape(n.GetOutput()[0])
			if len(w) < 2 || y == nil {
				uncounted = append(uncounted, nodeName(n, i))
				continue
			}
			macs += prod(y) * prod(w[1:])
		case "Gemm":
			a, y := si.shape(in[0]), si.shape(n.GetOutput()[0])
			if a == nil || y == nil || len(a) != 2 {
				uncounted = append(uncounted, nodeName(n, i))
				continue
			}
			k := a[1]
			if onnx.AttrInt(n, "transA", 0) != 0 {
				k = a[0]
			}
			macs += prod(y) * k
		case "MatMul", "MatMulInteger", "QLinearMatMul":
			a, y := si.shape(in[0]), si.shape(n.GetOutput()[0])
			if a == nil || y == nil || len(a) == 0 {
				uncounted = append(uncounted, nodeName(n, i))
				continue
			}
			macs += prod(y) * a[len(a)-1]
		}
	}
	if len(uncounted) > 0 {
		return params, macs, &IncompleteError{Nodes: uncounted}
	}
	return params, macs, nil
}

func prod(d []int64) int64 {
	p := int64(1)
	for _, x := range d {
		p *= x
	}
	return p
}

// shapes holds what shape inference knows: fully known shapes, and the
// values of small integer tensors (shape arithmetic) and small float
// constants (Resize scales).
type shapes struct {
	dims   map[string][]int64
	ints   map[string][]int64
	floats map[string][]float32
	order  []int // node positions in topological order
}

// shape is name's shape, nil when unknown (a scalar's is empty, not nil).
func (s *shapes) shape(name string) []int64 { return s.dims[name] }

// known copies d into a non-nil slice: nil means "unknown" to shapes, an
// empty shape is a scalar.
func known(d []int64) []int64 { return append(make([]int64, 0, len(d)), d...) }

const maxConstValues = 64

// inferShapes walks m's graph in topological order from inShape.
func inferShapes(m *onnxpb.ModelProto, inShape []int64) (*shapes, error) {
	gp := m.GetGraph()
	s := &shapes{dims: map[string][]int64{}, ints: map[string][]int64{}, floats: map[string][]float32{}}
	g := onnx.NewGraph(m)
	sorted, err := g.TopoSort()
	if err != nil {
		return nil, err
	}
	index := make(map[*onnxpb.NodeProto]int, len(gp.GetNode()))
	for i, n := range gp.GetNode() {
		index[n] = i
	}
	for _, n := range sorted {
		s.order = append(s.order, index[n])
	}
	for _, t := range gp.GetInitializer() {
		s.constant(t.GetName(), t)
	}
	first := true
	for _, vi := range gp.GetInput() {
		name := vi.GetName()
		if g.Initializer(name) != nil {
			continue
		}
		if first {
			first = false
			if len(inShape) == 0 || slices.ContainsFunc(inShape, func(d int64) bool { return d <= 0 }) {
				return nil, fmt.Errorf("input shape %v must be non-empty and positive", inShape)
			}
			if declared := vi.GetType().GetTensorType().GetShape().GetDim(); len(declared) > 0 && len(declared) != len(inShape) {
				return nil, fmt.Errorf("input shape %v has rank %d, input %q has rank %d", inShape, len(inShape), name, len(declared))
			}
			s.dims[name] = known(inShape)
			continue
		}
		var d []int64
		known := vi.GetType().GetTensorType().GetShape() != nil
		for _, dim := range vi.GetType().GetTensorType().GetShape().GetDim() {
			if dim.GetDimValue() <= 0 {
				known = false
			}
			d = append(d, dim.GetDimValue())
		}
		if known {
			s.dims[name] = d
		}
	}
	if first {
		return nil, errors.New("model has no graph input")
	}
	opset := g.Opset()
	for _, i := range s.order {
		s.infer(gp.GetNode()[i], opset)
	}
	return s, nil
}

// constant records tensor t (an initializer or Constant value) as name.
func (s *shapes) constant(name string, t *onnxpb.TensorProto) {
	if t == nil || t.GetDataLocation() == onnxpb.TensorProto_EXTERNAL {
		return
	}
	s.dims[name] = known(t.GetDims())
	n := onnx.NumElements(t)
	if n < 0 || n > maxConstValues {
		return
	}
	switch t.GetDataType() {
	case int32(onnxpb.TensorProto_FLOAT):
		if v, err := onnx.TensorFloats(t); err == nil {
			s.floats[name] = v
		}
	case int32(onnxpb.TensorProto_INT64), int32(onnxpb.TensorProto_INT32):
		if v, ok := intValues(t); ok && int64(len(v)) == n {
			s.ints[name] = v
		}
	}
}

// intValues reads an INT64 or INT32 tensor.
func intValues(t *onnxpb.TensorProto) ([]int64, bool) {
	raw := t.GetRawData()
	switch t.GetDataType() {
	case int32(onnxpb.TensorProto_INT64):
		if t.RawData == nil {
			return slices.Clone(t.GetInt64Data()), true
		}
		if len(raw)%8 != 0 {
			return nil, false
		}
		v := make([]int64, len(raw)/8)
		for i := range v {
			v[i] = int64(binary.LittleEndian.Uint64(raw[8*i:]))
		}
		return v, true
	case int32(onnxpb.TensorProto_INT32):
		if t.RawData == nil {
			v := make([]int64, len(t.GetInt32Data()))
			for i, x := range t.GetInt32Data() {
				v[i] = int64(x)
			}
			return v, true
		}
		if len(raw)%4 != 0 {
			return nil, false
		}
		v := make([]int64, len(raw)/4)
		for i := range v {
			v[i] = int64(int32(binary.LittleEndian.Uint32(raw[4*i:])))
		}
		return v, true
	}
	return nil, false
}

// intsArg is an ints attribute (older opsets) or a constant input (newer).
func (s *shapes) intsArg(n *onnxpb.NodeProto, attrName string, input int) ([]int64, bool) {
	if at := findAttr(n, attrName); at != nil {
		return at.GetInts(), true
	}
	if input < len(n.GetInput()) && n.GetInput()[input] != "" {
		v, ok := s.ints[n.GetInput()[input]]
		return v, ok
	}
	return nil, false
}

// broadcastable is every operator whose output shape is its inputs'
// broadcast shape.
var broadcastable = map[string]bool{
	"Add": true, "Sub": true, "Mul": true, "Div": true, "Pow": true,
	"Max": true, "Min": true, "Sum": true, "Mean": true, "PRelu": true,
	"Where": true, "Equal": true, "Less": true, "Greater": true,
	"LessOrEqual": true, "GreaterOrEqual": true, "And": true, "Or": true,
	"Xor": true, "Mod": true, "BitShift": true,
}

// sameShape are operators whose first output has their first input's shape.
var sameShapeOps = map[string]bool{
	"BatchNormalization": true, "Softmax": true, "LogSoftmax": true,
	"Hardmax": true, "Cast": true, "Not": true, "IsNaN": true, "IsInf": true,
	"LRN": true, "InstanceNormalization": true, "LayerNormalization": true,
	"QuantizeLinear": true, "DequantizeLinear": true,
}

// infer sets the shapes (and small values) of n's outputs when it can.
func (s *shapes) infer(n *onnxpb.NodeProto, opset int64) {
	op := n.GetOpType()
	out := n.GetOutput()
	if len(out) == 0 || !defaultDomain(n.GetDomain()) {
		return
	}
	// in is padded so that optional inputs read as "" (no shape, no value).
	in := append(slices.Clone(n.GetInput()), "", "", "", "", "")
	nIn := len(n.GetInput())
	x := s.shape(in[0])
	set := func(name string, d []int64) {
		if name != "" && d != nil {
			s.dims[name] = d
		}
	}
	switch {
	case op == "Constant":
		s.constant(out[0], constantValue(n))
	case op == "DynamicQuantizeLinear":
		set(out[0], x)
		for _, o := range out[1:] {
			set(o, []int64{})
		}
	case op == "Conv" || op == "ConvInteger" || op == "QLinearConv":
		w := s.shape(in[1])
		if op == "QLinearConv" {
			w = s.shape(in[3])
		}
		if x == nil || len(w) < 3 {
			return
		}
		set(out[0], s.windowed(n, x, w[0], w[2:]))
	case op == "MaxPool" || op == "AveragePool" || op == "LpPool":
		if x == nil {
			return
		}
		k, _ := s.intsArg(n, "kernel_shape", nIn)
		if len(k) != len(x)-2 {
			return
		}
		y := s.windowed(n, x, x[1], k)
		set(out[0], y)
		if len(out) > 1 {
			set(out[1], y)
		}
	case op == "GlobalAveragePool" || op == "GlobalMaxPool" || op == "GlobalLpPool":
		if x == nil || len(x) < 2 {
			return
		}
		y := slices.Clone(x)
		for i := 2; i < len(y); i++ {
			y[i] = 1
		}
		set(out[0], y)
	case channelwise[op] || sameShapeOps[op]:
		set(out[0], x)
		if op == "Dropout" && len(out) > 1 {
			set(out[1], x)
		}
		if op == "Identity" || op == "Cast" {
			if v, ok := s.ints[in[0]]; ok {
				s.ints[out[0]] = v
			}
		}
	case broadcastable[op]:
		var y []int64
		for _, name := range n.GetInput() {
			d := s.shape(name)
			if name == "" {
				continue
			}
			if d == nil {
				return
			}
			var ok bool
			if y, ok = broadcast(y, d); !ok {
				return
			}
		}
		set(out[0], y)
		s.intArith(n)
	case op == "Concat":
		axis := onnx.AttrInt(n, "axis", 0)
		var y []int64
		var vals []int64
		allInts := true
		for _, name := range n.GetInput() {
			d := s.shape(name)
			if d == nil {
				return
			}
			if y == nil {
				y = slices.Clone(d)
				if axis < 0 {
					axis += int64(len(y))
				}
				if axis < 0 || axis >= int64(len(y)) {
					return
				}
				y[axis] = 0
			}
			if len(d) != len(y) {
				return
			}
			y[axis] += d[axis]
			v, ok := s.ints[name]
			allInts = allInts && ok
			vals = append(vals, v...)
		}
		set(out[0], y)
		if allInts && len(y) == 1 {
			s.ints[out[0]] = vals
		}
	case op == "Resize" || op == "Upsample":
		if x == nil {
			return
		}
		var scales []float32
		var sizes []int64
		switch {
		case op == "Upsample" && nIn == 1:
			if at := findAttr(n, "scales"); at != nil {
				scales = at.GetFloats()
			}
		case op == "Upsample" || nIn == 2:
			scales = s.floats[in[1]]
		default:
			if in[3] != "" {
				sizes = s.ints[in[3]]
			} else {
				scales = s.floats[in[2]]
			}
		}
		switch {
		case len(sizes) == len(x):
			set(out[0], slices.Clone(sizes))
		case len(scales) == len(x):
			y := make([]int64, len(x))
			for i := range x {
				y[i] = int64(math.Floor(float64(x[i]) * float64(scales[i])))
			}
			set(out[0], y)
		}
	case op == "Pad":
		pads, ok := s.intsArg(n, "pads", 1)
		if x == nil || !ok || len(pads) != 2*len(x) || in[3] != "" {
			return
		}
		y := known(x)
		for i := range y {
			y[i] += pads[i] + pads[len(x)+i]
		}
		set(out[0], y)
	case op == "Shape":
		if x == nil {
			return
		}
		start, end := onnx.AttrInt(n, "start", 0), onnx.AttrInt(n, "end", int64(len(x)))
		start, end = clampRange(start, int64(len(x))), clampRange(end, int64(len(x)))
		v := []int64{}
		if start < end {
			v = slices.Clone(x[start:end])
		}
		set(out[0], []int64{int64(len(v))})
		s.ints[out[0]] = v
	case op == "Slice":
		s.inferSlice(n, opset, x)
	case op == "Reshape":
		target, ok := s.ints[in[1]]
		if !ok || x == nil {
			return
		}
		y := known(target)
		infer := -1
		known := int64(1)
		for i, d := range y {
			switch {
			case d == 0 && onnx.AttrInt(n, "allowzero", 0) == 0:
				if i >= len(x) {
					return
				}
				y[i] = x[i]
			case d == -1:
				if infer >= 0 {
					return
				}
				infer = i
				continue
			case d < 0:
				return
			}
			known *= y[i]
		}
		if infer >= 0 {
			if known == 0 || prod(x)%known != 0 {
				return
			}
			y[infer] = prod(x) / known
		}
		if prod(y) != prod(x) {
			return
		}
		set(out[0], y)
		if v, ok := s.ints[in[0]]; ok {
			s.ints[out[0]] = v
		}
	case op == "Transpose":
		if x == nil {
			return
		}
		perm := findAttr(n, "perm").GetInts()
		if perm == nil {
			for i := len(x) - 1; i >= 0; i-- {
				perm = append(perm, int64(i))
			}
		}
		if len(perm) != len(x) {
			return
		}
		y := make([]int64, len(x))
		for i, p := range perm {
			if p < 0 || p >= int64(len(x)) {
				return
			}
			y[i] = x[p]
		}
		set(out[0], y)
	case op == "Flatten":
		if x == nil {
			return
		}
		axis := onnx.AttrInt(n, "axis", 1)
		if axis < 0 {
			axis += int64(len(x))
		}
		if axis < 0 || axis > int64(len(x)) {
			return
		}
		set(out[0], []int64{prod(x[:axis]), prod(x[axis:])})
	case op == "Unsqueeze":
		axes, ok := s.intsArg(n, "axes", 1)
		if x == nil || !ok {
			return
		}
		r := int64(len(x) + len(axes))
		y := make([]int64, 0, r)
		add := map[int64]bool{}
		for _, a := range axes {
			if a < 0 {
				a += r
			}
			add[a] = true
		}
		for i, j := int64(0), 0; i < r; i++ {
			if add[i] {
				y = append(y, 1)
			} else if j < len(x) {
				y = append(y, x[j])
				j++
			}
		}
		set(out[0], y)
		if v, ok := s.ints[in[0]]; ok {
			s.ints[out[0]] = v
		}
	case op == "Squeeze":
		if x == nil {
			return
		}
		axes, _ := s.intsArg(n, "axes", 1)
		drop := axisSet(axes, len(x))
		y := []int64{}
		for i, d := range x {
			if (len(axes) == 0 && d == 1) || drop[int64(i)] {
				continue
			}
			y = append(y, d)
		}
		set(out[0], y)
		if v, ok := s.ints[in[0]]; ok {
			s.ints[out[0]] = v
		}
	case op == "Gather":
		idx := s.shape(in[1])
		if x == nil || idx == nil {
			return
		}
		axis := onnx.AttrInt(n, "axis", 0)
		if axis < 0 {
			axis += int64(len(x))
		}
		if axis < 0 || axis >= int64(len(x)) {
			return
		}
		y := known(slices.Concat(x[:axis], idx, x[axis+1:]))
		set(out[0], y)
		data, ok1 := s.ints[in[0]]
		iv, ok2 := s.ints[in[1]]
		if ok1 && ok2 && len(x) == 1 {
			v := make([]int64, 0, len(iv))
			for _, k := range iv {
				if k < 0 {
					k += int64(len(data))
				}
				if k < 0 || k >= int64(len(data)) {
					return
				}
				v = append(v, data[k])
			}
			s.ints[out[0]] = v
		}
	case op == "Split":
		if x == nil {
			return
		}
		axis := onnx.AttrInt(n, "axis", 0)
		if axis < 0 {
			axis += int64(len(x))
		}
		if axis < 0 || axis >= int64(len(x)) {
			return
		}
		split, ok := s.intsArg(n, "split", 1)
		if !ok || len(split) == 0 {
			k := int64(len(out))
			split = nil
			for i := int64(0); i < k; i++ {
				split = append(split, (x[axis]+k-1)/k)
			}
			split[k-1] = x[axis] - (k-1)*split[0]
		}
		if len(split) != len(out) {
			return
		}
		for i, o := range out {
			y := slices.Clone(x)
			y[axis] = split[i]
			set(o, y)
		}
	case op == "Gemm":
		a, b := s.shape(in[0]), s.shape(in[1])
		if len(a) != 2 || len(b) != 2 {
			return
		}
		m, nn := a[0], b[1]
		if onnx.AttrInt(n, "transA", 0) != 0 {
			m = a[1]
		}
		if onnx.AttrInt(n, "transB", 0) != 0 {
			nn = b[0]
		}
		set(out[0], []int64{m, nn})
	case op == "MatMul" || op == "MatMulInteger" || op == "QLinearMatMul":
		a, b := s.shape(in[0]), s.shape(in[1])
		if op == "QLinearMatMul" {
			b = s.shape(in[3])
		}
		if len(a) == 0 || len(b) == 0 {
			return
		}
		var y []int64
		switch {
		case len(a) == 1 && len(b) == 1:
			y = []int64{}
		case len(a) == 1:
			y = slices.Concat(b[:len(b)-2], b[len(b)-1:])
		case len(b) == 1:
			y = slices.Clone(a[:len(a)-1])
		default:
			batch, ok := broadcast(a[:len(a)-2], b[:len(b)-2])
			if !ok {
				return
			}
			y = slices.Concat(batch, []int64{a[len(a)-2], b[len(b)-1]})
		}
		set(out[0], y)
	case op == "ReduceMean" || op == "ReduceMax" || op == "ReduceMin" || op == "ReduceSum":
		if x == nil {
			return
		}
		axes, ok := s.intsArg(n, "axes", 1)
		if !ok {
			return
		}
		keep := onnx.AttrInt(n, "keepdims", 1) != 0
		red := axisSet(axes, len(x))
		y := []int64{}
		for i, d := range x {
			switch {
			case !red[int64(i)] && len(axes) > 0:
				y = append(y, d)
			case keep:
				y = append(y, 1)
			}
		}
		set(out[0], y)
	}
}

// intArith folds Add, Sub, Mul and Div of small integer tensors of equal
// length or with a single-element operand.
func (s *shapes) intArith(n *onnxpb.NodeProto) {
	op := n.GetOpType()
	if len(n.GetInput()) != 2 || (op != "Add" && op != "Sub" && op != "Mul" && op != "Div") {
		return
	}
	a, ok1 := s.ints[n.GetInput()[0]]
	b, ok2 := s.ints[n.GetInput()[1]]
	if !ok1 || !ok2 || len(a) == 0 || len(b) == 0 || (len(a) != len(b) && len(a) != 1 && len(b) != 1) {
		return
	}
	k := max(len(a), len(b))
	v := make([]int64, k)
	for i := range v {
		x, y := a[min(i, len(a)-1)], b[min(i, len(b)-1)]
		switch op {
		case "Add":
			v[i] = x + y
		case "Sub":
			v[i] = x - y
		case "Mul":
			v[i] = x * y
		case "Div":
			if y == 0 {
				return
			}
			v[i] = x / y
		}
	}
	s.ints[n.GetOutput()[0]] = v
}

func clampRange(i, n int64) int64 {
	if i < 0 {
		i += n
	}
	return max(0, min(i, n))
}

// inferSlice handles Slice (attributes before opset 10, inputs after), for
// the shape and, on 1-D integer tensors, the values.
func (s *shapes) inferSlice(n *onnxpb.NodeProto, opset int64, x []int64) {
	if x == nil {
		return
	}
	var starts, ends, axes, steps []int64
	var ok bool
	if opset < 10 || findAttr(n, "starts") != nil {
		starts, ends, axes = findAttr(n, "starts").GetInts(), findAttr(n, "ends").GetInts(), findAttr(n, "axes").GetInts()
	} else {
		if starts, ok = s.intsArg(n, "", 1); !ok {
			return
		}
		if ends, ok = s.intsArg(n, "", 2); !ok {
			return
		}
		if len(n.GetInput()) > 3 && n.GetInput()[3] != "" {
			if axes, ok = s.ints[n.GetInput()[3]]; !ok {
				return
			}
		}
		if len(n.GetInput()) > 4 && n.GetInput()[4] != "" {
			if steps, ok = s.ints[n.GetInput()[4]]; !ok {
				return
			}
		}
	}
	if len(ends) != len(starts) {
		return
	}
	if axes == nil {
		for i := range starts {
			axes = append(axes, int64(i))
		}
	}
	if steps == nil {
		steps = slices.Repeat([]int64{1}, len(starts))
	}
	if len(axes) != len(starts) || len(steps) != len(starts) {
		return
	}
	y := slices.Clone(x)
	type rng struct{ start, step, n int64 }
	ranges := map[int64]rng{}
	for i, a := range axes {
		if a < 0 {
			a += int64(len(x))
		}
		if a < 0 || a >= int64(len(x)) || steps[i] == 0 {
			return
		}
		d := x[a]
		st, en, step := starts[i], ends[i], steps[i]
		if st < 0 {
			st += d
		}
		if en < 0 {
			en += d
		}
		var cnt int64
		if step > 0 {
			st, en = max(0, min(st, d)), max(0, min(en, d))
			if en > st {
				cnt = (en - st + step - 1) / step
			}
		} else {
			st, en = max(-1, min(st, d-1)), max(-1, min(en, d-1))
			if st > en {
				cnt = (st - en - step - 1) / -step
			}
		}
		y[a] = cnt
		ranges[a] = rng{st, step, cnt}
	}
	s.dims[n.GetOutput()[0]] = y
	if v, ok := s.ints[n.GetInput()[0]]; ok && len(x) == 1 {
		r, ok := ranges[0]
		if !ok {
			s.ints[n.GetOutput()[0]] = v
			return
		}
		out := make([]int64, 0, r.n)
		for k := int64(0); k < r.n; k++ {
			out = append(out, v[r.start+k*r.step])
		}
		s.ints[n.GetOutput()[0]] = out
	}
}

// windowed is the output shape of a Conv or pooling node over input x with
// c output channels and kernel k, honouring strides, dilations, pads,
// auto_pad and ceil_mode. nil when the attributes do not fit.
func (s *shapes) windowed(n *onnxpb.NodeProto, x []int64, c int64, k []int64) []int64 {
	sp := len(x) - 2
	if sp < 1 || len(k) != sp {
		return nil
	}
	ones := slices.Repeat([]int64{1}, sp)
	strides, dil := ones, ones
	if at := findAttr(n, "strides"); at != nil {
		strides = at.GetInts()
	}
	if at := findAttr(n, "dilations"); at != nil {
		dil = at.GetInts()
	}
	pads := make([]int64, 2*sp)
	if at := findAttr(n, "pads"); at != nil {
		pads = at.GetInts()
	}
	if len(strides) != sp || len(dil) != sp || len(pads) != 2*sp {
		return nil
	}
	autoPad := ""
	if at := findAttr(n, "auto_pad"); at != nil {
		autoPad = string(at.GetS())
	}
	ceil := onnx.AttrInt(n, "ceil_mode", 0) != 0
	y := []int64{x[0], c}
	for i := 0; i < sp; i++ {
		in, st := x[2+i], strides[i]
		if st <= 0 || dil[i] <= 0 {
			return nil
		}
		ext := dil[i]*(k[i]-1) + 1
		var o int64
		switch autoPad {
		case "SAME_UPPER", "SAME_LOWER":
			o = (in + st - 1) / st
		case "VALID":
			o = (in-ext)/st + 1
		default:
			span := in + pads[i] + pads[sp+i] - ext
			if span < 0 {
				return nil
			}
			if ceil {
				o = (span+st-1)/st + 1
				if (o-1)*st >= in+pads[i] {
					o-- // the last window would start in the end padding
				}
			} else {
				o = span/st + 1
			}
		}
		if o <= 0 {
			return nil
		}
		y = append(y, o)
	}
	return y
}

// broadcast is the numpy-style broadcast of shapes a and b (a may be nil
// for "nothing yet").
func broadcast(a, b []int64) ([]int64, bool) {
	if a == nil {
		return slices.Clone(b), true
	}
	r := max(len(a), len(b))
	y := make([]int64, r)
	for i := 0; i < r; i++ {
		da, db := int64(1), int64(1)
		if j := i - (r - len(a)); j >= 0 {
			da = a[j]
		}
		if j := i - (r - len(b)); j >= 0 {
			db = b[j]
		}
		switch {
		case da == db || db == 1:
			y[i] = da
		case da == 1:
			y[i] = db
		default:
			return nil, false
		}
	}
	return y, true
}

// axisSet is the set of axes of a rank-dimensional tensor, negative ones
// counted from the end.
func axisSet(axes []int64, rank int) map[int64]bool {
	set := make(map[int64]bool, len(axes))
	for _, a := range axes {
		if a < 0 {
			a += int64(rank)
		}
		set[a] = true
	}
	return set
}
