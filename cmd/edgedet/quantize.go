package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/edgedet/edgedet/calib"
	"github.com/edgedet/edgedet/detection"
	"github.com/edgedet/edgedet/internal/latency"
	"github.com/edgedet/edgedet/internal/progress"
	"github.com/edgedet/edgedet/onnx"
	"github.com/edgedet/edgedet/onnx/onnxpb"
	"github.com/edgedet/edgedet/platforms"
	"github.com/edgedet/edgedet/quant"
)

// quantizeFlags are quantize's command line.
type quantizeFlags struct {
	model, calib, out, cfgPath string
	format                     string
	frames, maxImages          int
	reportPath, ortLib         string
	evalData                   string
	latency                    bool
	metric                     string
	opt                        quant.Options
	board                      platforms.Board
}

func parseQuantizeFlags(args []string, stderr io.Writer) (*quantizeFlags, error) {
	var f quantizeFlags
	fs := newFlagSet("quantize", stderr)
	fs.StringVar(&f.model, "model", "", "FP32 ONNX model to quantize (required)")
	fs.StringVar(&f.calib, "calib", "", "calibration data: a directory of images, or a camera name from the config (-c) (required)")
	fs.StringVar(&f.out, "out", "", "output INT8 model (required; never the input)")
	fs.StringVar(&f.format, "format", "", formatUsage)
	fs.StringVar(&f.cfgPath, "c", "agent.toml", "agent config, for --calib CAMERA")
	fs.IntVar(&f.frames, "frames", 100, "frames to capture from a camera for calibration")
	fs.IntVar(&f.maxImages, "max-images", 0, "use at most this many images of a directory (0 = all)")
	method := fs.String("method", string(quant.DefaultOptions().Method), "activation ranges: mse (least quantization error, through the activation each tensor feeds), minmax, percentile, entropy")
	pct := new(float64)
	floatVar(fs, pct, "percentile", 99.99, "percentile for --method percentile")
	profile := fs.String("profile", "cpu", "activations: cpu (uint8), arm (int8), tensorrt (int8 symmetric)")
	perTensor := fs.Bool("per-tensor", false, "quantize weights per tensor instead of per output channel")
	reduceRange := fs.Bool("reduce-range", true, "7-bit weights, so ONNX Runtime's x86 uint8×int8 kernels cannot saturate on CPUs without AVX-512 VNNI / AVX-VNNI (default: true with --profile cpu unless this CPU has VNNI)")
	floatWeights := fs.String("float-weights", string(quant.WeightsInt8), "how the layers kept float store their weights: int8 (with bias correction), fp16 or fp32; ONNX Runtime restores float32 weights when it loads the model, so this changes the file size, not the speed")
	elementwise := fs.Bool("elementwise", quant.DefaultOptions().Elementwise, "also run Sigmoid/Mul/Add/Concat/MaxPool/Resize between convolutions in INT8 (on a CPU, edgedet runs the INT8 activations as fused table lookups)")
	entry := fs.Bool("entry-float", quant.DefaultOptions().EntryFloat, "keep the first layers float, as many as minimise the output error (one float region, one crossing into INT8)")
	exclude := fs.String("exclude", "", "comma-separated node names or op types to keep float")
	maxErr := new(float64)
	floatVar(fs, maxErr, "max-error", quant.DefaultOptions().MaxError, "sensitivity budget: after the entry region, keep the most damaging layers float until the output error is below this; slower (each adds a float island). Negative: no budget (with --entry-float=false: every layer INT8)")
	sensFrames := fs.Int("sensitivity-frames", quant.DefaultOptions().SensitivityFrames, "calibration frames the sensitivity analysis compares on")
	threads := fs.Int("threads", 0, "ONNX Runtime intra-op threads (0 = default)")
	accuracy := accuracyFlags(fs)
	fs.StringVar(&f.reportPath, "report", "", "also write the report as JSON here")
	fs.StringVar(&f.evalData, "eval", "", "after writing, score the FP32 and the INT8 model on this YOLO-labelled directory (as edgedet eval) and print the mAP lost with its 95 % interval; use images not in --calib")
	fs.StringVar(&f.ortLib, "ort-lib", "", "ONNX Runtime library (default: search)")
	fs.StringVar(&f.metric, "metric", "detections", "output error the float layers are chosen by: detections (1 - AP of the INT8 detections against FP32's on the sensitivity frames) or outputs (relative squared error of the raw outputs)")
	fs.BoolVar(&f.latency, "latency", true, "time models in the detector on this CPU: the entry regions near the best (the fastest is kept), and the result against FP32 (paired runs)")
	ifSlower := fs.String("if-slower", "weights-only", "with --latency, when the INT8 model computes not clearly faster than FP32 on this CPU (above 0.95x its time): weights-only (write every layer float with int8-stored weights: FP32's speed at INT8's size) or keep (write the INT8 model anyway)")
	if err := parseFlags(fs, args); err != nil {
		return nil, err
	}
	var weightsOnlyIfSlower bool
	switch *ifSlower {
	case "weights-only":
		weightsOnlyIfSlower = true
	case "keep":
	default:
		return nil, fmt.Errorf("%w: --if-slower %q is not weights-only or keep", errUsage, *ifSlower)
	}
	if f.model == "" || f.calib == "" || f.out == "" {
		return nil, fmt.Errorf("%w: --model, --calib and --out are required", errUsage)
	}
	if err := checkBenchEval(f.evalData, ""); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("%w: unexpected arguments %v", errUsage, fs.Args())
	}
	if f.metric != "detections" && f.metric != "outputs" {
		return nil, fmt.Errorf("%w: --metric %q is not one of detections, outputs", errUsage, f.metric)
	}
	opt := quant.DefaultOptions()
	var err error
	if opt.Method, err = quant.ParseMethod(*method); err != nil {
		return nil, fmt.Errorf("%w: --method: %v", errUsage, err)
	}
	if opt.Profile, err = quant.ParseProfile(*profile); err != nil {
		return nil, fmt.Errorf("%w: --profile: %v", errUsage, err)
	}
	if f.board, err = platforms.Detect(os.DirFS("/")); err != nil {
		return nil, fmt.Errorf("detect the CPU: %w", err)
	}
	opt.ReduceRange = defaultReduceRange(f.board, opt.Profile)
	fs.Visit(func(fl *flag.Flag) {
		if fl.Name == "reduce-range" {
			opt.ReduceRange = *reduceRange
		}
	})
	opt.Percentile, opt.PerChannel, opt.Elementwise, opt.EntryFloat = *pct, !*perTensor, *elementwise, *entry
	if opt.FloatWeights, err = quant.ParseWeightStorage(*floatWeights); err != nil {
		return nil, fmt.Errorf("%w: --float-weights: %v", errUsage, err)
	}
	opt.MaxError, opt.SensitivityFrames, opt.Threads = *maxErr, *sensFrames, *threads
	opt.WeightsOnlyIfSlower = weightsOnlyIfSlower
	if *exclude != "" {
		opt.Exclude = strings.Split(*exclude, ",")
	}
	accuracy.apply(&opt)
	f.opt = opt
	return &f, nil
}

func cmdQuantize(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f, err := parseQuantizeFlags(args, stderr)
	if err != nil {
		return err
	}
	if err := checkDistinct(f.model, f.out); err != nil {
		return err
	}
	log := newLogger(stderr, slog.LevelInfo, "text")
	opt := f.opt
	opt.Log = log

	src, err := onnx.LoadModel(f.model)
	if err != nil {
		return err
	}
	if ops := onnx.QuantOps(src); len(ops) > 0 {
		return fmt.Errorf("%s: %w (it has %s): quantize its FP32 original", f.model, quant.ErrAlreadyQuantized, strings.Join(ops, ", "))
	}
	sum, err := onnx.ModelSHA256(f.model)
	if err != nil {
		return err
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
	opt.InputShape = []int64{1, 3, int64(spec.InputHeight), int64(spec.InputWidth)}
	if f.metric == "detections" {
		opt.Metric = quant.DetectionMetric(spec)
	}
	inputs, err := openCalibInputs(ctx, "--calib", f.calib, f.cfgPath, f.frames, f.maxImages, spec, log, stderr)
	if err != nil {
		return err
	}
	defer inputs.Close()

	if f.latency && opt.Profile == quant.ProfileCPU {
		// Time candidate entry regions in the detector on this CPU, on
		// the first calibration frame.
		frame, err := inputs.Image(0)
		if err != nil {
			return fmt.Errorf("frame to time on: %w", err)
		}
		defer frame.Close()
		timers := &detectorTimers{threads: opt.Threads, log: newLogger(stderr, slog.LevelWarn, "text"), frame: &frame, spec: &spec}
		defer timers.Close()
		opt.Timer = timers.OpenModel
	}
	var finish func()
	opt.Progress, finish = stageBars(stderr)
	q, rep, err := quant.Quantize(ctx, src, inputs, opt)
	finish()
	if err != nil {
		return fmt.Errorf("quantize %s: %w", f.model, err)
	}
	if err := setQuantMetadata(q, rep, opt, sum, spec); err != nil {
		return err
	}
	if err := onnx.SaveModel(f.out, q); err != nil {
		return err
	}
	printQuantReport(stdout, f.model, f.out, rep)
	if f.latency && opt.Profile == quant.ProfileCPU {
		if rep.Latency, err = measureQuantLatency(ctx, f.model, f.out, opt.Threads, f.board, inputs, newLogger(stderr, slog.LevelWarn, "text")); err != nil {
			return fmt.Errorf("measure latency: %w", err)
		}
		printQuantLatency(stdout, rep.Latency, rep.WeightsOnly)
	}
	if f.evalData != "" {
		if rep.Accuracy, err = measureQuantAccuracy(ctx, f, log, stdout, stderr); err != nil {
			return err
		}
	}
	if f.reportPath != "" {
		b, _ := json.MarshalIndent(rep, "", "  ")
		if err := os.WriteFile(f.reportPath, append(b, '\n'), 0o644); err != nil {
			return fmt.Errorf("write report: %w", err)
		}
	}
	return nil
}

// measureQuantLatency times the FP32 model at in and the quantized one at
// out in the detector, alternately (latency.Paired), on this CPU and
// on the first calibration frame.
func measureQuantLatency(ctx context.Context, in, out string, threads int, b platforms.Board, frames *calib.Inputs, log *slog.Logger) (*quant.LatencyReport, error) {
	frame, err := frames.Image(0)
	if err != nil {
		return nil, fmt.Errorf("frame to time on: %w", err)
	}
	defer frame.Close()
	timers := &detectorTimers{threads: threads, log: log, frame: &frame}
	ta, err := timers.OpenFile(in)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", in, err)
	}
	defer ta.Close()
	tb, err := timers.OpenFile(out)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", out, err)
	}
	defer tb.Close()
	fp, q, err := latency.Paired(ctx, ta, tb)
	if err != nil {
		return nil, err
	}
	cpu, expected := latencyCase(b)
	lr := &quant.LatencyReport{FP32Ms: ms(fp), INT8Ms: ms(q), Threads: threads, FusedActivations: tb.det.Info().FusedActivations, CPU: cpu, Expected: expected}
	if fp > 0 {
		lr.Ratio = float64(q) / float64(fp)
	}
	return lr, nil
}

// latencyCase names the kind of CPU b is for INT8 and the latency ratio to
// FP32 the default quantization reaches on it (0: no reference figure).
// ONNX Runtime's x86 INT8 convolutions multiply-accumulate four bytes per
// instruction with VNNI (AVX-512 VNNI or AVX-VNNI); with AVX2 alone they
// need three instructions for the same work.
func latencyCase(b platforms.Board) (string, float64) {
	switch {
	case b.Arch == "x86_64" && hasVNNI(b):
		return "x86-64 with VNNI", 0.6
	case b.Arch == "x86_64" && b.HasFlag("avx2"):
		return "x86-64 with AVX2, no VNNI", 0.75
	case b.Arch == "":
		return "unknown CPU", 0
	}
	return b.Arch, 0
}

// printQuantLatency says how fast the quantized model is against FP32 and
// what to expect on this kind of CPU. A weights-only model computes in
// float: it is compared with FP32 without the INT8 expectations.
func printQuantLatency(w io.Writer, l *quant.LatencyReport, weightsOnly bool) {
	kind := "INT8"
	if weightsOnly {
		kind = "weights-only"
	}
	fmt.Fprintf(w, "latency on this CPU (%s): %s %.2f ms, FP32 %.2f ms median inference = %.2fx FP32 (paired runs on the first calibration frame, %s, %s fused)\n",
		l.CPU, kind, l.INT8Ms, l.FP32Ms, l.Ratio, threadsText(l.Threads), plural(l.FusedActivations, "activation"))
	switch {
	case weightsOnly:
		fmt.Fprintf(w, "note: the weights-only model computes in float, as FP32 does: expect the same speed (the ratio above shows this machine's timing noise)\n")
	case l.Ratio >= 1:
		fmt.Fprintf(w, "warning: the INT8 model is not faster than FP32 on this CPU; keep the FP32 model for speed, or try --elementwise=false or --entry-float=false and compare with edgedet bench --rounds 5\n")
	case l.Expected > 0 && l.Ratio > l.Expected*1.1:
		fmt.Fprintf(w, "note: the default quantization reaches about %.2fx on %s; this measurement is slower (a loaded machine, more float layers, or an unfused model); compare with edgedet bench --rounds 5\n", l.Expected, l.CPU)
	case l.Expected == 0:
		fmt.Fprintf(w, "note: no reference figure for this kind of CPU; the ratio above is what this CPU gives\n")
	}
}

// stageBars draws one progress bar, labelled with the stage, per stage of
// quant.Options.Progress; finish ends the bars left open, in stage order.
func stageBars(stderr io.Writer) (progressFn func(stage string, done, total int), finish func()) {
	bars := map[string]*progress.Bar{}
	var order []*progress.Bar
	progressFn = func(stage string, done, total int) {
		b := bars[stage]
		if b == nil {
			b = progress.New(stderr, stage, total, "steps")
			bars[stage] = b
			order = append(order, b)
		}
		b.Add(1)
		if done == total {
			b.Finish()
		}
	}
	return progressFn, func() {
		for _, b := range order {
			b.Finish()
		}
	}
}

// setQuantMetadata records how q was made (sum: the source's SHA-256) and
// the source's description (spec), so that q runs as the source did.
func setQuantMetadata(q *onnxpb.ModelProto, rep *quant.Report, opt quant.Options, sum string, spec detection.Spec) error {
	var floats []string
	for _, l := range rep.FloatLayers() {
		floats = append(floats, l.Node)
	}
	meta := map[string]string{
		"edgedet.quant.method":             string(rep.Method),
		"edgedet.quant.profile":            string(rep.Profile),
		"edgedet.quant.calibration_images": strconv.Itoa(rep.CalibrationFrames),
		"edgedet.quant.source_sha256":      sum,
		"edgedet.quant.per_channel":        strconv.FormatBool(rep.PerChannel),
		"edgedet.quant.reduce_range":       strconv.FormatBool(opt.ReduceRange),
		"edgedet.quant.elementwise":        strconv.FormatBool(rep.Elementwise),
		"edgedet.quant.float_layers":       strings.Join(floats, ","),
		"edgedet.quant.float_weights":      string(rep.FloatWeights),
	}
	if rep.Method == quant.MethodPercentile {
		meta["edgedet.quant.percentile"] = strconv.FormatFloat(rep.Percentile, 'g', -1, 64)
	}
	desc, err := spec.EncodeMetadata()
	if err != nil {
		return err
	}
	meta[detection.MetadataSpecKey] = desc
	for k, v := range meta {
		onnx.SetMetadata(q, k, v)
	}
	return nil
}

// defaultReduceRange is --reduce-range's default: 7-bit weights for the cpu
// profile (ONNX Runtime's x86 uint8×int8 kernels), except on an x86 CPU
// with VNNI, whose dot-product instructions do not saturate. Quantizing on
// the device that will run the model (edgedet's usual flow) so picks what
// that CPU needs.
func defaultReduceRange(b platforms.Board, p quant.Profile) bool {
	if p != quant.ProfileCPU {
		return false
	}
	return !(b.Arch == "x86_64" && hasVNNI(b))
}

func hasVNNI(b platforms.Board) bool {
	return b.HasFlag("avx512_vnni") || b.HasFlag("avx_vnni")
}

// checkDistinct refuses to write the output over the input model.
func checkDistinct(in, out string) error {
	ai, _ := filepath.Abs(in)
	ao, _ := filepath.Abs(out)
	if ai == ao {
		return fmt.Errorf("--out %s is the input model: choose another path (the input is never overwritten)", out)
	}
	si, err1 := os.Stat(in)
	so, err2 := os.Stat(out)
	if err1 == nil && err2 == nil && os.SameFile(si, so) {
		return fmt.Errorf("--out %s is the input model %s: choose another path (the input is never overwritten)", out, in)
	}
	return nil
}

func printQuantReport(w io.Writer, in, out string, r *quant.Report) {
	si, _ := os.Stat(in)
	so, _ := os.Stat(out)
	fmt.Fprintf(w, "wrote %s\n", out)
	if si != nil && so != nil {
		fmt.Fprintf(w, "size: %.2f MB -> %.2f MB (%.0f%%)\n", float64(si.Size())/1e6, float64(so.Size())/1e6, 100*float64(so.Size())/float64(si.Size()))
	}
	m := string(r.Method)
	if r.Method == quant.MethodPercentile {
		m += fmt.Sprintf(" %g", r.Percentile)
	}
	fmt.Fprintf(w, "calibration: %s on %d frames; profile %s; weights %s; element-wise ops %s\n", m, r.CalibrationFrames, r.Profile,
		map[bool]string{true: "per channel", false: "per tensor"}[r.PerChannel], map[bool]string{true: "INT8", false: "float"}[r.Elementwise])
	if r.OpsetFrom != r.Opset {
		fmt.Fprintf(w, "opset: %d -> %d\n", r.OpsetFrom, r.Opset)
	}
	printSplits(w, r)
	if r.WeightsOnly {
		fmt.Fprintf(w, "weights only: the INT8 model computed at %.2fx FP32's time on this CPU, so every layer computes in float with its weights stored as int8 (FP32's speed at INT8's size); --if-slower keep writes the INT8 model\n", r.ComputeRatio)
	}
	fmt.Fprintf(w, "quantized %d of %d compute layers; head kept float: %d nodes\n", r.Quantized, r.Candidates, len(r.Head))
	stored := map[quant.WeightStorage]int{}
	for _, l := range r.FloatLayers() {
		stored[l.Weights]++
	}
	if len(stored) > 0 {
		var parts []string
		for _, ws := range []quant.WeightStorage{quant.WeightsInt8, quant.WeightsFloat16, quant.WeightsFloat32} {
			if stored[ws] > 0 {
				parts = append(parts, fmt.Sprintf("%d %s", stored[ws], ws))
			}
		}
		fmt.Fprintf(w, "float layers' weights stored as: %s (restored to float32 when ONNX Runtime loads the model)\n", strings.Join(parts, ", "))
	}
	if r.CustomMetric {
		fmt.Fprintf(w, "output error: 1 - AP of the INT8 detections against FP32's on the sensitivity frames\n")
	}
	switch {
	case r.MaxError >= 0:
		fmt.Fprintf(w, "output error vs FP32: all layers INT8 %.4f, final %.4f (budget %.4f)\n", r.ErrorAll, r.ErrorFinal, r.MaxError)
	case len(r.EntryErrors) > 0:
		fmt.Fprintf(w, "output error vs FP32: all layers INT8 %.4f, final %.4f\n", r.ErrorAll, r.ErrorFinal)
	}
	if len(r.EntryErrors) > 0 {
		fmt.Fprintf(w, "entry region: first %s float (output error by float prefix length: %s)\n", plural(r.EntryLayers, "layer"), formatErrors(r.EntryErrors))
	}
	if t := r.EntryTimings; len(t) > 1 {
		parts := make([]string, len(t))
		for i, e := range t {
			parts[i] = fmt.Sprintf("%d:%.2fx", e.Layers, e.Ratio)
		}
		fmt.Fprintf(w, "entry regions timed on this CPU (inference vs the %d-layer region): %s\n", t[0].Layers, strings.Join(parts, " "))
	}
	for _, l := range r.FloatLayers() {
		fmt.Fprintf(w, "  float: %-28s %s; weights %s\n", l.Node, l.Reason, l.Weights)
	}
	if r.MetricBlind {
		best := ""
		if len(r.EntryErrors) > 0 {
			best = fmt.Sprintf(" (best output error %.3f)", slices.Min(r.EntryErrors))
		}
		fmt.Fprintf(w, "warning: the INT8 detections agree with almost none of FP32's whatever stays float%s: the model's output is probably read in the wrong format, so the float layers were chosen blind; check `edgedet detect` on an image, name the format with --format or a sidecar, and quantize again\n", best)
	}
}

// formatErrors lists errors with three significant digits, "0:0.921 1:0.867 …".
func formatErrors(errs []float64) string {
	parts := make([]string, len(errs))
	for k, e := range errs {
		parts[k] = fmt.Sprintf("%d:%.3g", k, e)
	}
	return strings.Join(parts, " ")
}

// quantAccuracy holds the flags of the accuracy techniques (see quant's
// split.go, rangesearch.go and the bias correction in weights.go).
type quantAccuracy struct {
	split, biasCorrection, exactSiLU, gptq *bool
}

func accuracyFlags(fs *flag.FlagSet) quantAccuracy {
	def := quant.DefaultOptions()
	return quantAccuracy{
		split:          fs.Bool("split-channels", def.SplitChannels, "split a convolution whose output channels have very different ranges into groups up to the depthwise convolution after it, each group with its own INT8 scale (exact in float)"),
		biasCorrection: fs.Bool("bias-correction", def.BiasCorrection, "fold the mean output shift of each quantized convolution's weight rounding into its bias"),
		gptq:           fs.Bool("gptq", def.GPTQ, "round each quantized convolution's weights to minimise its output error on the calibration frames (GPTQ) instead of to the nearest step"),
		exactSiLU:      fs.Bool("exact-silu", def.ExactSiLU, "with --elementwise, quantize a SiLU's input and output but not the Sigmoid inside it (edgedet's fused INT8 activation computes it as one exact table)"),
	}
}

func (a quantAccuracy) apply(opt *quant.Options) {
	opt.SplitChannels, opt.BiasCorrection, opt.ExactSiLU, opt.GPTQ = *a.split, *a.biasCorrection, *a.exactSiLU, *a.gptq
}

// printSplits says which convolutions were split by channel range.
func printSplits(w io.Writer, r *quant.Report) {
	if len(r.Split) == 0 {
		return
	}
	var parts []string
	for _, sp := range r.Split {
		parts = append(parts, fmt.Sprintf("%s %v", sp.Node, sp.Groups))
	}
	fmt.Fprintf(w, "split by channel range: %d convolutions (channels per group): %s\n", len(r.Split), strings.Join(parts, ", "))
}

// measureQuantAccuracy scores the FP32 and the written INT8 model on
// --eval and prints the comparison (evalCompare).
func measureQuantAccuracy(ctx context.Context, f *quantizeFlags, log *slog.Logger, stdout, stderr io.Writer) (*quant.AccuracyReport, error) {
	c, err := evalCompare(ctx, []string{f.model, f.out}, f.evalData, detection.Format(f.format), log, stdout, stderr)
	if err != nil {
		return nil, fmt.Errorf("--eval: %w", err)
	}
	fp, q := c.Summaries[0], c.Summaries[1]
	return &quant.AccuracyReport{Data: f.evalData, Images: c.Images, FP32MAP: fp.AP, INT8MAP: q.AP,
		FP32MAP50: fp.AP50, INT8MAP50: q.AP50, Interval: c.Intervals[1].AP}, nil
}
