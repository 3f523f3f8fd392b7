package quant

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/edgedet/edgedet/onnx"
	"github.com/edgedet/edgedet/onnx/onnxpb"
)

// TestQuantizeBudgetWithoutEntry: a budget alone (no entry region) still
// measures the model: the all-INT8 and final errors are reported, and a
// budget of 0 on a one-layer model keeps that layer float (the search
// stops at k = 1, not past the one layer; its int8-stored weights leave
// a smaller error).
func TestQuantizeBudgetWithoutEntry(t *testing.T) {
	qtInitORT(t)
	opt := DefaultOptions()
	opt.EntryFloat, opt.MaxError, opt.SensitivityFrames = false, 0, 2
	_, rep, err := Quantize(context.Background(), convChain(rand.New(rand.NewPCG(97, 98)), 1), randomInputs{n: 2, seed: 3}, opt)
	if err != nil {
		t.Fatal(err)
	}
	if rep.ErrorAll <= 0 {
		t.Errorf("all-INT8 error %g, want it measured (> 0)", rep.ErrorAll)
	}
	if len(rep.Layers) != 1 || !rep.Layers[0].Float || !strings.HasPrefix(rep.Layers[0].Reason, "sensitivity: rank 1") || rep.ErrorFinal >= rep.ErrorAll {
		t.Errorf("layers %+v, final error %g; want conv0 float by sensitivity, below the all-INT8 error", rep.Layers, rep.ErrorFinal)
	}
}

// cancellableBudgetSearch is what the cancellation tests of the budget
// search start from: a calibrated quantizer of a 4-Conv chain with a budget
// (MaxError 0), its sensitivity measure built with ctx, which cancel
// cancels, and the layers' reports with no damage measured (-1).
func cancellableBudgetSearch(t *testing.T) (*quantizer, *sensitivity, []LayerReport, context.Context, context.CancelFunc) {
	t.Helper()
	z := calibratedQuantizer(t, convChain(rand.New(rand.NewPCG(99, 100)), 4), randomInputs{n: 4, seed: 5})
	z.opt.MaxError = 0
	ctx, cancel := context.WithCancel(context.Background())
	s, err := newSensitivity(ctx, z.p, z.inName, z.inShape, z.inputs, z.opt)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	layers := make([]LayerReport, len(z.p.candidates))
	for i, n := range z.p.candidates {
		layers[i] = LayerReport{Node: n.GetName(), Damage: -1}
	}
	return z, s, layers, ctx, cancel
}

// TestBudgetSearchCancelled: a search cancelled after the damage ranking
// returns the context's error, with no further step measured.
func TestBudgetSearchCancelled(t *testing.T) {
	z, s, layers, ctx, cancel := cancellableBudgetSearch(t)
	defer cancel()
	var search []int
	z.progress = func(stage string, done, total int) {
		switch {
		case stage == "sensitivity" && done == total:
			cancel()
		case stage == "search":
			search = append(search, done)
		}
	}
	f, err := z.keepMostDamagingFloat(ctx, s, layers, map[string]bool{})
	if !errors.Is(err, context.Canceled) || f != nil {
		t.Errorf("float %v, err %v; want context.Canceled", f, err)
	}
	if len(search) != 1 || search[0] != 3 {
		t.Errorf("search progress %v, want only the closing 3 of 3", search)
	}
	for _, l := range layers {
		if l.Float {
			t.Errorf("%s kept float by a cancelled search", l.Node)
		}
	}
}

// recordingInputs are randomInputs that record which indices were read.
type recordingInputs struct {
	randomInputs
	read *[]int
}

func (r recordingInputs) Input(ctx context.Context, i int, dst []float32) error {
	*r.read = append(*r.read, i)
	return r.randomInputs.Input(ctx, i, dst)
}

// TestSensitivityFramesSpread: the sensitivity frames are spread evenly
// over the calibration set, as many as asked (at most all of them).
func TestSensitivityFramesSpread(t *testing.T) {
	z := calibratedQuantizer(t, convChain(rand.New(rand.NewPCG(101, 102)), 2), randomInputs{n: 4, seed: 5})
	for _, c := range []struct {
		frames int
		want   []int
	}{{2, []int{0, 3}}, {3, []int{0, 2, 4}}, {0, []int{0}}, {9, []int{0, 1, 2, 3, 4, 5}}} {
		var read []int
		in := recordingInputs{randomInputs{n: 6, seed: 7}, &read}
		z.opt.SensitivityFrames = c.frames
		s, err := newSensitivity(context.Background(), z.p, z.inName, z.inShape, in, z.opt)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(read, c.want) || len(s.inputs) != len(c.want) || len(s.ref) != len(c.want) {
			t.Errorf("%d frames: read %v, kept %d inputs and %d outputs; want %v", c.frames, read, len(s.inputs), len(s.ref), c.want)
		}
	}
}

// TestSensitivityCustomMetric: with Options.Metric the error of a plan is
// the metric of the quantized model's outputs on the sensitivity frames
// against FP32's (same frames, same shapes); a failing metric and a
// cancelled context are errors.
func TestSensitivityCustomMetric(t *testing.T) {
	z := calibratedQuantizer(t, convChain(rand.New(rand.NewPCG(103, 104)), 2), randomInputs{n: 4, seed: 5})
	var calls int
	var lastRef, lastGot []Outputs
	fail := false
	z.opt.SensitivityFrames = 3
	z.opt.Metric = func(ref, got []Outputs) (float64, error) {
		calls++
		lastRef, lastGot = ref, got
		if fail {
			return 0, errors.New("no detections")
		}
		var d float64
		for j := range ref {
			for i := range ref[j].Values {
				for k, v := range ref[j].Values[i] {
					d += math.Abs(float64(v - got[j].Values[i][k]))
				}
			}
		}
		return d, nil
	}
	ctx := context.Background()
	s, err := newSensitivity(ctx, z.p, z.inName, z.inShape, z.inputs, z.opt)
	if err != nil {
		t.Fatal(err)
	}
	if s.metric == nil || calls != 1 {
		t.Fatalf("metric kept %t after %d calls, want kept after its self-check", s.metric != nil, calls)
	}
	all, _ := z.plan(nil)
	e, err := s.errorOf(ctx, all)
	if err != nil {
		t.Fatal(err)
	}
	if calls != 2 || len(lastRef) != 3 || len(lastGot) != 3 || e <= 0 {
		t.Fatalf("error %g after %d calls on %d/%d frames, want a positive error on 3 frames", e, calls, len(lastRef), len(lastGot))
	}
	for j := range lastGot {
		if !slices.Equal(lastGot[j].Shapes[0], []int64{1, 2, 4, 4}) || len(lastGot[j].Values[0]) != 32 || slices.Equal(lastGot[j].Values[0], lastRef[j].Values[0]) {
			t.Errorf("frame %d: got shape %v, %d values (equal to FP32: %t)", j, lastGot[j].Shapes[0], len(lastGot[j].Values[0]), slices.Equal(lastGot[j].Values[0], lastRef[j].Values[0]))
		}
	}
	fail = true
	if _, err := s.errorOf(ctx, all); err == nil || !strings.Contains(err.Error(), "output metric: no detections") {
		t.Errorf("failing metric: err %v", err)
	}
	fail = false
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.errorOf(cancelled, all); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: err %v", err)
	}
}

// TestQuantizeOptionErrors: a model with nothing to quantize and options
// out of their domain are refused before any work, naming the value.
func TestQuantizeOptionErrors(t *testing.T) {
	qtInitORT(t)
	ctx := context.Background()
	in := randomInputs{n: 2, seed: 1}
	m := convChain(rand.New(rand.NewPCG(105, 106)), 2)
	relus := qtModel([]*onnxpb.NodeProto{qtNode("relu", "Relu", []string{"x"}, []string{"y"})}, nil, qtValueInfo("x", 1, 2, 4, 4), qtValueInfo("y", 1, 2, 4, 4))
	for _, c := range []struct {
		name string
		m    *onnxpb.ModelProto
		edit func(*Options)
		want string
	}{
		{"nothing to quantize", relus, func(*Options) {}, "the model has no Conv, Gemm or MatMul with constant weights to quantize"},
		{"bad weight storage", m, func(o *Options) { o.FloatWeights = "int4" }, `weight storage "int4" is not one of int8, fp16, fp32`},
		{"exclude unknown op", m, func(o *Options) { o.Exclude = []string{"Softmax"} }, `exclude: "Softmax" names no node or op type of the model`},
	} {
		opt := DefaultOptions()
		c.edit(&opt)
		out, rep, err := Quantize(ctx, c.m, in, opt)
		if err == nil || !strings.Contains(err.Error(), c.want) || out != nil || rep != nil {
			t.Errorf("%s: err %v, want %q and no model or report", c.name, err, c.want)
		}
	}
}

// TestQuantizeReportDefaults: the report records float32 storage when
// none is given, the percentile only for the percentile method, and why
// each float layer is float (conv2 reads the excluded conv1, whose input
// is INT8: an island).
func TestQuantizeReportDefaults(t *testing.T) {
	qtInitORT(t)
	m := convChain(rand.New(rand.NewPCG(107, 108)), 3)
	opt := DefaultOptions()
	opt.FloatWeights, opt.EntryFloat, opt.MaxError = "", false, -1
	opt.Method, opt.Percentile = MethodPercentile, 99.9
	opt.Exclude = []string{"conv1"}
	_, rep, err := Quantize(context.Background(), m, randomInputs{n: 2, seed: 1}, opt)
	if err != nil {
		t.Fatal(err)
	}
	if rep.FloatWeights != WeightsFloat32 || rep.Percentile != 99.9 || rep.Quantized != 1 {
		t.Errorf("report storage %q, percentile %g, %d quantized; want fp32, 99.9, 1", rep.FloatWeights, rep.Percentile, rep.Quantized)
	}
	if l := rep.Layers[1]; !l.Float || l.Reason != "excluded (--exclude)" || l.Weights != WeightsFloat32 {
		t.Errorf("conv1: %+v, want float, excluded, fp32 weights", l)
	}
	if l := rep.Layers[0]; l.Float {
		t.Errorf("conv0: %+v, want quantized", l)
	}
	if l := rep.Layers[2]; !l.Float || !strings.HasPrefix(l.Reason, "kept float: it reads a float layer whose input is INT8") {
		t.Errorf("conv2: %+v, want float as an island", l)
	}
	opt.Method = MethodMinMax
	_, rep, err = Quantize(context.Background(), m, randomInputs{n: 2, seed: 1}, opt)
	if err != nil || rep.Percentile != 0 {
		t.Errorf("minmax: percentile %g, err %v; want none", rep.Percentile, err)
	}
}

// TestQuantizeMatMulOfActivations: a MatMul of two activations is a
// candidate; quantized, both its inputs come through Q/DQ (it has no
// weight to quantize) and the model stays close to FP32.
func TestQuantizeMatMulOfActivations(t *testing.T) {
	qtInitORT(t)
	rng := rand.New(rand.NewPCG(109, 110))
	m := qtModel([]*onnxpb.NodeProto{
		qtNode("conv", "Conv", []string{"x", "W"}, []string{"t"}),
		qtNode("mm", "MatMul", []string{"t", "x"}, []string{"y"}),
	}, []*onnxpb.TensorProto{onnx.Float32Tensor("W", []int64{2, 2, 1, 1}, convWeights(rng, 2, 2, 1))}, qtValueInfo("x", 1, 2, 4, 4), qtValueInfo("y", 1, 2, 4, 4))
	opt := DefaultOptions()
	opt.EntryFloat, opt.MaxError = false, -1
	q, rep, err := Quantize(context.Background(), m, randomInputs{n: 4, seed: 2}, opt)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Candidates != 2 || rep.Quantized != 2 {
		t.Fatalf("%d candidates, %d quantized; want both", rep.Candidates, rep.Quantized)
	}
	g := onnx.NewGraph(q)
	mm := qtNodeByName(q, "mm")
	for i, in := range mm.GetInput() {
		if producerOp(g, in) != "DequantizeLinear" {
			t.Errorf("MatMul input %d %q comes from %q, want DequantizeLinear", i, in, producerOp(g, in))
		}
	}
	x := make([]float32, 32)
	if err := (randomInputs{n: 4, seed: 2}).Input(context.Background(), 1, x); err != nil {
		t.Fatal(err)
	}
	if e := relErr(runModel(t, q, x, false), runModel(t, m, x, false)); e > 0.05 {
		t.Errorf("relative error %.3g, want ≤ 0.05", e)
	}
}

// TestMSERangeConstant: a tensor of one positive value has the range
// [0, value] (containing 0), not the empty range.
func TestMSERangeConstant(t *testing.T) {
	s := NewTensorStats()
	addValues(t, s, 3, 3, 3, 3)
	if lo, hi := s.MSERange(ProfileCPU, nil); lo != 0 || hi < 2.9 || hi > 3 {
		t.Errorf("MSERange of 3s = [%g, %g], want [0, ~3]", lo, hi)
	}
}

// TestQuantizeFinalCheckCancelled: the quantized model's final check
// against FP32 is part of Quantize: cancelled there, Quantize fails.
func TestQuantizeFinalCheckCancelled(t *testing.T) {
	qtInitORT(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	calls := 0
	opt := DefaultOptions()
	opt.EntryFloat, opt.MaxError, opt.SensitivityFrames = false, 1e9, 2
	opt.Metric = func(ref, got []Outputs) (float64, error) {
		if calls++; calls == 2 { // the all-INT8 error: the final check comes next
			cancel()
		}
		return 0, nil
	}
	out, rep, err := Quantize(ctx, convChain(rand.New(rand.NewPCG(113, 114)), 2), randomInputs{n: 2, seed: 3}, opt)
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "check quantized model") || out != nil || rep != nil {
		t.Errorf("err %v after %d metric calls, want the final check cancelled", err, calls)
	}
}

// TestHistogramPoints: each occupied bin becomes subSamples points spread
// evenly inside it, weighted by its count over subSamples, negatives first.
func TestHistogramPoints(t *testing.T) {
	s := NewTensorStats()
	addValues(t, s, 8, -8, 8)
	pts := s.points()
	if len(pts) != 2*subSamples {
		t.Fatalf("%d points, want %d", len(pts), 2*subSamples)
	}
	top := float64(histBins - 1) // 8 is the peak: the last bin
	for k, p := range pts {
		sign, w := -1.0, 1.0/subSamples
		if k >= subSamples {
			sign, w = 1, 2.0/subSamples
		}
		want := sign * (top + (float64(k%subSamples)+0.5)/subSamples) * s.width
		if math.Abs(p.x-want) > 1e-9 || p.w != w {
			t.Errorf("point %d = %+v, want x %g weight %g", k, p, want, w)
		}
	}
}

// TestDefaultOptions: the documented defaults.
func TestDefaultOptions(t *testing.T) {
	o := DefaultOptions()
	if o.SensitivityFrames != 16 || o.MaxError != -1 || !o.EntryFloat || o.Method != MethodMSE || o.Profile != ProfileCPU {
		t.Errorf("defaults %+v", o)
	}
}

// TestErrorOfModelChannelMajor: on a channel-major output ([1, F, N], F <
// N) the error is the mean over the F features of the squared error over
// the feature's variance: a model adding d_f to feature f scores
// mean(d_f² / var_f).
func TestErrorOfModelChannelMajor(t *testing.T) {
	qtInitORT(t)
	shape := &onnxpb.TensorProto{Name: proto.String("shape"), DataType: proto.Int32(int32(onnxpb.TensorProto_INT64)), Dims: []int64{3}, Int64Data: []int64{1, 2, 16}}
	build := func(shift []float32) *onnxpb.ModelProto {
		nodes := []*onnxpb.NodeProto{
			qtNode("conv", "Conv", []string{"x", "W"}, []string{"c"}),
			qtNode("reshape", "Reshape", []string{"c", "shape"}, []string{"r"}),
			qtNode("add", "Add", []string{"r", "D"}, []string{"y"}),
		}
		return qtModel(nodes, []*onnxpb.TensorProto{
			onnx.Float32Tensor("W", []int64{2, 2, 1, 1}, []float32{3, 0.5, 0.2, 0.1}), shape,
			onnx.Float32Tensor("D", []int64{1, 2, 1}, shift),
		}, qtValueInfo("x", 1, 2, 4, 4), qtValueInfo("y", 1, 2, 16))
	}
	m := build([]float32{0, 0})
	p := analyseOK(t, m)
	ctx := context.Background()
	in := randomInputs{n: 3, seed: 115}
	s, err := newSensitivity(ctx, p, "x", []int64{1, 2, 4, 4}, in, Options{SensitivityFrames: 3})
	if err != nil {
		t.Fatal(err)
	}
	if s.layout[0] != (outLayout{feat: 2, rows: 16, channelMajor: true}) {
		t.Fatalf("layout %+v, want 2 channel-major features of 16", s.layout[0])
	}
	var want float64
	d := []float32{0.5, 0.25}
	for f := range 2 {
		var sum, sq, n float64
		for j := range s.ref {
			for _, v := range s.ref[j][0][f*16 : (f+1)*16] {
				sum += float64(v)
				sq += float64(v) * float64(v)
				n++
			}
		}
		mean := sum / n
		want += float64(d[f]) * float64(d[f]) / (sq/n - mean*mean) / 2
	}
	got, err := s.errorOfModel(ctx, build(d))
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(got-want) > 1e-4*want {
		t.Errorf("error %g, want %g", got, want)
	}
}

// TestSplitChannelsCycle: a graph with a cycle cannot be split; the error
// says why.
func TestSplitChannelsCycle(t *testing.T) {
	m := qtModel([]*onnxpb.NodeProto{
		qtNode("add", "Add", []string{"x", "b"}, []string{"a"}),
		qtNode("relu", "Relu", []string{"a"}, []string{"b"}),
	}, nil, qtValueInfo("x", 1, 2, 4, 4), qtValueInfo("b", 1, 2, 4, 4))
	if reps, err := splitChannels(context.Background(), m, "x", []int64{1, 2, 4, 4}, randomInputs{n: 1}, 1, nil); err == nil || reps != nil {
		t.Errorf("cyclic graph: reports %v, err %v; want an error", reps, err)
	}
}
