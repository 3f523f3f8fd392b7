package quant

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/edgedet/edgedet/distill"
	"github.com/edgedet/edgedet/onnx"
	"github.com/edgedet/edgedet/onnx/onnxpb"
	"github.com/edgedet/edgedet/train"
)

// Reconstruction fine-tunes the stored integers of a quantized model
// against the FP32 model on the calibration frames, as AdaRound and BRECQ
// do: the FP32 model is the teacher, the quantized model — run with its
// activations quantized as the deployed model runs them — the student.
// Each int8 weight may move by at most one step from where calibration
// rounded it (the rounding is learned, not the weights), each int32 bias
// freely (biases are few and their steps tiny). Training uses the
// distillation engine (package distill) with straight-through gradients
// through QuantizeLinear; the scales and zero points are left as they are,
// so the model's layout, size and speed do not change.

// ReconstructOptions adjust the reconstruction (Options.Reconstruct).
type ReconstructOptions struct {
	// Steps and Duration are the budget; one of them must be set.
	Steps    int
	Duration time.Duration
	// Batch and LR are distill.Options' (0: their defaults).
	Batch int
	LR    float64
	// Seed makes the frame order and augmentation reproducible.
	Seed uint64
	// Progress, when set, is called after every step.
	Progress func(distill.Progress)
}

// ReconstructReport is what the reconstruction did.
type ReconstructReport struct {
	Steps     int     `json:"steps"`
	Seconds   float64 `json:"seconds"`
	FirstLoss float64 `json:"first_loss"`
	LastLoss  float64 `json:"last_loss"`
	// Weights counts the stored int8 weights trained and Changed those
	// whose integer moved; Biases the int32 biases trained.
	Weights int `json:"weights"`
	Changed int `json:"changed"`
	Biases  int `json:"biases"`
}

// storedWeight is an int8 weight initializer made trainable: a float
// initializer quantized by a QuantizeLinear with the weight's scale and
// zero point, bounded to one step either side of its stored value.
type storedWeight struct {
	stored, float string
	dims          []int64
	lower, upper  []int64 // the integer range it may take
	scale         []float32
	zp            []int64
	channel       func(int) int
}

// storedBias is an int32 bias initializer trained as a float bias.
type storedBias struct {
	stored, float string
	scale         []float32
	zp            []int64
	channel       func(int) int
}

// trainableQDQ is a quantized model rewritten for training.
type trainableQDQ struct {
	model   *onnxpb.ModelProto
	weights []storedWeight
	biases  []storedBias
	bounds  map[string]*train.Bounds
}

// makeTrainable rewrites a copy of the QDQ model q: every DequantizeLinear
// of an INT8 initializer reads it through QuantizeLinear(float copy), and
// every DequantizeLinear of an INT32 initializer feeding a Conv's bias is
// replaced by a float copy. qmax is the weights' integer limit (127, or 63
// with reduced range).
func makeTrainable(q *onnxpb.ModelProto, qmax int64) (*trainableQDQ, error) {
	m := proto.Clone(q).(*onnxpb.ModelProto)
	gp := m.GetGraph()
	g := onnx.NewGraph(m)
	names := onnx.TensorNames(gp)
	t := &trainableQDQ{model: m, bounds: map[string]*train.Bounds{}}
	done := map[string]bool{}
	var drop []*onnxpb.NodeProto
	for _, n := range gp.GetNode() {
		if n.GetOpType() != "DequantizeLinear" || len(n.GetInput()) < 2 {
			continue
		}
		x := n.GetInput()[0]
		init := g.Initializer(x)
		if init == nil {
			continue
		}
		switch onnxpb.TensorProto_DataType(init.GetDataType()) {
		case onnxpb.TensorProto_INT8:
			if done[x] {
				return nil, fmt.Errorf("weight %q is dequantized twice", x)
			}
			done[x] = true
			w, float, err := trainableWeight(g, n, init, qmax, names)
			if err != nil {
				return nil, fmt.Errorf("weight %q: %w", x, err)
			}
			qOut := onnx.UniqueName(names, x+"_requant")
			qNode := &onnxpb.NodeProto{Name: proto.String(onnx.UniqueName(names, x+"_Q")), OpType: proto.String("QuantizeLinear"),
				Input: slices.Clone(n.GetInput()), Output: []string{qOut}, Attribute: slices.Clone(n.GetAttribute())}
			qNode.Input[0] = w.float
			n.Input[0] = qOut
			gp.Node = append(gp.Node, qNode)
			gp.Initializer = append(gp.Initializer, float)
			t.bounds[w.float] = w.bounds()
			t.weights = append(t.weights, w)
		case onnxpb.TensorProto_INT32:
			b, float, ok, err := trainableBias(g, n, init, names)
			if err != nil {
				return nil, fmt.Errorf("bias %q: %w", x, err)
			}
			if !ok {
				continue
			}
			for _, c := range g.Consumers(n.GetOutput()[0]) {
				c.Input[2] = b.float
			}
			gp.Initializer = append(gp.Initializer, float)
			drop = append(drop, n)
			t.biases = append(t.biases, b)
		}
	}
	gp.Node = slices.DeleteFunc(gp.Node, func(n *onnxpb.NodeProto) bool { return slices.Contains(drop, n) })
	removeUnusedInitializers(gp)
	g.Reindex()
	sorted, err := g.TopoSort()
	if err != nil {
		return nil, err
	}
	gp.Node = sorted
	return t, nil
}

// qdqParams reads a DequantizeLinear's scales and zero points and maps each
// element of a tensor of dims to its channel.
func qdqParams(g *onnx.Graph, n *onnxpb.NodeProto, dims []int64) ([]float32, []int64, func(int) int, error) {
	st := g.Initializer(n.GetInput()[1])
	if st == nil {
		return nil, nil, nil, fmt.Errorf("scale %q is not an initializer", n.GetInput()[1])
	}
	scale, err := onnx.TensorFloats(st)
	if err != nil {
		return nil, nil, nil, err
	}
	zp := make([]int64, len(scale))
	if z := inputAt(n, 2); z != "" {
		zt := g.Initializer(z)
		if zt == nil {
			return nil, nil, nil, fmt.Errorf("zero point %q is not an initializer", z)
		}
		if zp, err = onnx.TensorInts(zt); err != nil {
			return nil, nil, nil, err
		}
		if len(zp) != len(scale) {
			return nil, nil, nil, fmt.Errorf("%d zero points for %d scales", len(zp), len(scale))
		}
	}
	if len(scale) == 1 {
		return scale, zp, func(int) int { return 0 }, nil
	}
	axis := onnx.AttrInt(n, "axis", 1)
	if axis < 0 {
		axis += int64(len(dims))
	}
	if axis < 0 || axis >= int64(len(dims)) || dims[axis] != int64(len(scale)) {
		return nil, nil, nil, fmt.Errorf("%d scales along axis %d of dims %v", len(scale), onnx.AttrInt(n, "axis", 1), dims)
	}
	inner := 1
	for _, d := range dims[axis+1:] {
		inner *= int(d)
	}
	c := len(scale)
	return scale, zp, func(i int) int { return i / inner % c }, nil
}

func trainableWeight(g *onnx.Graph, n *onnxpb.NodeProto, init *onnxpb.TensorProto, qmax int64, names map[string]bool) (storedWeight, *onnxpb.TensorProto, error) {
	q, err := onnx.TensorInts(init)
	if err != nil {
		return storedWeight{}, nil, err
	}
	dims := init.GetDims()
	scale, zp, ch, err := qdqParams(g, n, dims)
	if err != nil {
		return storedWeight{}, nil, err
	}
	w := storedWeight{stored: init.GetName(), float: onnx.UniqueName(names, init.GetName()+"_float"), dims: dims,
		scale: scale, zp: zp, channel: ch, lower: make([]int64, len(q)), upper: make([]int64, len(q))}
	v := make([]float32, len(q))
	for i, x := range q {
		c := ch(i)
		v[i] = float32(x-zp[c]) * scale[c]
		w.lower[i] = max(x-1, zp[c]-qmax, -128)
		w.upper[i] = min(x+1, zp[c]+qmax, 127)
	}
	return w, onnx.Float32Tensor(w.float, dims, v), nil
}

// bounds are the float limits of w's values: half a step inside its
// integer range's ends, so that rounding never leaves the range.
func (w storedWeight) bounds() *train.Bounds {
	b := &train.Bounds{Lower: make([]float32, len(w.lower)), Upper: make([]float32, len(w.upper))}
	for i := range w.lower {
		c := w.channel(i)
		s := float64(w.scale[c])
		b.Lower[i] = float32((float64(w.lower[i]-w.zp[c]) - 0.49) * s)
		b.Upper[i] = float32((float64(w.upper[i]-w.zp[c]) + 0.49) * s)
	}
	return b
}

// trainableBias makes an INT32 initializer dequantized into Conv biases a
// float initializer; ok is false when the dequantized tensor is read by
// anything but a Conv's bias input.
func trainableBias(g *onnx.Graph, n *onnxpb.NodeProto, init *onnxpb.TensorProto, names map[string]bool) (storedBias, *onnxpb.TensorProto, bool, error) {
	out := n.GetOutput()[0]
	cons := g.Consumers(out)
	if len(cons) == 0 || g.IsOutput(out) || slices.ContainsFunc(cons, func(c *onnxpb.NodeProto) bool {
		return c.GetOpType() != "Conv" || inputAt(c, 2) != out || c.GetInput()[0] == out || c.GetInput()[1] == out
	}) {
		return storedBias{}, nil, false, nil
	}
	q, err := onnx.TensorInts(init)
	if err != nil {
		return storedBias{}, nil, false, err
	}
	scale, zp, ch, err := qdqParams(g, n, init.GetDims())
	if err != nil {
		return storedBias{}, nil, false, err
	}
	b := storedBias{stored: init.GetName(), float: onnx.UniqueName(names, init.GetName()+"_float"), scale: scale, zp: zp, channel: ch}
	v := make([]float32, len(q))
	for i, x := range q {
		c := ch(i)
		v[i] = float32(float64(x-zp[c]) * float64(scale[c]))
	}
	return b, onnx.Float32Tensor(b.float, init.GetDims(), v), true, nil
}

// writeBack returns a copy of the QDQ model q with its stored weights and
// biases replaced by the trained ones rounded as the student's
// QuantizeLinear rounded them (half to even), and the number of weights
// whose integer changed.
func (t *trainableQDQ) writeBack(q, trained *onnxpb.ModelProto) (*onnxpb.ModelProto, int, error) {
	out := proto.Clone(q).(*onnxpb.ModelProto)
	og, tg := onnx.NewGraph(out), onnx.NewGraph(trained)
	changed := 0
	for _, w := range t.weights {
		dst, src := og.Initializer(w.stored), tg.Initializer(w.float)
		if dst == nil || src == nil {
			return nil, 0, fmt.Errorf("write back weight %q: initializer missing", w.stored)
		}
		v, err := onnx.TensorFloats(src)
		if err != nil {
			return nil, 0, fmt.Errorf("write back weight %q: %w", w.stored, err)
		}
		old, err := onnx.TensorInts(dst)
		if err != nil {
			return nil, 0, fmt.Errorf("write back weight %q: %w", w.stored, err)
		}
		qv := make([]int8, len(v))
		for i, f := range v {
			c := w.channel(i)
			x := int64(math.RoundToEven(float64(f)/float64(w.scale[c]))) + w.zp[c]
			x = min(max(x, w.lower[i]), w.upper[i])
			qv[i] = int8(x)
			if x != old[i] {
				changed++
			}
		}
		replaceInitializer(out.GetGraph(), onnx.Int8Tensor(w.stored, w.dims, qv))
	}
	for _, b := range t.biases {
		dst, src := og.Initializer(b.stored), tg.Initializer(b.float)
		if dst == nil || src == nil {
			return nil, 0, fmt.Errorf("write back bias %q: initializer missing", b.stored)
		}
		v, err := onnx.TensorFloats(src)
		if err != nil {
			return nil, 0, fmt.Errorf("write back bias %q: %w", b.stored, err)
		}
		qv := make([]int32, len(v))
		for i, f := range v {
			c := b.channel(i)
			x := math.Round(float64(f)/float64(b.scale[c])) + float64(b.zp[c])
			qv[i] = int32(min(max(x, math.MinInt32), math.MaxInt32))
		}
		nt := onnx.Int32Vector(b.stored, qv)
		nt.Dims = slices.Clone(dst.GetDims())
		replaceInitializer(out.GetGraph(), nt)
	}
	return out, changed, nil
}

// replaceInitializer puts t in place of gp's initializer of the same name.
func replaceInitializer(gp *onnxpb.GraphProto, t *onnxpb.TensorProto) {
	for i, init := range gp.GetInitializer() {
		if init.GetName() == t.GetName() {
			gp.Initializer[i] = t
		}
	}
}

// reconstruct fine-tunes the stored integers of the quantized model q
// against the FP32 model (see the comment at the top of this file).
func (z *quantizer) reconstruct(ctx context.Context, q *onnxpb.ModelProto) (*onnxpb.ModelProto, error) {
	ro := z.opt.Reconstruct
	qmax := int64(127)
	if z.opt.ReduceRange {
		qmax = 63
	}
	t, err := makeTrainable(q, qmax)
	if err != nil {
		return nil, fmt.Errorf("reconstruct: %w", err)
	}
	if len(t.weights) == 0 {
		z.log.Info("reconstruct: no int8 weights to train")
		return q, nil
	}
	opt := distill.Options{Steps: ro.Steps, Duration: ro.Duration, Batch: ro.Batch, LR: ro.LR, Seed: ro.Seed,
		BlockShare: -1, Bounds: t.bounds, Progress: ro.Progress}
	trained, rep, err := distill.Distill(ctx, z.fp, t.model, z.inputs, opt)
	if err != nil {
		return nil, fmt.Errorf("reconstruct: %w", err)
	}
	out, changed, err := t.writeBack(q, trained)
	if err != nil {
		return nil, fmt.Errorf("reconstruct: %w", err)
	}
	r := &ReconstructReport{Steps: rep.Steps, Seconds: rep.Elapsed.Seconds(), Changed: changed, Biases: len(t.biases)}
	for _, w := range t.weights {
		r.Weights += len(w.lower)
	}
	if len(rep.Phases) > 0 {
		last := rep.Phases[len(rep.Phases)-1]
		r.FirstLoss, r.LastLoss = last.FirstLoss, last.LastLoss
	}
	z.rep.Reconstruction = r
	z.log.Info("reconstructed the stored integers against FP32", "steps", r.Steps, "loss_from", r.FirstLoss, "loss_to", r.LastLoss, "weights_changed", changed, "of", r.Weights)
	return out, nil
}
