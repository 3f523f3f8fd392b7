package quant

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"google.golang.org/protobuf/proto"

	"github.com/edgedet/edgedet/onnx"
	"github.com/edgedet/edgedet/onnx/onnxpb"
	"github.com/edgedet/edgedet/onnx/ortrun"
)

// Channel-range splitting: the exact form of cross-layer equalization for
// networks whose activation is not positively homogeneous.
//
// An activation is quantized with one scale for all its channels. Where a
// convolution's output channels have very different ranges, the narrow
// channels get only a few steps: YOLOX-Nano's stem output spans ±115 in
// some channels and ±0.03 in others, so an INT8 stem leaves those channels
// one or two codes and the depthwise convolution after it (which reads each
// channel alone) passes the damage on — this one place costs about seven
// points of mAP. Cross-layer equalization would scale the channels to
// similar ranges and undo the scale in the next layer, but that is exact
// only through piecewise-linear activations (ReLU), and YOLOX uses SiLU.
//
// Splitting is exact for any element-wise activation: the convolution A is
// cut into groups of channels with similar ranges, each with its own
// activation and its own slice of the depthwise convolution D that follows
// (a depthwise convolution reads each channel alone, so it splits without
// change), and each group's tensors get their own quantization scale. The
// groups meet again in a Concat after D's activation, and the convolution P
// that reads it takes its input channels in the new order. In float the
// model computes the same values; in INT8 every group keeps its precision
// up to the Concat.
//
//	A → act → D(depthwise) → act → P   becomes
//	A[g1] → act → D[g1] → act ┐
//	A[g2] → act → D[g2] → act ┼ Concat → P(input channels permuted)
//	…                         ┘

// splitRatio is the widest ratio of channel ranges one group holds: a
// channel whose range is smaller than 1/splitRatio of its group's widest
// starts a new group (it would lose more than log2(splitRatio) bits).
const splitRatio = 8

// maxSplitGroups bounds the groups one convolution is cut into.
const maxSplitGroups = 4

// splitFrames is how many calibration frames measure the channel ranges.
const splitFrames = 16

// splitSite is one A → act → D → act → P chain that can be split.
type splitSite struct {
	a, d, p *onnxpb.NodeProto
	act1    []*onnxpb.NodeProto // A's activation (Sigmoid, Mul) or one unary node
	act2    []*onnxpb.NodeProto // D's activation
}

// replaced lists the nodes a split replaces by per-group copies: A, D and
// both activations (P stays, with its weight's input channels permuted).
func (s splitSite) replaced() []*onnxpb.NodeProto {
	return slices.Concat([]*onnxpb.NodeProto{s.a, s.d}, s.act1, s.act2)
}

// SplitReport says how one convolution's channels were split.
type SplitReport struct {
	Node   string `json:"node"`
	Groups []int  `json:"groups"` // channels per group, widest range first
}

// unaryActs are the single-node activations a split chain may use.
var unaryActs = map[string]bool{"Relu": true, "LeakyRelu": true, "Sigmoid": true, "HardSwish": true, "HardSigmoid": true, "Clip": true, "Tanh": true}

// activationAfter returns the nodes of the element-wise activation that
// reads tensor t and is t's only consumer (SiLU as Sigmoid and Mul, or one
// unary op), and the activation's output; nil when there is none.
func activationAfter(g *onnx.Graph, t string) ([]*onnxpb.NodeProto, string) {
	cons := g.Consumers(t)
	switch len(cons) {
	case 1:
		n := cons[0]
		if unaryActs[n.GetOpType()] && onnx.IsDefaultDomain(n.GetDomain()) && len(n.GetOutput()) == 1 && n.GetInput()[0] == t {
			if n.GetOpType() == "Clip" && !constInputs(g, n) {
				return nil, ""
			}
			return []*onnxpb.NodeProto{n}, n.GetOutput()[0]
		}
	case 2:
		sig, mul := cons[0], cons[1]
		if sig.GetOpType() != "Sigmoid" {
			sig, mul = mul, sig
		}
		if sig.GetOpType() == "Sigmoid" && mul.GetOpType() == "Mul" && isSiLU(sig, mul) &&
			len(g.Consumers(sig.GetOutput()[0])) == 1 && len(mul.GetOutput()) == 1 {
			return []*onnxpb.NodeProto{sig, mul}, mul.GetOutput()[0]
		}
	}
	return nil, ""
}

// constInputs reports whether every input of n but the first is empty or
// an initializer.
func constInputs(g *onnx.Graph, n *onnxpb.NodeProto) bool {
	for _, in := range n.GetInput()[1:] {
		if in != "" && g.Initializer(in) == nil {
			return false
		}
	}
	return true
}

// single returns the only consumer of t, or nil.
func singleConsumer(g *onnx.Graph, t string) *onnxpb.NodeProto {
	if c := g.Consumers(t); len(c) == 1 && !g.IsOutput(t) {
		return c[0]
	}
	return nil
}

// convWeight returns Conv n's float weight initializer with dims and its
// bias (nil if none); ok is false when either is not a plain float
// initializer read only by n.
func convWeight(g *onnx.Graph, n *onnxpb.NodeProto) (w, b *onnxpb.TensorProto, ok bool) {
	if n.GetOpType() != "Conv" || !onnx.IsDefaultDomain(n.GetDomain()) || len(n.GetInput()) < 2 {
		return nil, nil, false
	}
	w = g.Initializer(n.GetInput()[1])
	if !onnx.IsFloatInitializer(w) || len(w.GetDims()) != 4 || slices.ContainsFunc(w.GetDims(), func(d int64) bool { return d <= 0 }) ||
		weightShared(g, w.GetName()) {
		return nil, nil, false
	}
	if in := inputAt(n, 2); in != "" {
		b = g.Initializer(in)
		if !onnx.IsFloatInitializer(b) || len(b.GetDims()) != 1 || b.GetDims()[0] != w.GetDims()[0] || weightShared(g, b.GetName()) {
			return nil, nil, false
		}
	}
	return w, b, true
}

// findSplitSites lists the chains Conv A → act → depthwise Conv D → act →
// Conv P (group 1) in which every intermediate tensor has one consumer.
func findSplitSites(g *onnx.Graph, order []*onnxpb.NodeProto) []splitSite {
	var sites []splitSite
	for _, a := range order {
		wa, _, ok := convWeight(g, a)
		if !ok || onnx.AttrInt(a, "group", 1) != 1 || len(a.GetOutput()) != 1 || g.IsOutput(a.GetOutput()[0]) {
			continue
		}
		channels := wa.GetDims()[0]
		act1, t1 := activationAfter(g, a.GetOutput()[0])
		if act1 == nil || g.IsOutput(t1) {
			continue
		}
		d := singleConsumer(g, t1)
		if d == nil {
			continue
		}
		wd, _, ok := convWeight(g, d)
		if !ok || onnx.AttrInt(d, "group", 1) != channels || wd.GetDims()[0] != channels || wd.GetDims()[1] != 1 || d.GetInput()[0] != t1 {
			continue
		}
		act2, t2 := activationAfter(g, d.GetOutput()[0])
		if act2 == nil {
			continue
		}
		p := singleConsumer(g, t2)
		if p == nil {
			continue
		}
		wp, _, ok := convWeight(g, p)
		if !ok || onnx.AttrInt(p, "group", 1) != 1 || wp.GetDims()[1] != channels || p.GetInput()[0] != t2 {
			continue
		}
		sites = append(sites, splitSite{a: a, d: d, p: p, act1: act1, act2: act2})
	}
	return sites
}

// channelRanges holds per-channel min and max of NCHW tensors.
type channelRanges struct {
	lo, hi []float32
}

func (r *channelRanges) add(shape []int64, v []float32) {
	if len(shape) != 4 || shape[1] <= 0 {
		return
	}
	c := int(shape[1])
	plane := int(shape[2] * shape[3])
	if r.lo == nil {
		r.lo = make([]float32, c)
		r.hi = make([]float32, c)
	}
	if len(r.lo) != c || plane <= 0 || len(v) < int(shape[0])*c*plane {
		return
	}
	for b := range int(shape[0]) {
		for k := range c {
			for _, x := range v[(b*c+k)*plane : (b*c+k+1)*plane] {
				r.lo[k] = min(r.lo[k], x)
				r.hi[k] = max(r.hi[k], x)
			}
		}
	}
}

// splitGroups partitions the channels by range (hi − lo): sorted widest
// first, a channel starts a new group when its range is below 1/splitRatio
// of its group's widest, up to maxSplitGroups groups (the last takes the
// rest); groups of fewer than minGroup channels are merged (see
// mergeSmallGroups). Each group lists channel indices in ascending order.
func splitGroups(r channelRanges, minGroup int) [][]int {
	idx := make([]int, len(r.lo))
	for i := range idx {
		idx[i] = i
	}
	width := func(c int) float32 { return r.hi[c] - r.lo[c] }
	slices.SortStableFunc(idx, func(a, b int) int { return cmp.Compare(width(b), width(a)) })
	var groups [][]int
	var top float32
	for _, c := range idx {
		if len(groups) == 0 || (len(groups) < maxSplitGroups && width(c)*splitRatio < top) {
			groups = append(groups, nil)
			top = width(c)
		}
		groups[len(groups)-1] = append(groups[len(groups)-1], c)
	}
	groups = mergeSmallGroups(groups, minGroup)
	for _, gr := range groups {
		slices.Sort(gr)
	}
	return groups
}

// minSplitGroup is the fewest channels a split group may have. With
// yolox_nano's groups of 1 and of 3 channels (a 1×1 convolution, then a
// depthwise one), ONNX Runtime 1.24's x86 INT8 kernels returned results
// that changed from run to run (mAP 0.06 to 0.23 on the same images, on a
// Xeon with AVX-512 VNNI and AMX; a group of 2 in the head did not), and a
// group that small costs more time as a separate convolution than it saves
// in accuracy.
var minSplitGroup = 4 // a variable so that tests can split tiny layers

// mergeSmallGroups joins every group of fewer than minGroup channels to
// the group before it (the first to the one after it), so that the result
// has no small group unless there is only one group.
func mergeSmallGroups(groups [][]int, minGroup int) [][]int {
	var out [][]int
	for _, g := range groups {
		if len(out) > 0 && (len(g) < minGroup || len(out[len(out)-1]) < minGroup) {
			out[len(out)-1] = append(out[len(out)-1], g...)
			continue
		}
		out = append(out, g)
	}
	return out
}

// measureSplitSites runs the float model on up to splitFrames calibration
// inputs and returns the per-channel ranges of every site's A output.
func measureSplitSites(ctx context.Context, m *onnxpb.ModelProto, sites []splitSite, inName string, inShape []int64, inputs onnx.Inputs, threads int) ([]channelRanges, error) {
	outs := make([]string, len(sites))
	for i, s := range sites {
		outs[i] = s.a.GetOutput()[0]
	}
	byName, err := tensorChannelRanges(ctx, m, inName, inShape, outs, inputs, threads)
	if err != nil {
		return nil, err
	}
	ranges := make([]channelRanges, len(sites))
	for i, t := range outs {
		ranges[i] = byName[t]
	}
	return ranges, nil
}

// tensorChannelRanges runs m on up to splitFrames calibration inputs
// spread over the set and returns the per-channel ranges of the NCHW
// tensors outs (the graph input among them is read from the inputs).
func tensorChannelRanges(ctx context.Context, m *onnxpb.ModelProto, inName string, inShape []int64, outs []string, inputs onnx.Inputs, threads int) (map[string]channelRanges, error) {
	outs = slices.Compact(slices.Sorted(slices.Values(outs)))
	var graphInput bool
	outs = slices.DeleteFunc(outs, func(t string) bool {
		graphInput = graphInput || t == inName
		return t == inName
	})
	var r *ortrun.Runner
	var buf []float32
	if len(outs) > 0 {
		var err error
		if r, err = ortrun.NewRunner(m, inName, inShape, outs, threads); err != nil {
			return nil, fmt.Errorf("channel ranges: %w", err)
		}
		defer r.Close()
		buf = r.Input()
	} else {
		n := 1
		for _, d := range inShape {
			n *= int(d)
		}
		buf = make([]float32, n)
	}
	ranges := make([]channelRanges, len(outs))
	var in channelRanges
	n := min(inputs.Len(), splitFrames)
	for j := range n {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		idx := j * inputs.Len() / n
		if err := inputs.Input(ctx, idx, buf); err != nil {
			return nil, fmt.Errorf("calibration input %d: %w", idx, err)
		}
		if graphInput {
			in.add(inShape, buf)
		}
		if r == nil {
			continue
		}
		if err := r.Run(func(k int, _ string, shape []int64, v []float32) error {
			ranges[k].add(shape, v)
			return nil
		}); err != nil {
			return nil, fmt.Errorf("channel ranges: %w", err)
		}
	}
	byName := make(map[string]channelRanges, len(outs)+1)
	for i, t := range outs {
		byName[t] = ranges[i]
	}
	if graphInput {
		byName[inName] = in
	}
	return byName, nil
}

// splitChannels measures the split sites of the float model m (BatchNorm
// folded, nodes named) and splits those whose channel ranges differ by more
// than splitRatio, in place. It returns what it split.
// Sites with a replaced node (A, D or an activation) named in keep are
// left alone: an excluded node must stay as it is.
func splitChannels(ctx context.Context, m *onnxpb.ModelProto, inName string, inShape []int64, inputs onnx.Inputs, threads int, keep map[string]bool) ([]SplitReport, error) {
	g := onnx.NewGraph(m)
	order, err := g.TopoSort()
	if err != nil {
		return nil, err
	}
	var sites []splitSite
	for _, s := range findSplitSites(g, order) {
		if !slices.ContainsFunc(s.replaced(), func(n *onnxpb.NodeProto) bool { return keep[n.GetName()] }) {
			sites = append(sites, s)
		}
	}
	if len(sites) == 0 {
		return nil, nil
	}
	ranges, err := measureSplitSites(ctx, m, sites, inName, inShape, inputs, threads)
	if err != nil {
		return nil, err
	}
	var reps []SplitReport
	names := onnx.TensorNames(m.GetGraph())
	for i, s := range sites {
		groups := splitGroups(ranges[i], minSplitGroup)
		if len(groups) < 2 {
			continue
		}
		done, err := applySplit(g, names, s, groups)
		if err != nil {
			return nil, fmt.Errorf("split %q: %w", s.a.GetName(), err)
		}
		g.Reindex()
		if !done {
			continue
		}
		rep := SplitReport{Node: s.a.GetName()}
		for _, gr := range groups {
			rep.Groups = append(rep.Groups, len(gr))
		}
		reps = append(reps, rep)
	}
	if len(reps) == 0 {
		return nil, nil
	}
	removeUnusedInitializers(m.GetGraph())
	g.Reindex()
	sorted, err := g.TopoSort()
	if err != nil {
		return nil, err
	}
	m.GetGraph().Node = sorted
	return reps, nil
}

// applySplit rewrites one site (see the package comment on splitting):
// the nodes of A, its activation, D and its activation are replaced by one
// copy per group, a Concat writes D's activation output under its old name
// in group order, and P's weight takes its input channels in that order.
// It reports false, changing nothing, when an earlier split changed the
// site.
func applySplit(g *onnx.Graph, names map[string]bool, s splitSite, groups [][]int) (bool, error) {
	gp := g.Model.GetGraph()
	wa, ba, okA := convWeight(g, s.a)
	wd, bd, okD := convWeight(g, s.d)
	wp, _, okP := convWeight(g, s.p)
	acts, t2 := activationAfter(g, s.d.GetOutput()[0])
	if !okA || !okD || !okP || len(acts) != len(s.act2) || singleConsumer(g, t2) != s.p {
		return false, nil
	}
	var added []*onnxpb.NodeProto
	var concatIn []string
	var perm []int
	for k, gr := range groups {
		suffix := fmt.Sprintf("/split%d", k)
		a, err := sliceConv(gp, names, s.a, wa, ba, gr, suffix, 1)
		if err != nil {
			return false, err
		}
		act1, t1 := cloneActivation(names, s.act1, a.GetOutput()[0], suffix)
		d, err := sliceConv(gp, names, s.d, wd, bd, gr, suffix, int64(len(gr)))
		if err != nil {
			return false, err
		}
		d.Input[0] = t1
		act2, out := cloneActivation(names, s.act2, d.GetOutput()[0], suffix)
		added = append(added, a)
		added = append(added, act1...)
		added = append(added, d)
		added = append(added, act2...)
		concatIn = append(concatIn, out)
		perm = append(perm, gr...)
	}
	added = append(added, &onnxpb.NodeProto{
		Name: proto.String(onnx.UniqueName(names, s.d.GetName()+"/split_Concat")), OpType: proto.String("Concat"),
		Input: concatIn, Output: []string{t2}, Attribute: []*onnxpb.AttributeProto{onnx.IntAttr("axis", 1)},
	})
	if err := permuteInputChannels(gp, names, s.p, wp, perm); err != nil {
		return false, err
	}
	drop := map[*onnxpb.NodeProto]bool{s.a: true, s.d: true}
	for _, n := range append(slices.Clone(s.act1), s.act2...) {
		drop[n] = true
	}
	kept := gp.Node[:0]
	for _, n := range gp.Node {
		if !drop[n] {
			kept = append(kept, n)
		}
	}
	clear(gp.Node[len(kept):])
	gp.Node = append(kept, added...)
	gone := map[string]bool{s.a.GetOutput()[0]: true, s.d.GetOutput()[0]: true}
	for _, n := range s.act1 {
		gone[n.GetOutput()[0]] = true
	}
	for _, n := range s.act2[:len(s.act2)-1] {
		gone[n.GetOutput()[0]] = true
	}
	gp.ValueInfo = onnx.FilterValueInfo(gp.ValueInfo, func(name string) bool { return !gone[name] })
	return true, nil
}

// sliceConv returns a copy of Conv n computing only output channels chans
// (weight and bias rows), with group set to group, writing a new tensor.
func sliceConv(gp *onnxpb.GraphProto, names map[string]bool, n *onnxpb.NodeProto, w, b *onnxpb.TensorProto, chans []int, suffix string, group int64) (*onnxpb.NodeProto, error) {
	wv, err := onnx.TensorFloats(w)
	if err != nil {
		return nil, err
	}
	dims := w.GetDims()
	per := len(wv) / int(dims[0])
	sw := make([]float32, 0, len(chans)*per)
	for _, c := range chans {
		sw = append(sw, wv[c*per:(c+1)*per]...)
	}
	sdims := slices.Clone(dims)
	sdims[0] = int64(len(chans))
	c := proto.Clone(n).(*onnxpb.NodeProto)
	c.Name = proto.String(onnx.UniqueName(names, n.GetName()+suffix))
	wName := onnx.UniqueName(names, w.GetName()+suffix)
	gp.Initializer = append(gp.Initializer, onnx.Float32Tensor(wName, sdims, sw))
	c.Input[1] = wName
	if b != nil {
		bv, err := onnx.TensorFloats(b)
		if err != nil {
			return nil, err
		}
		sb := make([]float32, len(chans))
		for i, ch := range chans {
			sb[i] = bv[ch]
		}
		bName := onnx.UniqueName(names, b.GetName()+suffix)
		gp.Initializer = append(gp.Initializer, onnx.Float32Vector(bName, sb))
		c.Input[2] = bName
	}
	c.Output = []string{onnx.UniqueName(names, n.GetOutput()[0]+suffix)}
	if onnx.AttrInt(n, "group", 1) != 1 || group != 1 {
		setIntAttr(c, "group", group)
	}
	return c, nil
}

// cloneActivation copies the activation nodes acts (reading the tensor
// acts[0] reads) to read in instead, with new outputs; it returns the
// copies and the new output of the last.
func cloneActivation(names map[string]bool, acts []*onnxpb.NodeProto, in, suffix string) ([]*onnxpb.NodeProto, string) {
	src := acts[0].GetInput()[0]
	rename := map[string]string{src: in}
	out := make([]*onnxpb.NodeProto, len(acts))
	for i, n := range acts {
		c := proto.Clone(n).(*onnxpb.NodeProto)
		c.Name = proto.String(onnx.UniqueName(names, n.GetName()+suffix))
		for j, x := range c.Input {
			if r, ok := rename[x]; ok {
				c.Input[j] = r
			}
		}
		for j, x := range c.Output {
			r := onnx.UniqueName(names, x+suffix)
			rename[x] = r
			c.Output[j] = r
		}
		out[i] = c
	}
	return out, out[len(out)-1].GetOutput()[0]
}

// permuteInputChannels gives Conv n (group 1) a copy of its weight w whose
// input channel j is the old channel perm[j].
func permuteInputChannels(gp *onnxpb.GraphProto, names map[string]bool, n *onnxpb.NodeProto, w *onnxpb.TensorProto, perm []int) error {
	wv, err := onnx.TensorFloats(w)
	if err != nil {
		return err
	}
	dims := w.GetDims()
	out, in := int(dims[0]), int(dims[1])
	if in != len(perm) {
		return fmt.Errorf("weight %q has %d input channels, the split %d", w.GetName(), in, len(perm))
	}
	k := len(wv) / (out * in)
	pw := make([]float32, len(wv))
	for o := range out {
		for j, old := range perm {
			copy(pw[(o*in+j)*k:(o*in+j+1)*k], wv[(o*in+old)*k:(o*in+old+1)*k])
		}
	}
	name := onnx.UniqueName(names, w.GetName()+"/split_perm")
	gp.Initializer = append(gp.Initializer, onnx.Float32Tensor(name, dims, pw))
	n.Input[1] = name
	return nil
}

// setIntAttr sets (or adds) int attribute name of n.
func setIntAttr(n *onnxpb.NodeProto, name string, v int64) {
	for _, a := range n.GetAttribute() {
		if a.GetName() == name {
			a.I = proto.Int64(v)
			return
		}
	}
	n.Attribute = append(n.Attribute, onnx.IntAttr(name, v))
}
