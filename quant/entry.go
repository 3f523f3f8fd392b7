package quant

import (
	"context"
	"fmt"
	"slices"

	"github.com/edgedet/edgedet/internal/latency"
)

// The entry region.
//
// A detector's first layers are where INT8 hurts most: few channels whose
// ranges differ by orders of magnitude (YOLOX-Nano's stem output spans
// ±0.03 in some channels and ±115 in others), read one channel at a time by
// a depthwise convolution that cannot average the rounding out. They are
// also where float costs least: few channels, and a float region at the
// start needs a single float→INT8 crossing, where a float layer in the
// middle needs two (a QuantizeLinear and a DequantizeLinear pass over its
// tensors). So the quantizer keeps the first k layers float, k chosen from
// the output error of every prefix up to entryMaxLayers (see pickEntry).
// On yolox_nano_416, with the detection metric, the error falls from 0.39
// (all INT8) to 0.09 at k = 3 (stem, first depthwise and pointwise
// convolution), while scattered float layers chosen by damage alone (the
// budget search) made the model 0.8x FP32 instead of 0.5x.

// entryMaxLayers bounds the prefixes the entry region is chosen among;
// at most a quarter of the candidates are considered.
const entryMaxLayers = 16

// entryTolerance: the entry region is the shortest prefix that achieves
// all but this fraction of the error reduction of the best prefix (the
// knee of the curve; longer prefixes cost time for little).
const entryTolerance = 0.25

// entryNoise is the least error difference the prefix curve can resolve:
// prefixes within it of the best are near-best whatever the tolerance
// says. The detection metric on 16 frames moves by 0.03-0.06 between
// neighbouring prefixes where quantization barely matters
// (yolo-fastestv2: 0.041-0.105 over k = 0..16, all INT8 0.057).
const entryNoise = 0.02

// entryImplausible: when even the best prefix leaves the detection
// metric at this error or above, INT8 and FP32 agree on almost no
// detection whatever stays float. A model that quantizes at all does not
// do that (yolo-fastestv2 with every layer INT8: 0.79-0.93, with a float
// prefix 0.04-0.1); a model whose output is decoded in the wrong format
// does (yolox_nano_640_bubbliiiing read as yolox: 0.989-0.999), since
// its "detections" are noise that no two models share.
const entryImplausible = 0.9

// entryTimed bounds the near-best prefixes timed with Options.Timer (the
// shortest ones: a longer float region is rarely faster).
const entryTimed = 4

// entryFaster is how much faster a longer entry region must be, as a
// ratio to the best so far, to be chosen over it. Paired timings of two
// regions that differ by one small layer spread by ±5 % run to run on a
// 2-vCPU machine (yolox_nano_416: 3 vs 4 float layers measured 0.96x and
// 1.04x); a smaller margin picks among equals by noise, and a longer
// region is never more accurate by construction.
const entryFaster = 0.9

// entryRegion measures the output error with the first k candidates float
// for k up to entryMaxLayers, keeps the prefix pickEntry chooses float,
// records the curve in the report and the reason in layers, and returns
// the float set and its error.
func (z *quantizer) entryRegion(ctx context.Context, s *sensitivity, layers []LayerReport) (map[string]bool, float64, error) {
	cands := z.p.candidates
	n := min(entryMaxLayers, len(cands)/4)
	errs := []float64{z.rep.ErrorAll}
	for k := 1; k <= n; k++ {
		e, err := s.errorOf(ctx, z.prefixPlan(k))
		if err != nil {
			return nil, 0, fmt.Errorf("entry region of %d layers: %w", k, err)
		}
		errs = append(errs, e)
		z.progress("entry region", k, n)
	}
	if best := slices.Min(errs); z.rep.CustomMetric && best >= entryImplausible {
		z.rep.MetricBlind = true
		z.log.Warn("no float prefix brings the INT8 detections near FP32's: the model's output is probably decoded in the wrong format, and the layers kept float were chosen blind", "best_error", best)
	}
	k, even, err := z.pickEntry(ctx, errs)
	if err != nil {
		return nil, 0, err
	}
	z.rep.EntryErrors, z.rep.EntryLayers = errs, k
	z.log.Info("entry region", "float_layers", k, "error", errs[k], "all_int8", errs[0])
	f := map[string]bool{}
	z.entry = map[string]bool{}
	for i, c := range cands[:k] {
		f[c.GetName()] = true
		z.entry[c.GetName()] = true
		if !z.p.excluded[c.GetName()] {
			layers[i].Float = true
			layers[i].Reason = fmt.Sprintf("entry region: the first %d layers float give output error %.4f (all INT8: %.4f)", k, errs[k], errs[0])
			if even {
				layers[i].Reason += "; the crossing into INT8 after them leaves every channel at least 4.5 bits"
			}
			if t := z.rep.EntryTimings; len(t) > 1 {
				layers[i].Reason += fmt.Sprintf("; the fastest on this CPU of %d near-best regions timed", len(t))
			}
		}
	}
	return f, errs[k], nil
}

// pickEntry chooses the entry region's length from the output errors of
// the prefixes (errs[k]: first k layers float). The error measured on a
// few frames is noisy, and past the first sensitive layers it is flat
// within that noise, so it chooses among the prefixes near the best (the
// near-best set: within entryTolerance of the best improvement or
// entryNoise of the best error) those whose crossing into INT8 is even: no
// channel of a tensor quantized there has a range below 1/narrowRatio of
// the tensor's widest (on YOLOX-Nano, ending the region after the first
// depthwise convolution leaves one of its 16 channels with under 4.5 bits,
// ending it after the pointwise convolution that follows leaves none).
// Without Options.Timer it takes the shortest of them; with it, the
// fastest of the entryTimed shortest, timed on this machine. Without an
// even crossing in the set it takes the knee. It reports whether the
// crossing is even.
func (z *quantizer) pickEntry(ctx context.Context, errs []float64) (int, bool, error) {
	knee := shortestNearBest(errs, entryTolerance)
	best := slices.Min(errs)
	limit := best + max(entryTolerance*(errs[0]-best), entryNoise)
	var set []int
	var tensors []string
	crossAt := map[int][]string{}
	for k, e := range errs {
		if e > limit {
			continue
		}
		set = append(set, k)
		crossAt[k] = z.p.crossings(z.prefixPlan(k))
		tensors = append(tensors, crossAt[k]...)
	}
	ranges, err := tensorChannelRanges(ctx, z.fp, z.inName, z.inShape, tensors, z.inputs, z.opt.Threads)
	if err != nil {
		return 0, false, fmt.Errorf("entry region: %w", err)
	}
	var even []int
	for _, k := range set {
		ok := true
		for _, t := range crossAt[k] {
			if r, found := ranges[t]; !found || narrowShare(r) > 0 {
				ok = false
			}
		}
		if ok {
			even = append(even, k)
		}
	}
	if len(even) == 0 {
		return knee, false, nil
	}
	if z.opt.Timer == nil || len(even) == 1 {
		return even[0], true, nil
	}
	k, err := z.fastestEntry(ctx, even[:min(entryTimed, len(even))])
	if err != nil {
		return 0, false, fmt.Errorf("entry region: %w", err)
	}
	return k, true, nil
}

// fastestEntry times the entry regions of lengths ks (shortest first)
// against the first with Options.Timer and returns the fastest; a longer
// one must beat the best so far by entryFaster. The timings go to the
// report.
func (z *quantizer) fastestEntry(ctx context.Context, ks []int) (int, error) {
	ref, err := z.p.buildQDQ(z.prefixPlan(ks[0]))
	if err != nil {
		return 0, err
	}
	z.rep.EntryTimings = []EntryTiming{{Layers: ks[0], Ratio: 1}}
	chosen, chosenRatio := ks[0], 1.0
	for i, k := range ks[1:] {
		m, err := z.p.buildQDQ(z.prefixPlan(k))
		if err != nil {
			return 0, err
		}
		tRef, tK, err := latency.PairedModels(ctx, z.opt.Timer, ref, m,
			fmt.Sprintf("%d-layer entry region", ks[0]), fmt.Sprintf("%d-layer entry region", k))
		if err != nil {
			return 0, err
		}
		ratio := float64(tK) / float64(max(tRef, 1))
		z.rep.EntryTimings = append(z.rep.EntryTimings, EntryTiming{Layers: k, Ratio: ratio})
		z.log.Info("entry region timed", "float_layers", k, "ratio_to", ks[0], "ratio", ratio)
		if ratio < chosenRatio*entryFaster {
			chosen, chosenRatio = k, ratio
		}
		z.progress("entry region timing", i+1, len(ks)-1)
	}
	return chosen, nil
}

// prefixPlan is the plan with the first k candidates float.
func (z *quantizer) prefixPlan(k int) *Plan {
	f := map[string]bool{}
	for _, c := range z.p.candidates[:k] {
		f[c.GetName()] = true
	}
	pl, _ := z.plan(f)
	for name := range f {
		delete(pl.FloatWeights, name) // float32 weights, see quantizer.entry
	}
	return pl
}

// shortestNearBest returns the smallest k whose errs[k] is at most
// best + tol·(errs[0] − best), best being the least of errs: the shortest
// prefix with all but the fraction tol of the best one's improvement.
func shortestNearBest(errs []float64, tol float64) int {
	best := errs[0]
	for _, e := range errs {
		best = min(best, e)
	}
	limit := best + tol*(errs[0]-best)
	for k, e := range errs {
		if e <= limit {
			return k
		}
	}
	return 0
}

// crossings returns the activation tensors plan quantizes whose producer
// computes in float (or that are graph inputs): where the model crosses
// from float into INT8.
func (p *prepared) crossings(plan *Plan) []string {
	seen := map[string]bool{}
	var out []string
	for _, n := range p.order {
		if !plan.Quantize[n.GetName()] {
			continue
		}
		for _, i := range p.quantInputs(p.g, n) {
			t := n.GetInput()[i]
			if p.g.Initializer(t) != nil || seen[t] {
				continue
			}
			if prod := p.g.Producer(t); prod == nil || !plan.Quantize[prod.GetName()] {
				seen[t] = true
				out = append(out, t)
			}
		}
	}
	return out
}

// narrowShare is the fraction of a tensor's channels whose range is below
// 1/narrowRatio of its widest channel's: one INT8 scale leaves them fewer
// than 256/narrowRatio steps (fewer than 4.5 bits).
func narrowShare(r channelRanges) float64 {
	var widest float32
	for c := range r.lo {
		widest = max(widest, r.hi[c]-r.lo[c])
	}
	if len(r.lo) == 0 || widest == 0 {
		return 0
	}
	n := 0
	for c := range r.lo {
		if (r.hi[c]-r.lo[c])*narrowRatio < widest {
			n++
		}
	}
	return float64(n) / float64(len(r.lo))
}

// narrowRatio: a channel is narrow when its range is below 1/narrowRatio
// of the widest channel's of its tensor, so that it keeps under 4.5 of the
// 8 bits (2^3.5 ≈ 11.3). On yolox_nano's calibration images the depthwise
// output after the stem has a channel 13-18× narrower than its widest,
// the pointwise output after it none narrower than 10×.
const narrowRatio = 11.3
