package quant

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// addValues feeds values to s, failing the test on an error.
func addValues(t testing.TB, s *TensorStats, values ...float32) {
	t.Helper()
	if err := s.Add(values); err != nil {
		t.Fatalf("Add(%d values): %v", len(values), err)
	}
}

// histTotal is the number of values in s's histograms.
func histTotal(s *TensorStats) uint64 {
	var n uint64
	for i := range s.pos {
		n += s.pos[i] + s.neg[i]
	}
	return n
}

func TestParseMethod(t *testing.T) {
	for _, m := range []Method{MethodMinMax, MethodPercentile, MethodEntropy} {
		if got, err := ParseMethod(string(m)); err != nil || got != m {
			t.Errorf("ParseMethod(%q) = %q, %v", m, got, err)
		}
	}
	if _, err := ParseMethod("kl"); err == nil || !strings.Contains(err.Error(), `"kl"`) {
		t.Errorf("ParseMethod(kl) error = %v, want one naming the method", err)
	}
}

func TestTensorStatsMinMaxCount(t *testing.T) {
	s := NewTensorStats()
	addValues(t, s, 1, -2, 3)
	addValues(t, s, 0.5, 10)
	addValues(t, s)
	addValues(t, s, -7, 0)
	if s.Min != -7 || s.Max != 10 || s.Count != 7 {
		t.Errorf("Min, Max, Count = %g, %g, %d; want -7, 10, 7", s.Min, s.Max, s.Count)
	}
	if got := histTotal(s); got != 7 {
		t.Errorf("histograms hold %d values, want 7", got)
	}
	// The zero goes to the first positive bin.
	if s.pos[0] != 1 {
		t.Errorf("pos[0] = %d, want 1 (the zero)", s.pos[0])
	}
}

// The histogram range doubles, merging bin pairs, when a larger value
// arrives; values already counted move to the merged bin.
func TestTensorStatsHistogramGrows(t *testing.T) {
	s := NewTensorStats()
	addValues(t, s, 1, -1, 0.25)
	// The first batch sets the range just above its peak: 1 lands in the last bin.
	w0 := 1.0 / histBins * 1.0001
	if s.width != w0 {
		t.Fatalf("width = %g, want %g", s.width, w0)
	}
	if s.pos[histBins-1] != 1 || s.neg[histBins-1] != 1 || s.pos[511] != 1 {
		t.Fatalf("bins of 1, -1, 0.25: pos[2047]=%d neg[2047]=%d pos[511]=%d, want 1 each",
			s.pos[histBins-1], s.neg[histBins-1], s.pos[511])
	}
	// 100 needs 7 doublings (1.0001·2^7 = 128.01 > 100).
	addValues(t, s, 100)
	if want := w0 * 128; s.width != want {
		t.Errorf("width after 100 = %g, want %g (7 doublings)", s.width, want)
	}
	// 1 → bin 2047>>7 = 15, 0.25 → 511>>7 = 3, 100 → ⌊100/width⌋ = 1599.
	for _, c := range []struct {
		name string
		h    []uint64
		bin  int
	}{{"pos", s.pos, 15}, {"neg", s.neg, 15}, {"pos", s.pos, 3}, {"pos", s.pos, 1599}} {
		if c.h[c.bin] != 1 {
			t.Errorf("%s[%d] = %d, want 1", c.name, c.bin, c.h[c.bin])
		}
	}
	if got := histTotal(s); got != 4 || s.Count != 4 {
		t.Errorf("histograms hold %d values, Count %d; want 4, 4", got, s.Count)
	}

	// Many batches of growing magnitude lose no counts and keep every value
	// inside the histogram range.
	rng := rand.New(rand.NewPCG(7, 7))
	s = NewTensorStats()
	var n, zeros uint64
	for b := 0; b < 40; b++ {
		scale := float32(math.Pow(1.7, float64(b)))
		v := randFloats(rng, 1000, -scale, scale)
		v[0], v[1] = 0, 0
		zeros += 2
		addValues(t, s, v...)
		n += uint64(len(v))
		peak := max(-float64(s.Min), float64(s.Max))
		if peak >= s.width*histBins {
			t.Fatalf("batch %d: peak %g outside the histogram range %g", b, peak, s.width*histBins)
		}
		if got := histTotal(s); got != n || s.Count != n {
			t.Fatalf("batch %d: histograms hold %d values, Count %d; want %d", b, got, s.Count, n)
		}
	}
	if s.pos[0] < zeros {
		t.Errorf("pos[0] = %d, want at least the %d zeros", s.pos[0], zeros)
	}
}

func TestTensorStatsInfinityAndNaN(t *testing.T) {
	for _, inf := range []float32{float32(math.Inf(1)), float32(math.Inf(-1))} {
		s := NewTensorStats()
		addValues(t, s, 1, -1)
		if err := s.Add([]float32{2, inf, 3}); err == nil || !strings.Contains(err.Error(), "infinite") {
			t.Errorf("Add with %g: error %v, want one about infinite values", inf, err)
		}
		// The failed batch leaves the statistics as they were.
		if s.Min != -1 || s.Max != 1 || s.Count != 2 || histTotal(s) != 2 {
			t.Errorf("after a rejected batch: Min %g Max %g Count %d hist %d; want -1 1 2 2", s.Min, s.Max, s.Count, histTotal(s))
		}
	}

	nan := float32(math.NaN())
	s := NewTensorStats()
	addValues(t, s, nan, nan)
	if lo, hi := s.Range(MethodPercentile, 99.99); lo != 0 || hi != 0 {
		t.Errorf("Range after only NaNs = %g, %g; want 0, 0", lo, hi)
	}
	addValues(t, s, nan, 2, -4, nan)
	if s.Min != -4 || s.Max != 2 {
		t.Errorf("Min, Max = %g, %g; want -4, 2 (NaN ignored)", s.Min, s.Max)
	}
	if got := histTotal(s); got != 2 {
		t.Errorf("histograms hold %d values, want 2 (NaN not binned)", got)
	}
	for _, m := range []Method{MethodMinMax, MethodPercentile} {
		lo, hi := s.Range(m, 100)
		if lo != -4 || hi != 2 {
			t.Errorf("Range(%s) = %g, %g; want -4, 2", m, lo, hi)
		}
	}
}

func TestRangeMinMax(t *testing.T) {
	for _, c := range []struct {
		values []float32
		lo, hi float32
	}{
		{[]float32{2, 5, 3}, 0, 5}, // all positive: widened down to 0
		{[]float32{-3, -1}, -3, 0}, // all negative: widened up to 0
		{[]float32{-1.5, 0, 2.25}, -1.5, 2.25},
		{[]float32{0, 0, 0}, 0, 0}, // all zero
		{[]float32{7}, 0, 7},
	} {
		s := NewTensorStats()
		addValues(t, s, c.values...)
		if lo, hi := s.Range(MethodMinMax, 0); lo != c.lo || hi != c.hi {
			t.Errorf("Range(minmax) of %v = [%g, %g], want [%g, %g]", c.values, lo, hi, c.lo, c.hi)
		}
	}
	if lo, hi := NewTensorStats().Range(MethodMinMax, 0); lo != 0 || hi != 0 {
		t.Errorf("Range of empty stats = [%g, %g], want [0, 0]", lo, hi)
	}
}

func TestRangeAllZero(t *testing.T) {
	s := NewTensorStats()
	addValues(t, s, make([]float32, 1000)...)
	addValues(t, s, make([]float32, 10)...)
	for _, m := range []Method{MethodMinMax, MethodPercentile, MethodEntropy} {
		if lo, hi := s.Range(m, 99.99); lo != 0 || hi != 0 {
			t.Errorf("Range(%s) of an all-zero tensor = [%g, %g], want [0, 0]", m, lo, hi)
		}
	}
}

// 100000 values in [0,1) and 5 outliers at 1000: the 99.99th percentile
// cuts (100-99.99)/2 % = 5.00025 values from the top, which is just the
// outliers; 99.999 (0.5 values) and 100 keep them.
func TestRangePercentileOutliers(t *testing.T) {
	for _, order := range []string{"bulk first", "outliers first", "one batch"} {
		t.Run(order, func(t *testing.T) {
			bulk := make([]float32, 100000)
			for i := range bulk {
				bulk[i] = float32(i) / float32(len(bulk))
			}
			outliers := []float32{1000, 1000, 1000, 1000, 1000}
			s := NewTensorStats()
			switch order {
			case "bulk first":
				addValues(t, s, bulk...)
				addValues(t, s, outliers...)
			case "outliers first":
				addValues(t, s, outliers...)
				addValues(t, s, bulk...)
			default:
				addValues(t, s, append(bulk, outliers...)...)
			}
			// The histogram covers 1000 in 2048 bins: ~0.49 wide, so the
			// percentile is at best the upper edge of 1's bin.
			binW := 1000.0 / histBins * 1.0001
			lo, hi := s.Range(MethodPercentile, 99.99)
			if lo != 0 || float64(hi) < 1 || float64(hi) > 1+binW {
				t.Errorf("Range(percentile 99.99) = [%g, %g], want [0, 1..%.3f] (outliers cut)", lo, hi, 1+binW)
			}
			for _, p := range []float64{99.999, 100} {
				if lo, hi := s.Range(MethodPercentile, p); lo != 0 || hi != 1000 {
					t.Errorf("Range(percentile %g) = [%g, %g], want [0, 1000]", p, lo, hi)
				}
			}
			if lo, hi := s.Range(MethodMinMax, 0); lo != 0 || hi != 1000 {
				t.Errorf("Range(minmax) = [%g, %g], want [0, 1000]", lo, hi)
			}
		})
	}
}

// Like ONNX Runtime's percentile calibration, each tail loses (100-p)/2
// percent of all values: on 400000 values evenly spread over [-1, 3), p=99
// cuts 2000 values (0.02) from each end, giving [-0.98, 2.98]. A cut of
// (100-p)% per side would give [-0.96, 2.96]; a symmetric cut on |x| would
// leave -1.
func TestRangePercentileTails(t *testing.T) {
	const n = 400000
	v := make([]float32, n)
	for i := range v {
		v[i] = -1 + 4*(float32(i)+0.5)/n
	}
	rand.New(rand.NewPCG(1, 2)).Shuffle(n, func(i, j int) { v[i], v[j] = v[j], v[i] })
	s := NewTensorStats()
	for b := 0; b < n; b += 50000 {
		addValues(t, s, v[b:b+50000]...)
	}
	tol := 2 * s.width
	lo, hi := s.Range(MethodPercentile, 99)
	if math.Abs(float64(lo)+0.98) > tol || math.Abs(float64(hi)-2.98) > tol {
		t.Errorf("Range(percentile 99) = [%g, %g], want [-0.98, 2.98] ± %.4f", lo, hi, tol)
	}
	lo, hi = s.Range(MethodPercentile, 99.9)
	if math.Abs(float64(lo)+0.998) > tol || math.Abs(float64(hi)-2.998) > tol {
		t.Errorf("Range(percentile 99.9) = [%g, %g], want [-0.998, 2.998] ± %.4f", lo, hi, tol)
	}
}

// gaussian returns n samples of N(0, 1).
func gaussian(rng *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(rng.NormFloat64())
	}
	return v
}

func TestRangeEntropy(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))

	// Two-sided: N(0,1) plus rare outliers at ±40. The threshold clips the
	// outliers but keeps the bulk (beyond 2σ), symmetrically.
	s := NewTensorStats()
	for range 4 {
		addValues(t, s, gaussian(rng, 50000)...)
	}
	addValues(t, s, 40, -40, 40, -40)
	lo, hi := s.Range(MethodEntropy, 0)
	t.Logf("two-sided entropy range [%g, %g] (min %g, max %g)", lo, hi, s.Min, s.Max)
	if hi < 2 || hi > 20 || lo != -hi {
		t.Errorf("Range(entropy) = [%g, %g], want symmetric with 2 ≤ hi ≤ 20 (bulk ~±4.5, outliers ±40)", lo, hi)
	}
	// Both signs common: 128 levels, half the 8-bit range per sign.
	abs := make([]uint64, histBins)
	for i := range abs {
		abs[i] = s.pos[i] + s.neg[i]
	}
	if want := float32(entropyThreshold(abs, 128) * s.width); hi != want || entropyThreshold(abs, 255) == entropyThreshold(abs, 128) {
		t.Errorf("two-sided hi %g, want the 128-level threshold %g (255 levels: %g)", hi, want, entropyThreshold(abs, 255)*s.width)
	}

	// One-sided (ReLU-like): |N(0,1)| plus outliers at 40. Then all 255
	// levels serve the positive side and lo is 0.
	s = NewTensorStats()
	for range 4 {
		v := gaussian(rng, 50000)
		for i := range v {
			v[i] = float32(math.Abs(float64(v[i])))
		}
		addValues(t, s, v...)
	}
	addValues(t, s, 40, 40, 40, 40)
	lo, hi = s.Range(MethodEntropy, 0)
	t.Logf("one-sided entropy range [%g, %g] (max %g)", lo, hi, s.Max)
	if lo != 0 || hi < 2 || hi > 20 {
		t.Errorf("Range(entropy) = [%g, %g], want [0, 2..20]", lo, hi)
	}

	// A few negatives (under 1 %) still count as one-sided: 255 levels.
	addValues(t, s, slices.Repeat([]float32{-0.01}, 1000)...)
	abs = make([]uint64, histBins)
	for i := range abs {
		abs[i] = s.pos[i] + s.neg[i]
	}
	lo, hi = s.Range(MethodEntropy, 0)
	if want := float32(entropyThreshold(abs, 255) * s.width); hi != want || lo != -0.01 {
		t.Errorf("one-sided with 0.5 %% negatives: [%g, %g], want [-0.01, %g] (255 levels)", lo, hi, want)
	}

	// Nothing to clip: a uniform distribution keeps its whole range.
	s = NewTensorStats()
	u := make([]float32, 100000)
	for i := range u {
		u[i] = 2*float32(i)/float32(len(u)) - 1
	}
	addValues(t, s, u...)
	lo, hi = s.Range(MethodEntropy, 0)
	if lo > -0.99 || hi < 0.99 {
		t.Errorf("Range(entropy) of uniform [-1, 1) = [%g, %g], want about [-1, 1]", lo, hi)
	}
}

func TestEntropyThreshold(t *testing.T) {
	// Fewer occupied bins than levels: no clipping, the threshold is the
	// end of the last occupied bin.
	h := make([]uint64, histBins)
	for i := 0; i < 100; i++ {
		h[i] = 10
	}
	if got := entropyThreshold(h, 128); got != 100 {
		t.Errorf("entropyThreshold(100 bins, 128 levels) = %g, want 100", got)
	}
	// A uniform histogram over 1000 bins quantizes without loss only when
	// unclipped (KL 0 at i = 1000): TensorRT's threshold (i + 0.5) bins.
	h = make([]uint64, histBins)
	for i := 0; i < 1000; i++ {
		h[i] = 100
	}
	if got := entropyThreshold(h, 128); got != 1000.5 {
		t.Errorf("entropyThreshold(uniform over 1000 bins) = %g, want 1000.5", got)
	}
	// A dense bulk in the first 300 bins and a sparse tail up to bin 2000:
	// the threshold lies between the bulk and the end of the tail.
	h = make([]uint64, histBins)
	for i := 0; i < 300; i++ {
		h[i] = 100000
	}
	for i := 300; i < 2000; i += 50 {
		h[i] = 1
	}
	got := entropyThreshold(h, 128)
	if got < 250 || got > 1900 {
		t.Errorf("entropyThreshold(bulk 300 bins, sparse tail to 2000) = %g, want between 250 and 1900", got)
	}
	t.Logf("bulk+tail threshold: %g bins", got)
	if empty := entropyThreshold(make([]uint64, histBins), 128); empty != 0 {
		t.Errorf("entropyThreshold(empty) = %g, want 0", empty)
	}
}

func TestKLDivergence(t *testing.T) {
	p := []float64{1, 4, 0, 2, 3}
	if kl := klDivergence(p, p); kl != 0 {
		t.Errorf("KL(p||p) = %g, want 0", kl)
	}
	// Unnormalised: a multiple of p is the same distribution.
	q := []float64{3, 12, 0, 6, 9}
	if kl := klDivergence(p, q); math.Abs(kl) > 1e-15 {
		t.Errorf("KL(p||3p) = %g, want 0", kl)
	}
	// [1/2, 1/2] vs [1/4, 3/4]: ½ln2 + ½ln(2/3).
	want := 0.5*math.Ln2 + 0.5*math.Log(2.0/3)
	if kl := klDivergence([]float64{1, 1}, []float64{1, 3}); math.Abs(kl-want) > 1e-12 {
		t.Errorf("KL([1,1]||[1,3]) = %.15g, want %.15g", kl, want)
	}
	// Asymmetric and positive.
	a, b := klDivergence([]float64{1, 1}, []float64{1, 3}), klDivergence([]float64{1, 3}, []float64{1, 1})
	if a <= 0 || b <= 0 || a == b {
		t.Errorf("KL([1,1]||[1,3]) = %g, KL([1,3]||[1,1]) = %g: want both > 0 and different", a, b)
	}
	// Mass where q has none is smoothed: large but finite.
	if kl := klDivergence([]float64{1, 1}, []float64{1, 0}); math.IsInf(kl, 0) || kl < 10 {
		t.Errorf("KL([1,1]||[1,0]) = %g, want large and finite", kl)
	}
	if kl := klDivergence([]float64{0, 0}, []float64{1, 1}); !math.IsInf(kl, 1) {
		t.Errorf("KL(empty||q) = %g, want +Inf", kl)
	}
}

// randFloats returns n values uniform in [lo, hi).
func randFloats(rng *rand.Rand, n int, lo, hi float32) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = lo + (hi-lo)*rng.Float32()
	}
	return v
}

// TestRangePercentileFirstBin: when the tail reaches into the first
// histogram bin, the range ends at that bin's upper edge, not at 0.
func TestRangePercentileFirstBin(t *testing.T) {
	s := NewTensorStats()
	addValues(t, s, 10)
	addValues(t, s, slices.Repeat([]float32{0.001}, 1000)...)
	lo, hi := s.Range(MethodPercentile, 99) // cut 0.5 % (5 values) from the top: the first bin's edge
	if want := float32(s.width); lo != 0 || hi != want || hi < 0.001 {
		t.Errorf("Range = [%g, %g], want [0, %g] (the first bin's edge)", lo, hi, want)
	}
}

// TestRangePercentileTailExactlyMet: the range ends where more than the
// tail lies above, so a top bin holding exactly the tail is cut.
func TestRangePercentileTailExactlyMet(t *testing.T) {
	s := NewTensorStats()
	addValues(t, s, slices.Repeat([]float32{10}, 5)...)
	addValues(t, s, slices.Repeat([]float32{1}, 995)...)
	_, hi := s.Range(MethodPercentile, 99) // tail: 1000·1/200 = 5 values, all at 10
	if hi < 1 || hi > 1.01 {
		t.Errorf("hi = %g, want the edge of the bin of 1 (the 5 values at 10 are the tail)", hi)
	}
}

// TestRangeEntropyOnePercentNegatives: exactly 1 % negatives is two-sided
// (128 levels); one-sided needs fewer.
func TestRangeEntropyOnePercentNegatives(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	s := NewTensorStats()
	v := gaussian(rng, 99000)
	for i := range v {
		v[i] = float32(math.Abs(float64(v[i])))
	}
	addValues(t, s, v...)
	addValues(t, s, slices.Repeat([]float32{-0.01}, 1000)...)
	abs := make([]uint64, histBins)
	for i := range abs {
		abs[i] = s.pos[i] + s.neg[i]
	}
	t128, t255 := entropyThreshold(abs, 128), entropyThreshold(abs, 255)
	if t128 == t255 {
		t.Fatalf("both level counts give %g: the test cannot tell them apart", t128)
	}
	if _, hi := s.Range(MethodEntropy, 0); hi != float32(t128*s.width) {
		t.Errorf("hi %g, want the 128-level %g (255 levels: %g)", hi, t128*s.width, t255*s.width)
	}
}
