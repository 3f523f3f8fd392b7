package prune_test

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/edgedet/edgedet/onnx/onnxpb"
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
