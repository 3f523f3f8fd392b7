package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/edgedet/edgedet/internal/testenv"
)

// TestParseFlagsInterspersed: flags are taken before, between and after
// the positional arguments, which keep their order; "--" ends the flags; a
// value flag consumes the next argument even when it looks like a flag or
// is "--".
func TestParseFlagsInterspersed(t *testing.T) {
	for _, tc := range []struct {
		args     []string
		model    string
		asJSON   bool
		score    float64
		rest     []string
		wantErr  string
		wantHelp bool
	}{
		{args: []string{"a.jpg", "--model", "m.onnx"}, model: "m.onnx", rest: []string{"a.jpg"}},
		{args: []string{"a.jpg", "--json", "b.jpg", "-model=m.onnx", "c.jpg"}, model: "m.onnx", asJSON: true, rest: []string{"a.jpg", "b.jpg", "c.jpg"}},
		{args: []string{"--score", "0.5", "a.jpg", "--json=false"}, score: 0.5, rest: []string{"a.jpg"}},
		{args: []string{"a.jpg", "--", "--json", "-"}, rest: []string{"a.jpg", "--json", "-"}},
		{args: []string{"-", "--model", "--", "b.jpg"}, model: "--", rest: []string{"-", "b.jpg"}},
		{args: []string{"--model", "-x.onnx", "a.jpg"}, model: "-x.onnx", rest: []string{"a.jpg"}},
		{args: []string{"a.jpg", "--frobnicate"}, wantErr: "frobnicate"},
		{args: []string{"a.jpg", "--model"}, wantErr: "needs an argument"},
		{args: []string{"a.jpg", "-h"}, wantHelp: true},
	} {
		fs := flag.NewFlagSet("test", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		model := fs.String("model", "", "")
		asJSON := fs.Bool("json", false, "")
		var score float64
		floatVar(fs, &score, "score", 0, "")
		err := parseFlags(fs, tc.args)
		switch {
		case tc.wantHelp:
			if !errors.Is(err, flag.ErrHelp) {
				t.Errorf("%q: error %v, want flag.ErrHelp", tc.args, err)
			}
			continue
		case tc.wantErr != "":
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%q: error %v, want one containing %q", tc.args, err, tc.wantErr)
			}
			continue
		case err != nil:
			t.Errorf("%q: %v", tc.args, err)
			continue
		}
		if *model != tc.model || *asJSON != tc.asJSON || score != tc.score || !slices.Equal(fs.Args(), tc.rest) {
			t.Errorf("%q: model %q json %v score %g args %q; want %q %v %g %q",
				tc.args, *model, *asJSON, score, fs.Args(), tc.model, tc.asJSON, tc.score, tc.rest)
		}
	}
}

// TestCLIFlagsAfterArguments: "detect dog.jpg --model M --json" runs the
// model and prints JSON (it said "--model is required"); other commands
// take flags after their arguments too.
func TestCLIFlagsAfterArguments(t *testing.T) {
	model := testenv.Shared(t, "models", "yolo11n_int8dyn_320.onnx")
	dog := testenv.Shared(t, "datasets", "samples", "dog.jpg")
	stdout, stderr, code := runCLI(t, "detect", dog, "--model", model, "--json", "--score", "0.5")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var r imageResult
	if err := json.Unmarshal([]byte(stdout), &r); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, stdout)
	}
	for _, d := range r.Detections {
		if d.Score < 0.5 {
			t.Errorf("--score 0.5 after the image was ignored: %+v", d)
		}
	}
	if r.Image != dog || len(r.Detections) == 0 {
		t.Errorf("detect: %+v", r)
	}
	// platform refuses an argument even with its flags after it.
	_, stderr, code = runCLI(t, "platform", "extra", "--json")
	if code != 2 || !strings.Contains(stderr, `unexpected argument "extra"`) {
		t.Errorf("platform extra --json: exit %d, %s", code, stderr)
	}
}

// TestHelpCommand: `edgedet help CMD` prints CMD's synopsis and flags on
// stdout; `edgedet help` the command list; an unknown CMD is an error
// naming it.
func TestHelpCommand(t *testing.T) {
	ctx := context.Background()
	var stdout, stderr strings.Builder
	if code := run(ctx, []string{"help"}, &stdout, &stderr); code != 0 || stderr.Len() > 0 {
		t.Fatalf("help: exit %d, stderr %q", code, stderr.String())
	}
	for _, c := range commands {
		if !strings.Contains(stdout.String(), "edgedet "+c.name+" ") {
			t.Errorf("help lacks %s:\n%s", c.name, stdout.String())
		}
	}
	// A flag each command has, so the flags are printed after the synopsis.
	flagOf := map[string]string{"run": "-check", "detect": "-out", "bench": "-runs", "eval": "-data",
		"quantize": "-calib", "prune": "-target", "platform": "-json", "version": "-ort-lib"}
	for _, c := range commands {
		stdout.Reset()
		stderr.Reset()
		code := run(ctx, []string{"help", c.name}, &stdout, &stderr)
		out := stdout.String()
		if code != 0 || stderr.Len() > 0 {
			t.Errorf("help %s: exit %d, stderr %q", c.name, code, stderr.String())
		}
		if !strings.Contains(out, "Usage: edgedet "+c.name+" ") || !strings.Contains(out, flagOf[c.name]) {
			t.Errorf("help %s lacks its usage or %s:\n%s", c.name, flagOf[c.name], out)
		}
	}
	stdout.Reset()
	stderr.Reset()
	if code := run(ctx, []string{"help", "detcet"}, &stdout, &stderr); code != 2 ||
		!strings.Contains(stderr.String(), `unknown command "detcet"`) || !strings.Contains(stderr.String(), "detect") {
		t.Errorf("help detcet: exit %d, stderr %q", code, stderr.String())
	}
}

// TestCLIUnreadableImages: a missing image and a FIFO are errors naming
// the file, with nothing from OpenCV on stderr; the FIFO blocked detect
// forever (opening it waits for a writer).
func TestCLIUnreadableImages(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.jpg")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.jpg")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, edgedetBinary(t), "detect", "--model",
		testenv.Shared(t, "models", "yolo11n_int8dyn_320.onnx"), missing, fifo)
	cmd.Env = append(os.Environ(), "EDGEDET_ORT_LIB="+testenv.ORTLibrary(t))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("detect of a FIFO did not return: %s", stderr.String())
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Errorf("exit: %v, want status 1", err)
	}
	for _, want := range []string{"read image " + missing + ": no such file or directory",
		"read image " + fifo + ": not a regular file", "2 of 2 images could not be read"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
		}
	}
	for _, opencv := range []string{"[ WARN", "imread_", "global "} {
		if strings.Contains(stderr.String(), opencv) {
			t.Errorf("OpenCV spoke (%q):\n%s", opencv, stderr.String())
		}
	}
}

func TestPlural(t *testing.T) {
	for _, tc := range []struct {
		n          int
		word, want string
	}{
		{0, "thread", "0 threads"}, {1, "thread", "1 thread"}, {2, "object", "2 objects"},
		{1, "class", "1 class"}, {3, "class", "3 classes"}, {2, "box", "2 boxes"},
	} {
		if got := plural(tc.n, tc.word); got != tc.want {
			t.Errorf("plural(%d, %q) = %q, want %q", tc.n, tc.word, got, tc.want)
		}
	}
	if got := threadsText(0); got != "ONNX Runtime's default threads" {
		t.Errorf("threadsText(0) = %q", got)
	}
	if got := threadsText(1); got != "1 thread" {
		t.Errorf("threadsText(1) = %q", got)
	}
}
