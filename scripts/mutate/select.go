package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

// Selection is the coverage map of one package and the tests the user's
// filters start, from which each mutant's tests are chosen.
type Selection struct {
	Cov        *Coverage
	Candidates []string
	Filter     Filter
}

// Args returns the go test -run and -skip values for mutant m, and false
// when no test executes m's code.
func (s Selection) Args(m Mutant) (run, skip string, covered bool) {
	sel := s.Cov.Select(m)
	if len(sel) == 0 {
		return "", "", false
	}
	run, skip = s.Filter.Args(sel, s.Candidates)
	return run, skip, true
}

// selection builds the package's coverage map: it compiles the test binary
// once with -cover, lists its tests, and runs each top-level test alone with
// a cover profile (one binary, no rebuild per test). Every test must pass:
// this is also the check that the suite passes without mutants.
func (r runner) selection(ctx context.Context, dir string) (Selection, error) {
	filter := Filter{Run: r.run, Skip: r.skip}
	bin := filepath.Join(r.tmp, strings.ReplaceAll(dir, "/", "_")+".test")
	args := []string{"test", "-c", "-cover", "-covermode=set", "-o", bin}
	if r.tags != "" {
		args = append(args, "-tags", r.tags)
	}
	if out, err := r.command(ctx, r.root, "go", append(args, "./"+dir)...); err != nil {
		return Selection{}, fmt.Errorf("build %s tests with coverage: %w\n%s", dir, err, out)
	}
	if _, err := os.Stat(bin); errors.Is(err, os.ErrNotExist) {
		// No test files: go test -c writes nothing, and nothing covers anything.
		return Selection{Cov: NewCoverage(nil), Filter: filter}, nil
	}
	defer os.Remove(bin)
	listArgs := []string{"list", "-f", "{{.ImportPath}}"}
	if r.tags != "" {
		listArgs = append(listArgs, "-tags", r.tags)
	}
	out, err := r.command(ctx, r.root, "go", append(listArgs, "./"+dir)...)
	if err != nil {
		return Selection{}, fmt.Errorf("go list ./%s: %w\n%s", dir, err, out)
	}
	importPath := strings.TrimSpace(out)
	pkgDir := filepath.Join(r.root, filepath.FromSlash(dir))
	if out, err = r.command(ctx, pkgDir, bin, "-test.list", "."); err != nil {
		return Selection{}, fmt.Errorf("list %s tests: %w\n%s", dir, err, out)
	}
	var tests []string
	for _, name := range strings.Fields(out) {
		if IsTest(name) {
			tests = append(tests, name)
		}
	}
	cands, err := filter.Candidates(tests)
	if err != nil {
		return Selection{}, err
	}
	cov := NewCoverage(cands)
	prof := filepath.Join(r.tmp, "cover.out")
	defer os.Remove(prof)
	for _, t := range cands {
		run, skip := filter.Args([]string{t}, cands)
		args := []string{"-test.run", run, "-test.coverprofile", prof,
			"-test.timeout", r.timeout.String(), "-test.paniconexit0", "-test.count=1"}
		if skip != "" {
			args = append(args, "-test.skip", skip)
		}
		if out, err := r.command(ctx, pkgDir, bin, args...); err != nil {
			return Selection{}, fmt.Errorf("%s: %s fails without mutants: %w\n%s", dir, t, err, out)
		}
		f, err := os.Open(prof)
		if err != nil {
			return Selection{}, fmt.Errorf("%s: %s wrote no cover profile: %w", dir, t, err)
		}
		blocks, err := ParseCoverProfile(f, importPath, dir)
		f.Close()
		if err != nil {
			return Selection{}, fmt.Errorf("%s: %s: %w", dir, t, err)
		}
		cov.Add(t, blocks)
	}
	return Selection{Cov: cov, Candidates: cands, Filter: filter}, nil
}

// command runs name in dir, killing its process group if ctx ends or it runs
// past the per-mutant timeout plus a margin, and returns its combined output.
func (r runner) command(parent context.Context, dir, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(parent, r.timeout+timeoutMargin)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ctx.Err() != nil && err != nil {
		err = fmt.Errorf("%w (%v)", err, ctx.Err())
	}
	return out.String(), err
}
