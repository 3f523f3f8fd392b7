package quant

import (
	"fmt"
	"math"

	"google.golang.org/protobuf/proto"

	"github.com/edgedet/edgedet/onnx"
	"github.com/edgedet/edgedet/onnx/onnxpb"
)

// weightAxis is the output-channel axis of a compute node's weight.
func weightAxis(n *onnxpb.NodeProto) int64 {
	switch n.GetOpType() {
	case "Gemm":
		if onnx.AttrInt(n, "transB", 0) != 0 {
			return 0
		}
		return 1
	case "MatMul":
		return 1
	}
	return 0
}

// quantizeWeights replaces n's float weight (and bias) with int8 (int32)
// initializers behind DequantizeLinear nodes: weights symmetric, per output
// channel unless perChannel is false; bias scale = input scale × weight scale.
// inMeans, if not nil, are the means of a Conv's input channels on the
// calibration frames: the bias then absorbs the mean output shift the
// weights' rounding causes (bias correction, Nagel et al. 2019; a Conv
// without a bias gets one).
//
// h, if not nil, is the Hessian of n's input patches: the weights are then
// rounded by GPTQ.
func quantizeWeights(gp *onnxpb.GraphProto, names map[string]bool, n *onnxpb.NodeProto, w, b *onnxpb.TensorProto, inScale float32, perChannel, reduceRange bool, inMeans []float32, h *hessian) ([]*onnxpb.NodeProto, error) {
	wv, err := onnx.TensorFloats(w)
	if err != nil {
		return nil, err
	}
	dims := w.GetDims()
	axis := weightAxis(n)
	channels := int(dims[axis])
	qmax := 127.0
	if reduceRange {
		qmax = 63
	}
	qw, scales, chanOf := symmetricWeights(wv, dims, axis, perChannel, qmax)
	if h != nil && axis == 0 {
		gptqWeights(wv, qw, dims, scales, h, qmax)
	}
	scaleOf := func(c int) float32 {
		if len(scales) == 1 {
			return scales[0]
		}
		return scales[c]
	}
	stem := shortStem(names, "w")
	qName := onnx.UniqueName(names, stem+"_q")
	sName := onnx.UniqueName(names, stem+"_scale")
	zName := onnx.UniqueName(names, stem+"_zp")
	dqOut := onnx.UniqueName(names, stem+"_dq")
	dqAxis := int64(-1)
	if len(scales) > 1 {
		dqAxis = axis
	}
	gp.Initializer = append(gp.Initializer, onnx.Int8Tensor(qName, dims, qw))
	if len(scales) > 1 {
		gp.Initializer = append(gp.Initializer, onnx.Int8Vector(zName, make([]int8, len(scales))))
	} else {
		gp.Initializer = append(gp.Initializer, onnx.Int8Scalar(zName, 0))
	}
	if len(scales) > 1 {
		gp.Initializer = append(gp.Initializer, onnx.Float32Vector(sName, scales))
	} else {
		gp.Initializer = append(gp.Initializer, onnx.Float32Scalar(sName, scales[0]))
	}
	out := []*onnxpb.NodeProto{qdqNode(onnx.UniqueName(names, stem+"_DQ"), "DequantizeLinear", []string{qName, sName, zName}, dqOut, dqAxis)}
	n.Input[1] = dqOut
	var shift []float32
	if inMeans != nil {
		restored := make([]float32, len(qw))
		for i, q := range qw {
			restored[i] = float32(q) * scaleOf(chanOf(i))
		}
		shift = convBiasShift(n, wv, restored, dims, inMeans)
	}
	if b == nil && (shift == nil || inputAt(n, 2) != "") {
		return out, nil
	}
	bv := make([]float32, channels)
	if b != nil {
		if bv, err = onnx.TensorFloats(b); err != nil {
			return nil, err
		}
	}
	if len(bv) != channels {
		return nil, fmt.Errorf("bias %q has %d values for %d output channels", b.GetName(), len(bv), channels)
	}
	for c := range shift {
		bv[c] -= shift[c]
	}
	for len(n.Input) < 3 {
		n.Input = append(n.Input, "")
	}
	bScales := make([]float32, channels)
	qb := make([]int32, channels)
	for c, v := range bv {
		s := inScale * scaleOf(c)
		if s == 0 {
			s = 1
		}
		bScales[c] = s
		x := math.Round(float64(v / s))
		qb[c] = int32(min(max(x, math.MinInt32), math.MaxInt32))
	}
	bq := onnx.UniqueName(names, stem+"_bias_q")
	bs := onnx.UniqueName(names, stem+"_bias_scale")
	bz := onnx.UniqueName(names, stem+"_bias_zp")
	bOut := onnx.UniqueName(names, stem+"_bias_dq")
	gp.Initializer = append(gp.Initializer, onnx.Int32Vector(bq, qb), onnx.Float32Vector(bs, bScales), onnx.Int32Vector(bz, make([]int32, channels)))
	out = append(out, qdqNode(onnx.UniqueName(names, stem+"_bias_DQ"), "DequantizeLinear", []string{bq, bs, bz}, bOut, 0))
	n.Input[2] = bOut
	return out, nil
}

// symmetricWeights quantizes wv (shaped dims) to int8 in [-qmax, qmax],
// symmetric, per channel along axis (or per tensor): it returns the values,
// the scales (one, or one per channel) and the channel of each element.
func symmetricWeights(wv []float32, dims []int64, axis int64, perChannel bool, qmax float64) ([]int8, []float32, func(int) int) {
	channels := int(dims[axis])
	inner := 1
	for _, d := range dims[axis+1:] {
		inner *= int(d)
	}
	chanOf := func(i int) int { return (i / inner) % channels }
	scales := make([]float32, channels)
	for i, v := range wv {
		c := chanOf(i)
		scales[c] = max(scales[c], float32(math.Abs(float64(v))))
	}
	if !perChannel {
		var m float32
		for _, s := range scales {
			m = max(m, s)
		}
		scales = []float32{m}
	}
	for i, s := range scales {
		scales[i] = s / float32(qmax)
		if scales[i] == 0 {
			scales[i] = 1
		}
	}
	qw := make([]int8, len(wv))
	for i, v := range wv {
		s := scales[0]
		if len(scales) > 1 {
			s = scales[chanOf(i)]
		}
		x := math.Round(float64(v / s))
		qw[i] = int8(min(max(x, -qmax), qmax))
	}
	return qw, scales, chanOf
}

// storeWeights stores the float weight of n, a compute node that stays
// float, as int8 (8 bits, symmetric, per output channel unless perChannel is
// false) followed by Cast and Mul by the scales, or as float16 followed by
// Cast. Every input of those nodes is an initializer, so ONNX Runtime's
// constant folding (a basic optimisation, applied before execution
// providers are assigned) turns them back into one float initializer when
// it loads the model: the file is smaller and the layer runs exactly like a
// float layer with those weights. (A DequantizeLinear would not be folded:
// ONNX Runtime keeps it for its QDQ fusions and runs it on every inference.)
//
// inMeans, if not nil, are the mean values of the node's input channels on
// the calibration frames: the bias (b, the bias initializer, or nil if there
// is none) then absorbs the mean output shift the int8 rounding causes (bias
// correction, Nagel et al. 2019).
func storeWeights(gp *onnxpb.GraphProto, names map[string]bool, n *onnxpb.NodeProto, w, b *onnxpb.TensorProto, storage WeightStorage, perChannel bool, inMeans []float32) ([]*onnxpb.NodeProto, error) {
	wv, err := onnx.TensorFloats(w)
	if err != nil {
		return nil, err
	}
	dims := w.GetDims()
	stem := shortStem(names, "f")
	castNode := func(in string) (*onnxpb.NodeProto, string) {
		out := onnx.UniqueName(names, stem+"_cast")
		return &onnxpb.NodeProto{
			Name: proto.String(onnx.UniqueName(names, stem+"_Cast")), OpType: proto.String("Cast"),
			Input: []string{in}, Output: []string{out},
			Attribute: []*onnxpb.AttributeProto{onnx.IntAttr("to", int64(onnxpb.TensorProto_FLOAT))},
		}, out
	}
	switch storage {
	case WeightsFloat16:
		hName := onnx.UniqueName(names, stem+"_fp16")
		gp.Initializer = append(gp.Initializer, onnx.Float16Tensor(hName, dims, wv))
		cast, out := castNode(hName)
		n.Input[1] = out
		return []*onnxpb.NodeProto{cast}, nil
	case WeightsInt8:
	default:
		return nil, fmt.Errorf("cannot store weights as %q", storage)
	}
	axis := weightAxis(n)
	if int(axis) >= len(dims) {
		return nil, fmt.Errorf("weight %q has %d dimensions, output channels on axis %d", w.GetName(), len(dims), axis)
	}
	qw, scales, chanOf := symmetricWeights(wv, dims, axis, perChannel, 127)
	// The scales broadcast along the output-channel axis.
	sDims := make([]int64, len(dims))
	for i := range sDims {
		sDims[i] = 1
	}
	sDims[axis] = int64(len(scales))
	qName := onnx.UniqueName(names, stem+"_int8")
	sName := onnx.UniqueName(names, stem+"_scale")
	gp.Initializer = append(gp.Initializer, onnx.Int8Tensor(qName, dims, qw), onnx.Float32Tensor(sName, sDims, scales))
	cast, castOut := castNode(qName)
	mulOut := onnx.UniqueName(names, stem+"_w")
	mul := &onnxpb.NodeProto{
		Name: proto.String(onnx.UniqueName(names, stem+"_Mul")), OpType: proto.String("Mul"),
		Input: []string{castOut, sName}, Output: []string{mulOut},
	}
	n.Input[1] = mulOut
	restored := make([]float32, len(qw))
	for i, q := range qw {
		restored[i] = float32(q) * scales[chanOf(i)%len(scales)]
	}
	if shift := convBiasShift(n, wv, restored, dims, inMeans); shift != nil {
		if err := correctConvBias(gp, onnx.UniqueName(names, stem+"_b"), n, b, shift); err != nil {
			return nil, err
		}
	}
	return []*onnxpb.NodeProto{cast, mul}, nil
}

// convBiasShift is the mean change of Conv n's outputs when its weights
// orig (shaped dims) become restored, given the mean of each input channel
// (border padding ignored); nil when the channel counts do not line up.
func convBiasShift(n *onnxpb.NodeProto, orig, restored []float32, dims []int64, inMeans []float32) []float32 {
	if n.GetOpType() != "Conv" || len(dims) < 2 || inMeans == nil {
		return nil
	}
	outC, inPerGroup := int(dims[0]), int(dims[1])
	groups := int(onnx.AttrInt(n, "group", 1))
	if outC == 0 || inPerGroup == 0 || groups < 1 || outC%groups != 0 || inPerGroup*groups != len(inMeans) || len(orig) != len(restored) {
		return nil
	}
	k := len(orig) / (outC * inPerGroup)
	shift := make([]float32, outC)
	for o := range outC {
		g := o / (outC / groups)
		var sum float64
		for i := range inPerGroup {
			mean := float64(inMeans[g*inPerGroup+i])
			base := (o*inPerGroup + i) * k
			for j := base; j < base+k; j++ {
				sum += float64(restored[j]-orig[j]) * mean
			}
		}
		shift[o] = float32(sum)
	}
	return shift
}

// correctConvBias gives float Conv n a new bias called name, its bias b
// (nil: zeros) minus shift (see convBiasShift). A bias computed at run time
// is left alone.
func correctConvBias(gp *onnxpb.GraphProto, name string, n *onnxpb.NodeProto, b *onnxpb.TensorProto, shift []float32) error {
	outC := len(shift)
	bias := make([]float32, outC)
	switch {
	case b != nil:
		v, err := onnx.TensorFloats(b)
		if err != nil {
			return err
		}
		if len(v) != outC {
			return fmt.Errorf("bias %q has %d values for %d output channels", b.GetName(), len(v), outC)
		}
		bias = v
	case inputAt(n, 2) != "":
		return nil
	}
	corrected := make([]float32, outC)
	for o := range corrected {
		corrected[o] = bias[o] - shift[o]
	}
	gp.Initializer = append(gp.Initializer, onnx.Float32Vector(name, corrected))
	for len(n.Input) < 3 {
		n.Input = append(n.Input, "")
	}
	n.Input[2] = name
	return nil
}

// weightShared reports whether more than one node reads initializer name.
func weightShared(g *onnx.Graph, name string) bool {
	return len(g.Consumers(name)) > 1
}

// floatWeights maps every layer q keeps float to storage, except layers the
// user excluded (they keep their float weights exactly), layers whose
// weight is computed or shared (those keep it as it is) and, for float16,
// layers with a weight beyond its range (they keep float32).
func (p *prepared) floatWeights(q map[string]bool, storage WeightStorage) map[string]WeightStorage {
	out := map[string]WeightStorage{}
	for _, n := range p.candidates {
		if q[n.GetName()] || p.excluded[n.GetName()] {
			continue
		}
		w := p.g.Initializer(n.GetInput()[1])
		if w == nil || weightShared(p.g, w.GetName()) {
			continue
		}
		if storage == WeightsFloat16 && !fitsFloat16(w) {
			out[n.GetName()] = WeightsFloat32
			continue
		}
		out[n.GetName()] = storage
	}
	return out
}

// fitsFloat16 reports whether every value of FLOAT tensor t is finite in
// half precision.
func fitsFloat16(t *onnxpb.TensorProto) bool {
	v, err := onnx.TensorFloats(t)
	if err != nil {
		return false
	}
	for _, x := range v {
		if math.Abs(float64(x)) > 65504 {
			return false
		}
	}
	return true
}
