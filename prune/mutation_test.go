package prune_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/edgedet/edgedet/internal/latency"
	"github.com/edgedet/edgedet/onnx"
	"github.com/edgedet/edgedet/onnx/onnxpb"
	"github.com/edgedet/edgedet/prune"
)

// Tests here pin behaviours that mutation testing (make mutate) showed the
// other tests did not: each one fails for a specific operator change.

// A Pad that pads only spatial axes passes channels through; one that adds
// a channel blocks pruning of the channels it pads.
func TestAnalyzePadChannelAxis(t *testing.T) {
	for _, tc := range []struct {
		name   string
		pads   []int64 // N C H W begins, then ends
		outC   int64
		reason string
	}{
		{"spatial", []int64{0, 0, 1, 1, 0, 0, 1, 1}, 8, ""},
		{"channel-begin", []int64{0, 1, 0, 0, 0, 0, 0, 0}, 9, "no constant pads of 0 on the channel axis"},
		{"channel-end", []int64{0, 0, 0, 0, 0, 1, 0, 0}, 9, "no constant pads of 0 on the channel axis"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newGraphBuilder(t, 1)
			a := b.conv("convA", b.input("x", inShape...), 8, 3, 1)
			h := 8 + tc.pads[2] + tc.pads[6]
			p := b.node("Pad", "pad", []string{a}, []int64{1, tc.outC, h, h}, intsAttr("pads", tc.pads...))
			b.output(b.conv("convB", p, 4, 1, 1))
			an := analyze(t, b.model())
			if len(an.Groups) == 0 || !strings.Contains(strings.Join(an.Groups[0].Producers, ","), "convA") {
				t.Fatalf("groups %+v, want the first produced by convA", an.Groups)
			}
			g := an.Groups[0]
			switch {
			case tc.reason == "" && !g.Prunable:
				t.Errorf("convA's group blocked (%s), want prunable", g.Reason)
			case tc.reason != "" && (g.Prunable || !strings.Contains(g.Reason, tc.reason)):
				t.Errorf("convA's group prunable=%v reason %q, want blocked: %s", g.Prunable, g.Reason, tc.reason)
			}
		})
	}
}

// Shape inference follows a Concat on the batch axis (axis 0, or -4
// counted from the end), so the Conv after it costs twice the MACs.
func TestCostConcatOnBatchAxis(t *testing.T) {
	for _, axis := range []int64{0, -4} {
		b := newGraphBuilder(t, 1)
		x := b.input("x", inShape...)
		a := b.conv("convA", x, 8, 3, 1)
		c := b.conv("convB", x, 8, 3, 1)
		cat := b.node("Concat", "cat", []string{a, c}, nil, intAttr("axis", axis)) // no value_info: inferred
		b.shapes[cat] = []int64{2, 8, 8, 8}
		b.output(b.conv("convC", cat, 4, 1, 1))
		_, macs := cost(t, b.model(), inShape)
		// convA, convB: 8*3*3*3 MACs per output pixel, 64 pixels each;
		// convC: 4*8 per pixel over 2 images of 64 pixels.
		if want := int64(2*8*3*3*3*64 + 4*8*2*64); macs != want {
			t.Errorf("axis %d: MACs %d, want %d", axis, macs, want)
		}
	}
}

// Shape inference follows an equal Split on the batch axis (0, or -4), so
// each Conv after it costs one image's MACs.
func TestCostSplitOnBatchAxis(t *testing.T) {
	shape := []int64{2, 3, 8, 8}
	for _, axis := range []int64{0, -4} {
		b := newGraphBuilder(t, 1)
		a := b.conv("convA", b.input("x", shape...), 8, 3, 1)
		b.nodes = append(b.nodes, &onnxpb.NodeProto{ // no value_info: inferred
			Name: proto.String("split"), OpType: proto.String("Split"),
			Input: []string{a}, Output: []string{"s0", "s1"}, Attribute: []*onnxpb.AttributeProto{intAttr("axis", axis)},
		})
		b.shapes["s0"], b.shapes["s1"] = []int64{1, 8, 8, 8}, []int64{1, 8, 8, 8}
		b.output(b.conv("convB", "s0", 4, 1, 1))
		b.output(b.conv("convC", "s1", 4, 1, 1))
		_, macs := cost(t, b.model(), shape)
		// convA: 8*3*3*3 MACs per pixel, 2 images of 64 pixels; convB and
		// convC: 4*8 per pixel, one image each.
		if want := int64(8*3*3*3*64*2 + 2*4*8*64); macs != want {
			t.Errorf("axis %d: MACs %d, want %d", axis, macs, want)
		}
	}
}

// A depthwise Conv without a bias follows its group too: pruning two of
// its 8 channels leaves group 6 and a [6 1 3 3] weight, one of 2 leaves
// group 1 (a plain Conv), and the models run.
func TestApplyDepthwiseWithoutBias(t *testing.T) {
	initORT(t)
	for _, c := range []struct {
		channels int64
		remove   []int
	}{{8, []int{1, 5}}, {2, []int{0}}} {
		b := newGraphBuilder(t, 23)
		a := b.conv("convA", b.input("x", inShape...), c.channels, 3, 1)
		dw := b.conv("dw", a, c.channels, 3, c.channels)
		b.nodes[len(b.nodes)-1].Input = b.nodes[len(b.nodes)-1].Input[:2] // no bias
		b.output(b.conv("convB", dw, 4, 1, 1))
		m := b.model()
		an := analyze(t, m)
		if g := an.Groups[0]; !g.Prunable || !slices.Equal(g.Nodes, []string{"dw"}) {
			t.Fatalf("%d channels: group 0 = %+v, want convA's prunable through dw", c.channels, g)
		}
		pruned, err := prune.Apply(m, an, map[int][]int{0: c.remove})
		if err != nil {
			t.Fatal(err)
		}
		left := c.channels - int64(len(c.remove))
		if g := onnx.AttrInt(node(t, pruned, "dw"), "group", 1); g != left {
			t.Errorf("%d channels: dw group %d, want %d", c.channels, g, left)
		}
		if d := initializer(t, pruned, "dw.weight").GetDims(); !slices.Equal(d, []int64{left, 1, 3, 3}) {
			t.Errorf("%d channels: dw weight dims %v, want [%d 1 3 3]", c.channels, d, left)
		}
		if err := prune.Check(m, pruned, inShape); err != nil {
			t.Errorf("%d channels: %v", c.channels, err)
		}
	}
}

// The timer of the final latency pair failing fails Prune, also for a
// ratio target, whose plan needs no timing.
func TestPruneFinalTimingFails(t *testing.T) {
	initORT(t)
	opt := normOptions("ratio=0.25")
	opt.OpenTimer = func(context.Context, *onnxpb.ModelProto) (latency.Timer, error) { return nil, errors.New("no clock") }
	p, rep, err := prune.Prune(context.Background(), chainModel(t), nil, opt)
	if err == nil || !strings.Contains(err.Error(), "no clock") || p != nil || rep != nil {
		t.Errorf("model %v, report %v, err %v; want the timer's error", p != nil, rep != nil, err)
	}
}

// TestDefaultOptions: the documented defaults (keep 90 % of the
// multiply-adds, contribution ranking, refit from 64 samples per input).
func TestDefaultOptions(t *testing.T) {
	o := prune.DefaultOptions()
	if o.Target.FLOPs != 0.9 || o.Target.Ratio != 0 || o.Target.Latency != 0 || o.Importance != prune.ImportanceContribution || !o.Refit || o.Samples != 64 {
		t.Errorf("DefaultOptions() = %+v", o)
	}
}

// Filter norms are not comparable across groups: a flops target with L1
// importance prunes every group by the same share, even when one group's
// filters are all much larger than the other's (the global ranking, for
// contribution scores, would take the smaller group's channels first).
func TestPruneL1TargetIsUniform(t *testing.T) {
	b := newGraphBuilder(t, 29)
	a := b.unary("Relu", "reluA", b.conv("convA", b.input("x", chainShape...), 8, 3, 1))
	y := b.unary("Relu", "reluB", b.conv("convB", a, 8, 3, 1))
	b.output(b.conv("convC", y, 4, 3, 1))
	m := b.model()
	setRows(t, m, "convB.weight", []int{0, 1, 2, 3, 4, 5, 6, 7}, 5)
	_, rep := runPrune(t, m, nil, normOptions("flops=0.8"))
	if n0, n1 := len(rep.Plan[0]), len(rep.Plan[1]); n0 == 0 || n0 != n1 {
		t.Errorf("plan %v: %d and %d channels removed, want the same share of both groups", rep.Plan, n0, n1)
	}
}
