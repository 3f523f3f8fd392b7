// Command mutate is a small mutation tester for edgedet's core packages.
//
// For each package directory given it parses the non-test, non-generated .go
// files, lists operator mutants (comparison boundaries and flips, arithmetic
// and boolean operator swaps, ++/--, += and -=, negated if conditions,
// removed early-return branches, integer constants +1), and applies them one
// at a time through `go test -overlay`, so the working tree is never touched.
// A mutant is killed when the package's tests fail, times out when they run
// past -timeout, survives when they pass, and is unviable when it does not
// compile. The score is (killed+timeout)/(mutants-unviable-equivalent).
//
// Test selection (-select, the default): before mutating a package, its test
// binary is built once with -cover and each top-level test (fuzz seed corpora
// and examples included) runs alone with a cover profile. Each mutant then
// runs only the tests that executed the innermost cover block holding it
// (-run '^(TestA|TestB)$', intersected with the user's -run and -skip); a
// mutant in code no test executes survives as "not covered" without a run.
// Mutants outside every function (package-level var and const) run every
// test, and so do those in init or TestMain-only code, which every test's
// profile holds. -select=false runs the whole suite for every mutant.
//
// Survivors judged equivalent are listed, one per line with a reason, in the
// file named by -equiv:
//
//	agent/track/track.go:120:9 cmp-boundary < -> <=  # both branches give the same box at equality
//
// Usage:
//
//	go run ./scripts/mutate [-sample N -seed S] [-run RE] [-skip RE] [-timeout D] [-select=false] pkgdir...
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Mutant is one source change: the bytes [Off, End) of File become To.
type Mutant struct {
	File      string // path relative to the module root, slash-separated
	Line, Col int
	Off, End  int
	Kind      string
	From, To  string
	// Func is the body of the innermost function holding the mutant; zero
	// for package-level declarations.
	Func Span
}

// ID names the mutant in reports and in the equivalents file.
func (m Mutant) ID() string {
	return fmt.Sprintf("%s:%d:%d %s %s -> %s", m.File, m.Line, m.Col, m.Kind, oneLine(m.From), oneLine(m.To))
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 40 {
		s = s[:37] + "..."
	}
	return s
}

// binarySwaps maps an operator to its mutants and their kind.
var binarySwaps = map[token.Token][]struct {
	to   token.Token
	kind string
}{
	token.LSS:  {{token.LEQ, "cmp-boundary"}, {token.GEQ, "cmp-negate"}},
	token.LEQ:  {{token.LSS, "cmp-boundary"}, {token.GTR, "cmp-negate"}},
	token.GTR:  {{token.GEQ, "cmp-boundary"}, {token.LEQ, "cmp-negate"}},
	token.GEQ:  {{token.GTR, "cmp-boundary"}, {token.LSS, "cmp-negate"}},
	token.EQL:  {{token.NEQ, "cmp-negate"}},
	token.NEQ:  {{token.EQL, "cmp-negate"}},
	token.ADD:  {{token.SUB, "arith"}},
	token.SUB:  {{token.ADD, "arith"}},
	token.MUL:  {{token.QUO, "arith"}},
	token.QUO:  {{token.MUL, "arith"}},
	token.REM:  {{token.MUL, "arith"}},
	token.LAND: {{token.LOR, "bool"}},
	token.LOR:  {{token.LAND, "bool"}},
}

var assignSwaps = map[token.Token]token.Token{
	token.ADD_ASSIGN: token.SUB_ASSIGN,
	token.SUB_ASSIGN: token.ADD_ASSIGN,
	token.MUL_ASSIGN: token.QUO_ASSIGN,
	token.QUO_ASSIGN: token.MUL_ASSIGN,
}

// logMethods are calls whose arguments only shape log output; mutants inside
// them are not generated.
var logMethods = map[string]bool{
	"Debug": true, "Info": true, "Warn": true, "Error": true,
	"DebugContext": true, "InfoContext": true, "WarnContext": true, "ErrorContext": true, "Log": true,
}

// Generated reports whether src carries the standard generated-code header.
func Generated(src []byte) bool {
	sc := bufio.NewScanner(bytes.NewReader(src))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "package ") {
			return false
		}
		if strings.HasPrefix(line, "// Code generated ") && strings.HasSuffix(line, " DO NOT EDIT.") {
			return true
		}
	}
	return false
}

// FileMutants lists the mutants of one file's source. name is used in IDs.
func FileMutants(name string, src []byte) ([]Mutant, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, name, src, parser.SkipObjectResolution)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", name, err)
	}
	var out []Mutant
	add := func(pos, end token.Pos, kind, to string) {
		p := fset.Position(pos)
		e := fset.Position(end)
		out = append(out, Mutant{File: name, Line: p.Line, Col: p.Column, Off: p.Offset, End: e.Offset,
			Kind: kind, From: string(src[p.Offset:e.Offset]), To: to})
	}
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.GenDecl:
			// Imports and type declarations (array lengths) are not behaviour.
			return n.Tok == token.CONST || n.Tok == token.VAR
		case *ast.CallExpr:
			if sel, ok := n.Fun.(*ast.SelectorExpr); ok && logMethods[sel.Sel.Name] {
				return false
			}
		case *ast.BinaryExpr:
			if isStringLit(n.X) || isStringLit(n.Y) {
				return true
			}
			for _, s := range binarySwaps[n.Op] {
				add(n.OpPos, n.OpPos+token.Pos(len(n.Op.String())), s.kind, s.to.String())
			}
		case *ast.AssignStmt:
			if to, ok := assignSwaps[n.Tok]; ok {
				add(n.TokPos, n.TokPos+token.Pos(len(n.Tok.String())), "arith", to.String())
			}
		case *ast.IncDecStmt:
			to := token.DEC
			if n.Tok == token.DEC {
				to = token.INC
			}
			add(n.TokPos, n.TokPos+2, "incdec", to.String())
		case *ast.IfStmt:
			cond := string(src[fset.Position(n.Cond.Pos()).Offset:fset.Position(n.Cond.End()).Offset])
			add(n.Cond.Pos(), n.Cond.End(), "if-negate", "!("+cond+")")
			if endsInReturn(n.Body) {
				add(n.Cond.Pos(), n.Cond.End(), "drop-return", "false")
			}
		case *ast.BasicLit:
			if n.Kind == token.INT {
				v, err := strconv.ParseInt(strings.ReplaceAll(n.Value, "_", ""), 0, 64)
				if err == nil {
					add(n.Pos(), n.End(), "const", strconv.FormatInt(v+1, 10))
				}
			}
		}
		return true
	})
	sort.SliceStable(out, func(i, j int) bool { return out[i].Off < out[j].Off })
	setFuncs(out, fset, f)
	return out, nil
}

// setFuncs sets each mutant's Func to the innermost function body holding it.
func setFuncs(ms []Mutant, fset *token.FileSet, f *ast.File) {
	var bodies []*ast.BlockStmt
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.FuncDecl:
			if n.Body != nil {
				bodies = append(bodies, n.Body)
			}
		case *ast.FuncLit:
			bodies = append(bodies, n.Body)
		}
		return true
	})
	for i := range ms {
		var inner *ast.BlockStmt
		for _, b := range bodies {
			off, end := fset.Position(b.Pos()).Offset, fset.Position(b.End()).Offset
			if off <= ms[i].Off && ms[i].End <= end && (inner == nil || b.End()-b.Pos() < inner.End()-inner.Pos()) {
				inner = b
			}
		}
		if inner != nil {
			s, e := fset.Position(inner.Pos()), fset.Position(inner.End())
			ms[i].Func = Span{File: ms[i].File, Start: Pos{s.Line, s.Column}, End: Pos{e.Line, e.Column}}
		}
	}
}

func isStringLit(e ast.Expr) bool {
	b, ok := e.(*ast.BasicLit)
	return ok && b.Kind == token.STRING
}

func endsInReturn(b *ast.BlockStmt) bool {
	if b == nil || len(b.List) == 0 {
		return false
	}
	_, ok := b.List[len(b.List)-1].(*ast.ReturnStmt)
	return ok
}

// Apply returns src with m applied.
func Apply(src []byte, m Mutant) []byte {
	out := make([]byte, 0, len(src)+len(m.To))
	out = append(out, src[:m.Off]...)
	out = append(out, m.To...)
	return append(out, src[m.End:]...)
}

// PackageMutants lists the mutants of every non-test, non-generated .go file
// in dir (relative to the module root).
func PackageMutants(root, dir string) ([]Mutant, error) {
	paths, err := filepath.Glob(filepath.Join(root, dir, "*.go"))
	if err != nil {
		return nil, err
	}
	var all []Mutant
	for _, p := range paths {
		if strings.HasSuffix(p, "_test.go") {
			continue
		}
		src, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		if Generated(src) {
			continue
		}
		rel, _ := filepath.Rel(root, p)
		ms, err := FileMutants(filepath.ToSlash(rel), src)
		if err != nil {
			return nil, err
		}
		all = append(all, ms...)
	}
	if len(all) == 0 {
		return nil, fmt.Errorf("package %s: no mutable .go files", dir)
	}
	return all, nil
}

// readSources reads the file of each mutant once, keyed by Mutant.File.
func readSources(root string, ms []Mutant) (map[string][]byte, error) {
	srcs := map[string][]byte{}
	for _, m := range ms {
		if _, ok := srcs[m.File]; ok {
			continue
		}
		src, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(m.File)))
		if err != nil {
			return nil, err
		}
		srcs[m.File] = src
	}
	return srcs, nil
}

// Sample returns n mutants chosen with a fixed seed, in source order; n <= 0
// keeps them all.
func Sample(ms []Mutant, n int, seed uint64) []Mutant {
	if n <= 0 || n >= len(ms) {
		return ms
	}
	idx := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)).Perm(len(ms))[:n]
	sort.Ints(idx)
	out := make([]Mutant, n)
	for i, j := range idx {
		out[i] = ms[j]
	}
	return out
}

// LoadEquivalents reads "mutant-id # reason" lines; the reason is required.
func LoadEquivalents(path string) (map[string]string, error) {
	eq := map[string]string{}
	if path == "" {
		return eq, nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return eq, nil
	}
	if err != nil {
		return nil, err
	}
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		id, reason, ok := strings.Cut(line, "#")
		if !ok || strings.TrimSpace(reason) == "" {
			return nil, fmt.Errorf("%s:%d: equivalent mutant %q has no '# reason'", path, i+1, strings.TrimSpace(id))
		}
		eq[strings.TrimSpace(id)] = strings.TrimSpace(reason)
	}
	return eq, nil
}

// Outcome of one mutant's test run.
type Outcome string

const (
	Killed     Outcome = "killed"
	TimedOut   Outcome = "timeout"
	Survived   Outcome = "SURVIVED"
	Unviable   Outcome = "unviable"
	Equivalent Outcome = "equivalent"
	// NotCovered counts the survivors no test executes; they are also
	// counted as Survived.
	NotCovered Outcome = "not covered"
)

// timeoutMargin is how long past -timeout a go test run may take (build and
// link) before it is stopped.
const timeoutMargin = 2 * time.Minute

type runner struct {
	root, tags, run, skip string
	timeout               time.Duration
	tmp                   string
}

func (r runner) goTest(parent context.Context, dir, run, skip, overlay string) (Outcome, string, error) {
	args := []string{"test", "-count=1", "-vet=off", "-failfast", "-timeout", r.timeout.String()}
	if r.tags != "" {
		args = append(args, "-tags", r.tags)
	}
	if run != "" {
		args = append(args, "-run", run)
	}
	if skip != "" {
		args = append(args, "-skip", skip)
	}
	if overlay != "" {
		args = append(args, "-overlay", overlay)
	}
	args = append(args, "./"+dir)
	ctx, cancel := context.WithTimeout(parent, r.timeout+timeoutMargin)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = r.root
	// go test starts a linker and the test binary; stop them all on timeout.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	s := out.String()
	switch {
	case parent.Err() != nil:
		return "", s, parent.Err()
	case ctx.Err() != nil || strings.Contains(s, "panic: test timed out"):
		return TimedOut, s, nil
	case strings.Contains(s, "[build failed]") || strings.Contains(s, "[setup failed]"):
		return Unviable, s, nil
	case err == nil:
		return Survived, s, nil
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return "", s, fmt.Errorf("go test ./%s: %w", dir, err)
	}
	return Killed, s, nil
}

func (r runner) try(ctx context.Context, m Mutant, src []byte, i int, run, skip string) (Outcome, error) {
	mut := filepath.Join(r.tmp, fmt.Sprintf("m%d_%s", i, filepath.Base(m.File)))
	if err := os.WriteFile(mut, Apply(src, m), 0o644); err != nil {
		return "", err
	}
	ov, err := overlayJSON(filepath.Join(r.root, filepath.FromSlash(m.File)), mut)
	if err != nil {
		return "", err
	}
	ovPath := filepath.Join(r.tmp, fmt.Sprintf("m%d.json", i))
	if err := os.WriteFile(ovPath, ov, 0o644); err != nil {
		return "", err
	}
	defer os.Remove(mut)
	defer os.Remove(ovPath)
	o, _, err := r.goTest(ctx, filepath.Dir(m.File), run, skip, ovPath)
	return o, err
}

func overlayJSON(orig, repl string) ([]byte, error) {
	return fmt.Appendf(nil, `{"Replace":{%s:%s}}`, strconv.Quote(orig), strconv.Quote(repl)), nil
}

// Tally counts outcomes for one package.
type Tally map[Outcome]int

// Score is (killed+timeout) over the viable, non-equivalent mutants.
func (t Tally) Score() float64 {
	den := t[Killed] + t[TimedOut] + t[Survived]
	if den == 0 {
		return 100
	}
	return 100 * float64(t[Killed]+t[TimedOut]) / float64(den)
}

func (t Tally) String() string {
	total := t[Killed] + t[TimedOut] + t[Survived] + t[Equivalent] + t[Unviable]
	return fmt.Sprintf("mutants %d  killed %d  timeout %d  survived %d (not covered %d)  equivalent %d  unviable %d  score %.1f%%",
		total, t[Killed], t[TimedOut], t[Survived], t[NotCovered], t[Equivalent], t[Unviable], t.Score())
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "mutate:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("mutate", flag.ContinueOnError)
	sample := fs.Int("sample", 0, "test only this many mutants per package, chosen with -seed (0: all)")
	seed := fs.Uint64("seed", 1, "seed for -sample")
	runRE := fs.String("run", "", "go test -run filter")
	skipRE := fs.String("skip", "", "go test -skip filter")
	tags := fs.String("tags", "", "go test build tags")
	timeout := fs.Duration("timeout", 2*time.Minute, "per-mutant go test timeout")
	equiv := fs.String("equiv", "scripts/mutate/equivalent.txt", "file listing equivalent mutants with reasons")
	list := fs.Bool("list", false, "only list the mutants")
	verbose := fs.Bool("v", false, "print every mutant's outcome")
	only := fs.String("only", "", "test only mutants whose ID contains one of these comma-separated texts (after -sample)")
	selectTests := fs.Bool("select", true, "run each mutant against only the top-level tests that execute its code (from a per-test coverage pass); false runs the whole suite")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return errors.New("usage: mutate [flags] pkgdir...")
	}
	root, err := os.Getwd()
	if err != nil {
		return err
	}
	eq, err := LoadEquivalents(*equiv)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "mutate")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	r := runner{root: root, tags: *tags, run: *runRE, skip: *skipRE, timeout: *timeout, tmp: tmp}
	for _, dir := range fs.Args() {
		dir = filepath.ToSlash(filepath.Clean(strings.TrimPrefix(dir, "./")))
		all, err := PackageMutants(root, dir)
		if err != nil {
			return err
		}
		// Mutants apply to the sources as they are now, so editing them
		// during a long run does not shift the mutants' offsets.
		srcs, err := readSources(root, all)
		if err != nil {
			return err
		}
		ms := Sample(all, *sample, *seed)
		if *only != "" {
			keep := strings.Split(*only, ",")
			ms = slices.DeleteFunc(ms, func(m Mutant) bool {
				return !slices.ContainsFunc(keep, func(s string) bool { return strings.Contains(m.ID(), s) })
			})
		}
		if *list {
			for _, m := range ms {
				fmt.Fprintln(stdout, m.ID())
			}
			continue
		}
		start := time.Now()
		var sel Selection
		coverTime := ""
		if *selectTests {
			if sel, err = r.selection(ctx, dir); err != nil {
				return err
			}
			coverTime = fmt.Sprintf(", coverage pass %s", time.Since(start).Round(time.Second))
		} else if o, out, err := r.goTest(ctx, dir, r.run, r.skip, ""); err != nil || o != Survived {
			return fmt.Errorf("%s: tests fail without mutants (%s):\n%s", dir, o, out)
		}
		tally := Tally{}
		for i, m := range ms {
			if reason, ok := eq[m.ID()]; ok {
				tally[Equivalent]++
				if *verbose {
					fmt.Fprintf(stdout, "  %-10s %s  # %s\n", Equivalent, m.ID(), reason)
				}
				continue
			}
			src := srcs[m.File]
			run, skip, note := r.run, r.skip, ""
			if *selectTests {
				var covered bool
				if run, skip, covered = sel.Args(m); !covered {
					tally[Survived]++
					tally[NotCovered]++
					fmt.Fprintf(stdout, "  %-10s %s  (not covered)\n", Survived, m.ID())
					continue
				}
				note = fmt.Sprintf("  [%d/%d tests]", len(sel.Cov.Select(m)), len(sel.Candidates))
			}
			o, err := r.try(ctx, m, src, i, run, skip)
			if err != nil {
				return fmt.Errorf("%s: %w", m.ID(), err)
			}
			tally[o]++
			if *verbose || o == Survived {
				fmt.Fprintf(stdout, "  %-10s %s%s\n", o, m.ID(), note)
			}
		}
		what := "all"
		switch {
		case *only != "":
			what = fmt.Sprintf("ONLY %d selected by -only of %d", len(ms), len(all))
		case len(ms) < len(all):
			what = fmt.Sprintf("SAMPLE of %d/%d (seed %d)", len(ms), len(all), *seed)
		}
		fmt.Fprintf(stdout, "%-14s %s  [%s, %s%s]\n", dir, tally, what, time.Since(start).Round(time.Second), coverTime)
	}
	return nil
}
