package quant

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"math/bits"
	"slices"
	"sort"

	"github.com/edgedet/edgedet/onnx"
	"github.com/edgedet/edgedet/onnx/onnxpb"
	"github.com/edgedet/edgedet/onnx/ortrun"
)

// chooseFloat returns the layers to keep float: the entry region
// (opt.EntryFloat), then, while the output error is above opt.MaxError,
// the most damaging other layers; and the measure it used (nil when
// neither applies: every candidate is quantized without a check).
func (z *quantizer) chooseFloat(ctx context.Context, layers []LayerReport) (map[string]bool, *sensitivity, error) {
	floatNodes := map[string]bool{}
	if !z.opt.EntryFloat && z.opt.MaxError < 0 {
		return floatNodes, nil, nil
	}
	s, err := newSensitivity(ctx, z.p, z.inName, z.inShape, z.inputs, z.opt)
	if err != nil {
		return nil, nil, err
	}
	z.rep.CustomMetric = s.metric != nil
	all, _ := z.plan(nil)
	z.rep.ErrorAll, err = s.errorOf(ctx, all)
	if err != nil {
		return nil, nil, err
	}
	z.log.Info("all layers quantized", "error", z.rep.ErrorAll, "budget", z.opt.MaxError)
	current := z.rep.ErrorAll
	if z.opt.EntryFloat {
		if floatNodes, current, err = z.entryRegion(ctx, s, layers); err != nil {
			return nil, nil, err
		}
	}
	if z.opt.MaxError >= 0 && current > z.opt.MaxError {
		if floatNodes, err = z.keepMostDamagingFloat(ctx, s, layers, floatNodes); err != nil {
			return nil, nil, err
		}
	}
	return floatNodes, s, nil
}

// keepMostDamagingFloat ranks the layers outside base by the error each
// causes quantized alone and returns base with the fewest most damaging
// ones that, kept float, bring the error within budget, giving them their
// reason in layers.
func (z *quantizer) keepMostDamagingFloat(ctx context.Context, s *sensitivity, layers []LayerReport, base map[string]bool) (map[string]bool, error) {
	if err := z.measureDamage(ctx, s, layers); err != nil {
		return nil, err
	}
	var order []int
	for i, l := range layers {
		if !base[l.Node] {
			order = append(order, i)
		}
	}
	sort.SliceStable(order, func(a, b int) bool { return layers[order[a]].Damage > layers[order[b]].Damage })
	floatTop := func(k int) map[string]bool {
		f := maps.Clone(base)
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
	// Progress counts bisection steps: at most bits.Len(n) of them.
	steps, step := bits.Len(uint(n)), 0
	defer func() {
		if step < steps {
			z.progress("search", steps, steps) // finished early
		}
	}()
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
		step++
		z.progress("search", min(step, steps), steps)
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

	refShapes [][][]int64 // [input][output] shapes
	metric    Metric      // nil: relative squared error per output feature
}

// Outputs are a model's outputs for one frame, in graph output order.
type Outputs struct {
	Shapes [][]int64
	Values [][]float32
}

// A Metric measures how far a quantized model's outputs (got) are from the
// FP32 model's (ref) on the same frames, in the terms that matter to the
// caller: 0 when they agree, larger when worse. cmd/edgedet's decodes both
// into detections and scores the quantized ones against FP32's (see
// Options.Metric).
type Metric func(ref, got []Outputs) (float64, error)

// useMetric makes s measure with metric, after checking that it calls the
// FP32 outputs identical to themselves; if it cannot (an error, e.g. no
// detections on the sensitivity frames to compare), s keeps the relative
// squared error and the reason is logged.
func (s *sensitivity) useMetric(metric Metric, log *slog.Logger) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ref := s.outputs(s.ref)
	self, err := metric(ref, ref)
	switch {
	case err != nil:
		log.Warn("output metric unusable on the sensitivity frames; using the relative squared error", "reason", err)
	case self > 1e-9 || math.IsNaN(self):
		log.Warn("output metric unusable: it does not call the FP32 outputs identical to themselves; using the relative squared error", "self", self)
	default:
		s.metric = metric
	}
}

// outputs pairs values ([input][output]) with the reference shapes.
func (s *sensitivity) outputs(values [][][]float32) []Outputs {
	out := make([]Outputs, len(values))
	for j, v := range values {
		out[j] = Outputs{Shapes: s.refShapes[j], Values: v}
	}
	return out
}

// metricOf runs r on the sensitivity frames and measures its outputs with
// s.metric.
func (s *sensitivity) metricOf(ctx context.Context, r *ortrun.Runner) (float64, error) {
	got := make([][][]float32, len(s.inputs))
	for j, in := range s.inputs {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		copy(r.Input(), in)
		got[j] = make([][]float32, len(s.outs))
		err := r.Run(func(i int, _ string, _ []int64, v []float32) error {
			if len(v) != len(s.ref[j][i]) {
				return fmt.Errorf("output %q has %d values, FP32 has %d", s.outs[i], len(v), len(s.ref[j][i]))
			}
			got[j][i] = slices.Clone(v)
			return nil
		})
		if err != nil {
			return 0, err
		}
	}
	e, err := s.metric(s.outputs(s.ref), s.outputs(got))
	if err != nil {
		return 0, fmt.Errorf("output metric: %w", err)
	}
	return e, nil
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
		shapes := make([][]int64, len(s.outs))
		err := r.Run(func(i int, _ string, shape []int64, v []float32) error {
			outs[i], shapes[i] = slices.Clone(v), slices.Clone(shape)
			return nil
		})
		if err != nil {
			return nil, err
		}
		s.inputs = append(s.inputs, buf)
		s.ref = append(s.ref, outs)
		s.refShapes = append(s.refShapes, shapes)
	}
	if opt.Metric != nil {
		s.useMetric(opt.Metric, opt.Log)
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
	if s.metric != nil {
		return s.metricOf(ctx, r)
	}
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
