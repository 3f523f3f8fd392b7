// Package quant is edgedet's INT8 post-training quantiser: it calibrates a
// float ONNX model on preprocessed frames (minmax, percentile or entropy
// ranges), decides which layers stay float by measuring the output error
// they cause, and writes a standard QDQ model for the chosen runtime profile
// (CPU, Arm, TensorRT), with the report of what it did. Graph plumbing is
// package onnx; running models is package onnx/ortrun.
package quant

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sort"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/edgedet/edgedet/onnx"
	"github.com/edgedet/edgedet/onnx/onnxpb"
	"github.com/edgedet/edgedet/onnx/ortrun"
)

// Options configure Quantize. DefaultOptions gives the defaults.
type Options struct {
	// Method chooses activation ranges; Percentile is used by MethodPercentile.
	Method     Method
	Percentile float64
	// Profile chooses the activation encoding.
	Profile Profile
	// PerChannel quantizes weights per output channel (else per tensor).
	PerChannel bool
	// ReduceRange quantizes weights to 7 bits ([-63, 63]) so that ONNX
	// Runtime's uint8×int8 x86 kernels cannot saturate their 16-bit pair
	// sums on CPUs without VNNI (255·63·2 < 2^15), keeping the fast path.
	ReduceRange bool
	// FloatWeights is how the weights of the layers kept float are stored
	// (default int8, with bias correction). ONNX Runtime turns them back into
	// float32 when it loads the model (see WeightStorage): a smaller file at
	// the speed of float weights. The sensitivity analysis measures the model
	// with its float layers stored this way, so MaxError covers it.
	FloatWeights WeightStorage
	// Elementwise also runs Sigmoid, Mul, Add, Concat, MaxPool and Resize
	// between quantized compute ops in INT8. Off, they stay float and ONNX
	// Runtime fuses them (SiLU) as in the FP32 model.
	Elementwise bool
	// SplitChannels cuts a convolution whose output channels have very
	// different ranges into groups of similar range, up to the depthwise
	// convolution after it, so that each group gets its own quantization
	// scale (exact in float; see split.go).
	SplitChannels bool
	// BiasCorrection folds the mean output shift caused by rounding a
	// quantized Conv's weights into its bias, from the mean of each input
	// channel on the calibration frames. Layers kept float with int8-stored
	// weights are always corrected.
	BiasCorrection bool
	// ExactSiLU (with Elementwise) quantizes a SiLU's input and output but
	// not the Sigmoid between them: a lookup-table activation (edgedet's
	// fused INT8 SiLU, TensorRT's fusion) then computes the exact SiLU of
	// the quantized input. ONNX Runtime without it runs the SiLU as float
	// QuickGelu between DequantizeLinear and QuantizeLinear; off, it runs
	// QLinearSigmoid then QLinearMul, rounding the Sigmoid to 8 bits.
	ExactSiLU bool
	// GPTQ rounds each quantized Conv's weights to minimise the error of
	// its output on the calibration frames rather than of the weights
	// (see gptq.go).
	GPTQ bool
	// Exclude names nodes or op types that stay float.
	Exclude []string
	// MaxError is the sensitivity budget: layers whose quantization hurts
	// most are kept float until the model's output error (mean relative
	// squared error per output feature, vs FP32 on the sensitivity frames)
	// is at most MaxError. A negative value quantizes every candidate.
	MaxError float64
	// SensitivityFrames is how many calibration inputs the sensitivity
	// analysis compares outputs on.
	SensitivityFrames int
	// InputShape is the model input's [1,3,H,W]; needed only when the model
	// declares dynamic dimensions.
	InputShape []int64
	// Threads is ONNX Runtime's intra-op thread count (0 = default).
	Threads int
	// Progress, if set, is called as each stage advances.
	Progress func(stage string, done, total int)
	// Log receives progress details; nil discards them.
	Log *slog.Logger
}

// DefaultOptions: ranges by output error (mse), CPU profile, per-channel
// weights (7-bit) rounded by GPTQ with bias correction, channel splitting,
// float element-wise ops (exact SiLU when they are INT8), 0.03 sensitivity
// budget on 8 frames.
func DefaultOptions() Options {
	return Options{
		Method:            MethodMSE,
		Percentile:        99.99,
		Profile:           ProfileCPU,
		PerChannel:        true,
		ReduceRange:       true,
		MaxError:          0.03,
		SensitivityFrames: 8,
		FloatWeights:      WeightsInt8,
		SplitChannels:     true,
		BiasCorrection:    true,
		GPTQ:              true,
		ExactSiLU:         true,
	}
}

// LayerReport says what happened to one quantizable layer.
type LayerReport struct {
	Node   string  `json:"node"`
	Op     string  `json:"op"`
	Damage float64 `json:"damage"` // output error with only this layer quantized (-1: not measured)
	Float  bool    `json:"float"`
	Reason string  `json:"reason,omitempty"`
	// Weights is how a float layer's weights are stored.
	Weights WeightStorage `json:"weights,omitempty"`
}

// Report describes a quantization run.
type Report struct {
	Method            Method        `json:"method"`
	Percentile        float64       `json:"percentile,omitempty"`
	Profile           Profile       `json:"profile"`
	PerChannel        bool          `json:"per_channel"`
	ReduceRange       bool          `json:"reduce_range"`
	Elementwise       bool          `json:"elementwise"`
	CalibrationFrames int           `json:"calibration_frames"`
	OpsetFrom         int64         `json:"opset_from"`
	Opset             int64         `json:"opset"`
	FoldedBatchNorms  int           `json:"folded_batchnorms"`
	Candidates        int           `json:"candidates"`
	Quantized         int           `json:"quantized"`
	ErrorAll          float64       `json:"error_all_quantized"`
	ErrorFinal        float64       `json:"error_final"`
	MaxError          float64       `json:"max_error"`
	FloatWeights      WeightStorage `json:"float_weights"`
	Layers            []LayerReport `json:"layers"`
	Head              []string      `json:"head"`
	// Split lists the convolutions whose channels were split (SplitChannels).
	Split          []SplitReport `json:"split,omitempty"`
	BiasCorrection bool          `json:"bias_correction"`
	GPTQ           bool          `json:"gptq"`
	ExactSiLU      bool          `json:"exact_silu"`
}

// FloatLayers lists the layers kept float, most damaging first.
func (r *Report) FloatLayers() []LayerReport {
	var out []LayerReport
	for _, l := range r.Layers {
		if l.Float {
			out = append(out, l)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Damage > out[j].Damage })
	return out
}

// ErrAlreadyQuantized is returned for a model that already has quantized ops.
var ErrAlreadyQuantized = errors.New("model is already quantized")

// Quantize returns a QDQ INT8 version of the FP32 model m (which it does not
// modify), calibrated on inputs. ONNX Runtime must be initialised.
func Quantize(ctx context.Context, m *onnxpb.ModelProto, inputs onnx.Inputs, opt Options) (*onnxpb.ModelProto, *Report, error) {
	if ops := onnx.QuantOps(m); len(ops) > 0 {
		return nil, nil, fmt.Errorf("%w (it has %s): quantize its FP32 original", ErrAlreadyQuantized, strings.Join(ops, ", "))
	}
	if inputs == nil || inputs.Len() == 0 {
		return nil, nil, errors.New("no calibration inputs")
	}
	if _, err := ParseMethod(string(opt.Method)); err != nil {
		return nil, nil, err
	}
	if _, err := ParseProfile(string(opt.Profile)); err != nil {
		return nil, nil, err
	}
	if opt.Method == MethodPercentile && (opt.Percentile <= 50 || opt.Percentile > 100) {
		return nil, nil, fmt.Errorf("percentile %g not in (50, 100]", opt.Percentile)
	}
	log := opt.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	progress := opt.Progress
	if progress == nil {
		progress = func(string, int, int) {}
	}
	rep := &Report{Method: opt.Method, Profile: opt.Profile, PerChannel: opt.PerChannel, ReduceRange: opt.ReduceRange, Elementwise: opt.Elementwise,
		CalibrationFrames: inputs.Len(), MaxError: opt.MaxError, FloatWeights: opt.FloatWeights,
		BiasCorrection: opt.BiasCorrection, GPTQ: opt.GPTQ, ExactSiLU: opt.ExactSiLU && opt.Elementwise}
	if rep.FloatWeights == "" {
		rep.FloatWeights = WeightsFloat32
	}
	if _, err := ParseWeightStorage(string(rep.FloatWeights)); err != nil {
		return nil, nil, err
	}
	if opt.Method == MethodPercentile {
		rep.Percentile = opt.Percentile
	}

	fp := proto.Clone(m).(*onnxpb.ModelProto)
	var err error
	if rep.FoldedBatchNorms, err = onnx.FoldBatchNorm(fp); err != nil {
		return nil, nil, fmt.Errorf("fold batch normalization: %w", err)
	}
	if rep.OpsetFrom, err = onnx.UpgradeOpset(fp); err != nil {
		return nil, nil, err
	}
	rep.Opset = max(rep.OpsetFrom, onnx.MinQDQOpset)
	nameNodes(fp)
	inName, inShape, err := modelInput(fp, opt.InputShape)
	if err != nil {
		return nil, nil, err
	}
	exclude := map[string]bool{}
	for _, e := range opt.Exclude {
		exclude[e] = true
	}
	if err := checkExclude(fp, opt.Exclude); err != nil {
		return nil, nil, err
	}
	if opt.SplitChannels {
		if rep.Split, err = splitChannels(ctx, fp, inName, inShape, inputs, opt.Threads, exclude); err != nil {
			return nil, nil, err
		}
	}
	p, err := analyse(fp, exclude)
	if err != nil {
		return nil, nil, err
	}
	p.exactSiLU = opt.ExactSiLU
	for _, e := range opt.Exclude {
		if p.byName[e] == nil && !opTypePresent(p, e) {
			return nil, nil, fmt.Errorf("exclude: %q names no node or op type of the model", e)
		}
	}
	for _, n := range p.order {
		if p.head[n.GetName()] {
			rep.Head = append(rep.Head, n.GetName())
		}
	}
	rep.Candidates = len(p.candidates)
	if len(p.candidates) == 0 {
		return nil, nil, errors.New("the model has no Conv, Gemm or MatMul with constant weights to quantize")
	}

	// Calibration: every activation a plan may quantize, exposed as outputs.
	tensors := p.tensorsToCalibrate()
	stats := make([]*TensorStats, len(tensors))
	for i := range stats {
		stats[i] = NewTensorStats()
	}
	r, err := ortrun.NewRunner(fp, inName, inShape, tensors, opt.Threads)
	if err != nil {
		return nil, nil, fmt.Errorf("calibration model: %w", err)
	}
	// Per-channel means of the Conv inputs, for bias correction.
	convInputs := map[string]bool{}
	for _, n := range p.candidates {
		if n.GetOpType() == "Conv" {
			convInputs[n.GetInput()[0]] = true
		}
	}
	means := channelMeans{}
	hessians := map[string][]namedHessian{} // by input tensor
	if opt.GPTQ {
		for _, n := range p.candidates {
			w := p.g.Initializer(n.GetInput()[1])
			if w == nil {
				continue
			}
			if geo, ok := geometryOf(n, w.GetDims()); ok && geo.patch() <= maxGPTQPatch {
				hessians[n.GetInput()[0]] = append(hessians[n.GetInput()[0]], namedHessian{n.GetName(), newHessian(geo)})
			}
		}
	}
	for i := 0; i < inputs.Len(); i++ {
		if err := ctx.Err(); err != nil {
			r.Close()
			return nil, nil, err
		}
		if err := inputs.Input(ctx, i, r.Input()); err != nil {
			r.Close()
			return nil, nil, fmt.Errorf("calibration input %d: %w", i, err)
		}
		err := r.Run(func(k int, name string, shape []int64, v []float32) error {
			if err := stats[k].Add(v); err != nil {
				return fmt.Errorf("tensor %q: %w", name, err)
			}
			if convInputs[name] {
				means.add(name, shape, v)
			}
			if i < hessianFrames {
				for _, h := range hessians[name] {
					h.h.add(shape, v)
				}
			}
			return nil
		})
		if err != nil {
			r.Close()
			return nil, nil, fmt.Errorf("calibration input %d: %w", i, err)
		}
		progress("calibrate", i+1, inputs.Len())
	}
	r.Close()
	ranges := map[string][2]float32{}
	for i, t := range tensors {
		var lo, hi float32
		if opt.Method == MethodMSE {
			lo, hi = stats[i].MSERange(opt.Profile, p.activationOf(t))
		} else {
			lo, hi = stats[i].Range(opt.Method, opt.Percentile)
		}
		ranges[t] = [2]float32{lo, hi}
	}
	inputMeans := means.means()
	var byNode map[string]*hessian
	if opt.GPTQ {
		byNode = map[string]*hessian{}
		for _, list := range hessians {
			for _, h := range list {
				byNode[h.node] = h.h
			}
		}
	}
	for _, n := range p.elementwise {
		if sharesInputParams[n.GetOpType()] {
			ranges[n.GetOutput()[0]] = ranges[n.GetInput()[0]]
		}
	}

	// plan quantizes every candidate but floatNodes and the excluded ones,
	// and returns the layers it also had to keep float (islands).
	plan := func(floatNodes map[string]bool) (*Plan, []string) {
		q := map[string]bool{}
		for _, n := range p.candidates {
			q[n.GetName()] = !floatNodes[n.GetName()] && !p.excluded[n.GetName()]
		}
		var islands []string
		for {
			if opt.Elementwise {
				p.propagateElementwise(q)
			}
			changed := p.closeFloatIslands(q)
			if len(changed) == 0 {
				break
			}
			islands = append(islands, changed...)
		}
		return &Plan{Quantize: q, Ranges: ranges, Profile: opt.Profile, PerChannel: opt.PerChannel, ReduceRange: opt.ReduceRange,
			FloatWeights: p.floatWeights(q, rep.FloatWeights), InputMeans: inputMeans, BiasCorrection: opt.BiasCorrection, Hessians: byNode}, islands
	}
	layers := make([]LayerReport, len(p.candidates))
	for i, n := range p.candidates {
		layers[i] = LayerReport{Node: n.GetName(), Op: n.GetOpType(), Damage: -1}
	}
	floatNodes := map[string]bool{}
	var s *sensitivity
	if opt.MaxError >= 0 {
		if s, err = newSensitivity(ctx, p, inName, inShape, inputs, opt); err != nil {
			return nil, nil, err
		}
		all, _ := plan(nil)
		rep.ErrorAll, err = s.errorOf(ctx, all)
		if err != nil {
			return nil, nil, err
		}
		log.Info("all layers quantized", "error", rep.ErrorAll, "budget", opt.MaxError)
		if rep.ErrorAll > opt.MaxError {
			for i, n := range p.candidates {
				if p.excluded[n.GetName()] {
					progress("sensitivity", i+1, len(p.candidates))
					continue
				}
				one := &Plan{Quantize: map[string]bool{n.GetName(): true}, Ranges: ranges, Profile: opt.Profile, PerChannel: opt.PerChannel, ReduceRange: opt.ReduceRange,
					InputMeans: inputMeans, BiasCorrection: opt.BiasCorrection, Hessians: byNode}
				e, err := s.errorOf(ctx, one)
				if err != nil {
					return nil, nil, fmt.Errorf("sensitivity of %q: %w", n.GetName(), err)
				}
				layers[i].Damage = e
				progress("sensitivity", i+1, len(p.candidates))
			}
			order := make([]int, len(layers))
			for i := range order {
				order[i] = i
			}
			sort.SliceStable(order, func(a, b int) bool { return layers[order[a]].Damage > layers[order[b]].Damage })
			floatTop := func(k int) map[string]bool {
				f := map[string]bool{}
				for _, i := range order[:k] {
					f[layers[i].Node] = true
				}
				return f
			}
			// Smallest k (most damaging layers kept float) meeting the budget;
			// the error falls roughly monotonically with k, so bisect.
			lo, hi := 0, len(order)
			for lo < hi {
				mid := (lo + hi) / 2
				if mid == 0 {
					lo = 1
					continue
				}
				pl, _ := plan(floatTop(mid))
				e, err := s.errorOf(ctx, pl)
				if err != nil {
					return nil, nil, err
				}
				progress("search", mid, len(order))
				log.Info("sensitivity search", "float_layers", mid, "error", e)
				if e <= opt.MaxError {
					hi = mid
				} else {
					lo = mid + 1
				}
			}
			floatNodes = floatTop(lo)
			for rank, i := range order[:lo] {
				if p.excluded[layers[i].Node] {
					continue
				}
				layers[i].Float = true
				layers[i].Reason = fmt.Sprintf("sensitivity: rank %d, output error %.4f when quantized alone", rank+1, layers[i].Damage)
			}
		}
	}
	final, islands := plan(floatNodes)
	island := map[string]bool{}
	for _, name := range islands {
		island[name] = true
	}
	for i, n := range p.candidates {
		name := n.GetName()
		if final.Quantize[name] {
			rep.Quantized++
			continue
		}
		layers[i].Float = true
		switch {
		case p.excluded[name]:
			layers[i].Reason = "excluded (--exclude)"
		case layers[i].Reason != "":
		case island[name]:
			layers[i].Reason = "kept float: it reads a float layer whose input is INT8 (ONNX Runtime would quantize it per tensor)"
		default:
			layers[i].Reason = "kept float"
		}
	}
	for i, n := range p.candidates {
		if layers[i].Float {
			layers[i].Weights = WeightsFloat32
			if w, ok := final.FloatWeights[n.GetName()]; ok {
				layers[i].Weights = w
			}
		}
	}
	rep.Layers = layers
	out, err := p.buildQDQ(final)
	if err != nil {
		return nil, nil, err
	}
	if s != nil {
		rep.ErrorFinal, err = s.errorOfModel(ctx, out)
		if err != nil {
			return nil, nil, fmt.Errorf("check quantized model: %w", err)
		}
	}
	return out, rep, nil
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

// channelMeans accumulates the mean of every channel (axis 1) of NCHW
// tensors, by tensor name.
type channelMeans map[string]*channelSum

type channelSum struct {
	sum []float64
	n   float64
}

func (c channelMeans) add(name string, shape []int64, v []float32) {
	if len(shape) != 4 || shape[1] <= 0 {
		return
	}
	ch := int(shape[1])
	plane := int(shape[2] * shape[3])
	if plane <= 0 || len(v) != int(shape[0])*ch*plane {
		return
	}
	s := c[name]
	if s == nil {
		s = &channelSum{sum: make([]float64, ch)}
		c[name] = s
	}
	if len(s.sum) != ch {
		return
	}
	for b := range int(shape[0]) {
		for k := range ch {
			var t float64
			for _, x := range v[(b*ch+k)*plane : (b*ch+k+1)*plane] {
				t += float64(x)
			}
			s.sum[k] += t
		}
		s.n += float64(plane)
	}
}

func (c channelMeans) means() map[string][]float32 {
	out := make(map[string][]float32, len(c))
	for name, s := range c {
		m := make([]float32, len(s.sum))
		for k, v := range s.sum {
			m[k] = float32(v / s.n)
		}
		out[name] = m
	}
	return out
}

// checkExclude rejects an --exclude entry that names no node or op type
// of m, before any work is done.
func checkExclude(m *onnxpb.ModelProto, exclude []string) error {
	known := map[string]bool{}
	for _, n := range m.GetGraph().GetNode() {
		known[n.GetName()], known[n.GetOpType()] = true, true
	}
	for _, e := range exclude {
		if !known[e] {
			return fmt.Errorf("exclude: %q names no node or op type of the model", e)
		}
	}
	return nil
}

func opTypePresent(p *prepared, op string) bool {
	for _, n := range p.order {
		if n.GetOpType() == op {
			return true
		}
	}
	return false
}

// nameNodes gives every unnamed node a unique name (op_index), so plans and
// reports can refer to nodes.
func nameNodes(m *onnxpb.ModelProto) {
	seen := map[string]bool{}
	for _, n := range m.GetGraph().GetNode() {
		seen[n.GetName()] = true
	}
	for i, n := range m.GetGraph().GetNode() {
		if n.GetName() == "" {
			name := fmt.Sprintf("%s_%d", n.GetOpType(), i)
			for seen[name] {
				name += "_"
			}
			seen[name] = true
			n.Name = proto.String(name)
		}
	}
}

// modelInput returns the single image input's name and concrete shape.
func modelInput(m *onnxpb.ModelProto, override []int64) (string, []int64, error) {
	in, err := onnx.ImageInput(m)
	if err != nil {
		return "", nil, err
	}
	tt := in.GetType().GetTensorType()
	var shape []int64
	dynamic := false
	for _, d := range tt.GetShape().GetDim() {
		v := d.GetDimValue()
		if v <= 0 {
			dynamic = true
		}
		shape = append(shape, v)
	}
	if len(shape) != 4 {
		return "", nil, fmt.Errorf("model input %q has shape %v; edgedet needs [1,3,H,W]", in.GetName(), shape)
	}
	if dynamic {
		if len(override) != 4 {
			return "", nil, fmt.Errorf("model input %q has dynamic shape %v: give the input size (input_width/input_height in the model description)", in.GetName(), shape)
		}
		for i, v := range shape {
			if v > 0 && v != override[i] {
				return "", nil, fmt.Errorf("model input %q has shape %v, which does not match %v", in.GetName(), shape, override)
			}
		}
		shape = slices.Clone(override)
	}
	if n := onnx.NumElements(&onnxpb.TensorProto{Dims: shape}); n < 0 || n > maxInputValues {
		return "", nil, fmt.Errorf("model input %q has shape %v: more than %d values (a 3x4096x4096 image)", in.GetName(), shape, maxInputValues)
	}
	return in.GetName(), shape, nil
}

// maxInputValues bounds the calibration input tensor a model's declared
// input shape may ask for: one 3x4096x4096 image.
const maxInputValues = 3 * 4096 * 4096

// sensitivity measures how far a quantized model's outputs are from FP32's
// on a few calibration inputs.
type sensitivity struct {
	p       *prepared
	inName  string
	inShape []int64
	inputs  [][]float32
	ref     [][][]float32 // [input][output] FP32 values
	layout  []outLayout
	threads int
	outs    []string
}

type outLayout struct {
	feat, rows   int
	channelMajor bool
}

func newSensitivity(ctx context.Context, p *prepared, inName string, inShape []int64, inputs onnx.Inputs, opt Options) (*sensitivity, error) {
	k := min(max(opt.SensitivityFrames, 1), inputs.Len())
	s := &sensitivity{p: p, inName: inName, inShape: inShape, threads: opt.Threads}
	for _, o := range p.model.GetGraph().GetOutput() {
		s.outs = append(s.outs, o.GetName())
	}
	r, err := ortrun.NewRunner(p.model, inName, inShape, s.outs, opt.Threads)
	if err != nil {
		return nil, fmt.Errorf("reference model: %w", err)
	}
	defer r.Close()
	n := 1
	for _, d := range inShape {
		n *= int(d)
	}
	// Spread the frames over the calibration set.
	for j := 0; j < k; j++ {
		idx := j * inputs.Len() / k
		buf := make([]float32, n)
		if err := inputs.Input(ctx, idx, buf); err != nil {
			return nil, fmt.Errorf("calibration input %d: %w", idx, err)
		}
		copy(r.Input(), buf)
		outs := make([][]float32, len(s.outs))
		if err := r.Run(func(i int, _ string, _ []int64, v []float32) error { outs[i] = slices.Clone(v); return nil }); err != nil {
			return nil, err
		}
		s.inputs = append(s.inputs, buf)
		s.ref = append(s.ref, outs)
	}
	for i := range s.outs {
		s.layout = append(s.layout, guessLayout(len(s.ref[0][i]), p, s.outs[i]))
	}
	return s, nil
}

// guessLayout treats an output as rows × features, the features being its
// smaller non-batch dimension (85 class/box values of 3549 YOLOX cells,
// 84 of 2100 YOLOv8 anchors, stored channel-major).
func guessLayout(n int, p *prepared, name string) outLayout {
	var dims []int64
	if vi := p.g.ValueInfo(name); vi != nil {
		for _, d := range vi.GetType().GetTensorType().GetShape().GetDim() {
			if v := d.GetDimValue(); v > 1 {
				dims = append(dims, v)
			}
		}
	}
	if len(dims) == 2 && int(dims[0]*dims[1]) == n {
		if dims[0] < dims[1] {
			return outLayout{feat: int(dims[0]), rows: int(dims[1]), channelMajor: true}
		}
		return outLayout{feat: int(dims[1]), rows: int(dims[0])}
	}
	return outLayout{feat: 1, rows: n}
}

func (s *sensitivity) errorOf(ctx context.Context, plan *Plan) (float64, error) {
	m, err := s.p.buildQDQ(plan)
	if err != nil {
		return 0, err
	}
	return s.errorOfModel(ctx, m)
}

// errorOfModel is the mean over output features of the squared error
// against FP32 divided by the feature's FP32 variance.
func (s *sensitivity) errorOfModel(ctx context.Context, m *onnxpb.ModelProto) (float64, error) {
	r, err := ortrun.NewRunner(m, s.inName, s.inShape, s.outs, s.threads)
	if err != nil {
		return 0, err
	}
	defer r.Close()
	type acc struct {
		se, sum, sq []float64
		n           float64
	}
	accs := make([]acc, len(s.outs))
	for i, l := range s.layout {
		accs[i] = acc{se: make([]float64, l.feat), sum: make([]float64, l.feat), sq: make([]float64, l.feat)}
	}
	for j, in := range s.inputs {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		copy(r.Input(), in)
		err := r.Run(func(i int, _ string, _ []int64, v []float32) error {
			ref := s.ref[j][i]
			if len(v) != len(ref) {
				return fmt.Errorf("output %q has %d values, FP32 has %d", s.outs[i], len(v), len(ref))
			}
			l, a := s.layout[i], &accs[i]
			add := func(row int) {
				for f := 0; f < l.feat; f++ {
					k := row*l.feat + f
					if l.channelMajor {
						k = f*l.rows + row
					}
					d := float64(v[k] - ref[k])
					a.se[f] += d * d
					a.sum[f] += float64(ref[k])
					a.sq[f] += float64(ref[k]) * float64(ref[k])
				}
				a.n++
			}
			for row := 0; row < l.rows; row++ {
				add(row)
			}
			return nil
		})
		if err != nil {
			return 0, err
		}
	}
	var total float64
	var count int
	for _, a := range accs {
		if a.n == 0 {
			continue
		}
		for f := range a.se {
			mean := a.sum[f] / a.n
			variance := a.sq[f]/a.n - mean*mean
			if variance <= 1e-12 {
				continue
			}
			total += a.se[f] / a.n / variance
			count++
		}
	}
	if count == 0 {
		return 0, nil
	}
	e := total / float64(count)
	if math.IsNaN(e) {
		return 0, errors.New("output error is NaN")
	}
	return e, nil
}
