package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/edgedet/edgedet/calib"
	"github.com/edgedet/edgedet/camera"
	"github.com/edgedet/edgedet/detection"
	"github.com/edgedet/edgedet/distill"
	"github.com/edgedet/edgedet/eval"
	"github.com/edgedet/edgedet/internal/progress"
	"github.com/edgedet/edgedet/onnx"
	"github.com/edgedet/edgedet/onnx/onnxpb"
)

// distillFlags are distill's command line.
type distillFlags struct {
	teacher, student, data, out string
	format                      string
	duration, evalEvery         time.Duration
	steps, batch                int
	lr, blockShare, featWeight  float64
	maxImages, frames           int
	noAugment                   bool
	mosaic                      float64
	seed                        uint64
	evalData, cfgPath, ortLib   string
	headLoss                    string
}

func parseDistillFlags(args []string, stderr io.Writer) (*distillFlags, error) {
	var f distillFlags
	fs := newFlagSet("distill", stderr)
	fs.StringVar(&f.teacher, "teacher", "", "FP32 ONNX model to learn from (required)")
	fs.StringVar(&f.student, "student", "", "model to train, e.g. the teacher pruned by edgedet prune: same inputs and outputs (required)")
	fs.StringVar(&f.data, "data", "", "unlabeled frames: a directory of images, a video file, or a camera name from the config (-c) (required)")
	fs.StringVar(&f.out, "out", "", "output model (required; never the teacher or the student)")
	fs.StringVar(&f.format, "format", "", formatUsage)
	fs.DurationVar(&f.duration, "time", 25*time.Minute, "training time budget (0 = none); with only --steps given, none")
	fs.IntVar(&f.steps, "steps", 0, "training step budget (0 = none)")
	fs.IntVar(&f.batch, "batch", distill.DefaultBatch, "frames per step")
	floatVar(fs, &f.lr, "lr", distill.DefaultLR, "learning rate, relative to each weight tensor's size (end to end: 0.3 of it); rises over the first steps and decays along a cosine in each phase")
	floatVar(fs, &f.blockShare, "block-share", distill.DefaultBlockShare, "share of the budget for the block-wise phase (each pruned region against the teacher's tensors at its borders); 0: end to end only")
	floatVar(fs, &f.featWeight, "feature-weight", 0, "end to end, also match the pruned regions' outputs (intermediate features) with this weight next to the heads' 1")
	fs.StringVar(&f.headLoss, "head-loss", distill.HeadLossDetection, "end-to-end loss on the head tensors: detection (logits a Sigmoid reads matched as probabilities, box heads weighed by the teacher's confidence per cell) or mse (squared error on every head)")
	fs.IntVar(&f.maxImages, "max-images", 0, "use at most this many images of a directory (0 = all)")
	fs.IntVar(&f.frames, "frames", distillFrames, "frames to take from a video file or a camera")
	floatVar(fs, &f.mosaic, "mosaic", distill.CommandMosaic, "share of the frames (0-1) built from four frames shrunk into the quadrants of one (YOLO's mosaic): more varied frames from few")
	fs.BoolVar(&f.noAugment, "no-augment", false, "train on the frames as they are (no flip, crop or colour jitter)")
	fs.Uint64Var(&f.seed, "seed", 1, "seed of the frame order and the augmentation")
	fs.StringVar(&f.evalData, "eval", "", "evaluate the student (COCO mAP) on this YOLO-labelled directory before, during (--eval-every) and after training, and the teacher once")
	fs.DurationVar(&f.evalEvery, "eval-every", 5*time.Minute, "with --eval: evaluate the student after this much training time (0 = only before and after)")
	fs.StringVar(&f.cfgPath, "c", "agent.toml", "agent config, for --data CAMERA")
	fs.StringVar(&f.ortLib, "ort-lib", "", "ONNX Runtime library (default: search)")
	if err := parseFlags(fs, args); err != nil {
		return nil, err
	}
	timeSet := false
	fs.Visit(func(fl *flag.Flag) { timeSet = timeSet || fl.Name == "time" })
	if f.steps > 0 && !timeSet {
		f.duration = 0
	}
	switch {
	case f.teacher == "" || f.student == "" || f.data == "" || f.out == "":
		return nil, fmt.Errorf("%w: --teacher, --student, --data and --out are required", errUsage)
	case fs.NArg() > 0:
		return nil, fmt.Errorf("%w: unexpected arguments %v", errUsage, fs.Args())
	case f.steps < 0 || f.duration < 0:
		return nil, fmt.Errorf("%w: --steps and --time must not be negative", errUsage)
	case f.steps == 0 && f.duration == 0:
		return nil, fmt.Errorf("%w: no budget: give --time or --steps", errUsage)
	case f.batch < 1:
		return nil, fmt.Errorf("%w: --batch must be >= 1", errUsage)
	case f.lr <= 0:
		return nil, fmt.Errorf("%w: --lr must be > 0", errUsage)
	case f.blockShare < 0 || f.blockShare >= 1:
		return nil, fmt.Errorf("%w: --block-share must be in [0, 1)", errUsage)
	case !(f.mosaic >= 0 && f.mosaic <= 1):
		return nil, fmt.Errorf("%w: --mosaic is %g: want a share in [0, 1]", errUsage, f.mosaic)
	case f.featWeight < 0:
		return nil, fmt.Errorf("%w: --feature-weight must not be negative", errUsage)
	case f.evalEvery < 0:
		return nil, fmt.Errorf("%w: --eval-every must not be negative", errUsage)
	case f.headLoss != distill.HeadLossDetection && f.headLoss != distill.HeadLossMSE:
		return nil, fmt.Errorf("%w: --head-loss is %q, want %s or %s", errUsage, f.headLoss, distill.HeadLossDetection, distill.HeadLossMSE)
	}
	return &f, nil
}

func cmdDistill(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f, err := parseDistillFlags(args, stderr)
	if err != nil {
		return err
	}
	for _, in := range []string{f.teacher, f.student} {
		if err := checkDistinct(in, f.out); err != nil {
			return err
		}
	}
	teacher, err := loadFloatModel(f.teacher)
	if err != nil {
		return err
	}
	student, err := loadFloatModel(f.student)
	if err != nil {
		return err
	}
	log := newLogger(stderr, slog.LevelWarn, "text")
	cleanup, err := initRuntime(f.ortLib)
	if err != nil {
		return err
	}
	defer cleanup()
	spec, err := modelSpec(f.teacher, detection.Format(f.format))
	if err != nil {
		return err
	}
	inputs, desc, err := openDistillData(ctx, f, spec, log, stderr)
	if err != nil {
		return err
	}
	defer inputs.Close()

	opt := distill.Options{Steps: f.steps, Duration: f.duration, Batch: f.batch, LR: f.lr, BlockShare: f.blockShare,
		FeatureWeight: f.featWeight, HeadLoss: f.headLoss, NoAugment: f.noAugment, Mosaic: f.mosaic, Seed: f.seed, DataDescription: desc}
	if opt.BlockShare == 0 {
		opt.BlockShare = -1 // the library's zero means its default
	}
	if opt.TeacherSHA256, err = onnx.ModelSHA256(f.teacher); err != nil {
		return err
	}
	specMeta, err := spec.EncodeMetadata()
	if err != nil {
		return err
	}
	var ev *distillEval
	if f.evalData != "" {
		ev = &distillEval{scorer: &mapScorer{specMeta: specMeta, data: f.evalData, images: math.MaxInt, log: log}}
		defer ev.scorer.Close()
		if err := ev.reference(ctx, "teacher", teacher); err != nil {
			return err
		}
		if err := ev.point(ctx, distill.Checkpoint{Phase: "start", Model: student}); err != nil {
			return err
		}
		if f.evalEvery > 0 {
			opt.Checkpoint, opt.CheckpointEvery = func(c distill.Checkpoint) error { return ev.point(ctx, c) }, f.evalEvery
		}
	}
	fmt.Fprintf(stderr, "edgedet distill: %s → %s on %s, %s\n", filepath.Base(f.teacher), filepath.Base(f.student), desc, budgetText(f.steps, f.duration))
	status := newDistillStatus(stderr, time.Now)
	opt.Progress = status.update
	model, rep, err := distill.Distill(ctx, teacher, student, inputs, opt)
	status.finish()
	if err != nil {
		return fmt.Errorf("%w (nothing written)", err)
	}
	onnx.SetMetadata(model, detection.MetadataSpecKey, specMeta)
	if err := onnx.SaveModel(f.out, model); err != nil {
		return err
	}
	printDistillReport(stdout, f.out, rep)
	if ev == nil {
		return nil
	}
	if err := ev.point(ctx, distill.Checkpoint{Phase: "end", Step: rep.Steps, Elapsed: rep.Elapsed, Model: model}); err != nil {
		return err
	}
	ev.print(stdout, f.evalData)
	return nil
}

// loadFloatModel loads an FP32 model; a quantised one cannot be trained.
func loadFloatModel(path string) (*onnxpb.ModelProto, error) {
	m, err := onnx.LoadModel(path)
	if err != nil {
		return nil, err
	}
	if ops := onnx.QuantOps(m); len(ops) > 0 {
		return nil, fmt.Errorf("%s is quantized (it has %s): distill its FP32 model, then quantize the result", path, strings.Join(ops, ", "))
	}
	return m, nil
}

// openDistillData opens --data: a directory of images, a video file, or a
// camera of the config. It returns the frames and a description for the
// output's metadata.
func openDistillData(ctx context.Context, f *distillFlags, spec detection.Spec, log *slog.Logger, stderr io.Writer) (*calib.Inputs, string, error) {
	st, err := os.Stat(f.data)
	switch {
	case err == nil && st.IsDir():
		in, err := calib.FromDir(f.data, f.maxImages, spec, log)
		if err != nil {
			return nil, "", fmt.Errorf("--data: %w", err)
		}
		return in, fmt.Sprintf("directory %s (%s)", filepath.Base(f.data), plural(in.Len(), "image")), nil
	case err == nil:
		if f.frames <= 0 {
			return nil, "", fmt.Errorf("%w: --frames must be > 0", errUsage)
		}
		realtime := false
		cc := camera.Config{Name: filepath.Base(f.data), Source: f.data, Kind: camera.KindFile, Realtime: &realtime}
		// The stream would retry a file it cannot open forever: try it once.
		src, err := camera.Open(ctx, cc, log)
		if err != nil {
			return nil, "", fmt.Errorf("--data %s is neither a directory nor a video OpenCV can open: %w", f.data, err)
		}
		src.Close()
		in, err := calib.FromCamera(ctx, cc.Name, cc, f.frames, spec, log, stderr)
		if err != nil {
			return nil, "", fmt.Errorf("--data %s: %w", f.data, err)
		}
		return in, fmt.Sprintf("video %s (%s)", filepath.Base(f.data), plural(in.Len(), "frame")), nil
	}
	in, err := openCalibInputs(ctx, "--data", f.data, f.cfgPath, f.frames, 0, spec, log, stderr)
	if err != nil {
		return nil, "", err
	}
	return in, fmt.Sprintf("camera %s (%s)", f.data, plural(in.Len(), "frame")), nil
}

// budgetText describes the budget: "at most 100 steps", "25m0s".
func budgetText(steps int, d time.Duration) string {
	switch {
	case steps > 0 && d > 0:
		return fmt.Sprintf("%s or %v, whichever ends first", plural(steps, "step"), d)
	case steps > 0:
		return plural(steps, "step")
	}
	return d.String()
}

// printDistillReport writes what the phases did.
func printDistillReport(w io.Writer, out string, rep *distill.Report) {
	fmt.Fprintf(w, "wrote %s: %s on %s in %v\n", out, plural(rep.Steps, "step"), plural(rep.Images, "frame"), rep.Elapsed.Round(time.Second))
	printDistillPhases(w, rep)
}

// printDistillPhases writes the regions and heads trained and each
// phase's steps and loss.
func printDistillPhases(w io.Writer, rep *distill.Report) {
	fmt.Fprintf(w, "block-wise regions: %d; head tensors: %d (%d matched as probabilities, %d weighed by the teacher's confidence)\n",
		len(rep.Regions), len(rep.Heads), len(rep.LogitHeads), len(rep.ConfidenceHeads))
	for _, p := range rep.Phases {
		fmt.Fprintf(w, "%-11s %10s in %7v   loss %.4f -> %.4f\n", p.Name, plural(p.Steps, "step"), p.Elapsed.Round(time.Second), p.FirstLoss, p.LastLoss)
		if curve := lossCurve(p.Losses, 10); len(curve) > 2 {
			fmt.Fprintf(w, "%-11s loss by tenth of the phase:", "")
			for _, l := range curve {
				fmt.Fprintf(w, " %.4f", l)
			}
			fmt.Fprintln(w)
		}
	}
}

// lossCurve is the mean loss of each of n equal stretches of steps (fewer
// when there are fewer steps).
func lossCurve(losses []float64, n int) []float64 {
	n = min(n, len(losses))
	var curve []float64
	for i := range n {
		part := losses[i*len(losses)/n : (i+1)*len(losses)/n]
		var sum float64
		for _, l := range part {
			sum += l
		}
		curve = append(curve, sum/float64(len(part)))
	}
	return curve
}

// distillEval evaluates the student at checkpoints on --eval.
type distillEval struct {
	scorer *mapScorer
	ref    []evalPoint
	points []evalPoint
}

type evalPoint struct {
	label   string
	step    int
	elapsed time.Duration
	sum     eval.Summary
}

// reference evaluates a model that is not trained (the teacher).
func (e *distillEval) reference(ctx context.Context, label string, m *onnxpb.ModelProto) error {
	sum, err := e.scorer.Summary(ctx, m)
	if err != nil {
		return fmt.Errorf("evaluate the %s: %w", label, err)
	}
	e.ref = append(e.ref, evalPoint{label: label, sum: sum})
	return nil
}

// point evaluates the student at a checkpoint.
func (e *distillEval) point(ctx context.Context, c distill.Checkpoint) error {
	sum, err := e.scorer.Summary(ctx, c.Model)
	if err != nil {
		return fmt.Errorf("evaluate the student at step %d: %w", c.Step, err)
	}
	e.points = append(e.points, evalPoint{label: c.Phase, step: c.Step, elapsed: c.Elapsed, sum: sum})
	return nil
}

// print writes the mAP against training minutes table.
func (e *distillEval) print(w io.Writer, data string) {
	fmt.Fprintf(w, "mAP vs training time on %s (%s):\n", filepath.Base(data), plural(e.scorer.used, "image"))
	fmt.Fprintf(w, "%-12s %8s %6s %12s %9s\n", "", "minutes", "steps", "mAP@.5:.95", "mAP@.5")
	for _, p := range e.ref {
		fmt.Fprintf(w, "%-12s %8s %6s %12.3f %9.3f\n", p.label, "", "", p.sum.AP, p.sum.AP50)
	}
	for _, p := range e.points {
		fmt.Fprintf(w, "%-12s %8.1f %6d %12.3f %9.3f\n", p.label, p.elapsed.Minutes(), p.step, p.sum.AP, p.sum.AP50)
	}
}

// distillStatus shows training progress on stderr: redrawn in place on a
// terminal, otherwise a line every statusEvery of training and at each
// phase change.
type distillStatus struct {
	w        io.Writer
	terminal bool
	now      func() time.Time
	phase    string
	last     time.Time
	drawn    bool
}

const statusEvery = 30 * time.Second

func newDistillStatus(w io.Writer, now func() time.Time) *distillStatus {
	return &distillStatus{w: w, terminal: progress.IsTerminal(w), now: now}
}

func (s *distillStatus) update(p distill.Progress) {
	line := fmt.Sprintf("distill %s: step %d", p.Phase, p.Step)
	if p.Steps > 0 {
		line += fmt.Sprintf("/%d", p.Steps)
	}
	line += fmt.Sprintf(", %v", p.Elapsed.Round(time.Second))
	if p.Budget > 0 {
		line += fmt.Sprintf(" of %v", p.Budget)
	}
	line += fmt.Sprintf(", loss %.4f", p.Loss)
	if s.terminal {
		fmt.Fprintf(s.w, "\r\033[K%s", line)
		s.drawn = true
		return
	}
	if now := s.now(); p.Phase != s.phase || now.Sub(s.last) >= statusEvery {
		fmt.Fprintln(s.w, line)
		s.phase, s.last = p.Phase, now
	}
}

// finish ends the redrawn line.
func (s *distillStatus) finish() {
	if s.drawn {
		fmt.Fprintln(s.w)
	}
}
