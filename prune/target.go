package prune

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Target is how much to prune. Exactly one of its fields is set (in (0,1)).
type Target struct {
	// Ratio removes this share of every prunable group's channels.
	Ratio float64
	// FLOPs keeps this share of the multiply-adds (as Cost counts them).
	FLOPs float64
	// Latency keeps this share of the latency, measured against the
	// original with Options.OpenTimer.
	Latency float64

	spec string // as parsed, for String
}

// ParseTarget reads "ratio=R", "flops=F" or "latency=L", each in (0,1).
// Errors name the text: `"speed=2": kind "speed" is not ratio, flops or latency`.
func ParseTarget(s string) (Target, error) {
	kind, val, ok := strings.Cut(s, "=")
	v, err := strconv.ParseFloat(val, 64)
	if !ok || err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return Target{}, fmt.Errorf("%q: want ratio=R, flops=F or latency=L", s)
	}
	var t Target
	switch kind {
	case "ratio":
		t.Ratio = v
	case "flops":
		t.FLOPs = v
	case "latency":
		t.Latency = v
	default:
		return Target{}, fmt.Errorf("%q: kind %q is not ratio, flops or latency", s, kind)
	}
	if v <= 0 || v >= 1 {
		return Target{}, fmt.Errorf("%s=%g: not in (0,1)", kind, v)
	}
	t.spec = s
	return t, nil
}

// String is the target as ParseTarget read it, or else as "kind=value".
func (t Target) String() string {
	switch {
	case t.spec != "":
		return t.spec
	case t.Ratio > 0:
		return fmt.Sprintf("ratio=%g", t.Ratio)
	case t.FLOPs > 0:
		return fmt.Sprintf("flops=%g", t.FLOPs)
	case t.Latency > 0:
		return fmt.Sprintf("latency=%g", t.Latency)
	}
	return "none"
}

// validate checks that exactly one share is set, in (0,1).
func (t Target) validate() error {
	n := 0
	for _, v := range []float64{t.Ratio, t.FLOPs, t.Latency} {
		if v != 0 {
			n++
			if !(v > 0 && v < 1) {
				return fmt.Errorf("target %s: %g not in (0,1)", t, v)
			}
		}
	}
	if n != 1 {
		return fmt.Errorf("target %+v: set exactly one of Ratio, FLOPs and Latency", t)
	}
	return nil
}
