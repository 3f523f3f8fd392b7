package main

import (
	"bufio"
	"fmt"
	"io"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Pos is a 1-based line and byte column, as in go/token and cover profiles.
type Pos struct{ Line, Col int }

func (p Pos) before(q Pos) bool {
	return p.Line < q.Line || p.Line == q.Line && p.Col < q.Col
}

// Span is the half-open source range [Start, End) of one file.
type Span struct {
	File       string // path relative to the module root, slash-separated
	Start, End Pos
}

func (s Span) contains(file string, p Pos) bool {
	return s.File == file && !p.before(s.Start) && p.before(s.End)
}

func (s Span) within(o Span) bool {
	return s.File == o.File && !s.Start.before(o.Start) && !o.End.before(s.End)
}

func (s Span) smaller(o Span) bool {
	if d := (s.End.Line - s.Start.Line) - (o.End.Line - o.Start.Line); d != 0 {
		return d < 0
	}
	return s.End.Col-s.Start.Col < o.End.Col-o.Start.Col
}

// ParseCoverProfile reads a `go test -coverprofile` file and returns every
// block of the package importPath, keyed by its span (files named relative to
// the module root as dir/base.go), with whether it ran.
func ParseCoverProfile(r io.Reader, importPath, dir string) (map[Span]bool, error) {
	blocks := map[Span]bool{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "mode:") {
			continue
		}
		// importpath/file.go:l0.c0,l1.c1 statements count
		name, rest, ok := strings.Cut(line, ":")
		f := strings.Fields(rest)
		if !ok || len(f) != 3 {
			return nil, fmt.Errorf("cover profile line %d: malformed %q", n, line)
		}
		if path.Dir(name) != importPath {
			continue // another package's file (-coverpkg)
		}
		from, to, ok := strings.Cut(f[0], ",")
		start, err1 := parsePos(from)
		end, err2 := parsePos(to)
		count, err3 := strconv.Atoi(f[2])
		if !ok || err1 != nil || err2 != nil || err3 != nil {
			return nil, fmt.Errorf("cover profile line %d: malformed %q", n, line)
		}
		s := Span{File: path.Join(dir, path.Base(name)), Start: start, End: end}
		blocks[s] = blocks[s] || count > 0
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read cover profile: %w", err)
	}
	return blocks, nil
}

func parsePos(s string) (Pos, error) {
	l, c, ok := strings.Cut(s, ".")
	line, err1 := strconv.Atoi(l)
	col, err2 := strconv.Atoi(c)
	if !ok || err1 != nil || err2 != nil {
		return Pos{}, fmt.Errorf("bad position %q", s)
	}
	return Pos{line, col}, nil
}

// Coverage maps each coverage block of a package to the top-level tests
// (Test, Fuzz seed corpus, Example) that executed it when run alone.
type Coverage struct {
	Tests  []string          // every test considered, in listing order
	blocks map[Span][]string // block -> tests that ran it (may be empty)
}

// NewCoverage starts an empty map over the given tests.
func NewCoverage(tests []string) *Coverage {
	return &Coverage{Tests: tests, blocks: map[Span][]string{}}
}

// Add records one test's profile, as returned by ParseCoverProfile.
func (c *Coverage) Add(test string, profile map[Span]bool) {
	for s, ran := range profile {
		ts := c.blocks[s]
		if ran && !slices.Contains(ts, test) {
			ts = append(ts, test)
		}
		c.blocks[s] = ts
	}
}

// Select returns the tests that can observe mutant m: those that ran the
// innermost coverage block holding m's position. A position in no block
// inside a function (a case expression, say) takes every test that ran any
// block of the innermost enclosing function; a position outside all
// functions (package-level var and const declarations) takes every test,
// since its effect does not depend on what a test runs. Code run from init
// or TestMain is in every test's profile, so it selects every test too.
// The result is in listing order and empty when no test reaches m.
func (c *Coverage) Select(m Mutant) []string {
	if m.Func == (Span{}) {
		return c.Tests
	}
	p := Pos{m.Line, m.Col}
	var inner Span
	found := false
	for s := range c.blocks {
		if s.contains(m.File, p) && (!found || s.smaller(inner)) {
			inner, found = s, true
		}
	}
	ran := map[string]bool{}
	if found {
		for _, t := range c.blocks[inner] {
			ran[t] = true
		}
	} else {
		for s, ts := range c.blocks {
			if s.within(m.Func) {
				for _, t := range ts {
					ran[t] = true
				}
			}
		}
	}
	return slices.DeleteFunc(slices.Clone(c.Tests), func(t string) bool { return !ran[t] })
}

// IsTest reports whether a `go test -list` name is run by go test without
// -bench: tests, fuzz targets (their seed corpus) and examples.
func IsTest(name string) bool {
	for _, p := range []string{"Test", "Fuzz", "Example"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// Filter combines a selection of top-level tests with the user's -run and
// -skip patterns, which go test splits at '/' into per-level elements and at
// top-level '|' into alternatives.
type Filter struct {
	Run, Skip string
}

// Candidates keeps the tests the user's filters would start: the top-level
// element of some -run alternative matches, and no -skip alternative of a
// single element matches (one with subtest elements skips only subtests).
func (f Filter) Candidates(tests []string) ([]string, error) {
	run, err := compileAlternatives(f.Run)
	if err != nil {
		return nil, fmt.Errorf("-run: %w", err)
	}
	skip, err := compileAlternatives(f.Skip)
	if err != nil {
		return nil, fmt.Errorf("-skip: %w", err)
	}
	var out []string
	for _, t := range tests {
		started := f.Run == "" || slices.ContainsFunc(run, func(a []*regexp.Regexp) bool { return a[0].MatchString(t) })
		skipped := f.Skip != "" && slices.ContainsFunc(skip, func(a []*regexp.Regexp) bool { return len(a) == 1 && a[0].MatchString(t) })
		if started && !skipped {
			out = append(out, t)
		}
	}
	return out, nil
}

// Args returns the -run and -skip values that run exactly the selected
// tests (a subset of candidates) under the user's filters. A -run without
// subtest elements is applied by the caller through Candidates, so the
// selection becomes -run '^(A|B)$'; one with subtest elements is kept and
// the unselected candidates are added to -skip instead.
func (f Filter) Args(selected, candidates []string) (run, skip string) {
	if len(selectorSplit(f.Run, '/')) <= 1 {
		return anchored(selected), f.Skip
	}
	var others []string
	for _, t := range candidates {
		if !slices.Contains(selected, t) {
			others = append(others, t)
		}
	}
	skip = f.Skip
	if len(others) > 0 {
		if skip != "" {
			skip += "|"
		}
		skip += anchored(others)
	}
	return f.Run, skip
}

// anchored is a regexp matching exactly the given names.
func anchored(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = regexp.QuoteMeta(n)
	}
	return "^(" + strings.Join(q, "|") + ")$"
}

// compileAlternatives splits a go test -run/-skip pattern the way the
// testing package does and compiles each element.
func compileAlternatives(pattern string) ([][]*regexp.Regexp, error) {
	if pattern == "" {
		return nil, nil
	}
	var out [][]*regexp.Regexp
	for _, alt := range selectorSplit(pattern, '|') {
		var elems []*regexp.Regexp
		for _, e := range selectorSplit(alt, '/') {
			re, err := regexp.Compile(e)
			if err != nil {
				return nil, fmt.Errorf("element %q of %q: %w", e, pattern, err)
			}
			elems = append(elems, re)
		}
		out = append(out, elems)
	}
	return out, nil
}

// selectorSplit splits s at sep where it is outside brackets and
// parentheses and not escaped, as testing's splitRegexp does.
func selectorSplit(s string, sep byte) []string {
	var out []string
	brackets, parens, from := 0, 0, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '[':
			brackets++
		case ']':
			brackets = max(brackets-1, 0)
		case '(':
			if brackets == 0 {
				parens++
			}
		case ')':
			if brackets == 0 {
				parens--
			}
		case '\\':
			i++
		case sep:
			if brackets == 0 && parens == 0 {
				out = append(out, s[from:i])
				from = i + 1
			}
		}
	}
	return append(out, s[from:])
}
