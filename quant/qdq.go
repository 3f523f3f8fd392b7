package quant

import (
	"fmt"
	"math"
	"strconv"

	"google.golang.org/protobuf/proto"

	"github.com/edgedet/edgedet/onnx"
	"github.com/edgedet/edgedet/onnx/onnxpb"
)

// Profile selects the activation encoding for a target runtime.
type Profile string

// Quantization profiles.
const (
	// ProfileCPU: uint8 asymmetric activations, ONNX Runtime's fast x86 path
	// (u8s8 kernels, VNNI where the CPU has it).
	ProfileCPU Profile = "cpu"
	// ProfileARM: int8 asymmetric activations (Arm s8s8 kernels).
	ProfileARM Profile = "arm"
	// ProfileTensorRT: int8 symmetric activations with zero point 0, as
	// TensorRT requires.
	ProfileTensorRT Profile = "tensorrt"
)

// ParseProfile checks a profile name.
func ParseProfile(s string) (Profile, error) {
	switch p := Profile(s); p {
	case ProfileCPU, ProfileARM, ProfileTensorRT:
		return p, nil
	}
	return "", fmt.Errorf("quantization profile %q is not one of cpu, arm, tensorrt", s)
}

// computeOps carry the INT8 compute: their weights are quantized.
var computeOps = map[string]bool{"Conv": true, "Gemm": true, "MatMul": true}

// elementwiseOps may run in INT8 between compute ops when enabled.
var elementwiseOps = map[string]bool{
	"Sigmoid": true, "Mul": true, "Add": true, "Concat": true, "MaxPool": true, "Resize": true,
}

// sharesInputParams are ops whose output must use its input's quantization
// parameters (they only move or select values).
var sharesInputParams = map[string]bool{"MaxPool": true, "Resize": true}

// actInputs returns the indices of n's inputs that are activations to
// quantize when n is quantized.
func actInputs(g *onnx.Graph, n *onnxpb.NodeProto) []int {
	switch n.GetOpType() {
	case "Conv", "Gemm", "Sigmoid", "MaxPool", "Resize":
		return []int{0}
	case "MatMul":
		if g.Initializer(n.GetInput()[1]) != nil {
			return []int{0}
		}
		return []int{0, 1}
	default: // Add, Mul, Concat
		idx := make([]int, 0, len(n.GetInput()))
		for i, in := range n.GetInput() {
			if in != "" {
				idx = append(idx, i)
			}
		}
		return idx
	}
}

// qparams are one tensor's quantization parameters.
type qparams struct {
	scale float32
	zp    int32
	dtype onnxpb.TensorProto_DataType // UINT8 or INT8
}

// activationParams turns a calibrated range into scale and zero point for
// the profile. The range always contains 0 so that 0 is exact (padding).
func activationParams(lo, hi float32, p Profile) qparams {
	lo, hi = min(lo, 0), max(hi, 0)
	switch p {
	case ProfileTensorRT:
		t := max(-lo, hi)
		if t == 0 {
			return qparams{scale: 1, dtype: onnxpb.TensorProto_INT8}
		}
		return qparams{scale: t / 127, dtype: onnxpb.TensorProto_INT8}
	case ProfileARM:
		if hi-lo == 0 {
			return qparams{scale: 1, dtype: onnxpb.TensorProto_INT8}
		}
		s := (hi - lo) / 255
		zp := int32(math.Round(float64(-128 - lo/s)))
		return qparams{scale: s, zp: min(max(zp, -128), 127), dtype: onnxpb.TensorProto_INT8}
	default:
		if hi-lo == 0 {
			return qparams{scale: 1, dtype: onnxpb.TensorProto_UINT8}
		}
		s := (hi - lo) / 255
		zp := int32(math.Round(float64(-lo / s)))
		return qparams{scale: s, zp: min(max(zp, 0), 255), dtype: onnxpb.TensorProto_UINT8}
	}
}

// Plan says what to quantize: which nodes (by name), with which activation
// ranges, for which profile.
type Plan struct {
	Quantize   map[string]bool
	Ranges     map[string][2]float32
	Profile    Profile
	PerChannel bool
	// ReduceRange quantizes weights to 7 bits ([-63, 63]).
	ReduceRange bool
	// FloatWeights says how the weights of compute layers kept float are
	// stored (by node name); a layer not listed keeps float32 weights.
	FloatWeights map[string]WeightStorage
	// InputMeans are per-channel means of activation tensors on the
	// calibration frames (by tensor name), for bias correction.
	InputMeans map[string][]float32
	// BiasCorrection also corrects the biases of quantized Convs for their
	// weights' rounding (float-stored layers always are).
	BiasCorrection bool
	// Hessians, by Conv node name, make quantizeWeights round those
	// weights by GPTQ (see gptq.go).
	Hessians map[string]*hessian
}

// WeightStorage is how the file stores the weights of a layer that computes
// in float. Int8 and Float16 weights are turned back into float32 by nodes
// that ONNX Runtime folds into constants when it loads the model, so they
// shrink the file without costing any time per inference.
type WeightStorage string

// Weight storages.
const (
	// WeightsInt8: int8 per output channel, Cast and Mul by the scales; the
	// bias is corrected for the rounding's mean shift.
	WeightsInt8 WeightStorage = "int8"
	// WeightsFloat16: float16 and Cast.
	WeightsFloat16 WeightStorage = "fp16"
	// WeightsFloat32: unchanged.
	WeightsFloat32 WeightStorage = "fp32"
)

// ParseWeightStorage parses int8, fp16 or fp32.
func ParseWeightStorage(s string) (WeightStorage, error) {
	switch w := WeightStorage(s); w {
	case WeightsInt8, WeightsFloat16, WeightsFloat32:
		return w, nil
	}
	return "", fmt.Errorf("weight storage %q is not one of int8, fp16, fp32", s)
}

// prepared is the float model ready for QDQ: BatchNorm folded, opset ≥ 13,
// every node named, with its analysis.
type prepared struct {
	model *onnxpb.ModelProto
	g     *onnx.Graph
	order []*onnxpb.NodeProto
	types map[string]int32
	head  map[string]bool // nodes after the last compute op on every path to an output
	// candidates are the compute nodes that can be quantized, in graph order.
	candidates []*onnxpb.NodeProto
	// excluded are the candidates the user keeps float (--exclude).
	excluded map[string]bool
	// elementwise are the element-wise nodes that can run in INT8.
	elementwise []*onnxpb.NodeProto
	byName      map[string]*onnxpb.NodeProto
	// siluSigmoid maps the Mul of every SiLU (Mul(x, Sigmoid(x)), the
	// Sigmoid read by nothing else) to its Sigmoid.
	siluSigmoid map[string]*onnxpb.NodeProto
	// exactSiLU quantizes a SiLU's input and output only (Options.ExactSiLU).
	exactSiLU bool
}

// analyse finds the head, the quantizable nodes and the tensor types.
// exclude names nodes (by name) or op types to keep in float.
func analyse(m *onnxpb.ModelProto, exclude map[string]bool) (*prepared, error) {
	g := onnx.NewGraph(m)
	order, err := g.TopoSort()
	if err != nil {
		return nil, err
	}
	for _, n := range order {
		if err := checkArity(n); err != nil {
			return nil, err
		}
	}
	p := &prepared{model: m, g: g, order: order, types: elemTypes(g, order), head: map[string]bool{}, byName: map[string]*onnxpb.NodeProto{}}
	for _, n := range order {
		p.byName[n.GetName()] = n
	}
	// A node is in the head when no compute op is reachable from it:
	// walk backwards, marking nodes that reach a compute op.
	reaches := map[*onnxpb.NodeProto]bool{}
	for i := len(order) - 1; i >= 0; i-- {
		n := order[i]
		r := false
		for _, out := range n.GetOutput() {
			for _, c := range g.Consumers(out) {
				if computeOps[c.GetOpType()] || reaches[c] {
					r = true
				}
			}
		}
		reaches[n] = r
		if !r && !computeOps[n.GetOpType()] {
			p.head[n.GetName()] = true
		}
	}
	p.siluSigmoid = map[string]*onnxpb.NodeProto{}
	for _, n := range order {
		if n.GetOpType() != "Sigmoid" || len(n.GetInput()) != 1 || len(n.GetOutput()) != 1 {
			continue
		}
		if c := g.Consumers(n.GetOutput()[0]); len(c) == 1 && c[0].GetOpType() == "Mul" && isSiLU(n, c[0]) && !g.IsOutput(n.GetOutput()[0]) {
			p.siluSigmoid[c[0].GetName()] = n
		}
	}
	p.excluded = map[string]bool{}
	for _, n := range order {
		if !onnx.IsDefaultDomain(n.GetDomain()) {
			continue
		}
		excluded := exclude[n.GetName()] || exclude[n.GetOpType()]
		op := n.GetOpType()
		switch {
		case computeOps[op]:
			// Excluded compute layers stay candidates, always float, so
			// reports list them.
			if p.quantizableCompute(n) {
				p.candidates = append(p.candidates, n)
				p.excluded[n.GetName()] = excluded
			}
		case excluded:
		case elementwiseOps[op] && !p.head[n.GetName()]:
			if p.allFloat(n) {
				p.elementwise = append(p.elementwise, n)
			}
		}
	}
	return p, nil
}

// checkArity rejects a compute or element-wise node without the inputs
// and output its operator always has (a damaged or hand-made file): the
// analysis reads them by position.
func checkArity(n *onnxpb.NodeProto) error {
	if !onnx.IsDefaultDomain(n.GetDomain()) {
		return nil
	}
	minIn := 0
	switch op := n.GetOpType(); {
	case computeOps[op]:
		minIn = 2
	case elementwiseOps[op]:
		minIn = 1
	default:
		return nil
	}
	if len(n.GetInput()) < minIn || len(n.GetOutput()) < 1 {
		return fmt.Errorf("node %q: %s with %d inputs and %d outputs, want at least %d and 1",
			n.GetName(), n.GetOpType(), len(n.GetInput()), len(n.GetOutput()), minIn)
	}
	return nil
}

// quantizableCompute: float activation input, float initializer weight
// (and bias) of a shape we can quantize per channel.
func (p *prepared) quantizableCompute(n *onnxpb.NodeProto) bool {
	in := n.GetInput()
	if len(in) < 2 || !isFloat(p.types, in[0]) || !isFloat(p.types, n.GetOutput()[0]) {
		return false
	}
	w := p.g.Initializer(in[1])
	if !onnx.IsFloatInitializer(w) {
		return n.GetOpType() == "MatMul" && isFloat(p.types, in[1])
	}
	switch n.GetOpType() {
	case "Conv":
		if len(w.GetDims()) < 3 {
			return false
		}
	case "Gemm":
		if len(w.GetDims()) != 2 || onnx.AttrInt(n, "transA", 0) != 0 {
			return false
		}
	case "MatMul":
		if len(w.GetDims()) != 2 {
			return false
		}
	}
	if len(in) > 2 && in[2] != "" {
		b := p.g.Initializer(in[2])
		if !onnx.IsFloatInitializer(b) || len(b.GetDims()) != 1 {
			return false
		}
	}
	return true
}

// quantInputs is actInputs of the node named like n, except that with
// exactSiLU a SiLU's Mul quantizes only x: the Sigmoid between its
// quantized input and output stays float. The indices come from the
// prepared model's node (n may be a copy whose inputs were renamed).
func (p *prepared) quantInputs(g *onnx.Graph, n *onnxpb.NodeProto) []int {
	idx := actInputs(g, n)
	sig := p.siluSigmoid[n.GetName()]
	orig := p.byName[n.GetName()]
	if !p.exactSiLU || sig == nil || orig == nil {
		return idx
	}
	var keep []int
	for _, i := range idx {
		if orig.GetInput()[i] == sig.GetInput()[0] {
			keep = append(keep, i)
		}
	}
	return keep
}

// isExactSiLUSigmoid reports whether n is the Sigmoid of a SiLU that
// exactSiLU keeps float.
func (p *prepared) isExactSiLUSigmoid(n *onnxpb.NodeProto) bool {
	if !p.exactSiLU || n.GetOpType() != "Sigmoid" {
		return false
	}
	for _, c := range p.g.Consumers(n.GetOutput()[0]) {
		if p.siluSigmoid[c.GetName()] == n {
			return true
		}
	}
	return false
}

func (p *prepared) allFloat(n *onnxpb.NodeProto) bool {
	for _, i := range actInputs(p.g, n) {
		if !isFloat(p.types, n.GetInput()[i]) {
			return false
		}
	}
	return isFloat(p.types, n.GetOutput()[0])
}

// quantOutput reports whether a quantized node's output is quantized too
// (so ONNX Runtime fuses it into a QLinear op).
func quantOutput(n *onnxpb.NodeProto) bool {
	return computeOps[n.GetOpType()] || elementwiseOps[n.GetOpType()]
}

// closeFloatIslands un-quantizes nodes until no float compute node sits
// between a DequantizeLinear and a QuantizeLinear: ONNX Runtime would
// otherwise quantize it per tensor behind our back. It returns the nodes it
// turned to float.
func (p *prepared) closeFloatIslands(q map[string]bool) []string {
	var changed []string
	for {
		done := true
		for _, n := range p.order {
			if !computeOps[n.GetOpType()] || q[n.GetName()] {
				continue
			}
			prod := p.g.Producer(n.GetInput()[0])
			if prod == nil || !q[prod.GetName()] {
				continue
			}
			for _, c := range p.g.Consumers(n.GetOutput()[0]) {
				if q[c.GetName()] {
					q[c.GetName()] = false
					changed = append(changed, c.GetName())
					done = false
				}
			}
		}
		if done {
			return changed
		}
	}
}

// propagateElementwise marks an element-wise node INT8 exactly when every
// activation it reads comes from an INT8 node (a quantized compute op or an
// element-wise op already marked), so INT8 regions start at quantized
// convolutions and element-wise ops around float layers stay float.
func (p *prepared) propagateElementwise(q map[string]bool) {
	ew := map[string]bool{}
	for _, n := range p.elementwise {
		ew[n.GetName()] = true
	}
	for _, n := range p.order {
		if !ew[n.GetName()] {
			continue
		}
		if p.isExactSiLUSigmoid(n) {
			q[n.GetName()] = false
			continue
		}
		all := true
		for _, i := range p.quantInputs(p.g, n) {
			in := n.GetInput()[i]
			if p.g.Initializer(in) != nil {
				continue
			}
			prod := p.g.Producer(in)
			if prod == nil || !q[prod.GetName()] {
				all = false
				break
			}
		}
		q[n.GetName()] = all
	}
}

// tensorsToCalibrate lists the activation tensors a plan quantizing every
// candidate and element-wise node could need ranges for.
func (p *prepared) tensorsToCalibrate() []string {
	seen := map[string]bool{}
	var out []string
	add := func(t string) {
		if t != "" && !seen[t] && p.g.Initializer(t) == nil && isFloat(p.types, t) {
			seen[t] = true
			out = append(out, t)
		}
	}
	for _, list := range [][]*onnxpb.NodeProto{p.candidates, p.elementwise} {
		for _, n := range list {
			for _, i := range actInputs(p.g, n) {
				add(n.GetInput()[i])
			}
			add(n.GetOutput()[0])
		}
	}
	return out
}

// buildQDQ returns a copy of the prepared model with QuantizeLinear /
// DequantizeLinear pairs on the activations of the plan's nodes and their
// weights stored as int8 (bias int32).
func (p *prepared) buildQDQ(plan *Plan) (*onnxpb.ModelProto, error) {
	m := proto.Clone(p.model).(*onnxpb.ModelProto)
	g := onnx.NewGraph(m)
	gp := m.GetGraph()
	names := onnx.TensorNames(gp)
	nodes := map[string]*onnxpb.NodeProto{}
	for _, n := range gp.GetNode() {
		nodes[n.GetName()] = n
	}
	q := func(n *onnxpb.NodeProto) bool { return n != nil && plan.Quantize[n.GetName()] }

	// Activation tensors that need a Q/DQ pair, in graph order.
	need := map[string]bool{}
	var tensors []string
	mark := func(t string) {
		if !need[t] {
			need[t] = true
			tensors = append(tensors, t)
		}
	}
	for _, n := range p.order {
		cn := nodes[n.GetName()]
		if !q(cn) {
			continue
		}
		for _, i := range p.quantInputs(g, cn) {
			if t := cn.GetInput()[i]; g.Initializer(t) == nil {
				mark(t)
			}
		}
		if quantOutput(cn) {
			mark(cn.GetOutput()[0])
		}
	}
	var added []*onnxpb.NodeProto
	for _, t := range tensors {
		r, ok := plan.Ranges[t]
		if !ok {
			return nil, fmt.Errorf("no calibration range for tensor %q", t)
		}
		qp := activationParams(r[0], r[1], plan.Profile)
		stem := shortStem(names, "a")
		scale := onnx.UniqueName(names, stem+"_scale")
		zp := onnx.UniqueName(names, stem+"_zp")
		qOut := onnx.UniqueName(names, stem+"_q")
		dqOut := onnx.UniqueName(names, stem+"_dq")
		gp.Initializer = append(gp.Initializer, onnx.Float32Scalar(scale, qp.scale), zeroPoint(zp, qp))
		added = append(added,
			qdqNode(onnx.UniqueName(names, stem+"_Q"), "QuantizeLinear", []string{t, scale, zp}, qOut, -1),
			qdqNode(onnx.UniqueName(names, stem+"_DQ"), "DequantizeLinear", []string{qOut, scale, zp}, dqOut, -1))
		producerQuantized := q(g.Producer(t))
		for _, c := range g.Consumers(t) {
			useDQ := producerQuantized
			if q(c) {
				for _, i := range p.quantInputs(g, c) {
					if c.GetInput()[i] == t {
						useDQ = true
					}
				}
			}
			if !useDQ {
				continue
			}
			for i, in := range c.GetInput() {
				if in == t {
					c.Input[i] = dqOut
				}
			}
		}
	}
	// Weights and biases of quantized compute nodes.
	for _, n := range p.order {
		cn := nodes[n.GetName()]
		if !q(cn) || !computeOps[cn.GetOpType()] {
			continue
		}
		w := g.Initializer(cn.GetInput()[1])
		if w == nil {
			continue // MatMul of two activations: both already have Q/DQ
		}
		inRange := plan.Ranges[n.GetInput()[0]]
		inScale := activationParams(inRange[0], inRange[1], plan.Profile).scale
		var inMeans []float32
		if plan.BiasCorrection {
			inMeans = plan.InputMeans[n.GetInput()[0]]
		}
		nodesAdded, err := quantizeWeights(gp, names, cn, w, g.Initializer(inputAt(cn, 2)), inScale, plan.PerChannel, plan.ReduceRange, inMeans, plan.Hessians[n.GetName()])
		if err != nil {
			return nil, fmt.Errorf("node %q: %w", cn.GetName(), err)
		}
		added = append(added, nodesAdded...)
	}
	// Layers kept float may store their weights smaller (see WeightStorage).
	for _, n := range p.candidates {
		cn := nodes[n.GetName()]
		storage := plan.FloatWeights[n.GetName()]
		if q(cn) || storage == "" || storage == WeightsFloat32 {
			continue
		}
		w := g.Initializer(cn.GetInput()[1])
		if w == nil || weightShared(g, w.GetName()) {
			continue
		}
		nodesAdded, err := storeWeights(gp, names, cn, w, g.Initializer(inputAt(cn, 2)), storage, plan.PerChannel, plan.InputMeans[cn.GetInput()[0]])
		if err != nil {
			return nil, fmt.Errorf("node %q: %w", cn.GetName(), err)
		}
		added = append(added, nodesAdded...)
	}
	gp.Node = append(gp.Node, added...)
	removeUnusedInitializers(gp)
	g.Reindex()
	sorted, err := g.TopoSort()
	if err != nil {
		return nil, err
	}
	gp.Node = sorted
	return m, nil
}

func inputAt(n *onnxpb.NodeProto, i int) string {
	if i < len(n.GetInput()) {
		return n.GetInput()[i]
	}
	return ""
}

func zeroPoint(name string, qp qparams) *onnxpb.TensorProto {
	if qp.dtype == onnxpb.TensorProto_INT8 {
		return onnx.Int8Scalar(name, int8(qp.zp))
	}
	return onnx.Uint8Scalar(name, uint8(qp.zp))
}

func qdqNode(name, op string, in []string, out string, axis int64) *onnxpb.NodeProto {
	n := &onnxpb.NodeProto{Name: proto.String(name), OpType: proto.String(op), Input: in, Output: []string{out}}
	if axis >= 0 {
		n.Attribute = []*onnxpb.AttributeProto{onnx.IntAttr("axis", axis)}
	}
	return n
}

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

// shortStem reserves and returns the first unused name prefix+k (k = 1,
// 2, …): the stem of the names of the tensors and nodes added for one
// quantized activation or weight. Names derived from the exporter's (often
// 60 characters or more, repeated in every node that reads them) made a
// fifth of an INT8 file; the Q/DQ nodes still show which tensor they
// quantize by what they read.
func shortStem(names map[string]bool, prefix string) string {
	for k := 1; ; k++ {
		stem := prefix + strconv.Itoa(k)
		if !names[stem] {
			names[stem] = true
			return stem
		}
	}
}

// weightShared reports whether more than one node reads initializer name.
func weightShared(g *onnx.Graph, name string) bool {
	return len(g.Consumers(name)) > 1
}

// removeUnusedInitializers drops initializers no node reads any more (and
// their graph-input entries).
func removeUnusedInitializers(gp *onnxpb.GraphProto) {
	used := map[string]bool{}
	for _, n := range gp.GetNode() {
		for _, in := range n.GetInput() {
			used[in] = true
		}
	}
	for _, o := range gp.GetOutput() {
		used[o.GetName()] = true
	}
	kept := gp.Initializer[:0]
	dropped := map[string]bool{}
	for _, t := range gp.GetInitializer() {
		if used[t.GetName()] {
			kept = append(kept, t)
		} else {
			dropped[t.GetName()] = true
		}
	}
	clear(gp.Initializer[len(kept):])
	gp.Initializer = kept
	gp.Input = onnx.FilterValueInfo(gp.Input, func(n string) bool { return !dropped[n] })
}
