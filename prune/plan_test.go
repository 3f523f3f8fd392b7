package prune_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/edgedet/edgedet/internal/latency"
	"github.com/edgedet/edgedet/onnx"
	"github.com/edgedet/edgedet/onnx/onnxpb"
	"github.com/edgedet/edgedet/prune"
)

var chainShape = []int64{1, 3, 16, 16}

// chainModel is x → convA(32) → bnA → Relu → convB(32) → Relu → convC(4) →
// output: two prunable groups of 32 channels (convA's, convB's); convA's
// channels 0..7 and convB's 24..31 have tiny filters, so the filter norms
// rank them last.
func chainModel(t testing.TB) *onnxpb.ModelProto {
	t.Helper()
	b := newGraphBuilder(t, 5)
	x := b.input("x", chainShape...)
	a := b.unary("Relu", "reluA", b.bn("bnA", b.conv("convA", x, 32, 3, 1)))
	y := b.unary("Relu", "reluB", b.conv("convB", a, 32, 3, 1))
	b.output(b.conv("convC", y, 4, 3, 1))
	m := b.model()
	setRows(t, m, "convA.weight", []int{0, 1, 2, 3, 4, 5, 6, 7}, 0.001)
	setRows(t, m, "convB.weight", []int{24, 25, 26, 27, 28, 29, 30, 31}, 0.001)
	return m
}

// groupOf is the ID of the group conv produces.
func groupOf(t testing.TB, rep *prune.Report, conv string) int {
	t.Helper()
	for _, g := range rep.Analysis.Groups {
		if slices.Contains(g.Producers, conv) {
			return g.ID
		}
	}
	t.Fatalf("no group produced by %s", conv)
	return -1
}

// randomInputs are n random calibration inputs of chainShape.
type randomInputs int

func (r randomInputs) Len() int { return int(r) }

func (r randomInputs) Input(_ context.Context, i int, dst []float32) error {
	copy(dst, randomInput(uint64(i)+100, len(dst)))
	return nil
}

// unreadableInputs are n calibration inputs none of which can be read.
type unreadableInputs int

func (r unreadableInputs) Len() int { return int(r) }

func (unreadableInputs) Input(context.Context, int, []float32) error {
	return errors.New("frame unreadable")
}

func normOptions(target string) prune.Options {
	opt := prune.DefaultOptions()
	opt.Target, _ = prune.ParseTarget(target)
	opt.Importance, opt.Refit, opt.InputShape = prune.ImportanceL1, false, chainShape
	return opt
}

func runPrune(t testing.TB, m *onnxpb.ModelProto, inputs onnx.Inputs, opt prune.Options) (*onnxpb.ModelProto, *prune.Report) {
	t.Helper()
	initORT(t)
	p, rep, err := prune.Prune(context.Background(), m, inputs, opt)
	if err != nil {
		t.Fatal(err)
	}
	return p, rep
}

// TestPruneRatio: ratio=R removes the R lowest-norm channels of every
// group, leaves the model it was given alone and records what it did.
func TestPruneRatio(t *testing.T) {
	m := chainModel(t)
	before := proto.Clone(m)
	p, rep := runPrune(t, m, nil, normOptions("ratio=0.25"))
	if !proto.Equal(m, before) {
		t.Error("Prune modified its input model")
	}
	ga, gb := groupOf(t, rep, "convA"), groupOf(t, rep, "convB")
	if want := []int{0, 1, 2, 3, 4, 5, 6, 7}; !slices.Equal(rep.Plan[ga], want) {
		t.Errorf("convA's group: removed %v, want %v", rep.Plan[ga], want)
	}
	if want := []int{24, 25, 26, 27, 28, 29, 30, 31}; !slices.Equal(rep.Plan[gb], want) {
		t.Errorf("convB's group: removed %v, want %v", rep.Plan[gb], want)
	}
	if rep.ChannelsRemoved != 16 || len(rep.Plan) != 2 {
		t.Errorf("%d channels from %d groups, want 16 from 2", rep.ChannelsRemoved, len(rep.Plan))
	}
	if d := dims(t, p, "convB.weight"); !slices.Equal(d, []int64{24, 24, 3, 3}) {
		t.Errorf("convB.weight dims %v", d)
	}
	_, macs := cost(t, p, chainShape)
	if rep.MACsAfter != macs || rep.MACsAfter >= rep.MACsBefore || rep.ParamsAfter >= rep.ParamsBefore {
		t.Errorf("report %+v, pruned model has %d MACs", rep, macs)
	}
	md := map[string]string{}
	for _, e := range p.GetMetadataProps() {
		md[e.GetKey()] = e.GetValue()
	}
	if md["edgedet.prune.target"] != "ratio=0.25" || md["edgedet.prune.channels_removed"] != "16" ||
		md["edgedet.prune.importance"] != "l1" || md["edgedet.prune.refit"] != "false" {
		t.Errorf("metadata %v", md)
	}
	if rep.LatencyBefore != 0 || rep.Refits != nil || rep.Sensitivity != nil {
		t.Errorf("measured what was not asked for: %+v", rep)
	}
}

// TestPruneFLOPs: a flops target is met by the least uniform share that
// reaches it, at most half of each group.
func TestPruneFLOPs(t *testing.T) {
	m := chainModel(t)
	_, light := runPrune(t, m, nil, normOptions("flops=0.9"))
	_, heavy := runPrune(t, m, nil, normOptions("flops=0.5"))
	for _, c := range []struct {
		rep  *prune.Report
		keep float64
	}{{light, 0.9}, {heavy, 0.5}} {
		if float64(c.rep.MACsAfter) > c.keep*float64(c.rep.MACsBefore) {
			t.Errorf("flops=%g: %d of %d MACs kept", c.keep, c.rep.MACsAfter, c.rep.MACsBefore)
		}
		for id, idx := range c.rep.Plan {
			if 2*len(idx) > c.rep.Analysis.Groups[id].Channels {
				t.Errorf("flops=%g: %d channels of group %d's %d removed", c.keep, len(idx), id, c.rep.Analysis.Groups[id].Channels)
			}
		}
	}
	if light.ChannelsRemoved == 0 || light.ChannelsRemoved >= heavy.ChannelsRemoved {
		t.Errorf("flops=0.9 removed %d channels, flops=0.5 %d", light.ChannelsRemoved, heavy.ChannelsRemoved)
	}
	// With 32-channel groups aligned to 8, keeping 90 % takes one step of 8
	// channels in one group at least, and no more than that in each.
	for id, idx := range light.Plan {
		if len(idx) != 8 {
			t.Errorf("flops=0.9: group %d lost %d channels, want 8", id, len(idx))
		}
	}

	initORT(t)
	_, _, err := prune.Prune(context.Background(), m, nil, normOptions("flops=0.1"))
	if !errors.Is(err, prune.ErrUnreachable) || !strings.Contains(err.Error(), "50 % of each prunable group") {
		t.Errorf("flops=0.1: %v, want ErrUnreachable", err)
	}
}

// macsTimer "runs" a model in as many nanoseconds as it has multiply-adds.
type macsTimer time.Duration

func (d macsTimer) Time(context.Context) (time.Duration, error) { return time.Duration(d), nil }
func (macsTimer) Close() error                                  { return nil }

func openMACsTimer(t testing.TB, opened *int) latency.Open {
	return func(_ context.Context, m *onnxpb.ModelProto) (latency.Timer, error) {
		*opened++
		_, macs, err := prune.Cost(m, chainShape)
		return macsTimer(macs), err
	}
}

// TestPruneLatency: a latency target is searched with candidates timed
// against the original, and the report has the final pair.
func TestPruneLatency(t *testing.T) {
	m := chainModel(t)
	opt := normOptions("latency=0.7")
	var status strings.Builder
	opened := 0
	opt.OpenTimer, opt.Status = openMACsTimer(t, &opened), &status
	_, rep := runPrune(t, m, nil, opt)
	ratio := float64(rep.LatencyAfter) / float64(rep.LatencyBefore)
	if ratio > 0.7 || rep.LatencyAfter != time.Duration(rep.MACsAfter) || rep.LatencyBefore != time.Duration(rep.MACsBefore) {
		t.Errorf("latency %v -> %v (%.3f), MACs %d -> %d", rep.LatencyBefore, rep.LatencyAfter, ratio, rep.MACsBefore, rep.MACsAfter)
	}
	if n := strings.Count(status.String(), "prune: candidate at"); n == 0 || opened != 2*n+2 {
		t.Errorf("%d candidates reported, %d timers opened:\n%s", n, opened, status.String())
	}
	// The same share of multiply-adds is the same plan.
	_, byFLOPs := runPrune(t, m, nil, normOptions("flops=0.7"))
	if rep.ChannelsRemoved != byFLOPs.ChannelsRemoved {
		t.Errorf("latency=0.7 removed %d channels, flops=0.7 %d", rep.ChannelsRemoved, byFLOPs.ChannelsRemoved)
	}

	opt.OpenTimer = nil
	if _, _, err := prune.Prune(context.Background(), m, nil, opt); err == nil || !strings.Contains(err.Error(), "OpenTimer") {
		t.Errorf("latency target without a timer: %v", err)
	}
	// A timer that fails: the search stops with its error.
	opt.OpenTimer = func(context.Context, *onnxpb.ModelProto) (latency.Timer, error) { return nil, errors.New("no clock") }
	if p, _, err := prune.Prune(context.Background(), m, nil, opt); err == nil || !strings.Contains(err.Error(), "no clock") || p != nil {
		t.Errorf("failing timer: %v", err)
	}
}

// TestPruneNothingPrunable: a model whose only Conv writes the graph
// output has no group to prune, and Prune says so.
func TestPruneNothingPrunable(t *testing.T) {
	initORT(t)
	b := newGraphBuilder(t, 17)
	b.output(b.conv("only", b.input("x", chainShape...), 4, 3, 1))
	_, _, err := prune.Prune(context.Background(), b.model(), nil, normOptions("ratio=0.25"))
	if err == nil || !strings.Contains(err.Error(), "no prunable channel group in this model") {
		t.Errorf("err %v", err)
	}
}

// TestPruneContributionAndRefit: channels ranked by their contribution on
// calibration inputs, consumers re-fitted; the refit never makes the
// held-out error worse, and the pruned model still runs.
func TestPruneContributionAndRefit(t *testing.T) {
	m := chainModel(t)
	opt := prune.DefaultOptions()
	opt.Target, _ = prune.ParseTarget("ratio=0.25")
	opt.InputShape = chainShape
	var status strings.Builder
	opt.Status = &status
	p, rep := runPrune(t, m, randomInputs(8), opt)
	if len(rep.Refits) != 2 {
		t.Fatalf("refits %+v, want convB and convC", rep.Refits)
	}
	for _, r := range rep.Refits {
		if r.Final > r.Plain || (r.Refitted != (r.Final < r.Plain)) {
			t.Errorf("refit %+v", r)
		}
	}
	if !rep.Refits[0].Refitted && !rep.Refits[1].Refitted {
		t.Error("no convolution was re-fitted")
	}
	for _, want := range []string{"measuring channel contributions at 2 convolutions on 8 calibration frames", "sampling the inputs of 2 convolutions"} {
		if !strings.Contains(status.String(), want) {
			t.Errorf("status lacks %q:\n%s", want, status.String())
		}
	}
	in := randomInput(1, 3*16*16)
	got := runModel(t, p, chainShape, in)["convC_out"]
	if len(got.data) != 4*16*16 {
		t.Errorf("pruned model output %v", got.shape)
	}
}

func TestPruneRejects(t *testing.T) {
	initORT(t)
	m := chainModel(t)
	q := proto.Clone(m).(*onnxpb.ModelProto)
	q.Graph.Node = append(q.Graph.Node, &onnxpb.NodeProto{OpType: proto.String("QuantizeLinear"), Name: proto.String("q")})
	for _, tc := range []struct {
		name   string
		m      *onnxpb.ModelProto
		inputs onnx.Inputs
		edit   func(*prune.Options)
		want   string
	}{
		{"quantized", q, nil, func(*prune.Options) {}, "model is quantized"},
		{"contribution without inputs", m, nil, func(o *prune.Options) { o.Importance = prune.ImportanceContribution }, "needs calibration inputs"},
		{"refit without inputs", m, randomInputs(0), func(o *prune.Options) { o.Refit = true }, "needs calibration inputs"},
		{"unknown importance", m, nil, func(o *prune.Options) { o.Importance = "l3" }, `"l3"`},
		{"no target", m, nil, func(o *prune.Options) { o.Target = prune.Target{} }, "exactly one"},
		{"two targets", m, nil, func(o *prune.Options) { o.Target = prune.Target{Ratio: 0.2, FLOPs: 0.5} }, "exactly one"},
		{"target out of range", m, nil, func(o *prune.Options) { o.Target = prune.Target{FLOPs: 1.5} }, "not in (0,1)"},
		{"target of all", m, nil, func(o *prune.Options) { o.Target = prune.Target{Ratio: 1} }, "ratio=1: 1 not in (0,1)"},
		{"no input shape", m, nil, func(o *prune.Options) { o.InputShape = nil }, "input shape"},
		{"refit without samples", m, randomInputs(2), func(o *prune.Options) { o.Refit, o.Samples = true, 0 }, "samples 0: want >= 1"},
		{"contribution without samples", m, randomInputs(2), func(o *prune.Options) {
			o.Importance, o.Samples = prune.ImportanceContribution, -1
		}, "samples -1: want >= 1"},
		{"latency without a timer", m, nil, func(o *prune.Options) { o.Target = prune.Target{Latency: 0.5} }, "needs Options.OpenTimer"},
		{"unreadable calibration", m, unreadableInputs(2), func(o *prune.Options) { o.Importance = prune.ImportanceContribution },
			"channel contributions: calibration input 0: frame unreadable"},
		{"unreadable refit samples", m, unreadableInputs(2), func(o *prune.Options) { o.Refit = true },
			"reconstruction: calibration input 0: frame unreadable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opt := normOptions("ratio=0.25")
			tc.edit(&opt)
			_, _, err := prune.Prune(context.Background(), tc.m, tc.inputs, opt)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one mentioning %q", err, tc.want)
			}
		})
	}
	_, _, err := prune.Prune(context.Background(), q, nil, normOptions("ratio=0.25"))
	if !errors.Is(err, prune.ErrQuantized) {
		t.Errorf("quantized model: %v, want ErrQuantized", err)
	}
}
