package prune

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"
)

// TestRefitSyntheticExact: Y is produced by known weights over a subset of
// the channels plus a bias, so Refit with that subset recovers them.
func TestRefitSyntheticExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const cin, kh, kw, cout, n = 6, 3, 2, 5, 400
	kk := kh * kw
	kept := []int{0, 2, 3, 5}
	s := &ConvSamples{Node: "synthetic", Cin: cin, Kh: kh, Kw: kw,
		X: mat.NewDense(n, cin*kk, nil), Y: mat.NewDense(n, cout, nil)}
	for i := 0; i < n; i++ {
		for j := 0; j < cin*kk; j++ {
			s.X.Set(i, j, rng.NormFloat64()+0.5)
		}
	}
	p := len(kept) * kk
	wantW := make([]float32, cout*p)
	wantB := make([]float32, cout)
	for i := range wantW {
		wantW[i] = float32(rng.NormFloat64())
	}
	for i := range wantB {
		wantB[i] = float32(rng.NormFloat64())
	}
	for i := 0; i < n; i++ {
		for o := 0; o < cout; o++ {
			v := float64(wantB[o])
			for j, c := range kept {
				for k := 0; k < kk; k++ {
					v += float64(wantW[o*p+j*kk+k]) * s.X.At(i, c*kk+k)
				}
			}
			s.Y.Set(i, o, v)
		}
	}
	w, b, err := s.Refit(kept, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(w) != len(wantW) || len(b) != len(wantB) {
		t.Fatalf("got %d weights and %d biases, want %d and %d", len(w), len(b), len(wantW), len(wantB))
	}
	for i := range w {
		if d := math.Abs(float64(w[i] - wantW[i])); d > 1e-4 {
			t.Fatalf("w[%d] = %v, want %v", i, w[i], wantW[i])
		}
	}
	for i := range b {
		if d := math.Abs(float64(b[i] - wantB[i])); d > 1e-4 {
			t.Fatalf("b[%d] = %v, want %v", i, b[i], wantB[i])
		}
	}
	if e := s.Error(kept, w, b); e > 1e-6 {
		t.Errorf("error of the recovered weights = %g, want ≈ 0", e)
	}
	// A small ridge changes the fit only slightly.
	wr, br, err := s.Refit(kept, 1e-3)
	if err != nil {
		t.Fatal(err)
	}
	if e := s.Error(kept, wr, br); e > 1e-4 {
		t.Errorf("error with ridge 1e-3 = %g, want < 1e-4", e)
	}
	// Fitting with one of the true channels missing cannot be exact, but
	// it beats plain removal.
	fewer := []int{0, 2, 5}
	full := make([]float32, cout*cin*kk) // the true weights in the full layout
	for o := 0; o < cout; o++ {
		for j, c := range kept {
			copy(full[(o*cin+c)*kk:(o*cin+c+1)*kk], wantW[o*p+j*kk:o*p+(j+1)*kk])
		}
	}
	plain := s.Error(fewer, SliceInputChannels(full, cout, cin, kh, kw, fewer), wantB)
	wf, bf, err := s.Refit(fewer, 0)
	if err != nil {
		t.Fatal(err)
	}
	refit := s.Error(fewer, wf, bf)
	t.Logf("without channel 3: plain removal %.4f, refit %.4f", plain, refit)
	if !(refit < plain) || refit < 1e-3 {
		t.Errorf("without channel 3: refit error %g, plain %g: want 0 < refit < plain", refit, plain)
	}
	if e := s.Error(kept, SliceInputChannels(full, cout, cin, kh, kw, kept), wantB); e > 1e-6 {
		t.Errorf("plain removal of the unused channels: error %g, want ≈ 0", e)
	}
}

func TestRefitArguments(t *testing.T) {
	s := &ConvSamples{Node: "n", Cin: 3, Kh: 1, Kw: 1, X: mat.NewDense(4, 3, nil), Y: mat.NewDense(4, 2, nil)}
	for _, kept := range [][]int{nil, {1, 0}, {0, 0}, {3}, {-1}} {
		if _, _, err := s.Refit(kept, 0); err == nil {
			t.Errorf("Refit(%v): no error", kept)
		}
		if e := s.Error(kept, make([]float32, 2*len(kept)), make([]float32, 2)); !math.IsNaN(e) {
			t.Errorf("Error(%v) = %v, want NaN", kept, e)
		}
	}
	if _, _, err := s.Refit([]int{0, 1, 2}, 0); err == nil {
		t.Error("4 samples, 3 weights + bias, all-zero X, ridge 0: no error")
	} else {
		t.Logf("all-zero X, ridge 0: %v", err)
	}
	if _, _, err := s.Refit([]int{0}, -1); err == nil {
		t.Error("negative ridge: no error")
	}
	// All-zero X with a ridge is solvable (W = 0, b = mean Y).
	if _, _, err := s.Refit([]int{0, 1, 2}, 1e-6); err != nil {
		t.Errorf("ridge > 0: %v", err)
	}
	if e := s.Error([]int{0}, []float32{1, 1}, []float32{0, 0}); e != 0 {
		t.Errorf("error with Y = 0 and prediction 0 = %v", e)
	}
	if e := s.Error([]int{0}, []float32{1, 1}, []float32{0, 0.5}); !math.IsInf(e, 1) {
		t.Errorf("error with Y = 0 and prediction 0.5 = %v, want +Inf", e)
	}
	for _, c := range []struct {
		n     int
		ridge float64
		want  string
	}{
		{3, 0, `refit "n": 3 samples for 3 weights per output channel: collect more or use ridge > 0`},
		{0, 1e-3, `refit "n": no samples`},
	} {
		few := &ConvSamples{Node: "n", Cin: 3, Kh: 1, Kw: 1, X: &mat.Dense{}, Y: &mat.Dense{}}
		if c.n > 0 {
			few.X, few.Y = mat.NewDense(c.n, 3, []float64{1, 2, 3, 4, 5, 7, 1, 0, 2}), mat.NewDense(c.n, 2, nil)
		}
		if _, _, err := few.Refit([]int{0, 1, 2}, c.ridge); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%d samples, ridge %g: err %v, want %q", c.n, c.ridge, err, c.want)
		}
	}
	// Error is ‖Y − X·Wᵀ − b‖ / ‖Y‖ over every sample: residuals 1 and 1
	// of Y = 3, 5 (X = 1, 2; w = 2, b = 0; the removed channel's column
	// ignored).
	two := &ConvSamples{Node: "n", Cin: 2, Kh: 1, Kw: 1, X: mat.NewDense(2, 2, []float64{1, 9, 2, 9}), Y: mat.NewDense(2, 1, []float64{3, 5})}
	if e, want := two.Error([]int{0}, []float32{2}, []float32{0}), math.Sqrt(2.0/34); math.Abs(e-want) > 1e-12 {
		t.Errorf("Error = %v, want %v", e, want)
	}
	if _, _, err := s.Refit([]int{0}, math.Inf(1)); err == nil || !strings.Contains(err.Error(), "ridge +Inf must be finite") {
		t.Errorf("infinite ridge: %v", err)
	}
}

func TestRefitSliceInputChannels(t *testing.T) {
	// w[o][c][y][x] = 1000o + 100c + 10y + x
	const cout, cin, kh, kw = 2, 4, 2, 3
	w := make([]float32, 0, cout*cin*kh*kw)
	for o := 0; o < cout; o++ {
		for c := 0; c < cin; c++ {
			for y := 0; y < kh; y++ {
				for x := 0; x < kw; x++ {
					w = append(w, float32(1000*o+100*c+10*y+x))
				}
			}
		}
	}
	kept := []int{1, 3}
	got := SliceInputChannels(w, cout, cin, kh, kw, kept)
	var want []float32
	for o := 0; o < cout; o++ {
		for _, c := range kept {
			for y := 0; y < kh; y++ {
				for x := 0; x < kw; x++ {
					want = append(want, float32(1000*o+100*c+10*y+x))
				}
			}
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("got %v\nwant %v", got, want)
	}
	// Misuse panics with a message that says what was wrong.
	for _, c := range []struct {
		w    []float32
		kept []int
		want string
	}{
		{w[:len(w)-1], kept, "47 weights, want 2×4×2×3"},
		{w, []int{1, 4}, "kept channel 4 out of range [0,4)"},
		{w, []int{-1}, "kept channel -1 out of range [0,4)"},
	} {
		func() {
			defer func() {
				if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), c.want) {
					t.Errorf("kept %v of %d weights: panic %v, want %q", c.kept, len(c.w), r, c.want)
				}
			}()
			SliceInputChannels(c.w, cout, cin, kh, kw, c.kept)
		}()
	}
}
