package onnx

import (
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/edgedet/edgedet/onnx/onnxpb"
)

// constRules are the operators that make constants or compute shapes.
var constRules = map[string]shapeRule{
	"Constant": (*Shapes).constantNode, "Shape": (*Shapes).shapeOf,
}

// constant records tensor t (an initializer or Constant value) as name:
// its shape, and its values when it is small and holds floats or integers.
func (s *Shapes) constant(name string, t *onnxpb.TensorProto) {
	if t == nil || t.GetDataLocation() == onnxpb.TensorProto_EXTERNAL {
		return
	}
	s.dims[name] = known(t.GetDims())
	n := NumElements(t)
	if n < 0 || n > maxConstValues {
		return
	}
	switch t.GetDataType() {
	case int32(onnxpb.TensorProto_FLOAT):
		if v, err := TensorFloats(t); err == nil {
			s.floats[name] = v
		}
	case int32(onnxpb.TensorProto_INT64), int32(onnxpb.TensorProto_INT32):
		if v, err := TensorInts(t); err == nil && int64(len(v)) == n {
			s.ints[name] = v
		}
	}
}

func (s *Shapes) constantNode(n *node) { s.constant(n.out[0], ConstantValue(n.NodeProto)) }

// shapeOf is the Shape operator: a 1-D tensor whose values are the input's
// dimensions from start to end.
func (s *Shapes) shapeOf(n *node) {
	x := n.x
	if x == nil {
		return
	}
	r := int64(len(x))
	start := clampRange(AttrInt(n.NodeProto, "start", 0), r)
	end := clampRange(AttrInt(n.NodeProto, "end", r), r)
	v := []int64{}
	if start < end {
		v = slices.Clone(x[start:end])
	}
	s.set(n.out[0], []int64{int64(len(v))})
	s.ints[n.out[0]] = v
}

// clampRange resolves index i (negative from the end) into [0, n].
func clampRange(i, n int64) int64 {
	if i < 0 {
		i += n
	}
	return max(0, min(i, n))
}

// intsArg is an ints attribute (older opsets) or a constant input (newer).
func (s *Shapes) intsArg(n *node, attrName string, input int) ([]int64, bool) {
	if at := Attr(n.NodeProto, attrName); at != nil {
		return at.GetInts(), true
	}
	if name := n.in[input]; name != "" {
		v, ok := s.ints[name]
		return v, ok
	}
	return nil, false
}

// intArith folds Add, Sub, Mul and Div of small integer tensors of equal
// length or with a single-element operand.
func (s *Shapes) intArith(n *node) {
	if n.nIn != 2 {
		return
	}
	a, ok1 := s.ints[n.in[0]]
	b, ok2 := s.ints[n.in[1]]
	if !ok1 || !ok2 || len(a) == 0 || len(b) == 0 || (len(a) != len(b) && len(a) != 1 && len(b) != 1) {
		return
	}
	v := make([]int64, max(len(a), len(b)))
	for i := range v {
		x, y := a[min(i, len(a)-1)], b[min(i, len(b)-1)]
		switch n.op {
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
		default:
			return
		}
	}
	s.ints[n.out[0]] = v
}

// ConstantValue is the tensor a Constant node outputs, nil if p is not a
// Constant node of the default domain with a tensor, float or int value.
func ConstantValue(p *onnxpb.NodeProto) *onnxpb.TensorProto {
	if p == nil || p.GetOpType() != "Constant" || !IsDefaultDomain(p.GetDomain()) {
		return nil
	}
	int64s := int32(onnxpb.TensorProto_INT64)
	for _, at := range p.GetAttribute() {
		switch at.GetName() {
		case "value":
			return at.GetT()
		case "value_float":
			return Float32Scalar("", at.GetF())
		case "value_floats":
			return Float32Vector("", at.GetFloats())
		case "value_int":
			return &onnxpb.TensorProto{DataType: &int64s, Int64Data: []int64{at.GetI()}}
		case "value_ints":
			return &onnxpb.TensorProto{DataType: &int64s, Dims: []int64{int64(len(at.GetInts()))}, Int64Data: at.GetInts()}
		}
	}
	return nil
}

// TensorInts reads the values of an INT64, INT32, INT8 or UINT8 tensor,
// from its raw data or its typed field.
func TensorInts(t *onnxpb.TensorProto) ([]int64, error) {
	raw := t.GetRawData()
	switch onnxpb.TensorProto_DataType(t.GetDataType()) {
	case onnxpb.TensorProto_INT64:
		if t.RawData == nil {
			return slices.Clone(t.GetInt64Data()), nil
		}
		if len(raw)%8 != 0 {
			return nil, fmt.Errorf("%s: %d bytes of raw_data, not a whole number of int64", tensorLabel(t), len(raw))
		}
		v := make([]int64, len(raw)/8)
		for i := range v {
			v[i] = int64(binary.LittleEndian.Uint64(raw[8*i:]))
		}
		return v, nil
	case onnxpb.TensorProto_INT32:
		if t.RawData == nil {
			v := make([]int64, len(t.GetInt32Data()))
			for i, x := range t.GetInt32Data() {
				v[i] = int64(x)
			}
			return v, nil
		}
		if len(raw)%4 != 0 {
			return nil, fmt.Errorf("%s: %d bytes of raw_data, not a whole number of int32", tensorLabel(t), len(raw))
		}
		v := make([]int64, len(raw)/4)
		for i := range v {
			v[i] = int64(int32(binary.LittleEndian.Uint32(raw[4*i:])))
		}
		return v, nil
	case onnxpb.TensorProto_INT8, onnxpb.TensorProto_UINT8:
		signed := t.GetDataType() == int32(onnxpb.TensorProto_INT8)
		if t.RawData == nil { // int32_data holds one value each
			v := make([]int64, len(t.GetInt32Data()))
			for i, x := range t.GetInt32Data() {
				v[i] = int64(x)
			}
			return v, nil
		}
		v := make([]int64, len(raw))
		for i, b := range raw {
			if signed {
				v[i] = int64(int8(b))
			} else {
				v[i] = int64(b)
			}
		}
		return v, nil
	default:
		return nil, fmt.Errorf("%s: want INT64, INT32, INT8 or UINT8", tensorLabel(t))
	}
}
