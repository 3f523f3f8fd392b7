package train

import (
	"fmt"

	"github.com/edgedet/edgedet/onnx"
	"github.com/edgedet/edgedet/onnx/onnxpb"
)

// kernelBuilder makes the kernel of one node from its attributes; opset is
// the model's default-domain opset.
type kernelBuilder func(n *onnxpb.NodeProto, opset int64) (kernel, error)

var builders = map[string]kernelBuilder{
	"Conv":      buildConv,
	"MaxPool":   buildMaxPool,
	"Resize":    buildResize,
	"Upsample":  buildUpsample,
	"Sigmoid":   func(*onnxpb.NodeProto, int64) (kernel, error) { return sigmoidKernel(), nil },
	"Relu":      func(*onnxpb.NodeProto, int64) (kernel, error) { return reluKernel(), nil },
	"LeakyRelu": buildLeakyRelu,
	"Softmax":   buildSoftmax,
	"Add":       func(*onnxpb.NodeProto, int64) (kernel, error) { return binaryKernel{opAdd}, nil },
	"Sub":       func(*onnxpb.NodeProto, int64) (kernel, error) { return binaryKernel{opSub}, nil },
	"Mul":       func(*onnxpb.NodeProto, int64) (kernel, error) { return binaryKernel{opMul}, nil },
	"Div":       func(*onnxpb.NodeProto, int64) (kernel, error) { return binaryKernel{opDiv}, nil },
	"Concat": func(n *onnxpb.NodeProto, _ int64) (kernel, error) {
		return concatKernel{int(onnx.AttrInt(n, "axis", 0))}, nil
	},
	"Split": buildSplit,
	"Slice": buildSlice,
	"Reshape": func(n *onnxpb.NodeProto, _ int64) (kernel, error) {
		return reshapeKernel(onnx.AttrInt(n, "allowzero", 0) != 0), nil
	},
	"Transpose": buildTranspose,
	"Flatten": func(n *onnxpb.NodeProto, _ int64) (kernel, error) {
		return flattenKernel(int(onnx.AttrInt(n, "axis", 1))), nil
	},
	"Gather": func(n *onnxpb.NodeProto, _ int64) (kernel, error) {
		return gatherKernel(int(onnx.AttrInt(n, "axis", 0))), nil
	},
	"Unsqueeze": func(n *onnxpb.NodeProto, _ int64) (kernel, error) { return unsqueezeKernel(attrInts(n, "axes")), nil },
	"Squeeze":   func(n *onnxpb.NodeProto, _ int64) (kernel, error) { return squeezeKernel(attrInts(n, "axes")), nil },
	"Identity":  func(*onnxpb.NodeProto, int64) (kernel, error) { return identityKernel(), nil },
	"Shape":     buildShape,
	"Cast":      buildCast,
	// QuantizeLinear is built in Build: it needs its zero point's type.
	"DequantizeLinear": buildDequantize,
}

func attrInts(n *onnxpb.NodeProto, name string) []int64 {
	if a := onnx.Attr(n, name); a != nil {
		return a.GetInts()
	}
	return nil
}

func attrString(n *onnxpb.NodeProto, name, def string) string {
	if a := onnx.Attr(n, name); a != nil {
		return string(a.GetS())
	}
	return def
}

// pairAttr reads a 2-element attribute (strides, dilations) with default d.
func pairAttr(n *onnxpb.NodeProto, name string, d int) (int, int, error) {
	v := attrInts(n, name)
	switch len(v) {
	case 0:
		return d, d, nil
	case 2:
		if v[0] < 1 || v[1] < 1 {
			return 0, 0, fmt.Errorf("%s %v must be positive", name, v)
		}
		return int(v[0]), int(v[1]), nil
	default:
		return 0, 0, fmt.Errorf("%s %v: only 2-D windows are supported", name, v)
	}
}

// padsAttr reads pads [top, left, bottom, right] after checking auto_pad.
func padsAttr(n *onnxpb.NodeProto) (t, l, b, r int, err error) {
	switch ap := attrString(n, "auto_pad", "NOTSET"); ap {
	case "NOTSET", "":
	case "VALID":
		return 0, 0, 0, 0, nil
	default:
		return 0, 0, 0, 0, fmt.Errorf("auto_pad %s is not supported (export with explicit pads)", ap)
	}
	p := attrInts(n, "pads")
	switch len(p) {
	case 0:
		return 0, 0, 0, 0, nil
	case 4:
		for _, v := range p {
			if v < 0 {
				return 0, 0, 0, 0, fmt.Errorf("pads %v must not be negative", p)
			}
		}
		return int(p[0]), int(p[1]), int(p[2]), int(p[3]), nil
	default:
		return 0, 0, 0, 0, fmt.Errorf("pads %v: only 2-D windows are supported", p)
	}
}

func buildConv(n *onnxpb.NodeProto, _ int64) (kernel, error) {
	var p convParams
	var err error
	p.group = int(onnx.AttrInt(n, "group", 1))
	if p.strideH, p.strideW, err = pairAttr(n, "strides", 1); err != nil {
		return nil, err
	}
	if p.dilH, p.dilW, err = pairAttr(n, "dilations", 1); err != nil {
		return nil, err
	}
	if p.padT, p.padL, p.padB, p.padR, err = padsAttr(n); err != nil {
		return nil, err
	}
	if ks := attrInts(n, "kernel_shape"); len(ks) != 0 && len(ks) != 2 {
		return nil, fmt.Errorf("kernel_shape %v: only 2-D convolutions are supported", ks)
	}
	return convKernel{p: p}, nil
}

func buildMaxPool(n *onnxpb.NodeProto, _ int64) (kernel, error) {
	if len(n.GetOutput()) > 1 && n.GetOutput()[1] != "" {
		return nil, fmt.Errorf("the Indices output is not supported")
	}
	ks := attrInts(n, "kernel_shape")
	if len(ks) != 2 || ks[0] < 1 || ks[1] < 1 {
		return nil, fmt.Errorf("kernel_shape %v: only 2-D windows are supported", ks)
	}
	p := poolParams{kh: int(ks[0]), kw: int(ks[1]), ceil: onnx.AttrInt(n, "ceil_mode", 0) != 0}
	var err error
	if p.strideH, p.strideW, err = pairAttr(n, "strides", 1); err != nil {
		return nil, err
	}
	if p.dilH, p.dilW, err = pairAttr(n, "dilations", 1); err != nil {
		return nil, err
	}
	if p.padT, p.padL, p.padB, p.padR, err = padsAttr(n); err != nil {
		return nil, err
	}
	return maxPoolKernel{p}, nil
}

func buildResize(n *onnxpb.NodeProto, opset int64) (kernel, error) {
	if mode := attrString(n, "mode", "nearest"); mode != "nearest" {
		return nil, fmt.Errorf("mode %q is not supported (only nearest)", mode)
	}
	if opset < 11 {
		// Resize-10: inputs X, scales; asymmetric coordinates.
		return resizeKernel{p: resizeParams{"asymmetric", "simple"}, scalesAt: 1, sizesAt: -1}, nil
	}
	p := resizeParams{
		coordMode:   attrString(n, "coordinate_transformation_mode", "half_pixel"),
		nearestMode: attrString(n, "nearest_mode", "round_prefer_floor"),
	}
	if err := checkResizeParams(p); err != nil {
		return nil, err
	}
	return resizeKernel{p: p, scalesAt: 2, sizesAt: 3}, nil
}

// buildUpsample handles the pre-opset-10 Upsample: scales from the
// attribute (opset 7/8) or input 1 (opset 9).
func buildUpsample(n *onnxpb.NodeProto, _ int64) (kernel, error) {
	if mode := attrString(n, "mode", "nearest"); mode != "nearest" {
		return nil, fmt.Errorf("mode %q is not supported (only nearest)", mode)
	}
	k := resizeKernel{p: resizeParams{"asymmetric", "simple"}, scalesAt: 1, sizesAt: -1}
	if a := onnx.Attr(n, "scales"); a != nil {
		return fixedScales{k, a.GetFloats()}, nil
	}
	return k, nil
}

// fixedScales feeds a resize kernel scales given as an attribute.
type fixedScales struct {
	resizeKernel
	scales []float32
}

func (f fixedScales) with(ins []*Tensor) []*Tensor {
	return []*Tensor{ins[0], {Shape: []int{len(f.scales)}, Data: f.scales}}
}

func (f fixedScales) forward(ins []*Tensor) ([]*Tensor, any, error) {
	return f.resizeKernel.forward(f.with(ins))
}

func (f fixedScales) backward(ins, outs []*Tensor, state any, gOuts []*Tensor) ([]*Tensor, error) {
	g, err := f.resizeKernel.backward(f.with(ins), outs, state, gOuts)
	if err != nil {
		return nil, err
	}
	return g[:len(ins)], nil
}

func buildLeakyRelu(n *onnxpb.NodeProto, _ int64) (kernel, error) {
	alpha := float32(0.01)
	if a := onnx.Attr(n, "alpha"); a != nil {
		alpha = a.GetF()
	}
	return leakyReluKernel(alpha), nil
}

func buildSoftmax(n *onnxpb.NodeProto, opset int64) (kernel, error) {
	def := int64(-1)
	if opset < 13 {
		def = 1
	}
	return softmaxKernel(int(onnx.AttrInt(n, "axis", def)), opset < 13), nil
}

func buildSplit(n *onnxpb.NodeProto, _ int64) (kernel, error) {
	return splitKernel{axis: int(onnx.AttrInt(n, "axis", 0)), fixed: attrInts(n, "split"), outputs: len(n.GetOutput())}, nil
}

func buildSlice(n *onnxpb.NodeProto, opset int64) (kernel, error) {
	if opset < 10 {
		return sliceKernel(&sliceSpec{starts: attrInts(n, "starts"), ends: attrInts(n, "ends"), axes: attrInts(n, "axes")}), nil
	}
	return sliceKernel(nil), nil
}

func buildTranspose(n *onnxpb.NodeProto, _ int64) (kernel, error) {
	var perm []int
	for _, p := range attrInts(n, "perm") {
		perm = append(perm, int(p))
	}
	return transposeKernel(perm), nil
}

func identityKernel() kernel {
	return relabelKernel{name: "identity", shape: func(ins []*Tensor) ([]int, error) { return ins[0].Shape, nil }}
}

// shapeKernel outputs its input's shape (dimensions start..end) as ints.
type shapeKernel struct{ start, end int64 }

func buildShape(n *onnxpb.NodeProto, _ int64) (kernel, error) {
	return shapeKernel{onnx.AttrInt(n, "start", 0), onnx.AttrInt(n, "end", 1<<62)}, nil
}

func (k shapeKernel) keeps() (uint, bool) { return 0, false }

func (k shapeKernel) forward(ins []*Tensor) ([]*Tensor, any, error) {
	first, count := clampSliceRange(k.start, k.end, 1, len(ins[0].Shape))
	v := make([]int64, count)
	for i := range v {
		v[i] = int64(ins[0].Shape[first+i])
	}
	return []*Tensor{intTensor(v, count)}, nil, nil
}

func (k shapeKernel) backward(ins, _ []*Tensor, _ any, _ []*Tensor) ([]*Tensor, error) {
	return make([]*Tensor, len(ins)), nil
}

// castKernel converts between float32 and the integer types (held as
// int64); it passes no gradient.
type castKernel struct{ toFloat bool }

func buildCast(n *onnxpb.NodeProto, _ int64) (kernel, error) {
	switch to := onnxpb.TensorProto_DataType(onnx.AttrInt(n, "to", 0)); to {
	case onnxpb.TensorProto_FLOAT:
		return castKernel{toFloat: true}, nil
	case onnxpb.TensorProto_INT64, onnxpb.TensorProto_INT32:
		return castKernel{}, nil
	default:
		return nil, fmt.Errorf("cast to %v is not supported", to)
	}
}

func (k castKernel) keeps() (uint, bool) { return 0, false }

func (k castKernel) forward(ins []*Tensor) ([]*Tensor, any, error) {
	x := ins[0]
	switch {
	case k.toFloat && x.isInt():
		y := NewTensor(x.Shape...)
		for i, v := range x.ints {
			y.Data[i] = float32(v)
		}
		return []*Tensor{y}, nil, nil
	case !k.toFloat && !x.isInt():
		v := make([]int64, len(x.Data))
		for i, f := range x.Data {
			v[i] = int64(f)
		}
		return []*Tensor{intTensor(v, x.Shape...)}, nil, nil
	default:
		// A new tensor sharing x's values: the executor may release the
		// output's data without touching x.
		return []*Tensor{{Shape: x.Shape, Data: x.Data, ints: x.ints}}, nil, nil
	}
}

func (k castKernel) backward(ins, _ []*Tensor, _ any, gOuts []*Tensor) ([]*Tensor, error) {
	grads := make([]*Tensor, len(ins))
	if k.toFloat && !ins[0].isInt() {
		grads[0] = gOuts[0]
	}
	return grads, nil
}
