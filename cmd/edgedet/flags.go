package main

import (
	"flag"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// parseFlags parses args with fs like fs.Parse, but accepts flags before
// and after the positional arguments ("detect dog.jpg --model M" is
// "detect --model M dog.jpg"): the standard library stops at the first
// positional argument and would leave --model unparsed. "--" ends the
// flags; everything after it is positional. A flag that takes a value
// consumes the next argument unless written as --name=value. The
// positional arguments are fs.Args() afterwards, in their order.
func parseFlags(fs *flag.FlagSet, args []string) error {
	var flags, positional []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			positional = append(positional, args[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			positional = append(positional, a)
			continue
		}
		flags = append(flags, a)
		name := strings.TrimPrefix(a[1:], "-")
		if strings.Contains(name, "=") {
			continue
		}
		// An unknown flag (or -h) is left for fs.Parse to report.
		if f := fs.Lookup(name); f != nil && !isBoolFlag(f) {
			if i+1 == len(args) {
				return fs.Parse(flags) // reports the missing value
			}
			i++
			flags = append(flags, args[i])
		}
	}
	return fs.Parse(append(append(flags, "--"), positional...))
}

// isBoolFlag reports whether f takes no value (--json, not --json true),
// as the flag package decides it.
func isBoolFlag(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

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

// plural writes n and word, in the plural unless n is 1 ("1 thread",
// "2 threads", "0 classes"): an s, or es after s, x, ch and sh.
func plural(n int, word string) string {
	switch {
	case n == 1:
		return fmt.Sprintf("%d %s", n, word)
	case strings.HasSuffix(word, "s") || strings.HasSuffix(word, "x") ||
		strings.HasSuffix(word, "ch") || strings.HasSuffix(word, "sh"):
		return fmt.Sprintf("%d %ses", n, word)
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// threadsText says how many ONNX Runtime threads n (a --threads or
// threads value) means: 0 leaves the choice to ONNX Runtime.
func threadsText(n int) string {
	if n <= 0 {
		return "ONNX Runtime's default threads"
	}
	return plural(n, "thread")
}
