package quant

import (
	"fmt"
	"slices"
	"strconv"

	"google.golang.org/protobuf/proto"

	"github.com/edgedet/edgedet/onnx"
	"github.com/edgedet/edgedet/onnx/onnxpb"
)

// buildQDQ returns a copy of the prepared model with QuantizeLinear /
// DequantizeLinear pairs on the activations of the plan's nodes and their
// weights stored as int8 (bias int32).
func (p *prepared) buildQDQ(plan *Plan) (*onnxpb.ModelProto, error) {
	m := proto.Clone(p.model).(*onnxpb.ModelProto)
	b := &qdqBuilder{p: p, plan: plan, g: onnx.NewGraph(m), gp: m.GetGraph(), nodes: map[string]*onnxpb.NodeProto{}}
	b.names = onnx.TensorNames(b.gp)
	for _, n := range b.gp.GetNode() {
		b.nodes[n.GetName()] = n
	}
	for _, t := range b.activations() {
		if err := b.addActivationQDQ(t); err != nil {
			return nil, err
		}
	}
	if err := b.quantizeComputeWeights(); err != nil {
		return nil, err
	}
	if err := b.storeFloatWeights(); err != nil {
		return nil, err
	}
	gp := b.gp
	gp.Node = append(gp.Node, b.added...)
	removeUnusedInitializers(gp)
	b.g.Reindex()
	sorted, err := b.g.TopoSort()
	if err != nil {
		return nil, err
	}
	gp.Node = sorted
	return m, nil
}

// qdqBuilder is buildQDQ's copy of the model and the nodes it adds to it.
type qdqBuilder struct {
	p     *prepared
	plan  *Plan
	g     *onnx.Graph
	gp    *onnxpb.GraphProto
	names map[string]bool
	nodes map[string]*onnxpb.NodeProto // the copy's nodes by name
	added []*onnxpb.NodeProto
}

// quantized reports whether the plan quantizes n (a node of the copy).
func (b *qdqBuilder) quantized(n *onnxpb.NodeProto) bool {
	return n != nil && b.plan.Quantize[n.GetName()]
}

// activations returns the activation tensors that need a Q/DQ pair, in
// graph order.
func (b *qdqBuilder) activations() []string {
	need := map[string]bool{}
	var tensors []string
	mark := func(t string) {
		if !need[t] {
			need[t] = true
			tensors = append(tensors, t)
		}
	}
	for _, n := range b.p.order {
		cn := b.nodes[n.GetName()]
		if !b.quantized(cn) {
			continue
		}
		for _, i := range b.p.quantInputs(b.g, cn) {
			t := cn.GetInput()[i]
			if b.g.Initializer(t) != nil {
				continue
			}
			if prod := b.g.Producer(t); cn.GetOpType() == "Relu" && b.quantized(prod) && !slices.Contains(b.p.quantOutputs(b.g, prod, b.plan.Quantize), t) {
				continue // fused with its producer: see quantOutputs
			}
			mark(t)
		}
		for _, t := range b.p.quantOutputs(b.g, cn, b.plan.Quantize) {
			mark(t)
		}
	}
	return tensors
}

// addActivationQDQ adds a Q/DQ pair on activation t and makes the consumers
// that need it (quantized ones, or all when t's producer is quantized) read
// the dequantized tensor.
func (b *qdqBuilder) addActivationQDQ(t string) error {
	g, gp, names := b.g, b.gp, b.names
	r, ok := b.plan.Ranges[t]
	if !ok {
		return fmt.Errorf("no calibration range for tensor %q", t)
	}
	qp := activationParams(r[0], r[1], b.plan.Profile)
	stem := shortStem(names, "a")
	scale := onnx.UniqueName(names, stem+"_scale")
	zp := onnx.UniqueName(names, stem+"_zp")
	qOut := onnx.UniqueName(names, stem+"_q")
	dqOut := onnx.UniqueName(names, stem+"_dq")
	gp.Initializer = append(gp.Initializer, onnx.Float32Scalar(scale, qp.scale), zeroPoint(zp, qp))
	b.added = append(b.added,
		qdqNode(onnx.UniqueName(names, stem+"_Q"), "QuantizeLinear", []string{t, scale, zp}, qOut, -1),
		qdqNode(onnx.UniqueName(names, stem+"_DQ"), "DequantizeLinear", []string{qOut, scale, zp}, dqOut, -1))
	producerQuantized := b.quantized(g.Producer(t))
	for _, c := range g.Consumers(t) {
		useDQ := producerQuantized
		if b.quantized(c) {
			for _, i := range b.p.quantInputs(g, c) {
				if c.GetInput()[i] == t {
					useDQ = true
				}
			}
		}
		if !useDQ {
			continue
		}
		for i, in := range c.GetInput() {
			if in == t {
				c.Input[i] = dqOut
			}
		}
	}
	return nil
}

// quantizeComputeWeights quantizes the weights and biases of the quantized
// compute nodes.
func (b *qdqBuilder) quantizeComputeWeights() error {
	g, plan := b.g, b.plan
	for _, n := range b.p.order {
		cn := b.nodes[n.GetName()]
		if !b.quantized(cn) || !computeOps[cn.GetOpType()] {
			continue
		}
		w := g.Initializer(cn.GetInput()[1])
		if w == nil {
			continue // MatMul of two activations: both already have Q/DQ
		}
		inRange := plan.Ranges[n.GetInput()[0]]
		inScale := activationParams(inRange[0], inRange[1], plan.Profile).scale
		var inMeans []float32
		if plan.BiasCorrection {
			inMeans = plan.InputMeans[n.GetInput()[0]]
		}
		nodesAdded, err := quantizeWeights(b.gp, b.names, cn, w, g.Initializer(inputAt(cn, 2)), inScale, plan.PerChannel, plan.ReduceRange, inMeans, plan.Hessians[n.GetName()])
		if err != nil {
			return fmt.Errorf("node %q: %w", cn.GetName(), err)
		}
		b.added = append(b.added, nodesAdded...)
	}
	return nil
}

// storeFloatWeights stores the weights of layers kept float smaller where
// the plan asks (see WeightStorage).
func (b *qdqBuilder) storeFloatWeights() error {
	g, plan := b.g, b.plan
	for _, n := range b.p.candidates {
		cn := b.nodes[n.GetName()]
		storage := plan.FloatWeights[n.GetName()]
		if b.quantized(cn) || storage == "" || storage == WeightsFloat32 {
			continue
		}
		w := g.Initializer(cn.GetInput()[1])
		if w == nil || weightShared(g, w.GetName()) {
			continue
		}
		nodesAdded, err := storeWeights(b.gp, b.names, cn, w, g.Initializer(inputAt(cn, 2)), storage, plan.PerChannel, plan.InputMeans[cn.GetInput()[0]])
		if err != nil {
			return fmt.Errorf("node %q: %w", cn.GetName(), err)
		}
		b.added = append(b.added, nodesAdded...)
	}
	return nil
}

func inputAt(n *onnxpb.NodeProto, i int) string {
	if i < len(n.GetInput()) {
		return n.GetInput()[i]
	}
	return ""
}

func zeroPoint(name string, qp qparams) *onnxpb.TensorProto {
	if qp.dtype == onnxpb.TensorProto_INT8 {
		return onnx.Int8Scalar(name, int8(qp.zp))
	}
	return onnx.Uint8Scalar(name, uint8(qp.zp))
}

func qdqNode(name, op string, in []string, out string, axis int64) *onnxpb.NodeProto {
	n := &onnxpb.NodeProto{Name: proto.String(name), OpType: proto.String(op), Input: in, Output: []string{out}}
	if axis >= 0 {
		n.Attribute = []*onnxpb.AttributeProto{onnx.IntAttr("axis", axis)}
	}
	return n
}

// shortStem reserves and returns the first unused name prefix+k (k = 1,
// 2, …): the stem of the names of the tensors and nodes added for one
// quantized activation or weight. Names derived from the exporter's (often
// 60 characters or more, repeated in every node that reads them) made a
// fifth of an INT8 file; the Q/DQ nodes still show which tensor they
// quantize by what they read.
func shortStem(names map[string]bool, prefix string) string {
	for k := 1; ; k++ {
		stem := prefix + strconv.Itoa(k)
		if !names[stem] {
			names[stem] = true
			return stem
		}
	}
}

// removeUnusedInitializers drops initializers no node reads any more (and
// their graph-input entries).
func removeUnusedInitializers(gp *onnxpb.GraphProto) {
	used := map[string]bool{}
	for _, n := range gp.GetNode() {
		for _, in := range n.GetInput() {
			used[in] = true
		}
	}
	for _, o := range gp.GetOutput() {
		used[o.GetName()] = true
	}
	kept := gp.Initializer[:0]
	dropped := map[string]bool{}
	for _, t := range gp.GetInitializer() {
		if used[t.GetName()] {
			kept = append(kept, t)
		} else {
			dropped[t.GetName()] = true
		}
	}
	clear(gp.Initializer[len(kept):])
	gp.Initializer = kept
	gp.Input = onnx.FilterValueInfo(gp.Input, func(n string) bool { return !dropped[n] })
}
