// Command edgedet is the edge object-detection agent and its tools. Each
// command parses its flags, calls one library function and prints:
//
//	edgedet run -c agent.toml              run the daemon (package agent)
//	edgedet detect --model M IMAGES        detect objects in images (detector)
//	edgedet quantize --model M --calib D   INT8 post-training quantization (quant)
//	edgedet prune --model M --calib D      structured channel pruning (prune)
//	edgedet distill --teacher T --student S --data D   recover a pruned model without labels (distill)
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
	"strings"
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

// command is one edgedet subcommand: its synopsis (the arguments after
// "edgedet NAME", one line per form) and what it does.
type command struct {
	name     string
	synopsis []string
	summary  string
}

// run runs the command's body with its arguments.
func (c command) run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	switch c.name {
	case "run":
		return cmdRun(ctx, args, stdout, stderr)
	case "detect":
		return cmdDetect(ctx, args, stdout, stderr)
	case "bench":
		return cmdBench(ctx, args, stdout, stderr)
	case "eval":
		return cmdEval(ctx, args, stdout, stderr)
	case "quantize":
		return cmdQuantize(ctx, args, stdout, stderr)
	case "prune":
		return cmdPrune(ctx, args, stdout, stderr)
	case "distill":
		return cmdDistill(ctx, args, stdout, stderr)
	case "platform":
		return cmdPlatform(args, stdout, stderr)
	case "version":
		return cmdVersion(args, stdout, stderr)
	}
	return fmt.Errorf("command %q has no body", c.name)
}

// commands are edgedet's subcommands, in the order the usage lists them.
var commands = []command{
	{"run", []string{"-c agent.toml [--check]"},
		"run the agent (--check: validate the config, print it, exit)"},
	{"detect", []string{"--model M [--out F|DIR] [--json] IMAGES..."},
		"detect objects in images, optionally draw them"},
	{"bench", []string{"--model M [--runs N] [--json] IMAGES...", "--model M --video CLIP [--seconds N] [--cameras N] [--json]"},
		"time preprocess / inference / postprocess; --video: the real pipeline on a looping video"},
	{"eval", []string{"--model M --data DIR [--compare M2] [--plot F] [--save-json DIR] [--json]"},
		"COCO mAP on a YOLO-format dataset"},
	{"quantize", []string{"--model FP32.onnx --calib DIR|CAMERA --out INT8.onnx [--method M] [--profile P]"},
		"INT8 post-training quantization (QDQ) with sensitivity analysis"},
	{"prune", []string{"--model FP32.onnx --calib DIR|CAMERA --out PRUNED.onnx [--target ratio=R|flops=F] [--distill[=DATA]] [--eval DIR]"},
		"structured channel pruning with least-squares reconstruction"},
	{"distill", []string{"--teacher FP32.onnx --student S.onnx --data DIR|VIDEO|CAMERA --out OUT.onnx [--time 25m] [--steps N] [--eval DIR]"},
		"train a pruned student to reproduce its teacher on unlabeled frames"},
	{"platform", []string{"[--json] [--ort-lib PATH]"},
		"board, CPU features, ONNX Runtime providers, execution-provider plan"},
	{"version", []string{"[--ort-lib PATH]"},
		"print edgedet, ONNX Runtime and OpenCV versions"},
}

// lookupCommand finds a subcommand by name.
func lookupCommand(name string) (command, bool) {
	for _, c := range commands {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

// usage is the command list `edgedet help` prints.
func usage() string {
	var b strings.Builder
	b.WriteString("edgedet — edge object detection with ONNX Runtime YOLO models, reported over MQTT\n\nUsage:\n")
	const col = 40 // where summaries start
	line := func(synopsis []string, summary string) {
		for i, syn := range synopsis {
			l := "  edgedet " + syn
			if i == len(synopsis)-1 && len(l) < col {
				fmt.Fprintf(&b, "%-*s%s\n", col, l, summary)
				return
			}
			b.WriteString(l + "\n")
		}
		fmt.Fprintf(&b, "%*s%s\n", col, "", summary)
	}
	for _, c := range commands {
		var syn []string
		for _, s := range c.synopsis {
			syn = append(syn, c.name+" "+s)
		}
		line(syn, c.summary)
	}
	line([]string{"help [COMMAND]"}, "this list, or a command's usage and flags")
	b.WriteString("\nFlags may come before or after the arguments; -- ends the flags.\n")
	b.WriteString("Run 'edgedet help COMMAND' (or 'edgedet COMMAND -h') for a command's flags.\n")
	return b.String()
}

// commandUsage is the head of a command's -h output; its flags follow.
func commandUsage(c command) string {
	var b strings.Builder
	for i, s := range c.synopsis {
		lead := "Usage:"
		if i > 0 {
			lead = "      "
		}
		fmt.Fprintf(&b, "%s edgedet %s %s\n", lead, c.name, s)
	}
	fmt.Fprintf(&b, "\n%s.\n\nFlags (before or after the arguments):\n", strings.ToUpper(c.summary[:1])+c.summary[1:])
	return b.String()
}

// run is the testable body of main: it returns the process exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage())
		return 2
	}
	name := args[0]
	switch name {
	case "version", "--version", "-v":
		name = "version"
	case "help", "-h", "--help":
		return help(ctx, args[1:], stdout, stderr)
	}
	c, ok := lookupCommand(name)
	if !ok {
		fmt.Fprintf(stderr, "edgedet: unknown command %q\n\n%s", args[0], usage())
		return 2
	}
	err := c.run(ctx, args[1:], stdout, stderr)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintf(stderr, "edgedet %s: %v\n", name, err)
		return 2
	default:
		fmt.Fprintf(stderr, "edgedet %s: %v\n", name, err)
		return 1
	}
}

// help prints the command list, or with a command name that command's
// usage and flags, on stdout.
func help(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	switch {
	case len(args) == 0 || args[0] == "help":
		fmt.Fprint(stdout, usage())
		return 0
	case len(args) > 1:
		fmt.Fprintf(stderr, "edgedet help: one command at a time, got %q\n", args)
		return 2
	}
	c, ok := lookupCommand(args[0])
	if !ok {
		names := make([]string, len(commands))
		for i, c := range commands {
			names[i] = c.name
		}
		fmt.Fprintf(stderr, "edgedet help: unknown command %q (commands: %s)\n", args[0], strings.Join(names, ", "))
		return 2
	}
	// -h makes the command print its usage to its error writer and return
	// flag.ErrHelp before it does anything.
	if err := c.run(ctx, []string{"-h"}, stdout, stdout); !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintf(stderr, "edgedet help %s: %v\n", c.name, err)
		return 1
	}
	return 0
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

// newFlagSet returns a FlagSet that reports errors instead of exiting and
// whose -h prints the command's synopsis before its flags. Parse it with
// parseFlags, which takes flags after the arguments too.
func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("edgedet "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	if c, ok := lookupCommand(name); ok {
		fs.Usage = func() {
			fmt.Fprint(fs.Output(), commandUsage(c))
			fs.PrintDefaults()
		}
	}
	return fs
}
