package prune_test

import (
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/edgedet/edgedet/onnx"
	"github.com/edgedet/edgedet/onnx/onnxpb"
	"github.com/edgedet/edgedet/prune"
)

// pruneSeedModels are tiny graphs of what prune follows: Conv, BN, SiLU
// (Sigmoid·Mul), a residual Add, Concat, MaxPool, Resize and a Reshape head;
// one with a weight that claims 2^40 elements it does not hold.
func pruneSeedModels(f *testing.F) [][]byte {
	f.Helper()
	b := newGraphBuilder(f, 1)
	x := b.input("x", 1, 3, 8, 8)
	c1 := b.bn("bn1", b.conv("conv1", x, 4, 3, 1))
	s := b.node("Mul", "silu", []string{c1, b.unary("Sigmoid", "sig", c1)}, []int64{1, 4, 8, 8})
	c2 := b.conv("conv2", s, 4, 1, 1)
	r := b.add("res", s, c2)
	dw := b.conv("dw", r, 4, 3, 4)
	cat := b.concat("cat", r, dw)
	p := b.unary("MaxPool", "pool", cat, intsAttr("kernel_shape", 1, 1))
	head := b.conv("head", p, 6, 1, 1)
	b.output(b.reshape("flat", head, 1, 6, 64))
	full := b.model()

	b2 := newGraphBuilder(f, 2)
	y := b2.conv("c2", b2.conv("c1", b2.input("x", 1, 2, 4, 4), 2, 1, 1), 2, 1, 1)
	b2.output(y)
	claims := b2.model()
	claims.GetGraph().GetInitializer()[0].Dims = []int64{1 << 20, 1 << 20, 1, 1}

	var out [][]byte
	for _, m := range []*onnxpb.ModelProto{full, claims} {
		data, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, data)
	}
	return out
}

// FuzzPruneOffline runs what prune does without ONNX Runtime — decode,
// group analysis, channel importance, the parameter and MAC count, and
// cutting the lowest channel of every prunable group — on fuzzed model
// bytes. Any input must give an error or a model that encodes and decodes,
// with no more parameters than before.
func FuzzPruneOffline(f *testing.F) {
	for _, m := range pruneSeedModels(f) {
		f.Add(m)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := onnx.DecodeModel(data)
		if err != nil {
			return
		}
		inShape := []int64{1, 3, 8, 8}
		params, _, _ := prune.Cost(m, inShape)
		a, err := prune.Analyze(m)
		if err != nil {
			return
		}
		remove := map[int][]int{}
		for _, g := range a.Groups {
			for _, norm := range []string{"l1", "l2"} {
				if _, err := a.Importance(g.ID, norm); err != nil {
					continue
				}
			}
			if g.Prunable && g.Channels > 1 {
				remove[g.ID] = []int{0}
			}
		}
		if _, err := a.RemovedInputs(remove); err != nil {
			return
		}
		out, err := prune.Apply(m, a, remove)
		if err != nil {
			return
		}
		enc, err := proto.Marshal(out)
		if err != nil {
			t.Fatalf("pruned model does not encode: %v", err)
		}
		again, err := onnx.DecodeModel(enc)
		if err != nil {
			t.Fatalf("pruned model does not decode: %v", err)
		}
		if after, _, _ := prune.Cost(again, inShape); after > params {
			t.Fatalf("pruning raised the parameters from %d to %d", params, after)
		}
	})
}

// TestWeightClaimingMoreThanItHolds: a Conv weight whose dims claim 2^40
// output channels while holding 4 values made Importance size its scores
// from the dims (an 8 TB allocation); Analyze must not give it a group.
func TestWeightClaimingMoreThanItHolds(t *testing.T) {
	b := newGraphBuilder(t, 3)
	y := b.conv("c2", b.conv("c1", b.input("x", 1, 2, 4, 4), 2, 1, 1), 2, 1, 1)
	b.output(y)
	m := b.model()
	w := initializer(t, m, "c1.weight")
	w.Dims = []int64{1 << 40, 2, 1, 1}
	a, err := prune.Analyze(m)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range a.Groups {
		if g.Channels == 1<<40 {
			t.Fatalf("group %d has the claimed %d channels", g.ID, g.Channels)
		}
		if _, err := a.Importance(g.ID, "l1"); err != nil && g.Prunable {
			t.Errorf("group %d: %v", g.ID, err)
		}
	}
}
