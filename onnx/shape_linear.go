package onnx

import "slices"

// linearRules are the matrix products.
var linearRules = map[string]shapeRule{
	"Gemm":   (*Shapes).gemm,
	"MatMul": (*Shapes).matMul, "MatMulInteger": (*Shapes).matMul, "QLinearMatMul": (*Shapes).matMul,
}

// gemm is the 2-D product of A (M×K, or K×M with transA) and B (K×N, or
// N×K with transB).
func (s *Shapes) gemm(n *node) {
	a, b := s.dims[n.in[0]], s.dims[n.in[1]]
	if len(a) != 2 || len(b) != 2 {
		return
	}
	m, nn := a[0], b[1]
	if AttrInt(n.NodeProto, "transA", 0) != 0 {
		m = a[1]
	}
	if AttrInt(n.NodeProto, "transB", 0) != 0 {
		nn = b[0]
	}
	s.set(n.out[0], []int64{m, nn})
}

// matMul follows numpy.matmul: 1-D operands gain and lose an axis, the
// batch axes broadcast. QLinearMatMul's B comes after A's scale and zero
// point.
func (s *Shapes) matMul(n *node) {
	a, b := s.dims[n.in[0]], s.dims[n.in[1]]
	if n.op == "QLinearMatMul" {
		b = s.dims[n.in[3]]
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
	s.set(n.out[0], y)
}
