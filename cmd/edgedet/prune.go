package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/edgedet/edgedet/detection"
	"github.com/edgedet/edgedet/distill"
	"github.com/edgedet/edgedet/eval"
	"github.com/edgedet/edgedet/internal/progress"
	"github.com/edgedet/edgedet/onnx"
	"github.com/edgedet/edgedet/prune"
)

// pruneFlags are prune's command line.
type pruneFlags struct {
	model, calib, out, target   string
	sensitivity                 bool
	sensImages                  int
	plot, int8Model, prunedInt8 string
	importance                  string
	refit                       bool
	samples, maxImages, frames  int
	cfgPath, evalData, ortLib   string
	format                      string
	threads                     int
	groups                      bool
	distill                     pruneDistillFlags
}

func parsePruneFlags(args []string, stderr io.Writer) (*pruneFlags, error) {
	var f pruneFlags
	fs := newFlagSet("prune", stderr)
	fs.StringVar(&f.model, "model", "", "FP32 ONNX model to prune (required)")
	fs.StringVar(&f.calib, "calib", "", "calibration data for the reconstruction: a directory of images, or a camera name from the config (-c) (required unless --refit=false)")
	fs.StringVar(&f.out, "out", "", "output model (required; never the input)")
	fs.StringVar(&f.format, "format", "", formatUsage)
	fs.StringVar(&f.target, "target", "flops=0.9", "ratio=R: remove R of every prunable group's channels; flops=F: keep F of the multiply-adds; latency=L: keep L of the measured latency")
	fs.BoolVar(&f.sensitivity, "sensitivity", false, "prune each group alone at several ratios and measure the mAP it costs on --sensitivity-images of --eval; the target is then spent on the groups that cost least")
	fs.IntVar(&f.sensImages, "sensitivity-images", 16, "images of --eval the sensitivity analysis scores on")
	fs.StringVar(&f.plot, "plot", "", "write a PNG of mAP against latency for the models (needs --eval)")
	fs.StringVar(&f.int8Model, "int8", "", "with --plot: the original's INT8 model, to place on the plot")
	fs.StringVar(&f.prunedInt8, "pruned-int8", "", "with --plot: the pruned model's INT8 model (edgedet quantize of --out), to place on the plot")
	fs.StringVar(&f.importance, "importance", "contribution", "channel importance: contribution (the share of its consumers' output variance a channel carries, on the calibration frames; comparable across groups, so a flops target is spent where it hurts least), l1 or l2 (norm of the filters producing it)")
	fs.BoolVar(&f.refit, "refit", true, "re-fit the convolutions reading pruned channels by least squares on calibration activations (He et al. 2017)")
	fs.IntVar(&f.samples, "samples", 64, "activation positions sampled per calibration image and convolution for the refit")
	fs.IntVar(&f.maxImages, "max-images", 32, "calibration images used from a directory (0 = all)")
	fs.StringVar(&f.cfgPath, "c", "agent.toml", "agent config, for --calib CAMERA")
	fs.IntVar(&f.frames, "frames", 32, "frames to capture from a camera for calibration")
	fs.StringVar(&f.evalData, "eval", "", "also evaluate the original and the pruned model (with --distill: before and after distillation) on this YOLO-labelled directory (COCO mAP)")
	fs.IntVar(&f.threads, "threads", 1, "ONNX Runtime threads for the latency measurement")
	fs.BoolVar(&f.groups, "groups", false, "print the table of channel groups")
	fs.StringVar(&f.ortLib, "ort-lib", "", "ONNX Runtime library (default: search)")
	f.distill.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return nil, err
	}
	if err := f.distill.check(fs, f.calib); err != nil {
		return nil, err
	}
	switch {
	case f.model == "" || f.out == "":
		return nil, fmt.Errorf("%w: --model and --out are required", errUsage)
	case f.calib == "" && f.refit:
		return nil, fmt.Errorf("%w: --calib is required for the reconstruction (or --refit=false)", errUsage)
	case fs.NArg() > 0:
		return nil, fmt.Errorf("%w: unexpected arguments %v", errUsage, fs.Args())
	case f.importance != prune.ImportanceL1 && f.importance != prune.ImportanceL2 && f.importance != prune.ImportanceContribution:
		return nil, fmt.Errorf("%w: --importance %q is not contribution, l1 or l2", errUsage, f.importance)
	case f.calib == "" && f.importance == prune.ImportanceContribution:
		return nil, fmt.Errorf("%w: --importance contribution needs --calib (or choose l1 or l2)", errUsage)
	case f.samples < 1:
		return nil, fmt.Errorf("%w: --samples must be >= 1", errUsage)
	case (f.sensitivity || f.plot != "") && f.evalData == "":
		return nil, fmt.Errorf("%w: --sensitivity and --plot need --eval DIR", errUsage)
	case f.sensitivity && f.sensImages < 1:
		return nil, fmt.Errorf("%w: --sensitivity-images must be >= 1", errUsage)
	}
	return &f, nil
}

func cmdPrune(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f, err := parsePruneFlags(args, stderr)
	if err != nil {
		return err
	}
	opt := prune.DefaultOptions()
	if opt.Target, err = prune.ParseTarget(f.target); err != nil {
		return fmt.Errorf("%w: --target %v", errUsage, err)
	}
	if err := checkDistinct(f.model, f.out); err != nil {
		return err
	}
	log := newLogger(stderr, slog.LevelWarn, "text")

	src, err := onnx.LoadModel(f.model)
	if err != nil {
		return err
	}
	if ops := onnx.QuantOps(src); len(ops) > 0 {
		return fmt.Errorf("%s is quantized (it has %s): prune its FP32 original, then quantize the pruned model", f.model, strings.Join(ops, ", "))
	}
	_, a, err := prune.FoldAndAnalyze(src) // Prune does it again: errors and the table come before ONNX Runtime loads
	if err != nil {
		return fmt.Errorf("%s: %w", f.model, err)
	}
	if f.groups {
		a.Table(stdout)
	}
	cleanup, err := initRuntime(f.ortLib)
	if err != nil {
		return err
	}
	defer cleanup()
	spec, err := modelSpec(f.model, detection.Format(f.format))
	if err != nil {
		return err
	}
	desc, err := spec.EncodeMetadata()
	if err != nil {
		return err
	}
	opt.InputShape = []int64{1, 3, int64(spec.InputHeight), int64(spec.InputWidth)}
	opt.Importance, opt.Refit, opt.Samples, opt.Status = f.importance, f.refit, f.samples, stderr
	var inputs onnx.Inputs
	if f.calib != "" {
		ci, err := openCalibInputs(ctx, "--calib", f.calib, f.cfgPath, f.frames, f.maxImages, spec, log, stderr)
		if err != nil {
			return err
		}
		defer ci.Close()
		inputs = ci
	}
	timers := &detectorTimers{threads: f.threads, log: log, spec: &spec}
	defer timers.Close()
	opt.OpenTimer = timers.OpenModel
	var scorer *mapScorer
	if f.sensitivity {
		scorer = &mapScorer{specMeta: desc, data: f.evalData, images: f.sensImages, log: log}
		defer scorer.Close()
		opt.Score = scorer.Score
		var bar *progress.Bar
		opt.Progress = func(done, total int) {
			if bar == nil {
				bar = progress.New(stderr, "sensitivity", total, "pruned variants")
			}
			if bar.Add(1); done == total {
				bar.Finish()
			}
		}
	}
	pruned, rep, err := prune.Prune(ctx, src, inputs, opt)
	if errors.Is(err, prune.ErrUnreachable) {
		return fmt.Errorf("--target: %w", err)
	} else if err != nil {
		return fmt.Errorf("%s: %w", f.model, err)
	}
	if rep.Sensitivity != nil {
		printSensitivity(stdout, rep, scorer.used)
	}
	if sum, err := onnx.ModelSHA256(f.model); err == nil {
		onnx.SetMetadata(pruned, "edgedet.prune.source_sha256", sum)
	}
	onnx.SetMetadata(pruned, detection.MetadataSpecKey, desc)
	final, undistilled := pruned, ""
	var drep *distill.Report
	if f.distill.distill.set {
		if final, drep, err = distillPruned(ctx, f, src, pruned, spec, log, stderr); err != nil {
			return fmt.Errorf("--distill: %w (nothing written)", err)
		}
		if f.evalData != "" {
			dir, err := os.MkdirTemp("", "edgedet-prune-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(dir)
			if undistilled, err = saveUndistilled(dir, f.out, pruned); err != nil {
				return err
			}
		}
	}
	if err := onnx.SaveModel(f.out, final); err != nil {
		return err
	}
	printPruneReport(stdout, f, rep)
	if drep != nil {
		fmt.Fprintf(stdout, "distilled: %s on %s in %v\n", plural(drep.Steps, "step"), plural(drep.Images, "frame"), drep.Elapsed.Round(time.Second))
		printDistillPhases(stdout, drep)
	}
	if f.evalData == "" {
		return nil
	}
	return pruneEvalAndPlot(ctx, f, undistilled, timers, log, stdout, stderr)
}

// printPruneReport writes what was removed and the before/after table.
func printPruneReport(w io.Writer, f *pruneFlags, rep *prune.Report) {
	fmt.Fprintf(w, "wrote %s: %s removed from %d of %s (%s)\n", f.out, plural(rep.ChannelsRemoved, "channel"), len(rep.Plan), plural(len(rep.Analysis.Groups), "group"), f.target)
	fmt.Fprintf(w, "%-20s %14s %14s %8s\n", "", "before", "after", "after/before")
	p0, p1 := rep.ParamsBefore, rep.ParamsAfter
	fmt.Fprintf(w, "%-20s %14d %14d %7.1f%%\n", "parameters", p0, p1, 100*float64(p1)/float64(p0))
	m0, m1 := float64(rep.MACsBefore), float64(rep.MACsAfter)
	fmt.Fprintf(w, "%-20s %14.1fM %13.1fM %7.1f%%\n", "multiply-adds", m0/1e6, m1/1e6, 100*m1/m0)
	if si, so := fileSize(f.model), fileSize(f.out); si > 0 && so > 0 {
		fmt.Fprintf(w, "%-20s %13.2fMB %12.2fMB %7.1f%%\n", "file size", float64(si)/1e6, float64(so)/1e6, 100*float64(so)/float64(si))
	}
	l0, l1 := ms(rep.LatencyBefore), ms(rep.LatencyAfter)
	fmt.Fprintf(w, "%-20s %12.2fms %12.2fms %7.1f%%  (median, %s, measured alternately in this run)\n", "latency", l0, l1, 100*l1/l0, threadsText(f.threads))
	if len(rep.Refits) > 0 {
		var plain, fit float64
		kept := 0
		for _, r := range rep.Refits {
			plain += r.Plain
			fit += r.Final
			if r.Refitted {
				kept++
			}
		}
		n := float64(len(rep.Refits))
		fmt.Fprintf(w, "reconstruction: %s re-fitted (%d kept plain removal); held-out output error %.3f -> %.3f (mean relative)\n",
			plural(kept, "convolution"), len(rep.Refits)-kept, plain/n, fit/n)
	}
}

// printSensitivity writes the sensitivity table: mAP lost per group and
// ratio, on images images.
func printSensitivity(w io.Writer, rep *prune.Report, images int) {
	s, groups := rep.Sensitivity, rep.Analysis.Groups // groups in ID order
	fmt.Fprintf(w, "sensitivity: mAP@0.5:0.95 lost with one group pruned (of %.3f, on %s)\n", s.Base, plural(images, "image"))
	fmt.Fprintf(w, "%6s %9s", "group", "channels")
	for _, r := range s.Ratios {
		fmt.Fprintf(w, " %8.0f%%", 100*r)
	}
	fmt.Fprintln(w, "  producer")
	for _, g := range groups {
		loss, ok := s.Loss[g.ID]
		if !ok {
			continue
		}
		fmt.Fprintf(w, "%6d %9d", g.ID, g.Channels)
		for _, l := range loss {
			fmt.Fprintf(w, " %+9.3f", -l)
		}
		fmt.Fprintf(w, "  %s\n", g.Producers[0])
	}
}

// pruneEvalAndPlot evaluates the original and the pruned model on --eval
// (with --distill, the pruned model before distillation, undistilled, and
// after, --out) and, with --plot, draws mAP against latency (with the
// INT8 models given).
func pruneEvalAndPlot(ctx context.Context, f *pruneFlags, undistilled string, timers *detectorTimers, log *slog.Logger, stdout, stderr io.Writer) error {
	models := []string{f.model, f.out}
	names := []string{"fp32", "pruned"}
	prunedInt8 := "pruned + int8"
	if undistilled != "" {
		models = []string{f.model, undistilled, f.out}
		names = []string{"fp32", "pruned", "pruned + distilled"}
		prunedInt8 = "pruned + distilled + int8"
	}
	if f.plot != "" {
		for i, extra := range []string{f.int8Model, f.prunedInt8} {
			if extra != "" {
				models = append(models, extra)
				names = append(names, []string{"int8", prunedInt8}[i])
			}
		}
	}
	c, err := evalCompare(ctx, models, f.evalData, detection.Format(f.format), log, stdout, stderr)
	if err != nil || f.plot == "" {
		return err
	}
	sums := c.Summaries
	var pts []eval.TradeoffPoint
	for i, path := range models {
		_, lat, err := timers.PairedFiles(ctx, f.model, path)
		if err != nil {
			return err
		}
		pts = append(pts, eval.TradeoffPoint{Name: names[i], LatencyMs: ms(lat), MAP: sums[i].AP})
	}
	title := fmt.Sprintf("%s: mAP against latency (%s)", strings.TrimSuffix(filepath.Base(f.model), ".onnx"), threadsText(f.threads))
	if err := eval.PlotTradeoff(f.plot, title, pts...); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s\n", f.plot)
	return nil
}

func fileSize(path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return st.Size()
}
