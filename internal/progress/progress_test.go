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

func TestPlainModeWritesOneLineAtFinish(t *testing.T) {
	var buf bytes.Buffer
	clk := &fakeClock{t: time.Unix(0, 0), step: 1500 * time.Millisecond}
	b := newBar(&buf, "calibrate", 40, "steps", false, clk.now)
	for range 39 {
		b.Add(1)
	}
	if buf.Len() != 0 {
		t.Fatalf("plain mode wrote %q before Finish", buf.String())
	}
	b.Add(1)
	b.Add(5) // past total: clamped
	b.Finish()
	b.Finish() // idempotent
	b.Add(1)   // after Finish: ignored
	// start reads 1.5 s, Finish reads 3 s: 1.5 s elapsed.
	if got, want := buf.String(), "calibrate: 40/40 steps in 1.5s\n"; got != want {
		t.Errorf("output %q, want %q", got, want)
	}
}

func TestPlainModeStoppedEarly(t *testing.T) {
	var buf bytes.Buffer
	clk := &fakeClock{t: time.Unix(0, 0), step: 2 * time.Second}
	b := newBar(&buf, "", 10, "images", false, clk.now)
	b.Add(3)
	b.Finish()
	if got, want := buf.String(), "3/10 images in 2s\n"; got != want {
		t.Errorf("output %q, want %q", got, want)
	}
}

func TestTerminalModeDrawsBarAndEndsLine(t *testing.T) {
	var buf bytes.Buffer
	b := newBar(&buf, "calibrate", 4, "steps", true, time.Now)
	if !strings.Contains(buf.String(), "(0/4") {
		t.Errorf("no blank bar drawn at start: %q", buf.String())
	}
	for range 3 {
		b.Add(1)
	}
	if strings.Contains(buf.String(), "\n") {
		t.Errorf("line ended before the bar finished: %q", buf.String())
	}
	b.Add(1)
	out := buf.String()
	if !strings.HasSuffix(out, "\n") || strings.Count(out, "\n") != 1 {
		t.Errorf("full bar: want exactly one newline, at the end: %q", out)
	}
	b.Finish() // the line is already ended: no second newline
	if buf.String() != out {
		t.Errorf("Finish after a full bar wrote %q", strings.TrimPrefix(buf.String(), out))
	}
	for _, want := range []string{"\r", "calibrate ", "100%", "(4/4", " steps/", "|" + strings.Repeat("█", Width) + "|"} {
		if !strings.Contains(out, want) {
			t.Errorf("terminal output lacks %q: %q", want, out)
		}
	}
}

func TestTerminalModeStoppedEarlyEndsLine(t *testing.T) {
	var buf bytes.Buffer
	b := newBar(&buf, "", 5, "images", true, time.Now)
	b.Add(2)
	b.Finish()
	out := buf.String()
	if !strings.HasSuffix(out, "\n") || strings.Count(out, "\n") != 1 {
		t.Fatalf("want exactly one newline, at the end: %q", out)
	}
	last := out[strings.LastIndex(out, "\r"):]
	if !strings.Contains(last, "(2/5") || strings.Contains(out, "(5/5") {
		t.Errorf("last drawn state %q, want 2/5 (not filled to 5/5)", last)
	}
	b.Finish()
	if buf.String() != out {
		t.Error("a second Finish wrote more")
	}
}

func TestTerminalModeEmptyJobIsPlain(t *testing.T) {
	var buf bytes.Buffer
	clk := &fakeClock{t: time.Unix(0, 0), step: time.Second}
	b := newBar(&buf, "", 0, "images", true, clk.now)
	b.Add(1)
	b.Finish()
	if got, want := buf.String(), "0/0 images in 1s\n"; got != want {
		t.Errorf("output %q, want %q", got, want)
	}
}

func TestNilWriterDiscards(t *testing.T) {
	b := New(nil, "x", 3, "frames")
	b.Add(3)
	b.Finish()
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
	// A character device, but not a terminal.
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	if IsTerminal(null) {
		t.Errorf("%s is not a terminal", os.DevNull)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if IsTerminal(w) {
		t.Error("a pipe is not a terminal")
	}
}

// TestPipedOutput runs New on a pipe, as `edgedet eval ... 2>&1 | tee log`
// does: no carriage returns or escape codes, one line ending in a newline.
func TestPipedOutput(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	b := New(w, "", 3, "images")
	for range 3 {
		b.Add(1)
	}
	b.Finish()
	w.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(r); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if strings.ContainsAny(out, "\r\x1b") || !strings.HasSuffix(out, "\n") || strings.Count(out, "\n") != 1 ||
		!strings.HasPrefix(out, "3/3 images in ") {
		t.Errorf("piped output %q: want one plain line \"3/3 images in …\\n\"", out)
	}
}

// TestNothingOnStdout checks every mode writes only to the given writer
// (progressbar's default writer is os.Stdout).
func TestNothingOnStdout(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "stdout"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	saved := os.Stdout
	os.Stdout = f
	defer func() { os.Stdout = saved }()
	var buf bytes.Buffer
	for _, terminal := range []bool{true, false} {
		b := newBar(&buf, "stage", 3, "steps", terminal, time.Now)
		b.Add(1)
		b.Finish()
		b = newBar(&buf, "stage", 3, "steps", terminal, time.Now)
		b.Add(3)
		b.Finish()
	}
	os.Stdout = saved
	if st, err := f.Stat(); err != nil || st.Size() != 0 {
		data, _ := os.ReadFile(f.Name())
		t.Errorf("stdout got %q (%v)", data, err)
	}
	if buf.Len() == 0 {
		t.Error("nothing written to the given writer")
	}
}
