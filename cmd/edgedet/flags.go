package main

import (
	"flag"
	"fmt"
	"math"
	"strconv"
)

// parseFinite parses a float flag value; NaN and ±Inf (which strconv
// accepts, and which compare false against every bound) are errors.
func parseFinite(s string, bits int) (float64, error) {
	v, err := strconv.ParseFloat(s, bits)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("%q is not a finite number", s)
	}
	return v, nil
}

// finiteFloat is a float64 flag that rejects NaN and ±Inf.
type finiteFloat struct{ p *float64 }

func (f finiteFloat) String() string {
	if f.p == nil {
		return "0"
	}
	return strconv.FormatFloat(*f.p, 'g', -1, 64)
}

func (f finiteFloat) Set(s string) error {
	v, err := parseFinite(s, 64)
	if err != nil {
		return err
	}
	*f.p = v
	return nil
}

// floatVar defines a float64 flag like fs.Float64Var that rejects NaN and
// ±Inf.
func floatVar(fs *flag.FlagSet, p *float64, name string, value float64, usage string) {
	*p = value
	fs.Var(finiteFloat{p}, name, usage)
}

// parseF32 parses a float32 flag value, rejecting NaN, ±Inf and values out
// of float32's range.
func parseF32(s string, dst *float32) error {
	v, err := parseFinite(s, 32)
	if err != nil {
		return err
	}
	*dst = float32(v)
	return nil
}

// plural writes n and word, adding an s unless n is 1 ("1 thread",
// "2 threads").
func plural(n int, word string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, word)
	}
	return fmt.Sprintf("%d %ss", n, word)
}
