package cfgtypes

import (
	"fmt"
	"math"
	"strconv"
)

// Range is the interval a float config key must lie in. Hi = +Inf means no
// upper bound; LoOpen and HiOpen exclude the ends.
type Range struct {
	Lo, Hi         float64
	LoOpen, HiOpen bool
}

// Common ranges.
var (
	Unit        = Range{Lo: 0, Hi: 1}                         // [0, 1]
	UnitOpen    = Range{Lo: 0, Hi: 1, LoOpen: true}           // (0, 1]
	NonNegative = Range{Lo: 0, Hi: math.Inf(1)}               // [0, ∞)
	Positive    = Range{Lo: 0, Hi: math.Inf(1), LoOpen: true} // (0, ∞)
	AnyFinite   = Range{Lo: math.Inf(-1), Hi: math.Inf(1)}    // any finite number
)

// String describes r as the tail of "x is not a …": "number between 0
// and 1", "finite number >= 0".
func (r Range) String() string {
	lo, hi := num(r.Lo, 64), num(r.Hi, 64)
	switch {
	case math.IsInf(r.Lo, -1) && math.IsInf(r.Hi, 1):
		return "finite number"
	case math.IsInf(r.Hi, 1) && r.LoOpen:
		return "finite number > " + lo
	case math.IsInf(r.Hi, 1):
		return "finite number >= " + lo
	case !r.LoOpen && !r.HiOpen:
		return "number between " + lo + " and " + hi
	}
	l, h := "[", "]"
	if r.LoOpen {
		l = "("
	}
	if r.HiOpen {
		h = ")"
	}
	return "number in " + l + lo + ", " + hi + h
}

// Contains reports whether v is a finite number in r: NaN and ±Inf never are.
func (r Range) Contains(v float64) bool {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return false
	}
	if v < r.Lo || v > r.Hi || (r.LoOpen && v == r.Lo) || (r.HiOpen && v == r.Hi) {
		return false
	}
	return true
}

// Float64 checks the value v of config key key: nil when r contains it, else
// "key: NaN is not a number between 0 and 1".
func Float64(key string, v float64, r Range) error {
	if r.Contains(v) {
		return nil
	}
	return fmt.Errorf("%s: %s is not a %s", key, num(v, 64), r)
}

// Float32 is Float64 for a float32 key, printing the value at float32
// precision (0.1, not 0.10000000149011612).
func Float32(key string, v float32, r Range) error {
	if r.Contains(float64(v)) {
		return nil
	}
	return fmt.Errorf("%s: %s is not a %s", key, num(float64(v), 32), r)
}

func num(v float64, bits int) string {
	switch {
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	}
	return strconv.FormatFloat(v, 'g', -1, bits)
}
