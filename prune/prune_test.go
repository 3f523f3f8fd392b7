package prune_test

import (
	"bytes"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/edgedet/edgedet/onnx"
	"github.com/edgedet/edgedet/onnx/onnxpb"
	"github.com/edgedet/edgedet/prune"
)

// wantGroup is the expected shape of one group; reason "" means prunable,
// otherwise a substring of Reason.
type wantGroup struct {
	channels                    int
	producers, consumers, nodes []string
	reason                      string
}

func checkGroups(t *testing.T, a *prune.Analysis, want []wantGroup) {
	t.Helper()
	var table bytes.Buffer
	a.Table(&table)
	t.Logf("groups:\n%s", table.String())
	if len(a.Groups) != len(want) {
		t.Fatalf("%d groups, want %d", len(a.Groups), len(want))
	}
	for i, w := range want {
		g := a.Groups[i]
		if g.ID != i {
			t.Errorf("group %d has ID %d", i, g.ID)
		}
		if g.Channels != w.channels {
			t.Errorf("group %d: %d channels, want %d", i, g.Channels, w.channels)
		}
		for _, c := range []struct {
			what      string
			got, want []string
		}{{"producers", g.Producers, w.producers}, {"consumers", g.Consumers, w.consumers}, {"nodes", g.Nodes, w.nodes}} {
			if !slices.Equal(c.got, c.want) {
				t.Errorf("group %d %s = %q, want %q", i, c.what, c.got, c.want)
			}
		}
		switch {
		case w.reason == "" && !g.Prunable:
			t.Errorf("group %d blocked (%s), want prunable", i, g.Reason)
		case w.reason != "" && g.Prunable:
			t.Errorf("group %d prunable, want blocked by %s", i, w.reason)
		case w.reason != "" && !strings.Contains(g.Reason, w.reason):
			t.Errorf("group %d reason %q, want it to mention %q", i, g.Reason, w.reason)
		}
	}
}

// pruneCase is a hand-built model, the channels made exactly zero in it,
// and what removing them must give.
type pruneCase struct {
	name   string
	build  func(t *testing.T) *onnxpb.ModelProto // zeroes the channels to remove
	groups []wantGroup
	remove map[int][]int
	// Exactly how many parameters and MACs removal saves at inShape.
	params, macs int64
	check        func(t *testing.T, pruned *onnxpb.ModelProto)
	// keep are the value_info entries that must survive (their channels do
	// not change); all others must be dropped.
	keep []string
}

var inShape = []int64{1, 3, 8, 8}

func pruneCases() []pruneCase {
	return []pruneCase{
		{
			name: "conv-bn-relu-conv",
			build: func(t *testing.T) *onnxpb.ModelProto {
				b := newGraphBuilder(t, 1)
				x := b.input("x", inShape...)
				y := b.unary("Relu", "reluA", b.bn("bnA", b.conv("convA", x, 8, 3, 1)))
				b.output(b.conv("convB", y, 4, 3, 1))
				m := b.model()
				rows := []int{1, 5, 6}
				silence(t, m, "convA", rows)
				setRows(t, m, "bnA.mean", rows, 0)
				setRows(t, m, "bnA.B", rows, -1) // BN gives -1, Relu 0
				return m
			},
			groups: []wantGroup{
				{8, []string{"convA"}, []string{"convB"}, []string{"bnA", "reluA"}, ""},
				{4, []string{"convB"}, nil, nil, `graph output "convB_out"`},
			},
			remove: map[int][]int{0: {1, 5, 6}},
			// convA rows 3·27 + 3 bias, bnA 4·3, convB columns 4·3·9.
			params: 81 + 3 + 12 + 108,
			macs:   3*64*27 + 4*64*3*9,
			check: func(t *testing.T, p *onnxpb.ModelProto) {
				for name, want := range map[string][]int64{
					"convA.weight": {5, 3, 3, 3}, "convA.bias": {5}, "bnA.var": {5}, "convB.weight": {4, 5, 3, 3},
				} {
					if d := dims(t, p, name); !slices.Equal(d, want) {
						t.Errorf("%s dims %v, want %v", name, d, want)
					}
				}
			},
		},
		{
			name: "depthwise",
			build: func(t *testing.T) *onnxpb.ModelProto {
				b := newGraphBuilder(t, 2)
				x := b.input("x", inShape...)
				a := b.unary("Relu", "reluA", b.conv("convA", x, 8, 1, 1))
				d := b.unary("Relu", "reluDW", b.conv("dw", a, 8, 3, 8))
				b.output(b.unary("Relu", "reluOut", b.conv("convB", d, 4, 1, 1)))
				m := b.model()
				silence(t, m, "convA", []int{0, 3})
				silence(t, m, "dw", []int{0, 3}) // its bias would revive them
				return m
			},
			groups: []wantGroup{
				{8, []string{"convA"}, []string{"convB"}, []string{"reluA", "dw", "reluDW"}, ""},
				{4, []string{"convB"}, nil, []string{"reluOut"}, `graph output "reluOut_out"`},
			},
			remove: map[int][]int{0: {0, 3}},
			keep:   []string{"convB_out"},
			// convA 2·3+2, dw 2·9+2, convB 4·2.
			params: 8 + 20 + 8,
			macs:   2*64*3 + 2*64*9 + 4*64*2,
			check: func(t *testing.T, p *onnxpb.ModelProto) {
				if d := dims(t, p, "dw.weight"); !slices.Equal(d, []int64{6, 1, 3, 3}) {
					t.Errorf("dw.weight dims %v, want [6 1 3 3]", d)
				}
				for _, at := range node(t, p, "dw").GetAttribute() {
					if at.GetName() == "group" && at.GetI() != 6 {
						t.Errorf("depthwise group = %d, want 6", at.GetI())
					}
				}
			},
		},
		{
			name: "concat",
			build: func(t *testing.T) *onnxpb.ModelProto {
				b := newGraphBuilder(t, 3)
				x := b.input("x", inShape...)
				a := b.unary("Relu", "reluA", b.conv("convA", x, 6, 3, 1))
				pool := b.unary("MaxPool", "pool", a, intsAttr("kernel_shape", 3, 3), intsAttr("pads", 1, 1, 1, 1))
				c := b.unary("Sigmoid", "sigB", b.conv("convB", x, 5, 1, 1))
				c = b.node("Mul", "siluB", []string{"convB_out", c}, []int64{1, 5, 8, 8})
				b.output(b.conv("convC", b.concat("cat", a, pool, c), 4, 1, 1))
				m := b.model()
				silence(t, m, "convA", []int{1, 4})
				silence(t, m, "convB", []int{0, 3}) // x·sigmoid(x) is 0 at 0
				return m
			},
			groups: []wantGroup{
				{6, []string{"convA"}, []string{"convC"}, []string{"reluA", "pool", "cat"}, ""},
				{5, []string{"convB"}, []string{"convC"}, []string{"sigB", "siluB", "cat"}, ""},
				{4, []string{"convC"}, nil, nil, "graph output"},
			},
			remove: map[int][]int{0: {1, 4}, 1: {0, 3}},
			// convA 2·27+2, convB 2·3+2, convC 4·(2+2+2) columns: A twice (itself and the pool), B once.
			params: 56 + 8 + 24,
			macs:   2*64*27 + 2*64*3 + 4*64*6,
			check: func(t *testing.T, p *onnxpb.ModelProto) {
				if d := dims(t, p, "convC.weight"); !slices.Equal(d, []int64{4, 11, 1, 1}) {
					t.Errorf("convC.weight dims %v, want [4 11 1 1]", d)
				}
			},
		},
		{
			name: "shared-weights",
			build: func(t *testing.T) *onnxpb.ModelProto {
				b := newGraphBuilder(t, 5)
				x := b.input("x", inShape...)
				a := b.unary("Relu", "reluA", b.conv("convA", x, 6, 3, 1))
				// convA2 reuses convA's weight and bias initializers.
				b.nodes = append(b.nodes, &onnxpb.NodeProto{
					Name: proto.String("convA2"), OpType: proto.String("Conv"),
					Input: []string{x, "convA.weight", "convA.bias"}, Output: []string{"convA2_out"},
					Attribute: []*onnxpb.AttributeProto{intsAttr("pads", 1, 1, 1, 1)},
				})
				b.shapes["convA2_out"] = b.shapes["convA_out"]
				a2 := b.unary("Relu", "reluA2", "convA2_out")
				b.output(b.conv("convC", b.concat("cat", a, a2), 4, 1, 1))
				m := b.model()
				silence(t, m, "convA", []int{2}) // zeroes convA2's channel 2 too
				return m
			},
			groups: []wantGroup{
				{6, []string{"convA"}, []string{"convC"}, []string{"reluA", "cat"}, ""},
				{6, []string{"convA2"}, []string{"convC"}, []string{"reluA2", "cat"}, ""},
				{4, []string{"convC"}, nil, nil, "graph output"},
			},
			remove: map[int][]int{0: {2}},
			// convA gets its own 5-row copy (5·27+5 new parameters) while
			// convA2 keeps the original; convC loses 4 weights.
			params: 4 - (135 + 5),
			macs:   64*27 + 4*64,
			check: func(t *testing.T, p *onnxpb.ModelProto) {
				n := node(t, p, "convA")
				if n.GetInput()[1] == "convA.weight" || n.GetInput()[2] == "convA.bias" {
					t.Errorf("convA still reads the shared %q", n.GetInput())
				}
				if d := dims(t, p, n.GetInput()[1]); !slices.Equal(d, []int64{5, 3, 3, 3}) {
					t.Errorf("convA weight dims %v", d)
				}
				if d := dims(t, p, "convA.weight"); !slices.Equal(d, []int64{6, 3, 3, 3}) {
					t.Errorf("shared convA.weight dims %v, want it untouched for convA2", d)
				}
			},
			keep: []string{"reluA2_out"},
		},
		{
			name: "residual-add",
			build: func(t *testing.T) *onnxpb.ModelProto {
				b := newGraphBuilder(t, 4)
				x := b.input("x", inShape...)
				a := b.unary("Relu", "reluA", b.conv("convA", x, 8, 3, 1))
				r := b.unary("Relu", "reluB", b.conv("convB", a, 8, 3, 1))
				b.output(b.conv("convC", b.add("add", a, r), 4, 1, 1))
				m := b.model()
				silence(t, m, "convA", []int{2, 7})
				silence(t, m, "convB", []int{2, 7})
				return m
			},
			groups: []wantGroup{
				{8, []string{"convA", "convB"}, []string{"convB", "convC"}, []string{"reluA", "reluB", "add"}, ""},
				{4, []string{"convC"}, nil, nil, "graph output"},
			},
			remove: map[int][]int{0: {2, 7}},
			// convA 2·27+2; convB 8·8·9+8 → 6·6·9+6; convC 4·2.
			params: 56 + (584 - 330) + 8,
			macs:   2*64*27 + (64*8*72 - 64*6*54) + 4*64*2,
			check: func(t *testing.T, p *onnxpb.ModelProto) {
				if d := dims(t, p, "convB.weight"); !slices.Equal(d, []int64{6, 6, 3, 3}) {
					t.Errorf("convB.weight dims %v, want [6 6 3 3]", d)
				}
			},
		},
	}
}

// TestPruneZeroChannels removes channels that are exactly zero and checks
// in ONNX Runtime that the outputs do not change, and that the model
// shrinks by exactly their parameters and MACs.
func TestPruneZeroChannels(t *testing.T) {
	for _, c := range pruneCases() {
		t.Run(c.name, func(t *testing.T) {
			m := c.build(t)
			orig := proto.Clone(m)
			a := analyze(t, m)
			checkGroups(t, a, c.groups)

			pruned, err := prune.Apply(m, a, c.remove)
			if err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(m, orig) {
				t.Error("Apply changed its input model")
			}
			// Removed channels are the least important ones.
			for g, idx := range c.remove {
				imp, err := a.Importance(g, "l2")
				if err != nil {
					t.Fatal(err)
				}
				for _, i := range idx {
					if imp[i] != 0 {
						t.Errorf("group %d channel %d: importance %g, want 0 for a zero filter", g, i, imp[i])
					}
				}
			}
			c.check(t, pruned)
			checkValueInfo(t, pruned, m, c.keep)

			in := randomInput(5, 3*8*8)
			sameOutputs(t, runModel(t, pruned, inShape, in), runModel(t, m, inShape, in), 1e-4)

			p0, m0 := cost(t, m, inShape)
			p1, m1 := cost(t, pruned, inShape)
			t.Logf("params %d → %d, MACs %d → %d", p0, p1, m0, m1)
			if p0-p1 != c.params || m0-m1 != c.macs {
				t.Errorf("saved %d params and %d MACs, want %d and %d", p0-p1, m0-m1, c.params, c.macs)
			}

			// The pruned model analyses to the smaller groups.
			a2 := analyze(t, pruned)
			for g, idx := range c.remove {
				if got, want := a2.Groups[g].Channels, c.groups[g].channels-len(idx); got != want {
					t.Errorf("after pruning group %d has %d channels, want %d", g, got, want)
				}
			}
		})
	}
}

// checkValueInfo checks that pruning dropped the value_info of every
// tensor whose channels changed and kept the others.
func checkValueInfo(t *testing.T, pruned, orig *onnxpb.ModelProto, keep []string) {
	t.Helper()
	kept := map[string]bool{}
	for _, vi := range pruned.GetGraph().GetValueInfo() {
		kept[vi.GetName()] = true
	}
	for _, vi := range orig.GetGraph().GetValueInfo() {
		name := vi.GetName()
		if want := slices.Contains(keep, name); kept[name] != want {
			t.Errorf("value_info %q kept = %v, want %v", name, kept[name], want)
		}
	}
}

// TestPruneIR3 checks a model whose initializers are graph inputs too
// (IR version < 4): their declared shapes must follow the cut.
func TestPruneIR3(t *testing.T) {
	m := pruneCases()[0].build(t)
	m.IrVersion = proto.Int64(3)
	m.OpsetImport[0].Version = proto.Int64(9)
	gp := m.GetGraph()
	for _, in := range gp.GetInitializer() {
		gp.Input = append(gp.Input, tensorInfo(in.GetName(), onnxpb.TensorProto_FLOAT, in.GetDims()))
	}
	a := analyze(t, m)
	pruned, err := prune.Apply(m, a, map[int][]int{0: {1, 5, 6}})
	if err != nil {
		t.Fatal(err)
	}
	for _, vi := range pruned.GetGraph().GetInput()[1:] {
		var d []int64
		for _, dim := range vi.GetType().GetTensorType().GetShape().GetDim() {
			d = append(d, dim.GetDimValue())
		}
		if want := dims(t, pruned, vi.GetName()); !slices.Equal(d, want) {
			t.Errorf("input %q declares %v, initializer has %v", vi.GetName(), d, want)
		}
	}
	in := randomInput(5, 3*8*8)
	sameOutputs(t, runModel(t, pruned, inShape, in), runModel(t, m, inShape, in), 1e-4)
}

// TestPruneUnfoldedMatchesFolded checks that Analyze and Importance give
// the same answer with BatchNormalization folded or not, and that pruning
// either gives the same outputs.
func TestPruneUnfoldedMatchesFolded(t *testing.T) {
	b := newGraphBuilder(t, 9)
	x := b.input("x", inShape...)
	y := b.unary("Relu", "reluA", b.bn("bnA", b.conv("convA", x, 8, 3, 1)))
	b.output(b.conv("convB", y, 4, 3, 1))
	m := b.model()
	folded := proto.Clone(m).(*onnxpb.ModelProto)
	if n, err := onnx.FoldBatchNorm(folded); err != nil || n != 1 {
		t.Fatalf("fold: %d, %v", n, err)
	}
	a, af := analyze(t, m), analyze(t, folded)
	if !slices.Equal(a.Groups[0].Nodes, []string{"bnA", "reluA"}) || !slices.Equal(af.Groups[0].Nodes, []string{"reluA"}) {
		t.Errorf("nodes %q and %q", a.Groups[0].Nodes, af.Groups[0].Nodes)
	}
	for _, norm := range []string{"l1", "l2"} {
		imp, err := a.Importance(0, norm)
		if err != nil {
			t.Fatal(err)
		}
		impf, err := af.Importance(0, norm)
		if err != nil {
			t.Fatal(err)
		}
		for i := range imp {
			if math.Abs(imp[i]-impf[i]) > 1e-5*max(1, impf[i]) {
				t.Errorf("%s importance of channel %d: %g unfolded, %g folded", norm, i, imp[i], impf[i])
			}
		}
	}
	// Real (non-zero) channels removed: both models lose the same ones.
	remove := map[int][]int{0: {0, 2, 3}}
	p, err := prune.Apply(m, a, remove)
	if err != nil {
		t.Fatal(err)
	}
	pf, err := prune.Apply(folded, af, remove)
	if err != nil {
		t.Fatal(err)
	}
	in := randomInput(6, 3*8*8)
	sameOutputs(t, runModel(t, p, inShape, in), runModel(t, pf, inShape, in), 1e-4)
}

// TestAnalyzeBlocked checks groups that must not be pruned and why.
func TestAnalyzeBlocked(t *testing.T) {
	cases := []struct {
		name   string
		build  func(b *graphBuilder)
		groups []wantGroup
	}{
		{"reshape", func(b *graphBuilder) {
			a := b.unary("Relu", "relu", b.conv("convA", b.input("x", inShape...), 8, 3, 1))
			b.output(b.conv("convB", b.reshape("reshape", a, 1, 4, 16, 8), 2, 1, 1))
		}, []wantGroup{
			{8, []string{"convA"}, nil, []string{"relu"}, `reaches Reshape "reshape"`},
			{2, []string{"convB"}, nil, nil, `graph output "convB_out"`},
		}},
		{"straight-to-output", func(b *graphBuilder) {
			b.output(b.conv("convA", b.input("x", inShape...), 8, 3, 1))
		}, []wantGroup{
			{8, []string{"convA"}, nil, nil, `graph output "convA_out"`},
		}},
		{"grouped", func(b *graphBuilder) {
			a := b.conv("convA", b.input("x", inShape...), 8, 1, 1)
			b.output(b.conv("convB", b.conv("grouped", a, 8, 1, 2), 4, 1, 1))
		}, []wantGroup{
			{8, []string{"convA"}, nil, nil, `grouped Conv "grouped" (group 2)`},
			{4, []string{"convB"}, nil, nil, "graph output"},
		}},
		{"from-input", func(b *graphBuilder) {
			x := b.input("x", inShape...)
			b.output(b.conv("convB", b.add("add", x, b.conv("convA", x, 3, 3, 1)), 4, 1, 1))
		}, []wantGroup{
			{3, []string{"convA"}, []string{"convA", "convB"}, []string{"add"}, "produced from graph input"},
			{4, []string{"convB"}, nil, nil, "graph output"},
		}},
		{"per-channel-scale", func(b *graphBuilder) {
			a := b.conv("convA", b.input("x", inShape...), 8, 1, 1)
			s := onnx.Float32Tensor("scale", []int64{1, 8, 1, 1}, b.randoms(8, 1))
			b.inits = append(b.inits, s)
			b.output(b.conv("convB", b.node("Mul", "mul", []string{a, "scale"}, []int64{1, 8, 8, 8}), 4, 1, 1))
		}, []wantGroup{
			{8, []string{"convA"}, nil, nil, `Mul "mul" scales channels by constant "scale"`},
			{4, []string{"convB"}, nil, nil, "graph output"},
		}},
		{"head", func(b *graphBuilder) {
			// A YOLO-like head: stem, then a box and a class branch joined
			// for output after a Sigmoid and a Reshape.
			stem := b.unary("Relu", "stemAct", b.conv("stem", b.input("x", inShape...), 8, 3, 1))
			box := b.conv("box", stem, 4, 1, 1)
			cls := b.unary("Sigmoid", "clsAct", b.conv("cls", stem, 3, 1, 1))
			b.output(b.reshape("flat", b.concat("cat", box, cls), 1, 7, 64))
		}, []wantGroup{
			{8, []string{"stem"}, []string{"box", "cls"}, []string{"stemAct"}, ""},
			{4, []string{"box"}, nil, []string{"cat"}, `reaches Reshape "flat"`},
			{3, []string{"cls"}, nil, []string{"clsAct", "cat"}, `reaches Reshape "flat"`},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := newGraphBuilder(t, 3)
			c.build(b)
			m := b.model()
			a := analyze(t, m)
			checkGroups(t, a, c.groups)
			for _, g := range a.Groups {
				if g.Prunable {
					continue
				}
				_, err := prune.Apply(m, a, map[int][]int{g.ID: {0}})
				if err == nil || !strings.Contains(err.Error(), "not prunable") || !strings.Contains(err.Error(), g.Reason) {
					t.Errorf("Apply on blocked group %d: err %v, want not prunable: %s", g.ID, err, g.Reason)
				}
			}
			// ONNX Runtime runs the model as built, so the cases are valid.
			runModel(t, m, inShape, randomInput(1, 3*8*8))
		})
	}
}

// TestApplyRejects checks the errors for bad removal requests.
func TestApplyRejects(t *testing.T) {
	c := pruneCases()[0]
	m := c.build(t)
	a := analyze(t, m)
	other := pruneCases()[1].build(t)
	cases := []struct {
		name   string
		m      *onnxpb.ModelProto
		remove map[int][]int
		want   string
	}{
		{"all channels", m, map[int][]int{0: {0, 1, 2, 3, 4, 5, 6, 7}}, "removing 8 of 8 channels leaves none"},
		{"out of range", m, map[int][]int{0: {1, 8}}, "channel 8 out of range [0,8)"},
		{"negative", m, map[int][]int{0: {-1}}, "channel -1 out of range"},
		{"unsorted", m, map[int][]int{0: {3, 1}}, "sorted and distinct: 1 after 3"},
		{"duplicate", m, map[int][]int{0: {3, 3}}, "sorted and distinct"},
		{"blocked group", m, map[int][]int{1: {0}}, `group 1 (convB) is not prunable: graph output "convB_out"`},
		{"no such group", m, map[int][]int{5: {0}}, "no group 5 (have 2)"},
		{"other model", other, map[int][]int{0: {1}}, "analysis is not of this model"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := prune.Apply(tc.m, a, tc.remove)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want it to contain %q", err, tc.want)
			}
			if p != nil {
				t.Error("a model came back with the error")
			}
		})
	}
	if _, err := a.Importance(0, "l3"); err == nil || !strings.Contains(err.Error(), `norm "l3"`) {
		t.Errorf("Importance with norm l3: %v", err)
	}
	if _, err := a.Importance(2, "l2"); err == nil || !strings.Contains(err.Error(), "no group 2") {
		t.Errorf("Importance of group 2: %v", err)
	}
	if _, err := prune.Apply(m, nil, map[int][]int{0: {1}}); err == nil || !strings.Contains(err.Error(), "apply: no analysis") {
		t.Errorf("Apply without an analysis: %v", err)
	}
	if _, err := prune.Apply(&onnxpb.ModelProto{}, a, map[int][]int{0: {1}}); err == nil || !strings.Contains(err.Error(), "apply: model has no graph") {
		t.Errorf("Apply to a model without a graph: %v", err)
	}
	// Removing nothing is allowed and changes nothing.
	p, err := prune.Apply(m, a, map[int][]int{0: nil})
	if err != nil || !proto.Equal(p, m) {
		t.Errorf("empty removal: err %v, equal %v", err, proto.Equal(p, m))
	}
}

// TestAnalyzeUnreadable checks that only unreadable graphs are errors.
func TestAnalyzeUnreadable(t *testing.T) {
	if _, err := prune.Analyze(&onnxpb.ModelProto{}); err == nil {
		t.Error("no error for a model without a graph")
	}
	b := newGraphBuilder(t, 1)
	x := b.input("x", inShape...)
	b.node("Relu", "r1", []string{x, "r2_out"}, nil)
	b.node("Relu", "r2", []string{"r1_out"}, nil)
	b.output("r2_out")
	_, err := prune.Analyze(b.model())
	if err == nil || !strings.Contains(err.Error(), "cycle") {
		t.Errorf("cycle: err %v", err)
	}
}

// TestCostIncomplete checks that a Conv after an unknown shape is named.
func TestCostIncomplete(t *testing.T) {
	b := newGraphBuilder(t, 1)
	x := b.input("x", inShape...)
	b.inputs = append(b.inputs, tensorInfo("shape", onnxpb.TensorProto_INT64, []int64{4}))
	r := b.node("Reshape", "reshape", []string{x, "shape"}, nil)
	b.shapes[r] = inShape
	b.output(b.conv("conv", r, 4, 1, 1))
	params, macs, err := prune.Cost(b.model(), inShape)
	var inc *prune.IncompleteError
	if !errors.As(err, &inc) || !slices.Equal(inc.Nodes, []string{"conv"}) {
		t.Fatalf("err %v, want IncompleteError for conv", err)
	}
	if params != 4*3+4 || macs != 0 {
		t.Errorf("params %d, MACs %d; want 16, 0", params, macs)
	}
}

func TestTable(t *testing.T) {
	var c pruneCase
	for _, pc := range pruneCases() {
		if pc.name == "residual-add" {
			c = pc
		}
	}
	var b bytes.Buffer
	analyze(t, c.build(t)).Table(&b)
	want := `ID  CH  PRODUCERS        CONSUMERS  STATUS
0   8   convA (+1 more)  2          prunable
1   4   convC            0          blocked: graph output "convC_out"
2 groups: 1 prunable (8 channels), 1 blocked
`
	if b.String() != want {
		t.Errorf("table:\n%s\nwant:\n%s", b.String(), want)
	}
}
