package prune

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"

	"gonum.org/v1/gonum/mat"

	"github.com/edgedet/edgedet/onnx"
	"github.com/edgedet/edgedet/onnx/onnxpb"
)

// RefitResult is one consumer convolution's reconstruction, with its
// output errors on held-out calibration samples.
type RefitResult struct {
	Node string
	// Plain is the relative output error with the input channels simply
	// cut; Final the error of the weights kept (the refit's when Refitted).
	Plain    float64
	Final    float64
	Refitted bool
}

// reconstruct re-fits every group-1 convolution of pruned that lost input
// channels (He et al. 2017): from the unpruned network's activations at
// sampled positions of calibration frames, the kept input channels should
// give the unpruned outputs (of the output channels the conv keeps), by
// least squares. A quarter of the samples is held out: where the refit does
// worse there than the plainly cut weights, those stay. Each conv is fitted
// on the unpruned network's inputs, as if the layers before it were intact
// (fitting on the pruned network's own activations, all layers at once,
// over-corrected here: each layer compensates for errors that the refit
// of the layers before it already removes; layer by layer, re-sampling the
// pruned network after each refit, was no better on yolox_nano: mAP 26.0
// against 28.2 at flops=0.97).
func reconstruct(ctx context.Context, src, pruned *onnxpb.ModelProto, a *Analysis, plan map[int][]int,
	inputs onnx.Inputs, perImage int, status io.Writer) ([]RefitResult, error) {
	removed, err := a.RemovedInputs(plan)
	if err != nil {
		return nil, err
	}
	rows, err := a.RemovedOutputs(plan)
	if err != nil {
		return nil, err
	}
	convs := sortedNames(removed)
	if len(convs) == 0 {
		return nil, nil
	}
	fmt.Fprintf(status, "prune: sampling the inputs of %d convolutions on %d calibration frames\n", len(convs), inputs.Len())
	orig, err := CollectConvSamples(ctx, src, inputs, convs, perImage, 1)
	if err != nil {
		return nil, fmt.Errorf("reconstruction: %w", err)
	}
	g := onnx.NewGraph(pruned)
	var out []RefitResult
	for _, name := range convs {
		o := orig[name]
		_, cout := o.Y.Dims()
		keptOut := keptChannels(cout, rows[name])
		keptIn := keptChannels(o.Cin, removed[name])
		target := *o
		target.Y = selectCols(o.Y, keptOut)
		fit, held := splitSamples(&target)
		r := RefitResult{Node: name}
		r.Plain = held.Error(keptIn, weightsOf(pruned, name), biasOf(pruned, name, len(keptOut)))
		r.Final = r.Plain
		if w, b, err := fit.Refit(keptIn, ridgeFor(fit, keptIn)); err == nil {
			if e := held.Error(keptIn, w, b); e < r.Plain {
				r.Final, r.Refitted = e, true
				if err := setConvParams(pruned, g, nodeByName(pruned, name), w, b); err != nil {
					return nil, err
				}
			}
		}
		out = append(out, r)
	}
	return out, nil
}

func sortedNames[V any](m map[string]V) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

func selectCols(m *mat.Dense, cols []int) *mat.Dense {
	r, _ := m.Dims()
	out := mat.NewDense(r, len(cols), nil)
	for j, c := range cols {
		for i := range r {
			out.Set(i, j, m.At(i, c))
		}
	}
	return out
}

// ridgeFor is the Tikhonov weight: 1 % of a kept feature column's mean
// energy (the diagonal of XᵀX), so it scales with the activations and the
// number of samples.
func ridgeFor(s *ConvSamples, kept []int) float64 {
	k := s.Kh * s.Kw
	var sum float64
	for _, c := range kept {
		for j := c * k; j < (c+1)*k; j++ {
			col := mat.Col(nil, j, s.X)
			sum += mat.Dot(mat.NewVecDense(len(col), col), mat.NewVecDense(len(col), col))
		}
	}
	return 0.01 * sum / float64(max(1, len(kept)*k))
}

// splitSamples keeps every fourth sample row apart for validation.
func splitSamples(s *ConvSamples) (fit, held *ConvSamples) {
	n, _ := s.X.Dims()
	var fi, hi []int
	for i := range n {
		if i%4 == 3 {
			hi = append(hi, i)
		} else {
			fi = append(fi, i)
		}
	}
	pick := func(rows []int) *ConvSamples {
		c := *s
		c.X = selectRows(s.X, rows)
		c.Y = selectRows(s.Y, rows)
		c.Pos = nil
		return &c
	}
	return pick(fi), pick(hi)
}

func selectRows(m *mat.Dense, rows []int) *mat.Dense {
	_, c := m.Dims()
	out := mat.NewDense(len(rows), c, nil)
	for i, r := range rows {
		out.SetRow(i, m.RawRowView(r))
	}
	return out
}

func weightsOf(m *onnxpb.ModelProto, conv string) []float32 {
	n := nodeByName(m, conv)
	if n == nil || len(n.GetInput()) < 2 {
		return nil
	}
	w, _ := onnx.TensorFloats(onnx.NewGraph(m).Initializer(n.GetInput()[1]))
	return w
}

func biasOf(m *onnxpb.ModelProto, conv string, cout int) []float32 {
	n := nodeByName(m, conv)
	if n != nil && len(n.GetInput()) > 2 && n.GetInput()[2] != "" {
		if b, err := onnx.TensorFloats(onnx.NewGraph(m).Initializer(n.GetInput()[2])); err == nil {
			return b
		}
	}
	return make([]float32, cout)
}

// setConvParams writes re-fitted weights (and bias, added when the conv had
// none) into the pruned model's initializers of node n.
func setConvParams(m *onnxpb.ModelProto, g *onnx.Graph, n *onnxpb.NodeProto, w, b []float32) error {
	if n == nil || len(n.GetInput()) < 2 {
		return errors.New("reconstruction: convolution missing from the pruned model")
	}
	wt := g.Initializer(n.GetInput()[1])
	if wt == nil || onnx.NumElements(wt) != int64(len(w)) {
		return fmt.Errorf("reconstruction of %s: weight %q does not match the re-fitted %d values", n.GetName(), n.GetInput()[1], len(w))
	}
	onnx.SetTensorFloats(wt, w)
	if len(n.GetInput()) > 2 && n.GetInput()[2] != "" {
		bt := g.Initializer(n.GetInput()[2])
		if bt == nil || onnx.NumElements(bt) != int64(len(b)) {
			return fmt.Errorf("reconstruction of %s: bias %q does not match", n.GetName(), n.GetInput()[2])
		}
		onnx.SetTensorFloats(bt, b)
		return nil
	}
	name := n.GetName() + ".refit_bias"
	m.GetGraph().Initializer = append(m.GetGraph().Initializer, onnx.Float32Vector(name, b))
	n.Input = append(n.Input[:2], name)
	return nil
}
