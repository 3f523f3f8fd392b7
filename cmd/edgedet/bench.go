package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"gocv.io/x/gocv"

	"github.com/edgedet/edgedet/detection"
	"github.com/edgedet/edgedet/internal/cvsafe"
)

// stageStats are latency percentiles of one pipeline stage, in milliseconds.
type stageStats struct {
	P50 float64 `json:"p50_ms"`
	P95 float64 `json:"p95_ms"`
	P99 float64 `json:"p99_ms"`
}

type benchReport struct {
	Model       string     `json:"model"`
	Path        string     `json:"path"`
	FileSize    int64      `json:"file_size"`
	Precision   string     `json:"precision"`
	Input       string     `json:"input"`
	Threads     int        `json:"threads"`
	Runs        int        `json:"runs"`
	CPU         string     `json:"cpu"`
	Preprocess  stageStats `json:"preprocess"`
	Inference   stageStats `json:"inference"`
	Postprocess stageStats `json:"postprocess"`
	Total       stageStats `json:"total"`
	// FusedActivations counts the INT8 activations run as table lookups
	// (detector's fuse_activations).
	FusedActivations int     `json:"fused_activations"`
	FPS              float64 `json:"fps"`
	// OverheadRatio is (preprocess + postprocess) / inference, by medians.
	OverheadRatio float64 `json:"overhead_ratio"`
	// Operators is the per-operator time split (with --profile).
	Operators []opTime `json:"operators,omitempty"`
	// Accuracy is the model's mAP on --eval's dataset.
	Accuracy *benchAccuracy `json:"accuracy,omitempty"`
}

// opTime is one operator type's share of ONNX Runtime's kernel time.
type opTime struct {
	Op       string  `json:"op"`
	Count    int     `json:"nodes"`
	MsPerRun float64 `json:"ms_per_run"`
	Share    float64 `json:"share"`
}

// readORTProfile sums the kernel times of the profile ONNX Runtime wrote in
// dir by operator type, per run, largest first.
func readORTProfile(dir string) ([]opTime, error) {
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	if len(files) != 1 {
		return nil, fmt.Errorf("onnx runtime profile: found %d files in %s, want 1", len(files), dir)
	}
	data, err := os.ReadFile(files[0])
	if err != nil {
		return nil, fmt.Errorf("read onnx runtime profile: %w", err)
	}
	var events []struct {
		Cat  string  `json:"cat"`
		Name string  `json:"name"`
		Dur  float64 `json:"dur"`
		Args struct {
			OpName string `json:"op_name"`
		} `json:"args"`
	}
	if err := json.Unmarshal(data, &events); err != nil {
		return nil, fmt.Errorf("parse onnx runtime profile %s: %w", files[0], err)
	}
	type agg struct {
		us    float64
		nodes map[string]bool
	}
	byOp := map[string]*agg{}
	runs := 0
	var total float64
	for _, e := range events {
		if e.Cat == "Session" && e.Name == "model_run" {
			runs++
		}
		if e.Cat != "Node" || !strings.HasSuffix(e.Name, "_kernel_time") {
			continue
		}
		a := byOp[e.Args.OpName]
		if a == nil {
			a = &agg{nodes: map[string]bool{}}
			byOp[e.Args.OpName] = a
		}
		a.us += e.Dur
		a.nodes[strings.TrimSuffix(e.Name, "_kernel_time")] = true
		total += e.Dur
	}
	if runs == 0 || total == 0 {
		return nil, fmt.Errorf("onnx runtime profile %s has no runs", files[0])
	}
	var out []opTime
	for op, a := range byOp {
		out = append(out, opTime{Op: op, Count: len(a.nodes), MsPerRun: a.us / 1000 / float64(runs), Share: a.us / total})
	}
	slices.SortFunc(out, func(a, b opTime) int { return cmp.Compare(b.MsPerRun, a.MsPerRun) })
	return out, nil
}

func cmdBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("bench", stderr)
	var mf modelFlags
	addModelFlags(fs, &mf)
	runs := fs.Int("runs", 100, "timed runs")
	warmup := fs.Int("warmup", 10, "untimed warm-up runs")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	profile := fs.Bool("profile", false, "also print the per-operator time split from ONNX Runtime's profiler")
	rounds := fs.Int("rounds", 1, "interleave the models over this many rounds (rotating order) and print each model's median p50 and its ratio to the first model's, per round, with the range")
	evalData := fs.String("eval", "", "also evaluate each model (COCO mAP, eval's thresholds) on this YOLO-labelled directory and print its accuracy next to its speed")
	plotPath := fs.String("plot", "", "with --eval: write a PNG of each model's mAP against its inference latency")
	var e2e e2eOptions
	fs.StringVar(&e2e.video, "video", "", "end-to-end mode: run the real pipeline (camera, detector, tracker, MQTT) on this looping video")
	floatVar(fs, &e2e.seconds, "seconds", 20, "end-to-end: seconds to measure")
	floatVar(fs, &e2e.warmup, "warmup-seconds", 3, "end-to-end: seconds to run before measuring")
	fs.IntVar(&e2e.cameras, "cameras", 1, "end-to-end: cameras reading the video")
	fs.IntVar(&e2e.sessions, "sessions", 1, "ONNX Runtime sessions the cameras share")
	fs.StringVar(&e2e.broker, "broker", "", "end-to-end: MQTT broker URL to publish to (default: one started in-process on loopback)")
	fs.StringVar(&e2e.memProfile, "memprofile", "", "end-to-end: write a heap profile of the allocations made while measuring")
	fs.BoolVar(&e2e.realtime, "realtime", false, "end-to-end: read the video at its frame rate, like a live camera (default: as fast as it decodes)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if e2e.video != "" {
		if fs.NArg() > 0 || *profile || *evalData != "" {
			return fmt.Errorf("%w: --video runs the end-to-end bench; it takes no images, no --profile and no --eval", errUsage)
		}
		if len(mf.models) != 1 {
			return fmt.Errorf("%w: --video needs exactly one --model", errUsage)
		}
		if e2e.seconds <= 0 || e2e.warmup < 0 || e2e.cameras < 1 || e2e.sessions < 1 {
			return fmt.Errorf("%w: --seconds must be > 0, --warmup-seconds >= 0, --cameras and --sessions >= 1", errUsage)
		}
		r, err := benchEndToEnd(ctx, &mf, e2e, stderr)
		if err != nil {
			return err
		}
		return writeE2E(stdout, r, *asJSON)
	}
	mf.cfg.Sessions = e2e.sessions
	if fs.NArg() == 0 {
		return fmt.Errorf("%w: no images given", errUsage)
	}
	if *runs <= 0 || *warmup < 0 || *rounds < 1 {
		return fmt.Errorf("%w: --runs must be > 0, --warmup >= 0 and --rounds >= 1", errUsage)
	}
	if *rounds > 1 && *profile {
		return fmt.Errorf("%w: --profile profiles one round; run it without --rounds", errUsage)
	}
	mf.multi = true
	if len(mf.models) == 0 {
		return fmt.Errorf("%w: --model is required", errUsage)
	}
	if err := checkBenchEval(*evalData, *plotPath); err != nil {
		return err
	}
	var imgs []gocv.Mat
	defer func() {
		for i := range imgs {
			imgs[i].Close()
		}
	}()
	for _, p := range fs.Args() {
		m, err := cvsafe.ReadImage(p, gocv.IMReadColor)
		if err != nil {
			return err
		}
		imgs = append(imgs, m)
	}
	// One model at a time: sessions running side by side disturb each
	// other's timings.
	perRound := make([][]benchReport, *rounds)
	for r := range perRound {
		perRound[r] = make([]benchReport, len(mf.models))
		for _, i := range roundOrder(len(mf.models), r) {
			rep, err := benchOne(ctx, &mf, mf.models[i], *profile, imgs, *warmup, *runs, stderr)
			if err != nil {
				return err
			}
			perRound[r][i] = rep
		}
	}
	var acc []benchAccuracy
	if *evalData != "" {
		var err error
		if acc, err = evaluateModels(ctx, mf, *evalData, stderr); err != nil {
			return err
		}
		for r := range perRound {
			for i := range perRound[r] {
				perRound[r][i].Accuracy = &acc[i]
			}
		}
	}
	if *rounds > 1 {
		rep := summarizeRounds(perRound)
		var rows []tradeoffRow
		for i, s := range rep.Models {
			ratio := 1.0
			if s.Ratio != nil {
				ratio = s.Ratio.Median
			}
			if acc != nil {
				rows = append(rows, tradeoffRow{Model: s.Model, InferenceMS: s.InferenceP50.Median, Ratio: ratio, Acc: acc[i]})
			}
		}
		if err := writeTradeoffPlot(*plotPath, rows, stderr); err != nil {
			return err
		}
		if *asJSON {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(rep)
		}
		printRounds(stdout, rep, *warmup)
		printTradeoff(stdout, rows)
		return nil
	}
	reports := perRound[0]
	var rows []tradeoffRow
	for _, r := range reports {
		if r.Accuracy != nil {
			rows = append(rows, tradeoffRow{Model: r.Model, InferenceMS: r.Inference.P50, Ratio: r.Inference.P50 / reports[0].Inference.P50, Acc: *r.Accuracy})
		}
	}
	if err := writeTradeoffPlot(*plotPath, rows, stderr); err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if len(reports) == 1 {
			return enc.Encode(reports[0])
		}
		return enc.Encode(reports)
	}
	for _, r := range reports {
		printBench(stdout, r, *warmup)
	}
	if len(reports) > 1 {
		base := reports[0]
		fmt.Fprintf(stdout, "\ncompared with %s (same run; ratios of p50):\n", base.Model)
		fmt.Fprintf(stdout, "%-28s %10s %10s %12s %10s\n", "model", "size MB", "size", "inference", "total")
		for _, r := range reports {
			fmt.Fprintf(stdout, "%-28s %10.2f %9.0f%% %11.2fx %9.2fx\n", r.Model, float64(r.FileSize)/1e6,
				100*float64(r.FileSize)/float64(base.FileSize), r.Inference.P50/base.Inference.P50, r.Total.P50/base.Total.P50)
		}
	}
	printTradeoff(stdout, rows)
	return nil
}

// benchOne benchmarks model, with ONNX Runtime's profile if profile is set.
func benchOne(ctx context.Context, mf *modelFlags, model string, profile bool, imgs []gocv.Mat, warmup, runs int,
	stderr io.Writer) (benchReport, error) {
	mf.cfg.Model = model
	mf.cfg.ProfilePrefix = ""
	var profDir string
	if profile {
		var err error
		if profDir, err = os.MkdirTemp("", "edgedet-profile-"); err != nil {
			return benchReport{}, err
		}
		defer os.RemoveAll(profDir)
		mf.cfg.ProfilePrefix = filepath.Join(profDir, "ort")
	}
	r, err := benchModel(ctx, mf, imgs, warmup, runs, stderr)
	if err == nil && profile {
		r.Operators, err = readORTProfile(profDir)
	}
	if err != nil {
		return benchReport{}, fmt.Errorf("%s: %w", model, err)
	}
	return r, nil
}

// benchModel loads one model and times Detect over the images.
func benchModel(ctx context.Context, mf *modelFlags, imgs []gocv.Mat, warmup, runs int, stderr io.Writer) (benchReport, error) {
	det, closeAll, err := mf.open(stderr)
	if err != nil {
		return benchReport{}, err
	}
	defer closeAll()
	var pre, inf, post, total []float64
	var dets []detection.Detection
	for i := 0; i < warmup+runs; i++ {
		if err := ctx.Err(); err != nil {
			return benchReport{}, err
		}
		res, err := det.Detect(ctx, imgs[i%len(imgs)], dets)
		if err != nil {
			return benchReport{}, err
		}
		dets = res.Detections
		if i < warmup {
			continue
		}
		t := res.Timings
		pre, inf, post = append(pre, ms(t.Preprocess)), append(inf, ms(t.Inference)), append(post, ms(t.Postprocess))
		total = append(total, ms(t.Preprocess+t.Inference+t.Postprocess))
	}
	info := det.Info()
	r := benchReport{
		Model: info.Name, Path: info.Path, Precision: info.Precision, Runs: runs, Threads: mf.cfg.Threads,
		FusedActivations: info.FusedActivations,
		Input:            fmt.Sprintf("%dx%d", info.Spec.InputWidth, info.Spec.InputHeight),
		CPU:              fmt.Sprintf("%s/%s, %s", runtime.GOOS, runtime.GOARCH, plural(runtime.NumCPU(), "logical CPU")),
		Preprocess:       percentiles(pre), Inference: percentiles(inf), Postprocess: percentiles(post), Total: percentiles(total),
	}
	if st, err := os.Stat(info.Path); err == nil {
		r.FileSize = st.Size()
	}
	if r.Total.P50 > 0 {
		r.FPS = 1000 / r.Total.P50
	}
	if r.Inference.P50 > 0 {
		r.OverheadRatio = (r.Preprocess.P50 + r.Postprocess.P50) / r.Inference.P50
	}
	return r, nil
}

func printBench(w io.Writer, r benchReport, warmup int) {
	fmt.Fprintf(w, "model %s (%s, %s input, %s), %s after %s, %s\n",
		r.Model, r.Precision, r.Input, threadsText(r.Threads), plural(r.Runs, "run"), plural(warmup, "warm-up run"), r.CPU)
	fmt.Fprintf(w, "%-12s %8s %8s %8s\n", "stage", "p50 ms", "p95 ms", "p99 ms")
	for _, s := range []struct {
		name string
		st   stageStats
	}{{"preprocess", r.Preprocess}, {"inference", r.Inference}, {"postprocess", r.Postprocess}, {"total", r.Total}} {
		fmt.Fprintf(w, "%-12s %8.2f %8.2f %8.2f\n", s.name, s.st.P50, s.st.P95, s.st.P99)
	}
	fmt.Fprintf(w, "fps (1/p50 total): %.1f\n(pre+post)/inference: %.1f%%\n", r.FPS, 100*r.OverheadRatio)
	if r.FusedActivations > 0 {
		fmt.Fprintf(w, "int8 activations fused: %d (run as LutActivation table lookups)\n", r.FusedActivations)
	}
	if len(r.Operators) > 0 {
		fmt.Fprintf(w, "operator time (ONNX Runtime profiler, kernels only, mean per run incl. warm-up):\n")
		for _, o := range r.Operators {
			fmt.Fprintf(w, "  %-22s %10s %8.2f ms %5.1f%%\n", o.Op, plural(o.Count, "node"), o.MsPerRun, 100*o.Share)
		}
	}
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

// percentiles returns nearest-rank p50/p95/p99 of v (v is sorted in place).
func percentiles(v []float64) stageStats {
	if len(v) == 0 {
		return stageStats{}
	}
	slices.Sort(v)
	at := func(p float64) float64 {
		i := int(p*float64(len(v))+0.5) - 1
		return v[min(max(i, 0), len(v)-1)]
	}
	return stageStats{P50: at(0.50), P95: at(0.95), P99: at(0.99)}
}
