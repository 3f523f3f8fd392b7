// Package progress shows the progress of long command-line jobs
// (evaluation, calibration, quantization stages) on stderr.
//
// On a terminal it draws github.com/schollz/progressbar's bar, redrawn in
// place, and ends its line when the bar finishes. On anything else (a file,
// a pipe, /dev/null, CI logs) it draws nothing while the job runs and writes
// one plain line when it finishes:
//
//	calibrate: 40/40 steps in 12.3s
//
// so a log holds no carriage returns or half-drawn lines. The library has no
// notion of "not a terminal"; that choice is what this package adds.
package progress

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// Bar reports how many of total items are done. Add and Finish are not
// safe for concurrent use.
type Bar struct {
	w     io.Writer
	label string // "" or a stage name, printed before the count
	unit  string // "images"
	total int
	done  int

	pb *progressbar.ProgressBar // nil in plain mode

	now      func() time.Time
	start    time.Time
	finished bool
}

// Width is the number of cells in the terminal bar.
const Width = 30

// New starts a bar for total items named unit ("images"), labelled label
// ("" for none). It draws on w when w is a terminal (IsTerminal) and
// otherwise writes one line at Finish. A nil w discards everything.
func New(w io.Writer, label string, total int, unit string) *Bar {
	return newBar(w, label, total, unit, IsTerminal(w), time.Now)
}

func newBar(w io.Writer, label string, total int, unit string, terminal bool, now func() time.Time) *Bar {
	if w == nil {
		w = io.Discard
	}
	b := &Bar{w: w, label: label, unit: unit, total: max(total, 0), now: now}
	b.start = now()
	// An empty job has no bar to draw: it gets the plain line.
	if terminal && b.total > 0 {
		desc := ""
		if label != "" {
			desc = label + " "
		}
		b.pb = progressbar.NewOptions(b.total,
			progressbar.OptionSetWriter(w), // the library's default is os.Stdout
			progressbar.OptionSetDescription(desc),
			progressbar.OptionSetWidth(Width),
			progressbar.OptionShowCount(),
			progressbar.OptionShowIts(),
			progressbar.OptionSetItsString(unit),
			progressbar.OptionUseANSICodes(true),
			progressbar.OptionSetRenderBlankState(true),
			// Called once, when the bar reaches total or on Exit.
			progressbar.OptionOnCompletion(func() { fmt.Fprintln(w) }),
		)
	}
	return b
}

// IsTerminal reports whether w is an *os.File open on a terminal. Regular
// files, pipes and character devices such as /dev/null are not.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// Add marks n more items done; the count never passes total.
func (b *Bar) Add(n int) {
	if b.finished || n <= 0 {
		return
	}
	n = min(n, b.total-b.done)
	if n == 0 {
		return
	}
	b.done += n
	if b.pb != nil {
		// Errors are write errors on stderr: nothing useful to do with them.
		_ = b.pb.Add(n)
	}
}

// Finish ends the bar: on a terminal it leaves the last state drawn and
// ends the line (at once if the bar is already full); otherwise it writes
// the plain "label: done/total unit in elapsed" line. A job stopped early
// shows where it stopped. Later calls do nothing.
func (b *Bar) Finish() {
	if b.finished {
		return
	}
	b.finished = true
	if b.pb != nil {
		if !b.pb.IsFinished() { // a full bar has already ended its line
			_ = b.pb.Exit()
		}
		return
	}
	fmt.Fprintln(b.w, b.line())
}

// line is "label: 42/100 images in 3.1s".
func (b *Bar) line() string {
	s := fmt.Sprintf("%d/%d %s in %s", b.done, b.total, b.unit, b.now().Sub(b.start).Round(100*time.Millisecond))
	if b.label != "" {
		s = b.label + ": " + s
	}
	return s
}
