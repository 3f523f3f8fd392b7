package testenv

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestBufferConcurrentWritesAndLines(t *testing.T) {
	var b Buffer
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				fmt.Fprintf(&b, "writer=%d line=%d level=INFO\n", w, i)
			}
		}()
	}
	wg.Wait()
	if n := strings.Count(b.String(), "\n"); n != 200 {
		t.Errorf("%d lines written, want 200", n)
	}
	if n := b.Count("writer=2", "level=INFO"); n != 50 {
		t.Errorf("Count(writer=2, level=INFO) = %d, want 50", n)
	}
	if got := b.Lines("writer=3", "line=49 "); !slices.Equal(got, []string{"writer=3 line=49 level=INFO"}) {
		t.Errorf("Lines = %q", got)
	}
	if n := b.Count("writer=9"); n != 0 {
		t.Errorf("Count of an absent string = %d", n)
	}
	if n := b.Count(); n != 200 {
		t.Errorf("Count() (every non-empty line) = %d, want 200", n)
	}
}

// fatalTB records a Fatalf instead of stopping the test.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Helper() {}
func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	panic(f)
}

func TestEventually(t *testing.T) {
	n := 0
	Eventually(t, time.Minute, "the third poll", func() bool { n++; return n == 3 })
	if n != 3 {
		t.Errorf("polled %d times, want 3", n)
	}
	f := &fatalTB{TB: t}
	func() {
		defer func() {
			if r := recover(); r != f {
				t.Fatalf("Eventually did not fail the test: recovered %v", r)
			}
		}()
		Eventually(f, 30*time.Millisecond, "a condition that never holds", func() bool { return false })
	}()
	if !strings.Contains(f.msg, "a condition that never holds") {
		t.Errorf("failure %q does not name what it waited for", f.msg)
	}
}

func TestSharedDirFromEnvironment(t *testing.T) {
	t.Setenv("EDGEDET_SHARED", "/elsewhere/shared")
	if d := SharedDir(); d != "/elsewhere/shared" {
		t.Errorf("SharedDir = %q with EDGEDET_SHARED set", d)
	}
	f := &fatalTB{TB: t}
	func() {
		defer func() { recover() }()
		Shared(f, "models", "none.onnx")
	}()
	if !strings.Contains(f.msg, "none.onnx") || !strings.Contains(f.msg, "EDGEDET_SHARED") {
		t.Errorf("missing shared file: failure %q, want the path and the hint", f.msg)
	}
}
