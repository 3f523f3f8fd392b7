package quant

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"

	"github.com/edgedet/edgedet/onnx"
	"github.com/edgedet/edgedet/onnx/onnxpb"
	"github.com/edgedet/edgedet/onnx/ortrun"
)

// chooseFloat returns the layers to keep float so that the quantized
// model's output error stays within opt.MaxError, and the measure it used
// (nil when opt.MaxError is negative: no check). When quantizing every
// layer misses the budget, it records each layer's damage in layers.
func (z *quantizer) chooseFloat(ctx context.Context, layers []LayerReport) (map[string]bool, *sensitivity, error) {
	floatNodes := map[string]bool{}
	if z.opt.MaxError < 0 {
		return floatNodes, nil, nil
	}
	s, err := newSensitivity(ctx, z.p, z.inName, z.inShape, z.inputs, z.opt)
	if err != nil {
		return nil, nil, err
	}
	all, _ := z.plan(nil)
	z.rep.ErrorAll, err = s.errorOf(ctx, all)
	if err != nil {
		return nil, nil, err
	}
	z.log.Info("all layers quantized", "error", z.rep.ErrorAll, "budget", z.opt.MaxError)
	if z.rep.ErrorAll > z.opt.MaxError {
		if floatNodes, err = z.keepMostDamagingFloat(ctx, s, layers); err != nil {
			return nil, nil, err
		}
	}
	return floatNodes, s, nil
}

// keepMostDamagingFloat ranks the layers by the error each causes quantized
// alone and returns the fewest most damaging ones that, kept float, bring
// the error within budget, giving them their reason in layers.
func (z *quantizer) keepMostDamagingFloat(ctx context.Context, s *sensitivity, layers []LayerReport) (map[string]bool, error) {
	if err := z.measureDamage(ctx, s, layers); err != nil {
		return nil, err
	}
	order := make([]int, len(layers))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return layers[order[a]].Damage > layers[order[b]].Damage })
	floatTop := func(k int) map[string]bool {
		f := map[string]bool{}
		for _, i := range order[:k] {
			f[layers[i].Node] = true
		}
		return f
	}
	k, err := z.searchFloatCount(ctx, s, len(order), floatTop)
	if err != nil {
		return nil, err
	}
	for rank, i := range order[:k] {
		if z.p.excluded[layers[i].Node] {
			continue
		}
		layers[i].Float = true
		layers[i].Reason = fmt.Sprintf("sensitivity: rank %d, output error %.4f when quantized alone", rank+1, layers[i].Damage)
	}
	return floatTop(k), nil
}

// measureDamage sets each layer's Damage: the output error with only that
// layer quantized. Excluded layers keep -1.
func (z *quantizer) measureDamage(ctx context.Context, s *sensitivity, layers []LayerReport) error {
	p, opt := z.p, z.opt
	for i, n := range p.candidates {
		if p.excluded[n.GetName()] {
			z.progress("sensitivity", i+1, len(p.candidates))
			continue
		}
		one := &Plan{Quantize: map[string]bool{n.GetName(): true}, Ranges: z.ranges, Profile: opt.Profile, PerChannel: opt.PerChannel, ReduceRange: opt.ReduceRange,
			InputMeans: z.inputMeans, BiasCorrection: opt.BiasCorrection, Hessians: z.byNode}
		e, err := s.errorOf(ctx, one)
		if err != nil {
			return fmt.Errorf("sensitivity of %q: %w", n.GetName(), err)
		}
		layers[i].Damage = e
		z.progress("sensitivity", i+1, len(p.candidates))
	}
	return nil
}

// searchFloatCount returns the smallest k of n such that keeping floatTop(k)
// float meets the budget. The error falls roughly monotonically with k, so
// it bisects.
func (z *quantizer) searchFloatCount(ctx context.Context, s *sensitivity, n int, floatTop func(k int) map[string]bool) (int, error) {
	lo, hi := 0, n
	for lo < hi {
		mid := (lo + hi) / 2
		if mid == 0 {
			lo = 1
			continue
		}
		pl, _ := z.plan(floatTop(mid))
		e, err := s.errorOf(ctx, pl)
		if err != nil {
			return 0, err
		}
		z.progress("search", mid, n)
		z.log.Info("sensitivity search", "float_layers", mid, "error", e)
		if e <= z.opt.MaxError {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo, nil
}

// sensitivity measures how far a quantized model's outputs are from FP32's
// on a few calibration inputs.
type sensitivity struct {
	p       *prepared
	inName  string
	inShape []int64
	inputs  [][]float32
	ref     [][][]float32 // [input][output] FP32 values
	layout  []outLayout
	threads int
	outs    []string
}

type outLayout struct {
	feat, rows   int
	channelMajor bool
}

func newSensitivity(ctx context.Context, p *prepared, inName string, inShape []int64, inputs onnx.Inputs, opt Options) (*sensitivity, error) {
	k := min(max(opt.SensitivityFrames, 1), inputs.Len())
	s := &sensitivity{p: p, inName: inName, inShape: inShape, threads: opt.Threads}
	for _, o := range p.model.GetGraph().GetOutput() {
		s.outs = append(s.outs, o.GetName())
	}
	r, err := ortrun.NewRunner(p.model, inName, inShape, s.outs, opt.Threads)
	if err != nil {
		return nil, fmt.Errorf("reference model: %w", err)
	}
	defer r.Close()
	n := 1
	for _, d := range inShape {
		n *= int(d)
	}
	// Spread the frames over the calibration set.
	for j := 0; j < k; j++ {
		idx := j * inputs.Len() / k
		buf := make([]float32, n)
		if err := inputs.Input(ctx, idx, buf); err != nil {
			return nil, fmt.Errorf("calibration input %d: %w", idx, err)
		}
		copy(r.Input(), buf)
		outs := make([][]float32, len(s.outs))
		if err := r.Run(func(i int, _ string, _ []int64, v []float32) error { outs[i] = slices.Clone(v); return nil }); err != nil {
			return nil, err
		}
		s.inputs = append(s.inputs, buf)
		s.ref = append(s.ref, outs)
	}
	for i := range s.outs {
		s.layout = append(s.layout, guessLayout(len(s.ref[0][i]), p, s.outs[i]))
	}
	return s, nil
}

// guessLayout treats an output as rows × features, the features being its
// smaller non-batch dimension (85 class/box values of 3549 YOLOX cells,
// 84 of 2100 YOLOv8 anchors, stored channel-major).
func guessLayout(n int, p *prepared, name string) outLayout {
	var dims []int64
	if vi := p.g.ValueInfo(name); vi != nil {
		for _, d := range vi.GetType().GetTensorType().GetShape().GetDim() {
			if v := d.GetDimValue(); v > 1 {
				dims = append(dims, v)
			}
		}
	}
	if len(dims) == 2 && int(dims[0]*dims[1]) == n {
		if dims[0] < dims[1] {
			return outLayout{feat: int(dims[0]), rows: int(dims[1]), channelMajor: true}
		}
		return outLayout{feat: int(dims[1]), rows: int(dims[0])}
	}
	return outLayout{feat: 1, rows: n}
}

func (s *sensitivity) errorOf(ctx context.Context, plan *Plan) (float64, error) {
	m, err := s.p.buildQDQ(plan)
	if err != nil {
		return 0, err
	}
	return s.errorOfModel(ctx, m)
}

// errorOfModel is the mean over output features of the squared error
// against FP32 divided by the feature's FP32 variance.
func (s *sensitivity) errorOfModel(ctx context.Context, m *onnxpb.ModelProto) (float64, error) {
	r, err := ortrun.NewRunner(m, s.inName, s.inShape, s.outs, s.threads)
	if err != nil {
		return 0, err
	}
	defer r.Close()
	type acc struct {
		se, sum, sq []float64
		n           float64
	}
	accs := make([]acc, len(s.outs))
	for i, l := range s.layout {
		accs[i] = acc{se: make([]float64, l.feat), sum: make([]float64, l.feat), sq: make([]float64, l.feat)}
	}
	for j, in := range s.inputs {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		copy(r.Input(), in)
		err := r.Run(func(i int, _ string, _ []int64, v []float32) error {
			ref := s.ref[j][i]
			if len(v) != len(ref) {
				return fmt.Errorf("output %q has %d values, FP32 has %d", s.outs[i], len(v), len(ref))
			}
			l, a := s.layout[i], &accs[i]
			add := func(row int) {
				for f := 0; f < l.feat; f++ {
					k := row*l.feat + f
					if l.channelMajor {
						k = f*l.rows + row
					}
					d := float64(v[k] - ref[k])
					a.se[f] += d * d
					a.sum[f] += float64(ref[k])
					a.sq[f] += float64(ref[k]) * float64(ref[k])
				}
				a.n++
			}
			for row := 0; row < l.rows; row++ {
				add(row)
			}
			return nil
		})
		if err != nil {
			return 0, err
		}
	}
	var total float64
	var count int
	for _, a := range accs {
		if a.n == 0 {
			continue
		}
		for f := range a.se {
			mean := a.sum[f] / a.n
			variance := a.sq[f]/a.n - mean*mean
			if variance <= 1e-12 {
				continue
			}
			total += a.se[f] / a.n / variance
			count++
		}
	}
	if count == 0 {
		return 0, nil
	}
	e := total / float64(count)
	if math.IsNaN(e) {
		return 0, errors.New("output error is NaN")
	}
	return e, nil
}
