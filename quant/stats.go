package quant

import (
	"fmt"
	"math"
)

// Method is how an activation's quantization range is chosen from the
// calibration statistics.
type Method string

// Calibration methods.
const (
	// MethodMinMax uses the smallest and largest value seen.
	MethodMinMax Method = "minmax"
	// MethodPercentile clips each tail at a percentile of the values seen
	// (default 99.99), so rare outliers do not stretch the step size.
	MethodPercentile Method = "percentile"
	// MethodEntropy picks the clipping threshold that minimises the KL
	// divergence between the value histogram and its quantized version
	// (the TensorRT method).
	MethodEntropy Method = "entropy"
	// MethodMSE picks the range whose quantization error (rounding plus
	// clipping, through the activation the tensor feeds) is least on the
	// calibration values (see MSERange).
	MethodMSE Method = "mse"
)

// ParseMethod checks a method name.
func ParseMethod(s string) (Method, error) {
	switch m := Method(s); m {
	case MethodMinMax, MethodPercentile, MethodEntropy, MethodMSE:
		return m, nil
	}
	return "", fmt.Errorf("calibration method %q is not one of minmax, percentile, entropy, mse", s)
}

// histBins is the number of histogram bins per sign; TensorRT's entropy
// calibration uses 2048 bins over |x|.
const histBins = 2048

// TensorStats accumulates one tensor's value statistics over calibration
// batches in bounded memory: min, max, and histograms of the positive and
// negative values' magnitudes over a shared range that doubles (merging bin
// pairs) whenever a larger value arrives.
type TensorStats struct {
	Min, Max float32
	Count    uint64
	width    float64 // bin width; bins cover [0, width*histBins)
	pos, neg []uint64
}

// NewTensorStats returns empty statistics.
func NewTensorStats() *TensorStats {
	return &TensorStats{Min: float32(math.Inf(1)), Max: float32(math.Inf(-1))}
}

// Add folds values into the statistics. NaNs are ignored; infinities are
// an error (a calibration input that overflows the model).
func (s *TensorStats) Add(values []float32) error {
	lo, hi := s.Min, s.Max
	var peak float32
	for _, v := range values {
		if v < lo {
			lo = v
		}
		if v > hi {
			hi = v
		}
	}
	// lo starts at +Inf and hi at -Inf: only an infinite value makes
	// lo -Inf or hi +Inf.
	if math.IsInf(float64(lo), -1) || math.IsInf(float64(hi), 1) {
		return fmt.Errorf("tensor has infinite values")
	}
	s.Min, s.Max = lo, hi
	peak = max(-lo, hi)
	if peak <= 0 || len(values) == 0 {
		s.Count += uint64(len(values))
		return nil
	}
	if s.pos == nil {
		s.pos = make([]uint64, histBins)
		s.neg = make([]uint64, histBins)
		s.width = float64(peak) / histBins * 1.0001
	}
	for float64(peak) >= s.width*histBins {
		s.grow()
	}
	inv := 1 / s.width
	pos, neg := s.pos, s.neg
	for _, v := range values {
		if v >= 0 {
			pos[min(int(float64(v)*inv), histBins-1)]++
		} else if v < 0 {
			neg[min(int(float64(-v)*inv), histBins-1)]++
		}
	}
	s.Count += uint64(len(values))
	return nil
}

// grow doubles the histogram range by merging adjacent bins.
func (s *TensorStats) grow() {
	for _, h := range [][]uint64{s.pos, s.neg} {
		for i := 0; i < histBins/2; i++ {
			h[i] = h[2*i] + h[2*i+1]
		}
		clear(h[histBins/2:])
	}
	s.width *= 2
}

// Range returns the [lo, hi] interval to quantize, always containing 0.
// percentile is used by MethodPercentile (e.g. 99.99); levels is the number
// of quantization steps of the target type (255 for 8 bits).
func (s *TensorStats) Range(m Method, percentile float64) (lo, hi float32) {
	if s.Count == 0 || s.Min > s.Max {
		return 0, 0
	}
	lo, hi = min(s.Min, 0), max(s.Max, 0)
	if s.pos == nil {
		return lo, hi
	}
	switch m {
	case MethodPercentile:
		// Like ONNX Runtime's percentile calibration: (100-p)/2 percent of
		// the values are cut from each tail.
		n := float64(s.Count)
		tail := n * (100 - percentile) / 200
		hi = min(hi, float32(s.tailThreshold(s.pos, tail)))
		lo = max(lo, -float32(s.tailThreshold(s.neg, tail)))
	case MethodEntropy:
		abs := make([]uint64, histBins)
		var negCount, total uint64
		for i := range abs {
			abs[i] = s.pos[i] + s.neg[i]
			negCount += s.neg[i]
			total += abs[i]
		}
		levels := 128 // symmetric: half of the 8-bit range per sign
		if float64(negCount) < 0.01*float64(total) {
			levels = 255 // one-sided: the whole range serves one sign
		}
		t := float32(entropyThreshold(abs, levels) * s.width)
		hi, lo = min(hi, t), max(lo, -t)
	}
	return lo, hi
}

// tailThreshold returns the magnitude above which about `tail` values of h
// lie (the upper edge of the bin where the cumulative tail count reaches it).
func (s *TensorStats) tailThreshold(h []uint64, tail float64) float64 {
	var acc float64
	for i := histBins - 1; i >= 0; i-- {
		acc += float64(h[i])
		if acc > tail {
			return float64(i+1) * s.width
		}
	}
	return 0
}

// entropyThreshold is TensorRT's calibration: for each candidate number of
// bins i (from levels to len(hist)), compare the histogram clipped at i
// (outliers folded into the last bin) with its quantization into `levels`
// buckets, and return the i (in bins, at the bin's centre) with the least
// KL divergence.
func entropyThreshold(hist []uint64, levels int) float64 {
	n := len(hist)
	last := n
	for last > 0 && hist[last-1] == 0 {
		last--
	}
	if last <= levels {
		return float64(last)
	}
	var suffix = make([]float64, n+1)
	for i := n - 1; i >= 0; i-- {
		suffix[i] = suffix[i+1] + float64(hist[i])
	}
	p := make([]float64, n)
	q := make([]float64, n)
	best, bestKL := last, math.Inf(1)
	for i := levels; i <= last; i++ {
		for j := 0; j < i; j++ {
			p[j] = float64(hist[j])
		}
		p[i-1] += suffix[i]
		// Quantize hist[:i] into `levels` buckets, spreading each bucket's
		// mass evenly over its non-empty bins.
		for k := 0; k < levels; k++ {
			start := k * i / levels
			end := (k + 1) * i / levels
			if end <= start {
				end = start + 1
			}
			var sum float64
			nonzero := 0
			for j := start; j < end && j < i; j++ {
				sum += float64(hist[j])
				if hist[j] != 0 {
					nonzero++
				}
			}
			for j := start; j < end && j < i; j++ {
				q[j] = 0
				if hist[j] != 0 {
					q[j] = sum / float64(nonzero)
				}
			}
		}
		kl := klDivergence(p[:i], q[:i])
		if kl < bestKL {
			best, bestKL = i, kl
		}
	}
	return float64(best) + 0.5
}

// klDivergence is KL(p || q) of two unnormalised histograms; bins where p
// has mass but q has none are smoothed with a small epsilon.
func klDivergence(p, q []float64) float64 {
	var sp, sq float64
	for i := range p {
		sp += p[i]
		sq += q[i]
	}
	if sp == 0 || sq == 0 {
		return math.Inf(1)
	}
	const eps = 1e-12
	var kl float64
	for i := range p {
		if p[i] == 0 {
			continue
		}
		pi := p[i] / sp
		qi := q[i] / sq
		if qi < eps {
			qi = eps
		}
		kl += pi * math.Log(pi/qi)
	}
	return kl
}
