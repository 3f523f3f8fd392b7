package prune

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"

	"github.com/edgedet/edgedet/onnx"
	"github.com/edgedet/edgedet/onnx/onnxpb"
)

// refitConv is a validated group=1 2-D Conv node.
type refitConv struct {
	input        string // tensor the conv reads
	w, b         []float32
	cout, cin    int
	kh, kw       int
	strideH      int
	strideW      int
	dilH, dilW   int
	padT, padL   int // explicit pads (auto_pad resolved per input size)
	padB, padR   int
	autoPad      string
	outH, outW   int // set once the input size is known
	inH, inW     int
	samples      *ConvSamples
	rng          *rand.Rand
	sampledSoFar int
}

type refitActivation struct {
	values []float32
	shape  []int64
}

// refitModelInput returns the single float input's name and shape (a
// dynamic batch counts as 1).
func refitModelInput(m *onnxpb.ModelProto) (string, []int64, error) {
	in, err := onnx.ImageInput(m)
	if err != nil {
		return "", nil, err
	}
	tt := in.GetType().GetTensorType()
	var shape []int64
	for i, d := range tt.GetShape().GetDim() {
		v := d.GetDimValue()
		if v <= 0 {
			if i != 0 {
				return "", nil, fmt.Errorf("model input %q has a dynamic dimension %d: conv sampling needs a static input shape", in.GetName(), i)
			}
			v = 1
		}
		shape = append(shape, v)
	}
	if len(shape) == 0 {
		return "", nil, fmt.Errorf("model input %q has no shape", in.GetName())
	}
	return in.GetName(), shape, nil
}

// refitInts is an ints attribute, or def when absent; it must have want
// values when present.
func refitInts(n *onnxpb.NodeProto, name string, def []int, want int) ([]int, error) {
	a := findAttr(n, name)
	if a == nil {
		return def, nil
	}
	if len(a.GetInts()) != want {
		return nil, fmt.Errorf("conv %q: attribute %s has %d values, want %d", n.GetName(), name, len(a.GetInts()), want)
	}
	v := make([]int, want)
	for i, x := range a.GetInts() {
		v[i] = int(x)
	}
	return v, nil
}

// refitParseConv validates n as a group=1 2-D Conv with initializer weights.
func refitParseConv(g *onnx.Graph, n *onnxpb.NodeProto) (*refitConv, error) {
	name := n.GetName()
	if n.GetOpType() != "Conv" || (n.GetDomain() != "" && n.GetDomain() != "ai.onnx") {
		return nil, fmt.Errorf("node %q is %s, not Conv", name, n.GetOpType())
	}
	if a := findAttr(n, "group"); a != nil && a.GetI() != 1 {
		return nil, fmt.Errorf("conv %q has group=%d: only group=1 convs are supported", name, a.GetI())
	}
	ins := n.GetInput()
	if len(ins) < 2 || len(n.GetOutput()) < 1 {
		return nil, fmt.Errorf("conv %q has %d inputs and %d outputs", name, len(ins), len(n.GetOutput()))
	}
	wt := g.Initializer(ins[1])
	if wt == nil {
		return nil, fmt.Errorf("conv %q: weight %q is not an initializer", name, ins[1])
	}
	dims := wt.GetDims()
	if len(dims) != 4 {
		return nil, fmt.Errorf("conv %q: weight %q has dims %v: only 2-D convs are supported", name, ins[1], dims)
	}
	w, err := onnx.TensorFloats(wt)
	if err != nil {
		return nil, fmt.Errorf("conv %q weight: %w", name, err)
	}
	c := &refitConv{input: ins[0], w: w,
		cout: int(dims[0]), cin: int(dims[1]), kh: int(dims[2]), kw: int(dims[3])}
	if c.cout <= 0 || c.cin <= 0 || c.kh <= 0 || c.kw <= 0 {
		return nil, fmt.Errorf("conv %q: weight %q has dims %v", name, ins[1], dims)
	}
	c.b = make([]float32, c.cout)
	if len(ins) > 2 && ins[2] != "" {
		bt := g.Initializer(ins[2])
		if bt == nil {
			return nil, fmt.Errorf("conv %q: bias %q is not an initializer", name, ins[2])
		}
		b, err := onnx.TensorFloats(bt)
		if err != nil {
			return nil, fmt.Errorf("conv %q bias: %w", name, err)
		}
		if len(b) != c.cout {
			return nil, fmt.Errorf("conv %q: bias has %d values for %d output channels", name, len(b), c.cout)
		}
		c.b = b
	}
	ks, err := refitInts(n, "kernel_shape", []int{c.kh, c.kw}, 2)
	if err != nil {
		return nil, err
	}
	if ks[0] != c.kh || ks[1] != c.kw {
		return nil, fmt.Errorf("conv %q: kernel_shape %v does not match weight dims %v", name, ks, dims)
	}
	st, err := refitInts(n, "strides", []int{1, 1}, 2)
	if err != nil {
		return nil, err
	}
	dl, err := refitInts(n, "dilations", []int{1, 1}, 2)
	if err != nil {
		return nil, err
	}
	pads, err := refitInts(n, "pads", []int{0, 0, 0, 0}, 4)
	if err != nil {
		return nil, err
	}
	c.strideH, c.strideW, c.dilH, c.dilW = st[0], st[1], dl[0], dl[1]
	if c.strideH <= 0 || c.strideW <= 0 || c.dilH <= 0 || c.dilW <= 0 {
		return nil, fmt.Errorf("conv %q: strides %v, dilations %v must be positive", name, st, dl)
	}
	c.padT, c.padL, c.padB, c.padR = pads[0], pads[1], pads[2], pads[3]
	if a := findAttr(n, "auto_pad"); a != nil {
		c.autoPad = string(a.GetS())
	}
	switch c.autoPad {
	case "", "NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER":
	default:
		return nil, fmt.Errorf("conv %q: unknown auto_pad %q", name, c.autoPad)
	}
	if c.autoPad == "VALID" {
		c.padT, c.padL, c.padB, c.padR = 0, 0, 0, 0
	}
	return c, nil
}

// refitSamePad is ONNX's SAME_* padding for one axis: (begin, end).
func refitSamePad(in, k, s, d int, lower bool) (int, int) {
	out := (in + s - 1) / s
	total := max(0, (out-1)*s+(k-1)*d+1-in)
	if lower {
		return total - total/2, total / 2
	}
	return total / 2, total - total/2
}

// setInputSize resolves padding and the output size for an input map of
// h × w, checking it does not change between inputs.
func (c *refitConv) setInputSize(h, w int) error {
	if c.outH > 0 {
		if h != c.inH || w != c.inW {
			return fmt.Errorf("conv %q: input size changed from %dx%d to %dx%d", c.samples.Node, c.inH, c.inW, h, w)
		}
		return nil
	}
	if c.autoPad == "SAME_UPPER" || c.autoPad == "SAME_LOWER" {
		lower := c.autoPad == "SAME_LOWER"
		c.padT, c.padB = refitSamePad(h, c.kh, c.strideH, c.dilH, lower)
		c.padL, c.padR = refitSamePad(w, c.kw, c.strideW, c.dilW, lower)
	}
	c.inH, c.inW = h, w
	c.outH = (h+c.padT+c.padB-((c.kh-1)*c.dilH+1))/c.strideH + 1
	c.outW = (w+c.padL+c.padR-((c.kw-1)*c.dilW+1))/c.strideW + 1
	if c.outH <= 0 || c.outW <= 0 {
		return fmt.Errorf("conv %q: input %dx%d gives an empty output", c.samples.Node, h, w)
	}
	return nil
}

// sample draws perConv output positions of input i and appends their
// patches and original outputs.
func (c *refitConv) sample(i int, a refitActivation, perConv int) error {
	if len(a.shape) != 4 || a.shape[0] != 1 || int(a.shape[1]) != c.cin {
		return fmt.Errorf("conv %q: input %q has shape %v, want [1 %d H W]", c.samples.Node, c.input, a.shape, c.cin)
	}
	h, w := int(a.shape[2]), int(a.shape[3])
	if len(a.values) != c.cin*h*w {
		return fmt.Errorf("conv %q: input %q has %d values for shape %v", c.samples.Node, c.input, len(a.values), a.shape)
	}
	if err := c.setInputSize(h, w); err != nil {
		return err
	}
	s := c.samples
	k := c.cin * c.kh * c.kw
	xr := s.X.RawMatrix()
	yr := s.Y.RawMatrix()
	for _, p := range refitPositions(c.rng, c.outH*c.outW, perConv) {
		oy, ox := p/c.outW, p%c.outW
		row := c.sampledSoFar
		c.sampledSoFar++
		s.Pos = append(s.Pos, SamplePos{Input: i, Y: oy, X: ox})
		x := xr.Data[row*xr.Stride : row*xr.Stride+k]
		for ch := 0; ch < c.cin; ch++ {
			plane := a.values[ch*h*w : (ch+1)*h*w]
			for ky := 0; ky < c.kh; ky++ {
				iy := oy*c.strideH - c.padT + ky*c.dilH
				col := (ch*c.kh + ky) * c.kw
				if iy < 0 || iy >= h {
					clear(x[col : col+c.kw])
					continue
				}
				for kx := 0; kx < c.kw; kx++ {
					ix := ox*c.strideW - c.padL + kx*c.dilW
					if ix < 0 || ix >= w {
						x[col+kx] = 0
					} else {
						x[col+kx] = float64(plane[iy*w+ix])
					}
				}
			}
		}
		y := yr.Data[row*yr.Stride : row*yr.Stride+c.cout]
		for o := range y {
			sum := float64(c.b[o])
			for j, wv := range c.w[o*k : (o+1)*k] {
				sum += float64(wv) * x[j]
			}
			y[o] = sum
		}
	}
	return nil
}

// refitPositions draws k of n positions, sorted: distinct (Floyd's
// algorithm) when k <= n, else all n plus k-n drawn with replacement.
func refitPositions(rng *rand.Rand, n, k int) []int {
	var pos []int
	if k >= n {
		pos = make([]int, n, k)
		for i := range pos {
			pos[i] = i
		}
		for len(pos) < k {
			pos = append(pos, rng.IntN(n))
		}
	} else {
		chosen := make(map[int]bool, k)
		pos = make([]int, 0, k)
		for j := n - k; j < n; j++ {
			t := rng.IntN(j + 1)
			if chosen[t] {
				t = j
			}
			chosen[t] = true
			pos = append(pos, t)
		}
	}
	slices.Sort(pos)
	return pos
}

// checkKept validates kept as sorted, distinct channel indices into cin.
func refitCheckKept(kept []int, cin int) error {
	if len(kept) == 0 {
		return errors.New("no input channels kept")
	}
	for i, c := range kept {
		if c < 0 || c >= cin {
			return fmt.Errorf("kept channel %d out of range [0,%d)", c, cin)
		}
		if i > 0 && c <= kept[i-1] {
			return fmt.Errorf("kept channels must be sorted and distinct: %d after %d", c, kept[i-1])
		}
	}
	return nil
}
