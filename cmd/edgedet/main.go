// Command edgedet is the edge object-detection agent and its tools. Each
// command parses its flags, calls one library function and prints:
//
//	edgedet run -c agent.toml              run the daemon (package agent)
//	edgedet detect --model M IMAGES        detect objects in images (detector)
//	edgedet quantize --model M --calib D   INT8 post-training quantization (quant)
//	edgedet prune --model M --calib D      structured channel pruning (prune)
//	edgedet eval --model M --data D        COCO mAP on a labelled dataset (eval)
//	edgedet bench --model M IMAGES         time preprocessing, inference, postprocessing
//	edgedet platform                       the board, CPU features and providers (platforms)
//	edgedet version                        print versions
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/edgedet/edgedet/detector"
	"github.com/edgedet/edgedet/platforms"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// errUsage marks an error the user fixes by reading the usage text.
var errUsage = errors.New("usage")

const usage = `edgedet — edge object detection with ONNX Runtime YOLO models, reported over MQTT

Usage:
  edgedet run -c agent.toml [--check]   run the agent (--check: validate the config, print it, exit)
  edgedet detect --model M [--out F] [--json] IMAGES...
                                        detect objects in images, optionally draw them
  edgedet bench --model M [--runs N] [--json] IMAGES...
                                        time preprocess / inference / postprocess
  edgedet bench --model M --video CLIP [--seconds N] [--cameras N] [--json]
                                        end to end: the real pipeline on a looping video
  edgedet eval --model M --data DIR [--compare M2] [--plot F] [--save-json DIR] [--json]
                                        COCO mAP on a YOLO-format dataset
  edgedet quantize --model FP32.onnx --calib DIR|CAMERA --out INT8.onnx [--method M] [--profile P]
                                        INT8 post-training quantization (QDQ) with sensitivity analysis
  edgedet prune --model FP32.onnx --calib DIR|CAMERA --out PRUNED.onnx [--target ratio=R|flops=F] [--eval DIR]
                                        structured channel pruning with least-squares reconstruction
  edgedet platform [--json] [--ort-lib PATH]
                                        board, CPU features, ONNX Runtime providers, execution-provider plan
  edgedet version                       print edgedet, ONNX Runtime and OpenCV versions

Run 'edgedet COMMAND -h' for a command's flags.
`

// run is the testable body of main: it returns the process exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "run":
		err = cmdRun(ctx, args[1:], stdout, stderr)
	case "detect":
		err = cmdDetect(ctx, args[1:], stdout, stderr)
	case "quantize":
		err = cmdQuantize(ctx, args[1:], stdout, stderr)
	case "prune":
		err = cmdPrune(ctx, args[1:], stdout, stderr)
	case "bench":
		err = cmdBench(ctx, args[1:], stdout, stderr)
	case "eval":
		err = cmdEval(ctx, args[1:], stdout, stderr)
	case "platform":
		err = cmdPlatform(args[1:], stdout, stderr)
	case "version", "--version", "-v":
		err = cmdVersion(args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "edgedet: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintf(stderr, "edgedet %s: %v\n", args[0], err)
		return 2
	default:
		fmt.Fprintf(stderr, "edgedet %s: %v\n", args[0], err)
		return 1
	}
}

// newLogger builds the process logger; main owns it and injects it.
func newLogger(w io.Writer, level slog.Leveler, format string) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// initRuntime finds and loads ONNX Runtime; the caller defers the returned
// cleanup, which destroys the environment last.
func initRuntime(explicit string) (func(), error) {
	lib, err := platforms.FindONNXRuntime(explicit)
	if err != nil {
		return nil, err
	}
	if err := detector.InitRuntime(lib); err != nil {
		return nil, err
	}
	return func() { _ = detector.DestroyRuntime() }, nil
}

// newFlagSet returns a FlagSet that reports errors instead of exiting.
func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("edgedet "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}
