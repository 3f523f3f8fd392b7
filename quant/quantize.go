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
	"sort"
	"strings"

	"github.com/edgedet/edgedet/internal/latency"
	"github.com/edgedet/edgedet/onnx"
	"github.com/edgedet/edgedet/onnx/onnxpb"
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
	// scale (exact in float; see split.go). Off by default: the groups run
	// as separate small convolutions, and on yolox_nano the split model was
	// slower than FP32 (1.2-1.3x) for a tenth of a point of mAP in the
	// default mode; it pays only for accuracy-first, all-INT8 models.
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
	// EntryFloat keeps the network's first layers float, as many as
	// minimise the output error (see entry.go): one float region and one
	// crossing into INT8, at the start, where a detector's layers are the
	// most sensitive (few channels of very different ranges) and where
	// running them float costs least.
	EntryFloat bool
	// MaxError is the sensitivity budget: after the entry region, the
	// layers whose quantization hurts most are kept float until the
	// model's output error (mean relative squared error per output
	// feature, vs FP32 on the sensitivity frames) is at most MaxError. It
	// trades speed for accuracy: each such layer adds a float island with
	// a crossing on each side. Negative: no budget search.
	MaxError float64
	// Metric, when set, is the output error the entry region and the
	// budget search minimise, in place of the mean relative squared error
	// per output feature (which weighs a class score no frame ever raises
	// as much as the boxes). It must call the FP32 outputs identical to
	// themselves, else the built-in error is used (with a warning).
	Metric Metric
	// Timer, when set, times models on this machine: the entry region is
	// then the fastest of the shortest prefixes whose error is near the
	// best (see pickEntry), not merely the shortest. An INT8 layer is not
	// always faster than a float one: ONNX Runtime's QLinearConv over a
	// 3-channel image took three times as long as the float Conv in
	// yolo-fastestv2.
	Timer latency.Open
	// WeightsOnlyIfSlower (with Timer): when the quantized model computes
	// not clearly faster than the given FP32 model on this machine (at more
	// than MaxINT8ComputeRatio of its time), Quantize returns the weights-only
	// model instead: every layer computes in float, its weights stored as
	// int8 (see WeightStorage) — FP32's speed at INT8's file size. ONNX
	// Runtime's INT8 kernels do not win everywhere: on an AVX-512 CPU its
	// QLinearConv was two to three times slower than the blocked float Conv
	// on yolo-fastestv2's narrow (24-channel) layers.
	WeightsOnlyIfSlower bool
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
// weights (7-bit) rounded by GPTQ with bias correction, INT8 element-wise
// ops with exact SiLU, the entry region float and no further budget; the
// sensitivity measure compares 16 frames.
func DefaultOptions() Options {
	return Options{
		Method:            MethodMSE,
		Percentile:        99.99,
		Profile:           ProfileCPU,
		PerChannel:        true,
		ReduceRange:       true,
		Elementwise:       true,
		EntryFloat:        true,
		MaxError:          -1,
		SensitivityFrames: 16,
		FloatWeights:      WeightsInt8,
		SplitChannels:     false,
		BiasCorrection:    true,
		GPTQ:              true,
		ExactSiLU:         true,
		// Only with a Timer.
		WeightsOnlyIfSlower: true,
	}
}

// EntryTiming is one entry region timed by Options.Timer.
type EntryTiming struct {
	Layers int `json:"layers"` // the entry region's length
	// Ratio is its median inference time over the reference's (the first
	// timing's), measured in alternating runs.
	Ratio float64 `json:"ratio"`
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
	Method            Method  `json:"method"`
	Percentile        float64 `json:"percentile,omitempty"`
	Profile           Profile `json:"profile"`
	PerChannel        bool    `json:"per_channel"`
	ReduceRange       bool    `json:"reduce_range"`
	Elementwise       bool    `json:"elementwise"`
	CalibrationFrames int     `json:"calibration_frames"`
	OpsetFrom         int64   `json:"opset_from"`
	Opset             int64   `json:"opset"`
	FoldedBatchNorms  int     `json:"folded_batchnorms"`
	Candidates        int     `json:"candidates"`
	Quantized         int     `json:"quantized"`
	ErrorAll          float64 `json:"error_all_quantized"`
	// CustomMetric: the errors are Options.Metric's, not the relative
	// squared error.
	CustomMetric bool `json:"custom_metric"`
	// EntryErrors[k] is the output error with the first k layers float
	// (EntryFloat); EntryLayers is the k chosen.
	EntryErrors []float64 `json:"entry_errors,omitempty"`
	EntryLayers int       `json:"entry_layers"`
	// EntryTimings are the entry regions timed on this machine
	// (Options.Timer), the first being the reference.
	EntryTimings []EntryTiming `json:"entry_timings,omitempty"`
	// ComputeRatio is the INT8-compute model's inference time over
	// FP32's, timed with Options.Timer (0: not timed). WeightsOnly says the
	// result is the weights-only model because that ratio was at least 1
	// (Options.WeightsOnlyIfSlower).
	ComputeRatio float64       `json:"compute_ratio,omitempty"`
	WeightsOnly  bool          `json:"weights_only,omitempty"`
	ErrorFinal   float64       `json:"error_final"`
	MaxError     float64       `json:"max_error"`
	FloatWeights WeightStorage `json:"float_weights"`
	Layers       []LayerReport `json:"layers"`
	Head         []string      `json:"head"`
	// Split lists the convolutions whose channels were split (SplitChannels).
	Split          []SplitReport `json:"split,omitempty"`
	BiasCorrection bool          `json:"bias_correction"`
	GPTQ           bool          `json:"gptq"`
	ExactSiLU      bool          `json:"exact_silu"`
	// Latency is the quantized model's inference time against the FP32
	// model's on the device that quantized it; the caller measures it
	// (Quantize does not run the detector), nil when it was not measured.
	Latency *LatencyReport `json:"latency,omitempty"`
	// Accuracy is the quantized model's COCO mAP against the FP32
	// model's on a labelled set; the caller measures it (Quantize does not
	// run the detector), nil when it was not measured.
	Accuracy *AccuracyReport `json:"accuracy,omitempty"`
	// MetricBlind: with Options.Metric, no float prefix of the entry
	// curve brought the error below entryImplausible — the metric saw no
	// agreement at all, which a misread output format causes (see
	// entryImplausible).
	MetricBlind bool `json:"metric_blind,omitempty"`
}

// AccuracyReport is the FP32 and the quantized model's COCO mAP on the
// same labelled images.
type AccuracyReport struct {
	Data      string  `json:"data"`
	Images    int     `json:"images"`
	FP32MAP   float64 `json:"fp32_map"` // mAP@[.50:.95]
	INT8MAP   float64 `json:"int8_map"`
	FP32MAP50 float64 `json:"fp32_map50"` // mAP@.50
	INT8MAP50 float64 `json:"int8_map50"`
	// Interval is the 95 % interval of INT8MAP − FP32MAP over bootstrap
	// resamples of the images: what these images can tell of the loss.
	Interval [2]float64 `json:"interval"`
}

// LatencyReport is a paired measurement of FP32 and INT8 inference.
type LatencyReport struct {
	FP32Ms float64 `json:"fp32_ms"` // median inference, FP32 model
	INT8Ms float64 `json:"int8_ms"` // median inference, quantized model
	// Ratio is INT8Ms / FP32Ms: below 1 the quantized model is faster.
	Ratio   float64 `json:"ratio"`
	Threads int     `json:"threads"` // ONNX Runtime intra-op threads (0: its default)
	// FusedActivations counts the INT8 activations the detector ran as
	// table lookups.
	FusedActivations int `json:"fused_activations"`
	// CPU names the case that applies (e.g. "x86-64 with VNNI") and
	// Expected the ratio the default quantization reaches there (0: no
	// reference figure for this kind of CPU).
	CPU      string  `json:"cpu"`
	Expected float64 `json:"expected_ratio,omitempty"`
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
	z, err := newQuantizer(m, inputs, opt)
	if err != nil {
		return nil, nil, err
	}
	if err := z.prepare(ctx, m); err != nil {
		return nil, nil, err
	}
	if err := z.calibrate(ctx); err != nil {
		return nil, nil, err
	}
	layers := make([]LayerReport, len(z.p.candidates))
	for i, n := range z.p.candidates {
		layers[i] = LayerReport{Node: n.GetName(), Op: n.GetOpType(), Damage: -1}
	}
	floatNodes, s, err := z.chooseFloat(ctx, layers)
	if err != nil {
		return nil, nil, err
	}
	final, islands := z.plan(floatNodes)
	z.reportLayers(layers, final, islands)
	out, err := z.p.buildQDQ(final)
	if err != nil {
		return nil, nil, err
	}
	if z.opt.Timer != nil && z.opt.WeightsOnlyIfSlower {
		if out, err = z.weightsOnlyIfSlower(ctx, out, layers); err != nil {
			return nil, nil, err
		}
	}
	if s != nil {
		z.rep.ErrorFinal, err = s.errorOfModel(ctx, out)
		if err != nil {
			return nil, nil, fmt.Errorf("check quantized model: %w", err)
		}
	}
	return out, z.rep, nil
}

// quantizer carries one Quantize call from stage to stage: newQuantizer
// checks the options, prepare readies the model, calibrate measures the
// activations and chooseFloat picks the layers that stay float.
type quantizer struct {
	opt      Options
	inputs   onnx.Inputs
	log      *slog.Logger
	progress func(stage string, done, total int)
	rep      *Report

	// src is the model as given: the FP32 model the user would otherwise
	// run, and the reference the quantized model is timed against.
	src *onnxpb.ModelProto

	// Set by prepare.
	fp      *onnxpb.ModelProto
	inName  string
	inShape []int64
	p       *prepared

	// Set by calibrate.
	ranges     map[string][2]float32
	inputMeans map[string][]float32
	byNode     map[string]*hessian // GPTQ Hessians by node; nil without GPTQ

	// Set by chooseFloat: the entry region, whose layers keep float32
	// weights whatever Options.FloatWeights says (they are float for
	// accuracy, and the first layers have few weights).
	entry map[string]bool
}

// newQuantizer checks m and opt and starts the report.
func newQuantizer(m *onnxpb.ModelProto, inputs onnx.Inputs, opt Options) (*quantizer, error) {
	if ops := onnx.QuantOps(m); len(ops) > 0 {
		return nil, fmt.Errorf("%w (it has %s): quantize its FP32 original", ErrAlreadyQuantized, strings.Join(ops, ", "))
	}
	if inputs == nil || inputs.Len() == 0 {
		return nil, errors.New("no calibration inputs")
	}
	if _, err := ParseMethod(string(opt.Method)); err != nil {
		return nil, err
	}
	if _, err := ParseProfile(string(opt.Profile)); err != nil {
		return nil, err
	}
	if opt.Method == MethodPercentile && (opt.Percentile <= 50 || opt.Percentile > 100) {
		return nil, fmt.Errorf("percentile %g not in (50, 100]", opt.Percentile)
	}
	z := &quantizer{opt: opt, inputs: inputs, log: opt.Log, progress: opt.Progress, src: m}
	if z.log == nil {
		z.log = slog.New(slog.DiscardHandler)
	}
	if z.progress == nil {
		z.progress = func(string, int, int) {}
	}
	rep := &Report{Method: opt.Method, Profile: opt.Profile, PerChannel: opt.PerChannel, ReduceRange: opt.ReduceRange, Elementwise: opt.Elementwise,
		CalibrationFrames: inputs.Len(), MaxError: opt.MaxError, FloatWeights: opt.FloatWeights,
		BiasCorrection: opt.BiasCorrection, GPTQ: opt.GPTQ, ExactSiLU: opt.ExactSiLU && opt.Elementwise}
	if rep.FloatWeights == "" {
		rep.FloatWeights = WeightsFloat32
	}
	if _, err := ParseWeightStorage(string(rep.FloatWeights)); err != nil {
		return nil, err
	}
	if opt.Method == MethodPercentile {
		rep.Percentile = opt.Percentile
	}
	z.rep = rep
	return z, nil
}

// plan quantizes every candidate but floatNodes and the excluded ones,
// and returns the layers it also had to keep float (islands).
func (z *quantizer) plan(floatNodes map[string]bool) (*Plan, []string) {
	p, opt := z.p, z.opt
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
	fw := p.floatWeights(q, z.rep.FloatWeights)
	for name := range z.entry {
		delete(fw, name)
	}
	return &Plan{Quantize: q, Ranges: z.ranges, Profile: opt.Profile, PerChannel: opt.PerChannel, ReduceRange: opt.ReduceRange,
		FloatWeights: fw, InputMeans: z.inputMeans, BiasCorrection: opt.BiasCorrection, Hessians: z.byNode}, islands
}

// MaxINT8ComputeRatio is the largest INT8/FP32 compute-time ratio at which
// the quantized model is kept: it must be faster by more than the few
// percent a same-run ratio moves on a shared machine (the weights-only
// yolo-fastestv2, whose float graph is FP32's, timed 0.97x to 1.02x of it
// over five rounds), or its accuracy loss buys nothing.
const MaxINT8ComputeRatio = 0.95

// weightsOnlyIfSlower times the quantized model out against the model as
// given (what the user would otherwise run; the prepared copy differs: the
// folded, opset-upgraded yolo-fastestv2 timed 1.05x its file in one run)
// with Options.Timer and returns out if it is clearly faster
// (MaxINT8ComputeRatio), else the weights-only model (every layer float,
// weights stored as int8), with the report's layers redone.
func (z *quantizer) weightsOnlyIfSlower(ctx context.Context, out *onnxpb.ModelProto, layers []LayerReport) (*onnxpb.ModelProto, error) {
	tFP, tQ, err := latency.PairedModels(ctx, z.opt.Timer, z.src, out, "FP32 model", "quantized model")
	if err != nil {
		return nil, fmt.Errorf("time the quantized model: %w", err)
	}
	ratio := float64(tQ) / float64(max(tFP, 1))
	z.rep.ComputeRatio = ratio
	if ratio <= MaxINT8ComputeRatio {
		return out, nil
	}
	z.log.Warn("INT8 compute is not clearly faster than FP32 on this CPU; writing the weights-only model", "ratio", ratio, "must_be_at_most", MaxINT8ComputeRatio)
	all := map[string]bool{}
	for _, n := range z.p.candidates {
		all[n.GetName()] = true
	}
	plan, _ := z.plan(all)
	plan.FloatWeights = z.p.floatWeights(plan.Quantize, WeightsInt8)
	for i := range layers {
		layers[i].Float, layers[i].Weights = false, ""
		if !z.p.excluded[layers[i].Node] {
			layers[i].Reason = fmt.Sprintf("weights only: the INT8 model computed at %.2fx FP32's time on this CPU", ratio)
		}
	}
	z.rep.Quantized, z.rep.WeightsOnly, z.rep.FloatWeights = 0, true, WeightsInt8
	z.reportLayers(layers, plan, nil)
	return z.p.buildQDQ(plan)
}

// reportLayers completes layers with the final plan: why each float layer
// stays float and how its weights are stored. It counts the quantized ones.
func (z *quantizer) reportLayers(layers []LayerReport, final *Plan, islands []string) {
	p, rep := z.p, z.rep
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
}
