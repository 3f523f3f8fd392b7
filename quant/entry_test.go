package quant

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"time"

	"github.com/edgedet/edgedet/detection"
	"github.com/edgedet/edgedet/internal/latency"
	"github.com/edgedet/edgedet/onnx"
	"github.com/edgedet/edgedet/onnx/onnxpb"
)

func TestShortestNearBest(t *testing.T) {
	for _, c := range []struct {
		errs []float64
		tol  float64
		want int
	}{
		// best 0.15 at 4; limit 0.15 + 0.25·0.85 = 0.3625: k = 2.
		{[]float64{1, 0.9, 0.2, 0.25, 0.15, 0.18}, 0.25, 2},
		// No tolerance: the best itself.
		{[]float64{1, 0.9, 0.2, 0.25, 0.15, 0.18}, 0, 4},
		// All INT8 is already the best.
		{[]float64{0.1, 0.2, 0.3}, 0.25, 0},
		// A limit exactly met counts.
		{[]float64{1, 0.5, 0}, 0.5, 1},
	} {
		if got := shortestNearBest(c.errs, c.tol); got != c.want {
			t.Errorf("shortestNearBest(%v, %g) = %d, want %d", c.errs, c.tol, got, c.want)
		}
	}
}

func TestNarrowShare(t *testing.T) {
	even := channelRanges{lo: []float32{-1, -0.5, 0}, hi: []float32{1, 0.5, 0.2}} // widths 2, 1, 0.2: none below 2/11.3
	if s := narrowShare(even); s != 0 {
		t.Errorf("even ranges: share %g, want 0", s)
	}
	// Widths 2, 0.1 (below 2/11.3 ≈ 0.177), 0.18 (not below), 0: two of four.
	uneven := channelRanges{lo: []float32{-1, 0, 0, 0}, hi: []float32{1, 0.1, 0.18, 0}}
	if s := narrowShare(uneven); s != 0.5 {
		t.Errorf("uneven ranges: share %g, want 0.5", s)
	}
	if s := narrowShare(channelRanges{}); s != 0 {
		t.Errorf("no channels: share %g, want 0", s)
	}
}

// unevenChain is convChain(n) with conv1's output channels scaled to very
// different ranges (×100 and ×0.0001): tensor t1 has a narrow channel.
// It returns the quantizer prepared and calibrated on it.
func unevenChain(t *testing.T, n int) *quantizer {
	t.Helper()
	return calibratedQuantizer(t, unevenChainModel(t, n), randomInputs{n: 8, seed: 5})
}

func unevenChainModel(t *testing.T, n int) *onnxpb.ModelProto {
	t.Helper()
	m := convChain(rand.New(rand.NewPCG(3, 4)), n)
	g := onnx.NewGraph(m)
	w := qtFloats(t, g, "W1")
	for i := range w {
		if i < len(w)/2 {
			w[i] *= 100
		} else {
			w[i] *= 1e-4
		}
	}
	b := qtFloats(t, g, "B1")
	b[1] *= 1e-4
	init := g.Initializer("W1")
	init.FloatData, init.RawData = w, nil
	binit := g.Initializer("B1")
	binit.FloatData, binit.RawData = b, nil
	return m
}

// calibratedQuantizer prepares and calibrates m on inputs with the default
// options.
func calibratedQuantizer(t *testing.T, m *onnxpb.ModelProto, inputs onnx.Inputs) *quantizer {
	t.Helper()
	qtInitORT(t)
	ctx := context.Background()
	z, err := newQuantizer(m, inputs, DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	if err := z.prepare(ctx, m); err != nil {
		t.Fatal(err)
	}
	if err := z.calibrate(ctx); err != nil {
		t.Fatal(err)
	}
	return z
}

func TestCrossings(t *testing.T) {
	z := unevenChain(t, 4)
	for k, want := range [][]string{{"x"}, {"t0"}, {"t1"}, {"t2"}, nil} {
		if got := z.p.crossings(z.prefixPlan(k)); !slices.Equal(got, want) {
			t.Errorf("first %d layers float: crossings %v, want %v", k, got, want)
		}
	}
}

// The entry region ends at an even crossing among the prefixes near the
// best error, else at the knee.
func TestPickEntryAvoidsNarrowCrossing(t *testing.T) {
	z := unevenChain(t, 8)
	ctx := context.Background()
	// Prefixes 2, 3, 4 are near the best; 2 would quantize t1 (a channel
	// ×1e-6 of the other's range), 3 quantizes t2 (mixed, even).
	k, even, err := z.pickEntry(ctx, []float64{1, 0.9, 0.1, 0.12, 0.11})
	if err != nil || k != 3 || !even {
		t.Errorf("pickEntry = %d, %v, %v; want 3, true", k, even, err)
	}
	// Only prefix 2 is near the best: the knee, not even.
	k, even, err = z.pickEntry(ctx, []float64{1, 0.9, 0.1, 0.9, 0.9})
	if err != nil || k != 2 || even {
		t.Errorf("pickEntry (knee only) = %d, %v, %v; want 2, false", k, even, err)
	}
}

// fakeTimer "runs" a model in a time that depends on its QuantizeLinear
// count, looked up in times.
type fakeTimer struct{ d time.Duration }

func (f fakeTimer) Time(context.Context) (time.Duration, error) { return f.d, nil }
func (fakeTimer) Close() error                                  { return nil }

func quantizeLinears(m *onnxpb.ModelProto) int {
	n := 0
	for _, node := range m.GetGraph().GetNode() {
		if node.GetOpType() == "QuantizeLinear" {
			n++
		}
	}
	return n
}

// With a timer, the entry region is the fastest of the shortest near-best
// prefixes with an even crossing; a longer one must be clearly faster.
// The near-best set includes prefixes within entryNoise of the best even
// when the tolerance alone would exclude them.
func TestPickEntryTimesNearBest(t *testing.T) {
	z := unevenChain(t, 8)
	ctx := context.Background()
	qs := func(k int) int {
		m, err := z.p.buildQDQ(z.prefixPlan(k))
		if err != nil {
			t.Fatal(err)
		}
		return quantizeLinears(m)
	}
	// Prefix 0, 3 and 4 are even and near the best (0.1; limit 0.1 + 0.02:
	// the tolerance alone, 0.25·0.01, would keep only 2); 2 crosses at the
	// narrow t1. 3 is 1 % faster than 0 (noise), 4 is 20 % faster.
	times := map[int]time.Duration{qs(0): 10 * time.Millisecond, qs(3): 9900 * time.Microsecond, qs(4): 8 * time.Millisecond}
	if len(times) != 3 {
		t.Fatalf("prefixes 0, 3, 4 do not differ in QuantizeLinear count: %v", times)
	}
	var opened int
	z.opt.Timer = func(_ context.Context, m *onnxpb.ModelProto) (latency.Timer, error) {
		opened++
		d, ok := times[quantizeLinears(m)]
		if !ok {
			return nil, fmt.Errorf("timed an unexpected model (%d QuantizeLinear)", quantizeLinears(m))
		}
		return fakeTimer{d}, nil
	}
	errs := []float64{0.11, 0.9, 0.1, 0.12, 0.11, 0.5}
	var timing [][2]int
	z.progress = func(stage string, done, total int) {
		if stage == "entry region timing" {
			timing = append(timing, [2]int{done, total})
		}
	}
	k, even, err := z.pickEntry(ctx, errs)
	if err != nil || k != 4 || !even {
		t.Fatalf("pickEntry = %d, %v, %v; want 4, true", k, even, err)
	}
	if want := [][2]int{{1, 2}, {2, 2}}; !slices.Equal(timing, want) {
		t.Errorf("timing progress %v, want %v (two regions timed against the first)", timing, want)
	}
	want := []EntryTiming{{0, 1}, {3, 0.99}, {4, 0.8}}
	got := z.rep.EntryTimings
	if len(got) != len(want) {
		t.Fatalf("timings %v, want %v", got, want)
	}
	for i := range want {
		if got[i].Layers != want[i].Layers || math.Abs(got[i].Ratio-want[i].Ratio) > 1e-9 {
			t.Errorf("timing %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	if opened != 4 { // the reference and each other one, in pairs
		t.Errorf("%d timers opened, want 4", opened)
	}

	// 3 a clear 15 % faster than 0, 4 only 5 % faster than 3: 3.
	times[qs(3)], times[qs(4)] = 8500*time.Microsecond, 8075*time.Microsecond
	if k, _, err := z.pickEntry(ctx, errs); err != nil || k != 3 {
		t.Errorf("pickEntry = %d, %v; want 3", k, err)
	}

	// A timer that fails: the error says where.
	z.opt.Timer = func(context.Context, *onnxpb.ModelProto) (latency.Timer, error) {
		return nil, errors.New("no session")
	}
	if _, _, err := z.pickEntry(ctx, errs); err == nil || !strings.Contains(err.Error(), "entry region") || !strings.Contains(err.Error(), "no session") {
		t.Errorf("failing timer: %v", err)
	}

	// Without a timer: the shortest even prefix.
	z.opt.Timer = nil
	if k, _, err := z.pickEntry(ctx, errs); err != nil || k != 0 {
		t.Errorf("pickEntry without timer = %d, %v; want 0", k, err)
	}
}

// Through Quantize: the entry region's curve is in the report, its layers
// are float with float32 weights and the reason, and the rest is INT8.
func TestQuantizeEntryRegion(t *testing.T) {
	qtInitORT(t)
	m := convChain(rand.New(rand.NewPCG(3, 4)), 8) // 8 candidates: prefixes up to 2
	var stages []string
	opt := DefaultOptions()
	opt.Progress = func(stage string, _, _ int) {
		if len(stages) == 0 || stages[len(stages)-1] != stage {
			stages = append(stages, stage)
		}
	}
	out, rep, err := Quantize(context.Background(), m, randomInputs{n: 8, seed: 5}, opt)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(stages, []string{"calibrate", "entry region"}) {
		t.Errorf("stages %v, want calibrate, entry region", stages)
	}
	if len(rep.EntryErrors) != 3 || rep.EntryErrors[0] != rep.ErrorAll || rep.EntryLayers > 2 {
		t.Fatalf("entry errors %v (all INT8 %g), layers %d: want 3 errors from the all-INT8 one, ≤ 2 layers", rep.EntryErrors, rep.ErrorAll, rep.EntryLayers)
	}
	if want := shortestNearBest(rep.EntryErrors, entryTolerance); rep.EntryLayers < want {
		t.Errorf("entry layers %d, shorter than the knee %d", rep.EntryLayers, want)
	}
	for i, l := range rep.Layers {
		if entry := i < rep.EntryLayers; l.Float != entry {
			t.Errorf("layer %s float %v, want %v", l.Node, l.Float, entry)
		} else if entry && (l.Weights != WeightsFloat32 || l.Reason == "" || l.Reason[:12] != "entry region") {
			t.Errorf("entry layer %s: weights %s, reason %q", l.Node, l.Weights, l.Reason)
		}
	}
	if rep.Quantized != 8-rep.EntryLayers || rep.CustomMetric {
		t.Errorf("quantized %d of 8 with %d entry layers; custom metric %v", rep.Quantized, rep.EntryLayers, rep.CustomMetric)
	}
	if rep.ErrorFinal != rep.EntryErrors[rep.EntryLayers] && math.Abs(rep.ErrorFinal-rep.EntryErrors[rep.EntryLayers]) > 1e-9 {
		t.Errorf("final error %g, the entry curve says %g", rep.ErrorFinal, rep.EntryErrors[rep.EntryLayers])
	}
	if ops := onnx.QuantOps(out); !slices.Contains(ops, "QuantizeLinear") {
		t.Errorf("output ops %v", ops)
	}
}

// A metric that fails on the reference, or does not call it identical to
// itself, is replaced by the relative squared error; a sound one is used.
func TestUseMetric(t *testing.T) {
	s := &sensitivity{ref: [][][]float32{{{1, 2}}}, refShapes: [][][]int64{{{1, 2}}}}
	s.useMetric(func(_, _ []Outputs) (float64, error) { return 0, errors.New("no detections") }, nil)
	if s.metric != nil {
		t.Error("a failing metric was kept")
	}
	s.useMetric(func(_, _ []Outputs) (float64, error) { return 0.5, nil }, nil)
	if s.metric != nil {
		t.Error("a metric that does not call FP32 identical to itself was kept")
	}
	s.useMetric(func(_, _ []Outputs) (float64, error) { return math.NaN(), nil }, nil)
	if s.metric != nil {
		t.Error("a NaN metric was kept")
	}
	var seen []Outputs
	s.useMetric(func(ref, got []Outputs) (float64, error) { seen = got; return 0, nil }, nil)
	if s.metric == nil {
		t.Fatal("a sound metric was not kept")
	}
	if len(seen) != 1 || !slices.Equal(seen[0].Shapes[0], []int64{1, 2}) || !slices.Equal(seen[0].Values[0], []float32{1, 2}) {
		t.Errorf("the metric saw %+v, want the reference outputs with their shapes", seen)
	}
}

// yolov8Outputs is a [1, 4+2, 3] YOLOv8 output (channel-major) with one
// box per anchor: anchor a has centre (10+20a, 20), size 10×10 and class
// scores cls[a].
func yolov8Outputs(cls [3][2]float32) Outputs {
	v := make([]float32, 6*3)
	for a := range 3 {
		v[0*3+a], v[1*3+a], v[2*3+a], v[3*3+a] = float32(10+20*a), 20, 10, 10
		v[4*3+a], v[5*3+a] = cls[a][0], cls[a][1]
	}
	return Outputs{Shapes: [][]int64{{1, 6, 3}}, Values: [][]float32{v}}
}

func TestDetectionMetric(t *testing.T) {
	metric := DetectionMetric(detection.Spec{Format: detection.FormatYOLOv8, InputWidth: 64, InputHeight: 64}.WithDefaults())
	ref := []Outputs{yolov8Outputs([3][2]float32{{0.9, 0}, {0, 0.8}, {0.1, 0}})}
	if e, err := metric(ref, ref); err != nil || math.Abs(e) > 1e-9 {
		t.Errorf("metric(ref, ref) = %v, %v; want 0", e, err)
	}
	// The class-1 object scored below the decode threshold: half the
	// classes lost.
	lost := []Outputs{yolov8Outputs([3][2]float32{{0.9, 0}, {0, 0.0001}, {0.1, 0}})}
	if e, err := metric(ref, lost); err != nil || math.Abs(e-0.5) > 1e-9 {
		t.Errorf("one of two objects lost: %v, %v; want 0.5", e, err)
	}
	// Scores that change but keep the order and the objects: no error.
	rescored := []Outputs{yolov8Outputs([3][2]float32{{0.7, 0}, {0, 0.6}, {0.2, 0}})}
	if e, err := metric(ref, rescored); err != nil || math.Abs(e) > 1e-9 {
		t.Errorf("rescored: %v, %v; want 0", e, err)
	}
	empty := []Outputs{yolov8Outputs([3][2]float32{})}
	if _, err := metric(empty, empty); err == nil {
		t.Error("no reference detection: no error")
	}
	if _, err := metric(nil, nil); err == nil {
		t.Error("no frames: no error")
	}
	// Outputs for fewer or more frames than the reference: an error (it
	// panicked).
	ref2 := append(slices.Clone(ref), ref[0])
	if _, err := metric(ref2, ref); err == nil || !strings.Contains(err.Error(), "outputs of 1 frames for 2 reference frames") {
		t.Errorf("second frame missing: err %v", err)
	}
	if _, err := metric(ref, ref2); err == nil || !strings.Contains(err.Error(), "outputs of 2 frames for 1 reference frames") {
		t.Errorf("a frame too many: err %v", err)
	}
	if _, err := metric(ref, []Outputs{{}}); err == nil || !strings.Contains(err.Error(), "model has no output") {
		t.Errorf("an output-less model: err %v, want \"model has no output\"", err)
	}
	if _, err := metric([]Outputs{{}}, ref); err == nil || !strings.Contains(err.Error(), "model has no output") {
		t.Errorf("an output-less reference: err %v, want \"model has no output\"", err)
	}
	odd := []Outputs{{Shapes: [][]int64{{7}}, Values: [][]float32{make([]float32, 7)}}}
	if _, err := metric(odd, odd); err == nil {
		t.Error("an output shape no YOLOv8 decoder reads: no error")
	}
}

// With a timer, a quantized model that computes not clearly faster than
// FP32 gives way to the weights-only model: no activation quantized, every
// layer float with int8 weights, the measured ratio and the reason
// reported. The FP32 side of the timing is the model as given, not the
// folded and upgraded copy the quantizer works on.
func TestQuantizeWeightsOnlyIfSlower(t *testing.T) {
	qtInitORT(t)
	m := convChain(rand.New(rand.NewPCG(3, 4)), 4)
	m.OpsetImport[0].Version = proto.Int64(11) // the copy Quantize works on is upgraded
	for _, c := range []struct {
		name              string
		int8Time          time.Duration
		ifSlower          bool
		wantRatio         float64
		wantWeightsOnly   bool
		wantQuantizeNodes bool
	}{
		{"slower", 2 * time.Millisecond, true, 2, true, false},
		{"as fast", time.Millisecond, true, 1, true, false},
		{"within noise", 970 * time.Microsecond, true, 0.97, true, false},
		{"clearly faster", 950 * time.Microsecond, true, 0.95, false, true},
		{"faster", 500 * time.Microsecond, true, 0.5, false, true},
		{"slower, kept", 2 * time.Millisecond, false, 0, false, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			opt := DefaultOptions()
			opt.EntryFloat, opt.MaxError, opt.WeightsOnlyIfSlower = false, -1, c.ifSlower
			opt.Timer = func(_ context.Context, m *onnxpb.ModelProto) (latency.Timer, error) {
				if quantizeLinears(m) > 0 {
					return fakeTimer{c.int8Time}, nil
				}
				if v := m.GetOpsetImport()[0].GetVersion(); v != 11 {
					t.Errorf("FP32 timed at opset %d, want the given model (opset 11)", v)
				}
				return fakeTimer{time.Millisecond}, nil
			}
			out, rep, err := Quantize(context.Background(), m, randomInputs{n: 8, seed: 5}, opt)
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(rep.ComputeRatio-c.wantRatio) > 1e-9 || rep.WeightsOnly != c.wantWeightsOnly {
				t.Errorf("compute ratio %g, weights only %v; want %g, %v", rep.ComputeRatio, rep.WeightsOnly, c.wantRatio, c.wantWeightsOnly)
			}
			if got := quantizeLinears(out) > 0; got != c.wantQuantizeNodes {
				t.Errorf("QuantizeLinear nodes present %v, want %v", got, c.wantQuantizeNodes)
			}
			if !c.wantWeightsOnly {
				return
			}
			if rep.Quantized != 0 || len(rep.FloatLayers()) != 4 {
				t.Errorf("quantized %d, float %d; want 0, 4", rep.Quantized, len(rep.FloatLayers()))
			}
			for _, l := range rep.Layers {
				if l.Weights != WeightsInt8 || !strings.HasPrefix(l.Reason, "weights only: the INT8 model computed at") {
					t.Errorf("layer %s: weights %s, reason %q", l.Node, l.Weights, l.Reason)
				}
			}
			g := onnx.NewGraph(out)
			for _, n := range out.GetGraph().GetNode() {
				if n.GetOpType() == "Conv" {
					if w := g.Initializer(n.GetInput()[1]); w != nil {
						t.Errorf("%s reads float weights %s directly, want int8-stored", n.GetName(), w.GetName())
					}
				}
			}
		})
	}
}

// A detection metric that sees no agreement for any float prefix (as when
// the output format is misread) is reported as blind; one that does see
// agreement is not.
func TestQuantizeMetricBlind(t *testing.T) {
	qtInitORT(t)
	identical := func(ref, got []Outputs) bool {
		for j := range ref {
			for o := range ref[j].Values {
				if !slices.Equal(ref[j].Values[o], got[j].Values[o]) {
					return false
				}
			}
		}
		return true
	}
	for _, c := range []struct {
		disagreement float64
		blind        bool
	}{{0.99, true}, {0.5, false}} {
		opt := DefaultOptions()
		opt.Metric = func(ref, got []Outputs) (float64, error) {
			if identical(ref, got) {
				return 0, nil
			}
			return c.disagreement, nil
		}
		m := convChain(rand.New(rand.NewPCG(3, 4)), 8)
		_, rep, err := Quantize(context.Background(), m, randomInputs{n: 8, seed: 5}, opt)
		if err != nil {
			t.Fatal(err)
		}
		if !rep.CustomMetric || rep.MetricBlind != c.blind {
			t.Errorf("metric at %g for every INT8 model: custom %v, blind %v; want blind %v (threshold %g)", c.disagreement, rep.CustomMetric, rep.MetricBlind, c.blind, entryImplausible)
		}
	}
}
