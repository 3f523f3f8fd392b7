package prune

import (
	"errors"
	"fmt"
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
// Shapes come from onnx.InferShapes. When the input shape of a Conv, Gemm
// or MatMul cannot be inferred, its MACs are left out and the error is an
// *IncompleteError naming it, returned with the counts made so far.
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
	si, err := onnx.InferShapes(m, inShape)
	if err != nil {
		return params, 0, fmt.Errorf("cost: %w", err)
	}
	var uncounted []string
	for i, n := range gp.GetNode() {
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
			w := si.Shape(in[1])
			y := si.Shape(n.GetOutput()[0])
			if len(w) < 2 || y == nil {
				uncounted = append(uncounted, nodeName(n, i))
				continue
			}
			macs += prod(y) * prod(w[1:])
		case "Gemm":
			a, y := si.Shape(in[0]), si.Shape(n.GetOutput()[0])
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
			a, y := si.Shape(in[0]), si.Shape(n.GetOutput()[0])
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

// prod is the product of d, the element count of a tensor of shape d.
func prod(d []int64) int64 {
	p := int64(1)
	for _, x := range d {
		p *= x
	}
	return p
}
