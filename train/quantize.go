package train

import (
	"fmt"
	"math"

	"github.com/edgedet/edgedet/onnx"
	"github.com/edgedet/edgedet/onnx/onnxpb"
)

// Quantization in training (quantization-aware fine-tuning). QuantizeLinear
// computes y = saturate(round(x/scale) + zero_point) as ONNX does (round
// half to even, saturate to the zero point's type), its integer results
// held as float32 so that DequantizeLinear and gradients can read them.
// Its backward is the straight-through estimator: the gradient passes as
// 1/scale where x was not saturated and is 0 where it was, so that a
// QuantizeLinear→DequantizeLinear pair passes gradients unchanged inside
// the representable range. DequantizeLinear, y = (x − zero_point)·scale,
// is linear in x. Scales and zero points take no gradient.

// quantAxes is a per-tensor or per-axis quantization's geometry.
type quantAxes struct {
	axis int64
}

// channelOf returns, for a tensor of shape x and scale/zero-point tensors
// of n values, the function from element index to parameter index.
func (q quantAxes) channelOf(shape []int, n int) (func(int) int, error) {
	if n == 1 {
		return func(int) int { return 0 }, nil
	}
	axis := int(q.axis)
	if axis < 0 {
		axis += len(shape)
	}
	if axis < 0 || axis >= len(shape) {
		return nil, fmt.Errorf("axis %d out of range for shape %v", q.axis, shape)
	}
	if shape[axis] != n {
		return nil, fmt.Errorf("%d scales for %d values along axis %d of shape %v", n, shape[axis], axis, shape)
	}
	inner := 1
	for _, d := range shape[axis+1:] {
		inner *= d
	}
	return func(i int) int { return i / inner % n }, nil
}

// params reads a Q/DQ node's scale and optional zero point, and maps each
// element of its input to its parameters' index.
func (q quantAxes) params(ins []*Tensor) (scale []float32, zp []float64, channel func(int) int, err error) {
	if scale, zp, err = quantParams(ins); err != nil {
		return nil, nil, nil, err
	}
	if channel, err = q.channelOf(ins[0].Shape, len(scale)); err != nil {
		return nil, nil, nil, err
	}
	return scale, zp, channel, nil
}

// quantParams reads the scale and the optional zero point of a Q/DQ node.
func quantParams(ins []*Tensor) (scale []float32, zp []float64, err error) {
	if len(ins) < 2 || ins[1] == nil || ins[1].isInt() {
		return nil, nil, fmt.Errorf("scale must be a float tensor")
	}
	if len(ins[1].Shape) > 1 {
		return nil, nil, fmt.Errorf("scale of shape %v: want a scalar or a vector (blocked quantization is not supported)", ins[1].Shape)
	}
	scale = ins[1].Data
	for i, s := range scale {
		if !(s > 0 && s <= math.MaxFloat32) {
			return nil, nil, fmt.Errorf("scale %d is %g: want a positive, finite value", i, s)
		}
	}
	zp = make([]float64, len(scale))
	if len(ins) > 2 && ins[2] != nil {
		z := ins[2]
		if z.Len() != len(scale) {
			return nil, nil, fmt.Errorf("%d zero points for %d scales", z.Len(), len(scale))
		}
		for i := range zp {
			if z.isInt() {
				zp[i] = float64(z.ints[i])
			} else {
				zp[i] = float64(z.Data[i])
			}
		}
	}
	return scale, zp, nil
}

// quantizeKernel is QuantizeLinear saturating to [qmin, qmax].
type quantizeKernel struct {
	quantAxes
	qmin, qmax float64
}

// quantRange is the saturation range of a QuantizeLinear whose zero point
// has type dt (absent: UINT8, as ONNX says).
func quantRange(dt onnxpb.TensorProto_DataType) (float64, float64, error) {
	switch dt {
	case onnxpb.TensorProto_UINT8:
		return 0, 255, nil
	case onnxpb.TensorProto_INT8:
		return -128, 127, nil
	default:
		return 0, 0, fmt.Errorf("zero point of type %v is not supported (want UINT8 or INT8)", dt)
	}
}

// keeps x, the scale and the zero point: backward recomputes which
// values saturated.
func (k quantizeKernel) keeps() (uint, bool) { return 0b111, false }

// quantizeValue is round(v/scale) + zp before saturation, the quotient
// taken in float32 as ONNX (and ONNX Runtime) do: in float64 a quotient
// such as 0.7/0.2 = 3.4999999 would round the other way than its float32
// 3.5.
func quantizeValue(v, scale float32, zp float64) float64 {
	return math.RoundToEven(float64(v/scale)) + zp
}

func (k quantizeKernel) forward(ins []*Tensor) ([]*Tensor, any, error) {
	x := ins[0]
	if x.isInt() {
		return nil, nil, fmt.Errorf("input must be a float tensor")
	}
	scale, zp, ch, err := k.params(ins)
	if err != nil {
		return nil, nil, err
	}
	y := NewTensor(x.Shape...)
	for i, v := range x.Data {
		c := ch(i)
		q := quantizeValue(v, scale[c], zp[c])
		y.Data[i] = float32(min(max(q, k.qmin), k.qmax))
	}
	return []*Tensor{y}, nil, nil
}

func (k quantizeKernel) backward(ins, _ []*Tensor, _ any, gOuts []*Tensor) ([]*Tensor, error) {
	grads := make([]*Tensor, len(ins))
	if gOuts[0] == nil {
		return grads, nil
	}
	x := ins[0]
	scale, zp, ch, err := k.params(ins)
	if err != nil {
		return nil, err
	}
	g := NewTensor(x.Shape...)
	for i, v := range x.Data {
		c := ch(i)
		q := quantizeValue(v, scale[c], zp[c])
		if q >= k.qmin && q <= k.qmax {
			g.Data[i] = gOuts[0].Data[i] / scale[c]
		}
	}
	grads[0] = g
	return grads, nil
}

// dequantizeKernel is DequantizeLinear; its input may be an integer
// initializer (stored weights) or a QuantizeLinear's output.
type dequantizeKernel struct{ quantAxes }

// keeps the scale and the zero point, which backward reads; of x it reads
// only the shape and whether it is an integer tensor, which outlive the
// release of its data.
func (k dequantizeKernel) keeps() (uint, bool) { return 0b110, false }

func (k dequantizeKernel) forward(ins []*Tensor) ([]*Tensor, any, error) {
	x := ins[0]
	scale, zp, ch, err := k.params(ins)
	if err != nil {
		return nil, nil, err
	}
	y := NewTensor(x.Shape...)
	for i := range y.Data {
		var v float64
		if x.isInt() {
			v = float64(x.ints[i])
		} else {
			v = float64(x.Data[i])
		}
		c := ch(i)
		y.Data[i] = float32((v - zp[c]) * float64(scale[c]))
	}
	return []*Tensor{y}, nil, nil
}

func (k dequantizeKernel) backward(ins, _ []*Tensor, _ any, gOuts []*Tensor) ([]*Tensor, error) {
	grads := make([]*Tensor, len(ins))
	if gOuts[0] == nil || ins[0].isInt() {
		return grads, nil
	}
	scale, _, ch, err := k.params(ins)
	if err != nil {
		return nil, err
	}
	g := NewTensor(ins[0].Shape...)
	for i, v := range gOuts[0].Data {
		g.Data[i] = v * scale[ch(i)]
	}
	grads[0] = g
	return grads, nil
}

func buildDequantize(n *onnxpb.NodeProto, _ int64) (kernel, error) {
	if err := refuseBlocks(n); err != nil {
		return nil, err
	}
	return dequantizeKernel{quantAxes{onnx.AttrInt(n, "axis", 1)}}, nil
}

// refuseBlocks refuses blocked quantization (opset 21's block_size), whose
// scales a per-axis reading would silently misapply when their count
// happens to equal the axis length.
func refuseBlocks(n *onnxpb.NodeProto) error {
	if b := onnx.AttrInt(n, "block_size", 0); b != 0 {
		return fmt.Errorf("attribute block_size %d (blocked quantization) is not supported", b)
	}
	return nil
}

// buildQuantize makes a QuantizeLinear kernel; the saturation range comes
// from the type of its zero point, an initializer of dtypes (absent: UINT8).
func buildQuantize(n *onnxpb.NodeProto, dtypes map[string]onnxpb.TensorProto_DataType) (kernel, error) {
	if onnx.Attr(n, "output_dtype") != nil {
		return nil, fmt.Errorf("attribute output_dtype is not supported")
	}
	if err := refuseBlocks(n); err != nil {
		return nil, err
	}
	dt := onnxpb.TensorProto_UINT8
	if zp := inputAt(n, 2); zp != "" {
		t, ok := dtypes[zp]
		if !ok {
			return nil, fmt.Errorf("zero point %q must be an initializer", zp)
		}
		dt = t
	}
	lo, hi, err := quantRange(dt)
	if err != nil {
		return nil, err
	}
	return quantizeKernel{quantAxes{onnx.AttrInt(n, "axis", 1)}, lo, hi}, nil
}

func inputAt(n *onnxpb.NodeProto, i int) string {
	if i < len(n.GetInput()) {
		return n.GetInput()[i]
	}
	return ""
}
