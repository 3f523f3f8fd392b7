package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"github.com/edgedet/edgedet/detection"
	"github.com/edgedet/edgedet/distill"
	"github.com/edgedet/edgedet/onnx"
	"github.com/edgedet/edgedet/onnx/onnxpb"
)

// distillFrames is how many frames distillation takes from a video file
// or a camera (edgedet distill's --frames default, prune --distill's).
const distillFrames = 200

// optionalData is a flag that may be given alone (--distill: on the
// calibration data) or with a value (--distill=DATA).
type optionalData struct {
	set  bool
	data string
}

func (o *optionalData) String() string {
	if o == nil || !o.set {
		return ""
	}
	return o.data
}

func (o *optionalData) Set(s string) error {
	switch s {
	case "true":
		o.set, o.data = true, ""
	case "false":
		o.set, o.data = false, ""
	default:
		o.set, o.data = true, s
	}
	return nil
}

// IsBoolFlag lets --distill stand alone.
func (o *optionalData) IsBoolFlag() bool { return true }

// pruneDistillFlags are prune's distillation flags.
type pruneDistillFlags struct {
	distill     optionalData
	duration    time.Duration
	steps       int
	batch       int
	lr          float64
	durationSet bool
}

func (d *pruneDistillFlags) register(fs *flag.FlagSet) {
	fs.Var(&d.distill, "distill", "distill the pruned model (the original is the teacher, edgedet distill) before writing it: alone on the --calib data, or --distill=DATA on a directory of images, a video file or a camera")
	fs.DurationVar(&d.duration, "distill-time", 25*time.Minute, "with --distill: training time budget (0 = none); with only --distill-steps given, none")
	fs.IntVar(&d.steps, "distill-steps", 0, "with --distill: training step budget (0 = none)")
	fs.IntVar(&d.batch, "distill-batch", distill.DefaultBatch, "with --distill: frames per step")
	floatVar(fs, &d.lr, "distill-lr", distill.DefaultLR, "with --distill: learning rate (see edgedet distill --lr)")
}

// check validates the distillation flags after parsing; calib is --calib.
func (d *pruneDistillFlags) check(fs *flag.FlagSet, calib string) error {
	var given []string
	fs.Visit(func(fl *flag.Flag) {
		if strings.HasPrefix(fl.Name, "distill-") {
			given = append(given, "--"+fl.Name)
		}
		d.durationSet = d.durationSet || fl.Name == "distill-time"
	})
	if !d.distill.set {
		if len(given) > 0 {
			return fmt.Errorf("%w: %s need --distill", errUsage, strings.Join(given, ", "))
		}
		return nil
	}
	if d.steps > 0 && !d.durationSet {
		d.duration = 0
	}
	switch {
	case d.distill.data == "" && fs.NArg() > 0:
		return fmt.Errorf("%w: unexpected arguments %v (give distillation data as --distill=DATA)", errUsage, fs.Args())
	case d.distill.data == "" && calib == "":
		return fmt.Errorf("%w: --distill needs frames: --distill=DATA or --calib", errUsage)
	case d.steps < 0 || d.duration < 0:
		return fmt.Errorf("%w: --distill-steps and --distill-time must not be negative", errUsage)
	case d.steps == 0 && d.duration == 0:
		return fmt.Errorf("%w: no distillation budget: give --distill-time or --distill-steps", errUsage)
	case d.batch < 1:
		return fmt.Errorf("%w: --distill-batch must be >= 1", errUsage)
	case d.lr <= 0:
		return fmt.Errorf("%w: --distill-lr must be > 0", errUsage)
	}
	return nil
}

// data is the distillation frames' source.
func (d *pruneDistillFlags) data(calib string) string {
	if d.distill.data != "" {
		return d.distill.data
	}
	return calib
}

// distillPruned trains pruned to reproduce the original model (teacher,
// from f.model) on the distillation frames, as edgedet distill does with
// its defaults. The prune metadata and the detector's spec carry over.
func distillPruned(ctx context.Context, f *pruneFlags, teacher, pruned *onnxpb.ModelProto, spec detection.Spec, log *slog.Logger, stderr io.Writer) (*onnxpb.ModelProto, *distill.Report, error) {
	d := &f.distill
	src := &distillFlags{data: d.data(f.calib), frames: distillFrames, cfgPath: f.cfgPath}
	inputs, desc, err := openDistillData(ctx, src, spec, log, stderr)
	if err != nil {
		return nil, nil, err
	}
	defer inputs.Close()
	opt := distill.Options{Steps: d.steps, Duration: d.duration, Batch: d.batch, LR: d.lr, Mosaic: distill.CommandMosaic, DataDescription: desc}
	if opt.TeacherSHA256, err = onnx.ModelSHA256(f.model); err != nil {
		return nil, nil, err
	}
	fmt.Fprintf(stderr, "edgedet prune: distilling the pruned model on %s, %s\n", desc, budgetText(d.steps, d.duration))
	status := newDistillStatus(stderr, time.Now)
	opt.Progress = status.update
	m, rep, err := distill.Distill(ctx, teacher, pruned, inputs, opt)
	status.finish()
	return m, rep, err
}

// saveUndistilled writes the pruned model before distillation next to
// the evaluation's temporary files, named after out, for --eval.
func saveUndistilled(dir, out string, m *onnxpb.ModelProto) (string, error) {
	path := filepath.Join(dir, strings.TrimSuffix(filepath.Base(out), ".onnx")+"-undistilled.onnx")
	if err := onnx.SaveModel(path, m); err != nil {
		return "", err
	}
	return path, nil
}
