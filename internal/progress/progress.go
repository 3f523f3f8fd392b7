// Package progress draws a progress bar for long command-line jobs
// (evaluation, calibration) on stderr:
//
//	[############..................] 42/100 images 3.1 it/s
//
// On a terminal the line is redrawn in place with \r; on anything else
// (a file, a pipe, CI logs) it prints a plain line every 10 % instead.
package progress

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// Bar reports how many of total items are done. It is not safe for
// concurrent use.
type Bar struct {
	w        io.Writer
	total    int
	unit     string
	terminal bool
	now      func() time.Time

	start    time.Time
	done     int
	lastDraw time.Time
	lastStep int // last 10 % step printed in plain mode
	finished bool
}

// Width is the number of cells in the bar.
const Width = 30

// clearEOL erases what a longer previous line left on a terminal.
const clearEOL = "\x1b[K"

// redrawEvery limits terminal redraws.
const redrawEvery = 100 * time.Millisecond

// New starts a bar for total items named unit ("images"), drawn on a
// terminal when w is one (IsTerminal).
func New(w io.Writer, total int, unit string) *Bar {
	return NewMode(w, total, unit, IsTerminal(w))
}

// NewMode is New with the terminal mode given: true redraws in place, false
// prints plain lines.
func NewMode(w io.Writer, total int, unit string, terminal bool) *Bar {
	return newBar(w, total, unit, terminal, time.Now)
}

func newBar(w io.Writer, total int, unit string, terminal bool, now func() time.Time) *Bar {
	b := &Bar{w: w, total: max(total, 0), unit: unit, terminal: terminal, now: now}
	b.start = now()
	if terminal {
		b.draw()
	}
	return b
}

// IsTerminal reports whether w is a character device such as a terminal.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// Add marks n more items done.
func (b *Bar) Add(n int) {
	if b.finished {
		return
	}
	b.done = min(b.done+n, b.total)
	now := b.now()
	if b.terminal {
		if b.done == b.total || now.Sub(b.lastDraw) >= redrawEvery {
			b.draw()
		}
		return
	}
	if b.total == 0 {
		return
	}
	if step := b.done * 10 / b.total; step > b.lastStep {
		b.lastStep = step
		fmt.Fprintln(b.w, b.line())
	}
}

// Finish draws the final state and ends the line. Later calls do nothing.
func (b *Bar) Finish() {
	if b.finished {
		return
	}
	b.finished = true
	if b.terminal {
		b.draw()
		fmt.Fprintln(b.w)
		return
	}
	if b.lastStep < 10 { // not printed at 100 %: show where it stopped
		fmt.Fprintln(b.w, b.line())
	}
}

func (b *Bar) draw() {
	b.lastDraw = b.now()
	fmt.Fprint(b.w, "\r"+b.line()+clearEOL)
}

// line is "[#####.....] 42/100 images 3.1 it/s".
func (b *Bar) line() string {
	filled := 0
	if b.total > 0 {
		filled = b.done * Width / b.total
	}
	bar := strings.Repeat("#", filled) + strings.Repeat(".", Width-filled)
	s := fmt.Sprintf("[%s] %d/%d %s", bar, b.done, b.total, b.unit)
	if el := b.now().Sub(b.start).Seconds(); el > 0 && b.done > 0 {
		s += fmt.Sprintf(" %.1f it/s", float64(b.done)/el)
	}
	return s
}
