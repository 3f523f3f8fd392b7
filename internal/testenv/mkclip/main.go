// Command mkclip builds the sample MJPG clip the setup script and demos use:
//
//	go run ./internal/testenv/mkclip -out build/sample.avi -w 640 -h 480 -fps 10 -each 20 IMAGES...
package main

import (
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/edgedet/edgedet/internal/testenv"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("mkclip", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "build/sample.avi", "output .avi path")
	w := fs.Int("w", 640, "frame width")
	h := fs.Int("h", 480, "frame height")
	fps := fs.Float64("fps", 10, "frames per second")
	each := fs.Int("each", 20, "frames per image")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: mkclip [-out FILE] [-w W] [-h H] [-fps N] [-each N] IMAGE...")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return 2
	}
	if err := testenv.WriteClip(*out, fs.Args(), *w, *h, *fps, *each); err != nil {
		fmt.Fprintln(stderr, "mkclip:", err)
		return 1
	}
	fmt.Fprintf(stdout, "wrote %s: %d images x %d frames, %dx%d at %g fps\n", *out, fs.NArg(), *each, *w, *h, *fps)
	return 0
}
