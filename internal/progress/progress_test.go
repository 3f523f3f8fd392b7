package progress

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeClock advances by step on every reading.
type fakeClock struct {
	t    time.Time
	step time.Duration
}

func (c *fakeClock) now() time.Time {
	c.t = c.t.Add(c.step)
	return c.t
}

func TestPlainLinesEveryTenPercent(t *testing.T) {
	var buf bytes.Buffer
	clk := &fakeClock{t: time.Unix(0, 0), step: 250 * time.Millisecond}
	b := newBar(&buf, 100, "images", false, clk.now)
	for range 100 {
		b.Add(1)
	}
	b.Finish()
	b.Finish() // idempotent
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 10 {
		t.Fatalf("got %d lines, want 10 (one per 10 %%):\n%s", len(lines), buf.String())
	}
	if strings.Contains(buf.String(), "\r") {
		t.Error("plain mode wrote a carriage return")
	}
	last := lines[9]
	if !strings.HasPrefix(last, "["+strings.Repeat("#", Width)+"] 100/100 images ") || !strings.HasSuffix(last, " it/s") {
		t.Errorf("last line %q", last)
	}
	if want := "[###" + strings.Repeat(".", Width-3) + "] 10/100 images"; !strings.HasPrefix(lines[0], want) {
		t.Errorf("first line %q, want prefix %q", lines[0], want)
	}
}

func TestRate(t *testing.T) {
	// Every clock reading advances 1 s, so every Add redraws (≥ 100 ms).
	var buf bytes.Buffer
	clk := &fakeClock{t: time.Unix(0, 0), step: time.Second}
	b := newBar(&buf, 4, "images", true, clk.now)
	// start = 1 s; the first draw reads 2 s (lastDraw) and 3 s (line).
	// Add reads 4 s, redraws at 5 s, line reads 6 s: 2 items in 5 s.
	b.Add(2)
	if got := buf.String(); !strings.Contains(got, "2/4 images 0.4 it/s") {
		t.Errorf("output %q lacks 2/4 at 0.4 it/s", got)
	}
	b.Finish()
	out := buf.String()
	if !strings.HasPrefix(out, "\r[") || !strings.HasSuffix(out, "\n") || !strings.Contains(out, clearEOL) {
		t.Errorf("terminal output %q: want \\r redraws, erase to end of line, final newline", out)
	}
}

func TestTerminalRedrawIsThrottled(t *testing.T) {
	var buf bytes.Buffer
	clk := &fakeClock{t: time.Unix(0, 0), step: time.Millisecond}
	b := newBar(&buf, 1000, "images", true, clk.now)
	for range 999 {
		b.Add(1)
	}
	// ~3 clock readings per Add at 1 ms: ~3 s in all, so ~30 redraws, not 999.
	if n := strings.Count(buf.String(), "\r"); n > 60 {
		t.Errorf("%d redraws for 999 items over ~3 s; want at most one per 100 ms", n)
	}
	b.Add(1)
	if !strings.Contains(buf.String(), "1000/1000") {
		t.Error("the final item was not drawn")
	}
}

func TestIsTerminal(t *testing.T) {
	if IsTerminal(&bytes.Buffer{}) {
		t.Error("a bytes.Buffer is not a terminal")
	}
	f, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if IsTerminal(f) {
		t.Error("a regular file is not a terminal")
	}
	b := New(f, 3, "images")
	b.Add(3)
	b.Finish()
	data, _ := os.ReadFile(f.Name())
	if strings.Contains(string(data), "\r") || !strings.Contains(string(data), "3/3 images") {
		t.Errorf("file output %q: want plain lines", data)
	}
}
