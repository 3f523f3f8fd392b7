package progress

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// openPTY opens a pseudo-terminal pair: the bar writes to the terminal
// side (tty) and the test reads what it drew from the other (ptmx).
func openPTY(t *testing.T) (ptmx, tty *os.File) {
	t.Helper()
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open /dev/ptmx: %v", err)
	}
	t.Cleanup(func() { ptmx.Close() })
	fd := int(ptmx.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlock pty: %v", err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("pty number: %v", err)
	}
	tty, err = os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open pty %d: %v", n, err)
	}
	t.Cleanup(func() { tty.Close() })
	return ptmx, tty
}

// TestNewOnTerminal runs New on a real terminal: it draws the bar in place
// and ends its line once.
func TestNewOnTerminal(t *testing.T) {
	ptmx, tty := openPTY(t)
	if !IsTerminal(tty) {
		t.Fatal("IsTerminal(pty) = false")
	}
	read := make(chan string, 1)
	go func() {
		var buf bytes.Buffer
		b := make([]byte, 4096)
		for !strings.Contains(buf.String(), "\n") {
			n, err := ptmx.Read(b)
			if err != nil {
				break
			}
			buf.Write(b[:n])
		}
		read <- buf.String()
	}()
	b := New(tty, "capture", 2, "frames")
	b.Add(2)
	b.Finish()
	var out string
	select {
	case out = <-read:
	case <-time.After(10 * time.Second):
		t.Fatal("nothing read from the terminal")
	}
	// The terminal's output processing turns "\n" into "\r\n".
	if !strings.HasPrefix(out, "\r") || !strings.Contains(out, "capture ") || !strings.Contains(out, "(2/2") ||
		!strings.HasSuffix(out, "\n") || strings.Count(out, "\n") != 1 {
		t.Errorf("terminal output %q: want an in-place bar reaching 2/2 and one line end", out)
	}
}
