package main

import (
	"fmt"
	"io"
	"runtime"

	"gocv.io/x/gocv"

	"github.com/edgedet/edgedet/detector"
)

func cmdVersion(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("version", stderr)
	ortLib := fs.String("ort-lib", "", "ONNX Runtime library (default: search)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "edgedet %s (%s, %s/%s)\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	fmt.Fprintf(stdout, "OpenCV %s\n", gocv.OpenCVVersion())
	cleanup, err := initRuntime(*ortLib)
	if err != nil {
		fmt.Fprintf(stdout, "ONNX Runtime: not loaded: %v\n", err)
		return nil
	}
	defer cleanup()
	fmt.Fprintf(stdout, "ONNX Runtime %s\n", detector.RuntimeVersion())
	return nil
}
