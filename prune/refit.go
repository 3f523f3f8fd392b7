package prune

// The reconstruction half of channel pruning (He et al., 2017, "Channel
// Pruning for Accelerating Very Deep Neural Networks"): once some input
// channels of a Conv are removed, the remaining weights are re-fitted by
// least squares on calibration activations so that the Conv's outputs stay
// close to the unpruned ones. CollectConvSamples gathers the data
// (im2col rows of the Conv's input and its original outputs); Refit solves
// the regression; Error measures how far a set of weights is from the
// original outputs.

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/mat"

	"github.com/edgedet/edgedet/onnx"
	"github.com/edgedet/edgedet/onnx/onnxpb"
	"github.com/edgedet/edgedet/onnx/ortrun"
)

// ConvSamples are sampled im2col rows of one Conv's input and the conv's
// original output at the same positions.
type ConvSamples struct {
	Node        string
	Cin, Kh, Kw int
	// X is N × (Cin*Kh*Kw): input patches (zero padding respected), column
	// order c*Kh*Kw + y*Kw + x, the order of ONNX's weight layout.
	X *mat.Dense
	// Y is N × Cout: the ORIGINAL conv outputs (W·x + b) at those positions.
	Y *mat.Dense
	// Pos locates each row: Pos[i] is the calibration input and output
	// position that row i of X and Y was taken from.
	Pos []SamplePos
}

// SamplePos is where a sample was drawn: calibration input index and
// output row (Y) and column (X) of the conv's output map.
type SamplePos struct {
	Input, Y, X int
}

// CollectConvSamples runs model m (in ONNX Runtime, initialised by the
// caller) on every input of inputs, exposing each listed Conv's input tensor
// as an extra output, and draws perConv random output positions per input
// per conv (deterministic with seed; each conv draws from its own stream,
// so a conv's samples do not depend on which other convs are listed).
// Positions are distinct within one input unless perConv exceeds the
// output map's size, in which case every position is taken and the rest is
// drawn with replacement. Only group=1 2-D Convs whose weight (and bias) are
// initializers are supported (an error names the node otherwise). Memory is
// bounded: N = inputs.Len()*perConv rows per conv.
//
// The model must have one float input of static shape (a dynamic batch
// dimension is taken as 1).
func CollectConvSamples(ctx context.Context, m *onnxpb.ModelProto, inputs onnx.Inputs, convs []string, perConv int, seed int64) (map[string]*ConvSamples, error) {
	if perConv <= 0 {
		return nil, fmt.Errorf("collect conv samples: perConv %d must be > 0", perConv)
	}
	if len(convs) == 0 {
		return nil, errors.New("collect conv samples: no convs listed")
	}
	if inputs == nil || inputs.Len() == 0 {
		return nil, errors.New("collect conv samples: no calibration inputs")
	}
	g := onnx.NewGraph(m)
	byName := map[string]*onnxpb.NodeProto{}
	for _, n := range m.GetGraph().GetNode() {
		if _, dup := byName[n.GetName()]; !dup && n.GetName() != "" {
			byName[n.GetName()] = n
		}
	}
	inName, inShape, err := refitModelInput(m)
	if err != nil {
		return nil, err
	}
	nIn := inputs.Len()
	list := make([]*refitConv, 0, len(convs))
	seen := map[string]bool{}
	var outputs []string
	outSeen := map[string]bool{}
	for _, name := range convs {
		if seen[name] {
			return nil, fmt.Errorf("conv %q listed twice", name)
		}
		seen[name] = true
		n := byName[name]
		if n == nil {
			return nil, fmt.Errorf("conv %q: no such node", name)
		}
		c, err := refitParseConv(g, n)
		if err != nil {
			return nil, err
		}
		h := fnv.New64a()
		h.Write([]byte(name))
		c.rng = rand.New(rand.NewPCG(uint64(seed), h.Sum64()))
		c.samples = &ConvSamples{
			Node: name, Cin: c.cin, Kh: c.kh, Kw: c.kw,
			X:   mat.NewDense(nIn*perConv, c.cin*c.kh*c.kw, nil),
			Y:   mat.NewDense(nIn*perConv, c.cout, nil),
			Pos: make([]SamplePos, 0, nIn*perConv),
		}
		list = append(list, c)
		if c.input != inName && !outSeen[c.input] {
			outSeen[c.input] = true
			outputs = append(outputs, c.input)
		}
	}
	if len(outputs) == 0 {
		// Every conv reads the model input: run something all the same.
		for _, o := range m.GetGraph().GetOutput() {
			outputs = append(outputs, o.GetName())
		}
	}
	r, err := ortrun.NewRunner(m, inName, inShape, outputs, 0)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	for i := 0; i < nIn; i++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		in := r.Input()
		if err := inputs.Input(ctx, i, in); err != nil {
			return nil, fmt.Errorf("calibration input %d: %w", i, err)
		}
		err := r.Run(func(_ int, name string, shape []int64, values []float32) error {
			if name == inName {
				return nil // sampled from the input buffer below
			}
			for _, c := range list {
				if c.input == name {
					if err := c.sample(i, refitActivation{values: values, shape: shape}, perConv); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		for _, c := range list {
			if c.input == inName {
				if err := c.sample(i, refitActivation{values: in, shape: inShape}, perConv); err != nil {
					return nil, err
				}
			}
		}
	}
	res := make(map[string]*ConvSamples, len(list))
	for _, c := range list {
		res[c.samples.Node] = c.samples
	}
	return res, nil
}

// Refit solves, for the kept input channels (sorted indices into Cin),
//
//	min ||Y - X_kept·Wᵀ - b||² + ridge·||W||²
//
// (the bias is not penalised; ridge is absolute, not scaled by N) and
// returns the new weights in ONNX layout [Cout][len(kept)][Kh][Kw]
// flattened, and the bias [Cout]. It centres X and Y, which eliminates
// the bias exactly, and solves the ridge problem as the least squares
// problem [Xc; √ridge·I]·Wᵀ = [Yc; 0] by QR (gonum). With ridge = 0 the
// kept patches must have full column rank (N > len(kept)*Kh*Kw and no
// constant or collinear columns); otherwise use a small ridge > 0.
func (s *ConvSamples) Refit(kept []int, ridge float64) (w, b []float32, err error) {
	if err := refitCheckKept(kept, s.Cin); err != nil {
		return nil, nil, fmt.Errorf("refit %q: %w", s.Node, err)
	}
	if !(ridge >= 0) || math.IsInf(ridge, 0) {
		return nil, nil, fmt.Errorf("refit %q: ridge %v must be finite and >= 0", s.Node, ridge)
	}
	n, cout := s.Y.Dims()
	kk := s.Kh * s.Kw
	p := len(kept) * kk
	if ridge == 0 && n <= p {
		return nil, nil, fmt.Errorf("refit %q: %d samples for %d weights per output channel: collect more or use ridge > 0", s.Node, n, p)
	}
	if n == 0 {
		return nil, nil, fmt.Errorf("refit %q: no samples", s.Node)
	}
	rows := n
	if ridge > 0 {
		rows += p
	}
	// Gather and centre the kept columns.
	a := mat.NewDense(rows, p, nil)
	xMean := make([]float64, p)
	for j, c := range kept {
		for t := 0; t < kk; t++ {
			col := j*kk + t
			src := c*kk + t
			var sum float64
			for i := 0; i < n; i++ {
				v := s.X.At(i, src)
				a.Set(i, col, v)
				sum += v
			}
			mean := sum / float64(n)
			xMean[col] = mean
			for i := 0; i < n; i++ {
				a.Set(i, col, a.At(i, col)-mean)
			}
		}
	}
	rhs := mat.NewDense(rows, cout, nil)
	yMean := make([]float64, cout)
	for o := 0; o < cout; o++ {
		var sum float64
		for i := 0; i < n; i++ {
			sum += s.Y.At(i, o)
		}
		yMean[o] = sum / float64(n)
		for i := 0; i < n; i++ {
			rhs.Set(i, o, s.Y.At(i, o)-yMean[o])
		}
	}
	if ridge > 0 {
		sr := math.Sqrt(ridge)
		for j := 0; j < p; j++ {
			a.Set(n+j, j, sr)
		}
	}
	var sol mat.Dense // p × cout: Wᵀ
	if err := sol.Solve(a, rhs); err != nil {
		var cond mat.Condition
		if errors.As(err, &cond) {
			return nil, nil, fmt.Errorf("refit %q: least squares problem is ill-conditioned (%w): use ridge > 0", s.Node, err)
		}
		return nil, nil, fmt.Errorf("refit %q: %w", s.Node, err)
	}
	w = make([]float32, cout*p)
	b = make([]float32, cout)
	for o := 0; o < cout; o++ {
		bias := yMean[o]
		for j := 0; j < p; j++ {
			v := sol.At(j, o)
			w[o*p+j] = float32(v)
			bias -= v * xMean[j]
		}
		b[o] = float32(bias)
	}
	for _, v := range w {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return nil, nil, fmt.Errorf("refit %q: solution is not finite: use ridge > 0", s.Node)
		}
	}
	return w, b, nil
}

// Error returns the relative output error ||Y - X_kept·Wᵀ - b||_F / ||Y||_F
// for weights w ([Cout][len(kept)][Kh][Kw]) and bias b ([Cout]) over the
// kept channels, to compare plain removal with a refit. It is NaN when the
// arguments do not fit the samples, +Inf when Y is zero but the
// prediction is not.
func (s *ConvSamples) Error(kept []int, w, b []float32) float64 {
	n, cout := s.Y.Dims()
	kk := s.Kh * s.Kw
	p := len(kept) * kk
	if refitCheckKept(kept, s.Cin) != nil || len(w) != cout*p || len(b) != cout {
		return math.NaN()
	}
	// Scatter w into the full Cin layout (zeros for removed channels), so X
	// is used in place.
	full := mat.NewDense(s.Cin*kk, cout, nil) // Wᵀ
	for o := 0; o < cout; o++ {
		for j, c := range kept {
			for t := 0; t < kk; t++ {
				full.Set(c*kk+t, o, float64(w[o*p+j*kk+t]))
			}
		}
	}
	var pred mat.Dense
	pred.Mul(s.X, full)
	var num, den float64
	for i := 0; i < n; i++ {
		for o := 0; o < cout; o++ {
			y := s.Y.At(i, o)
			d := y - pred.At(i, o) - float64(b[o])
			num += d * d
			den += y * y
		}
	}
	if den == 0 {
		if num == 0 {
			return 0
		}
		return math.Inf(1)
	}
	return math.Sqrt(num / den)
}

// SliceInputChannels is plain removal: the weights w of a conv (ONNX layout
// [cout][cin][kh][kw], flattened) restricted to the kept input channels
// (sorted indices into cin), in layout [cout][len(kept)][kh][kw]. It panics
// when len(w) != cout*cin*kh*kw or a kept index is out of range.
func SliceInputChannels(w []float32, cout, cin, kh, kw int, kept []int) []float32 {
	kk := kh * kw
	if len(w) != cout*cin*kk {
		panic(fmt.Sprintf("prune: SliceInputChannels: %d weights, want %d×%d×%d×%d", len(w), cout, cin, kh, kw))
	}
	out := make([]float32, 0, cout*len(kept)*kk)
	for o := 0; o < cout; o++ {
		for _, c := range kept {
			if c < 0 || c >= cin {
				panic(fmt.Sprintf("prune: SliceInputChannels: kept channel %d out of range [0,%d)", c, cin))
			}
			start := (o*cin + c) * kk
			out = append(out, w[start:start+kk]...)
		}
	}
	return out
}
