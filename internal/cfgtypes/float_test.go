package cfgtypes

import (
	"math"
	"testing"
)

func TestFloatRanges(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	for _, tc := range []struct {
		v    float64
		r    Range
		want string // "" = valid
	}{
		{0, Unit, ""},
		{1, Unit, ""},
		{nan, Unit, "k: NaN is not a number between 0 and 1"},
		{inf, Unit, "k: +Inf is not a number between 0 and 1"},
		{-inf, Unit, "k: -Inf is not a number between 0 and 1"},
		{1.5, Unit, "k: 1.5 is not a number between 0 and 1"},
		{0, UnitOpen, "k: 0 is not a number in (0, 1]"},
		{1, UnitOpen, ""},
		{inf, NonNegative, "k: +Inf is not a finite number >= 0"},
		{-1, NonNegative, "k: -1 is not a finite number >= 0"},
		{1e300, NonNegative, ""},
		{0, Positive, "k: 0 is not a finite number > 0"},
		{nan, AnyFinite, "k: NaN is not a finite number"},
		{-1e300, AnyFinite, ""},
		{60, Range{Lo: 0, Hi: 60, LoOpen: true}, ""},
		{61, Range{Lo: 0, Hi: 60, LoOpen: true}, "k: 61 is not a number in (0, 60]"},
	} {
		err := Float64("k", tc.v, tc.r)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%v in %v: %v", tc.v, tc.r, err)
		case tc.want != "" && (err == nil || err.Error() != tc.want):
			t.Errorf("%v in %v: %v, want %q", tc.v, tc.r, err, tc.want)
		}
	}
	if err := Float32("k", 1.1, Unit); err == nil || err.Error() != "k: 1.1 is not a number between 0 and 1" {
		t.Errorf("float32 1.1: %v", err)
	}
}
