package quant

import (
	"context"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/edgedet/edgedet/onnx"
	"github.com/edgedet/edgedet/onnx/onnxpb"
)

// splitModel builds x[1,2,6,6] ─A(1×1, 4 channels of ranges ≈50, 0.05,
// 40, 0.02)─SiLU─D(3×3 depthwise)─SiLU─P(1×1, 2 channels)─y, the shape of
// YOLOX's stem → dark2.0 chain. D's weights undo A's gains, so D's outputs
// have similar ranges, as in YOLOX.
func splitModel() *onnxpb.ModelProto {
	rng := rand.New(rand.NewPCG(7, 8))
	gain := []float32{50, 0.05, 40, 0.02}
	wa := randFloats(rng, 8, -1, 1)
	for i := range wa {
		wa[i] *= gain[i/2]
	}
	wd := randFloats(rng, 36, -1, 1)
	for i := range wd {
		wd[i] /= gain[i/9]
	}
	ba := randFloats(rng, 4, -0.1, 0.1)
	for i := range ba {
		ba[i] *= gain[i]
	}
	pads := &onnxpb.AttributeProto{Name: proto.String("pads"), Type: onnxpb.AttributeProto_INTS.Enum(), Ints: []int64{1, 1, 1, 1}}
	silu := func(in, name string) []*onnxpb.NodeProto {
		return []*onnxpb.NodeProto{
			qtNode(name+"_sig", "Sigmoid", []string{in}, []string{name + "_s"}),
			qtNode(name+"_mul", "Mul", []string{in, name + "_s"}, []string{name + "_m"}),
		}
	}
	nodes := []*onnxpb.NodeProto{qtNode("A", "Conv", []string{"x", "WA", "BA"}, []string{"a"})}
	nodes = append(nodes, silu("a", "act1")...)
	nodes = append(nodes, qtNode("D", "Conv", []string{"act1_m", "WD", "BD"}, []string{"d"}, pads, onnx.IntAttr("group", 4)))
	nodes = append(nodes, silu("d", "act2")...)
	nodes = append(nodes, qtNode("P", "Conv", []string{"act2_m", "WP", "BP"}, []string{"y"}))
	return qtModel(nodes, []*onnxpb.TensorProto{
		onnx.Float32Tensor("WA", []int64{4, 2, 1, 1}, wa),
		onnx.Float32Vector("BA", ba),
		onnx.Float32Tensor("WD", []int64{4, 1, 3, 3}, wd),
		onnx.Float32Vector("BD", randFloats(rng, 4, -0.2, 0.2)),
		onnx.Float32Tensor("WP", []int64{2, 4, 1, 1}, randFloats(rng, 8, -1, 1)),
		onnx.Float32Vector("BP", randFloats(rng, 2, -0.2, 0.2)),
	}, qtValueInfo("x", 1, 2, 6, 6), qtValueInfo("y", 1, 2, 6, 6))
}

func TestSplitGroups(t *testing.T) {
	r := channelRanges{lo: []float32{-100, 0, -1, -0.09, 0, -20}, hi: []float32{100, 0.5, 90, 0.01, 1, 10}}
	got := splitGroups(r, 1)
	want := [][]int{{0, 2, 5}, {1, 4}, {3}}
	if len(got) != len(want) {
		t.Fatalf("groups = %v, want %v", got, want)
	}
	for i := range want {
		if !slices.Equal(got[i], want[i]) {
			t.Errorf("groups = %v, want %v", got, want)
		}
	}
	even := channelRanges{lo: []float32{-1, -2, 0}, hi: []float32{1, 2, 3}}
	if g := splitGroups(even, 1); len(g) != 1 {
		t.Errorf("ranges within 8× of each other: groups %v, want one", g)
	}
	// At most maxSplitGroups groups; the last takes the rest.
	many := channelRanges{lo: make([]float32, 6), hi: []float32{1e6, 1e5, 1e4, 1e3, 1e2, 1e1}}
	if g := splitGroups(many, 1); len(g) != maxSplitGroups || len(g[maxSplitGroups-1]) != 3 {
		t.Errorf("six decades: groups %v, want %d with the last holding 3", g, maxSplitGroups)
	}
	// Groups below the minimum join the group before them (the first
	// joins the one after it).
	if g := splitGroups(r, 2); len(g) != 2 || !slices.Equal(g[0], []int{0, 2, 5}) || !slices.Equal(g[1], []int{1, 3, 4}) {
		t.Errorf("minimum 2: groups %v, want [[0 2 5] [1 3 4]]", g)
	}
	if g := splitGroups(r, 4); len(g) != 1 || len(g[0]) != 6 {
		t.Errorf("minimum 4: groups %v, want one of 6", g)
	}
	first := channelRanges{lo: make([]float32, 4), hi: []float32{100, 1, 1, 1}}
	if g := splitGroups(first, 2); len(g) != 1 {
		t.Errorf("one wide channel, minimum 2: groups %v, want one", g)
	}
}

// Splitting leaves the float model's output unchanged, and the all-INT8
// model made from the split model is much closer to FP32 than the one made
// from the original.
func TestSplitChannelsExactAndHelpsINT8(t *testing.T) {
	qtInitORT(t)
	defer func(m int) { minSplitGroup = m }(minSplitGroup)
	minSplitGroup = 1 // A has 4 channels
	ctx := context.Background()
	in := randomInputs{n: 8, seed: 11}
	orig := splitModel()
	split := proto.Clone(orig).(*onnxpb.ModelProto)
	reps, err := splitChannels(ctx, split, "x", []int64{1, 2, 6, 6}, in, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(reps) != 1 || reps[0].Node != "A" || len(reps[0].Groups) < 2 {
		t.Fatalf("split report %+v, want A split into ≥ 2 groups", reps)
	}
	if _, err := onnx.NewGraph(split).TopoSort(); err != nil {
		t.Fatal(err)
	}
	x := make([]float32, 2*6*6)
	if err := in.Input(ctx, 3, x); err != nil {
		t.Fatal(err)
	}
	want := runModel(t, orig, x, false)
	if e := relErr(runModel(t, split, x, false), want); e > 1e-5 {
		t.Errorf("split float model differs from the original: relative error %.2e", e)
	}
	opt := DefaultOptions()
	opt.Elementwise, opt.MaxError, opt.ReduceRange = true, -1, false
	quantErr := func(splitOn bool) float64 {
		opt.SplitChannels = splitOn
		q, rep, err := Quantize(ctx, orig, in, opt)
		if err != nil {
			t.Fatal(err)
		}
		if splitOn != (len(rep.Split) == 1) {
			t.Errorf("SplitChannels %v: report lists %d splits", splitOn, len(rep.Split))
		}
		return relErr(runModel(t, q, x, false), want)
	}
	plain, withSplit := quantErr(false), quantErr(true)
	t.Logf("all-INT8 relative output error: %.3g unsplit, %.3g split", plain, withSplit)
	if withSplit > plain/2 {
		t.Errorf("split INT8 error %.3g, want ≤ half the unsplit %.3g", withSplit, plain)
	}
}

// A chain whose tensors have other readers, or whose second convolution is
// not depthwise, is not a split site.
func TestFindSplitSites(t *testing.T) {
	m := splitModel()
	g := onnx.NewGraph(m)
	order, err := g.TopoSort()
	if err != nil {
		t.Fatal(err)
	}
	if s := findSplitSites(g, order); len(s) != 1 || s[0].a.GetName() != "A" || s[0].d.GetName() != "D" || s[0].p.GetName() != "P" {
		t.Fatalf("sites of the chain: %+v, want A → D → P", s)
	}
	// A second reader of D's activation.
	m2 := proto.Clone(m).(*onnxpb.ModelProto)
	gp := m2.GetGraph()
	gp.Node = append(gp.Node, qtNode("extra", "Relu", []string{"act2_m"}, []string{"z"}))
	gp.Output = append(gp.Output, qtValueInfo("z", 1, 4, 6, 6))
	g2 := onnx.NewGraph(m2)
	order2, _ := g2.TopoSort()
	if s := findSplitSites(g2, order2); len(s) != 0 {
		t.Errorf("D's activation read twice: %d sites, want 0", len(s))
	}
	// D not depthwise.
	m3 := proto.Clone(m).(*onnxpb.ModelProto)
	setIntAttr(qtNodeByName(m3, "D"), "group", 2)
	g3 := onnx.NewGraph(m3)
	order3, _ := g3.TopoSort()
	if s := findSplitSites(g3, order3); len(s) != 0 {
		t.Errorf("grouped (not depthwise) D: %d sites, want 0", len(s))
	}
}

// TestFindSplitSitesRefusals: each condition on the chain A → act →
// depthwise D → act → P, broken alone, leaves no site.
func TestFindSplitSitesRefusals(t *testing.T) {
	init := func(m *onnxpb.ModelProto, name string) *onnxpb.TensorProto {
		for _, in := range m.Graph.Initializer {
			if in.GetName() == name {
				return in
			}
		}
		t.Fatalf("no initializer %q", name)
		return nil
	}
	for _, c := range []struct {
		name string
		edit func(m *onnxpb.ModelProto)
	}{
		{"A grouped", func(m *onnxpb.ModelProto) { setIntAttr(qtNodeByName(m, "A"), "group", 2) }},
		{"A output is a graph output", func(m *onnxpb.ModelProto) { m.Graph.Output = append(m.Graph.Output, qtValueInfo("a", 1, 4, 6, 6)) }},
		{"A activation output is a graph output", func(m *onnxpb.ModelProto) {
			m.Graph.Output = append(m.Graph.Output, qtValueInfo("act1_m", 1, 4, 6, 6))
		}},
		{"A without activation", func(m *onnxpb.ModelProto) { qtNodeByName(m, "act1_sig").OpType = proto.String("Tanh") }},
		{"D weight of 2 inputs per group", func(m *onnxpb.ModelProto) { init(m, "WD").Dims = []int64{4, 2, 3, 3} }},
		{"D of other channels", func(m *onnxpb.ModelProto) { setIntAttr(qtNodeByName(m, "D"), "group", 3) }},
		{"D without activation", func(m *onnxpb.ModelProto) { qtNodeByName(m, "act2_sig").OpType = proto.String("Tanh") }},
		{"P grouped", func(m *onnxpb.ModelProto) { setIntAttr(qtNodeByName(m, "P"), "group", 2) }},
		{"P of other input channels", func(m *onnxpb.ModelProto) { init(m, "WP").Dims = []int64{4, 2, 1, 1} }},
		{"P read twice", func(m *onnxpb.ModelProto) {
			m.Graph.Node = append(m.Graph.Node, qtNode("Q", "Relu", []string{"act2_m"}, []string{"z"}))
		}},
	} {
		m := splitModel()
		c.edit(m)
		g := onnx.NewGraph(m)
		order, err := g.TopoSort()
		if err != nil {
			t.Fatal(err)
		}
		if s := findSplitSites(g, order); len(s) != 0 {
			t.Errorf("%s: %d sites, want none", c.name, len(s))
		}
	}
}

// TestMeasureSplitSitesInputError: a calibration input that cannot be
// read fails the measurement with its error.
func TestMeasureSplitSitesInputError(t *testing.T) {
	qtInitORT(t)
	m := splitModel()
	g := onnx.NewGraph(m)
	order, err := g.TopoSort()
	if err != nil {
		t.Fatal(err)
	}
	sites := findSplitSites(g, order)
	r, err := measureSplitSites(context.Background(), m, sites, "x", []int64{1, 2, 6, 6}, failingInputs{n: 2}, 1)
	if err == nil || !strings.Contains(err.Error(), "calibration input 0: frame unreadable") || r != nil {
		t.Errorf("ranges %v, err %v; want the input's error", r, err)
	}
	r, err = measureSplitSites(context.Background(), m, sites, "x", []int64{1, 2, 6, 6}, randomInputs{n: 2, seed: 1}, 1)
	if err != nil || len(r) != 1 || len(r[0].lo) != 4 {
		t.Fatalf("ranges %v, err %v; want A's 4 channels", r, err)
	}
	if w0, w1 := r[0].hi[0]-r[0].lo[0], r[0].hi[1]-r[0].lo[1]; w0 < 100*w1 {
		t.Errorf("A's channel widths %g and %g: want the gains 50 and 0.05 to show", w0, w1)
	}
}

// TestSplitChannelsRewrite: the split replaces the chain's nodes (none is
// left behind or doubled), and a site with any of them kept (A, D or an
// activation node) is not split.
func TestSplitChannelsRewrite(t *testing.T) {
	qtInitORT(t)
	defer func(m int) { minSplitGroup = m }(minSplitGroup)
	minSplitGroup = 1
	ctx := context.Background()
	in := randomInputs{n: 4, seed: 13}
	split := splitModel()
	if _, err := splitChannels(ctx, split, "x", []int64{1, 2, 6, 6}, in, 1, nil); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, n := range split.Graph.Node {
		if seen[n.GetName()] {
			t.Errorf("node %q twice", n.GetName())
		}
		seen[n.GetName()] = true
	}
	for _, gone := range []string{"A", "act1_sig", "act1_mul", "D", "act2_sig", "act2_mul"} {
		if seen[gone] {
			t.Errorf("%s still in the split model", gone)
		}
	}
	if !seen["P"] {
		t.Error("P is gone")
	}
	for _, keep := range []string{"A", "act1_sig", "act1_mul", "D", "act2_sig", "act2_mul"} {
		m := splitModel()
		reps, err := splitChannels(ctx, m, "x", []int64{1, 2, 6, 6}, in, 1, map[string]bool{keep: true})
		if err != nil || reps != nil || !proto.Equal(m, splitModel()) {
			t.Errorf("keep %s: reports %v, err %v, model changed %t", keep, reps, err, !proto.Equal(m, splitModel()))
		}
	}
}

// TestApplySplitPartialGroups: groups that do not cover P's input
// channels are refused (P's weight could not be permuted).
func TestApplySplitPartialGroups(t *testing.T) {
	m := splitModel()
	g := onnx.NewGraph(m)
	order, err := g.TopoSort()
	if err != nil {
		t.Fatal(err)
	}
	sites := findSplitSites(g, order)
	_, err = applySplit(g, onnx.TensorNames(m.Graph), sites[0], [][]int{{0, 2}, {1}})
	if err == nil || !strings.Contains(err.Error(), `weight "WP" has 4 input channels, the split 3`) {
		t.Errorf("err %v, want P's weight named", err)
	}
}

// TestQuantizeSplitKeepsExcludedActivation: excluding a node of a split
// chain's activation keeps that chain whole, so the exclusion still names
// a node of the model (it was refused as naming none once the split had
// replaced the node).
func TestQuantizeSplitKeepsExcludedActivation(t *testing.T) {
	qtInitORT(t)
	defer func(m int) { minSplitGroup = m }(minSplitGroup)
	minSplitGroup = 1
	for _, c := range []struct {
		exclude string
		splits  int
	}{{"P", 1}, {"act1_mul", 0}, {"act2_sig", 0}} {
		opt := DefaultOptions()
		opt.SplitChannels, opt.Elementwise, opt.MaxError, opt.EntryFloat = true, true, -1, false
		opt.Exclude = []string{c.exclude}
		_, rep, err := Quantize(context.Background(), splitModel(), randomInputs{n: 4, seed: 1}, opt)
		if err != nil {
			t.Errorf("exclude %s: %v", c.exclude, err)
			continue
		}
		if len(rep.Split) != c.splits {
			t.Errorf("exclude %s: splits %+v, want %d", c.exclude, rep.Split, c.splits)
		}
	}
}
