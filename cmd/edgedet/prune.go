package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	ort "github.com/yalue/onnxruntime_go"
	"gocv.io/x/gocv"
	"gonum.org/v1/gonum/mat"
	"google.golang.org/protobuf/proto"

	"github.com/edgedet/edgedet/detector"
	"github.com/edgedet/edgedet/eval"
	"github.com/edgedet/edgedet/internal/progress"
	"github.com/edgedet/edgedet/onnx"
	"github.com/edgedet/edgedet/onnx/onnxpb"
	"github.com/edgedet/edgedet/prune"
)

// pruneTarget is what --target asks for: a share of every prunable group's
// channels removed, or a share of the multiply-accumulates kept.
type pruneTarget struct {
	ratio   float64 // channels removed per group
	flops   float64 // MACs kept (0: not this kind)
	latency float64 // latency kept, measured (0: not this kind)
}

func parsePruneTarget(s string) (pruneTarget, error) {
	kind, val, ok := strings.Cut(s, "=")
	v, err := parseFinite(val, 64)
	if !ok || err != nil {
		return pruneTarget{}, fmt.Errorf("--target %q: want ratio=R, flops=F or latency=L", s)
	}
	switch kind {
	case "ratio":
		if v <= 0 || v >= 1 {
			return pruneTarget{}, fmt.Errorf("--target ratio=%g: not in (0,1)", v)
		}
		return pruneTarget{ratio: v}, nil
	case "flops":
		if v <= 0 || v >= 1 {
			return pruneTarget{}, fmt.Errorf("--target flops=%g: not in (0,1)", v)
		}
		return pruneTarget{flops: v}, nil
	case "latency":
		if v <= 0 || v >= 1 {
			return pruneTarget{}, fmt.Errorf("--target latency=%g: not in (0,1)", v)
		}
		return pruneTarget{latency: v}, nil
	}
	return pruneTarget{}, fmt.Errorf("--target %q: kind %q is not ratio, flops or latency", s, kind)
}

func cmdPrune(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("prune", stderr)
	model := fs.String("model", "", "FP32 ONNX model to prune (required)")
	calibSrc := fs.String("calib", "", "calibration data for the reconstruction: a directory of images, or a camera name from the config (-c) (required unless --refit=false)")
	out := fs.String("out", "", "output model (required; never the input)")
	targetFlag := fs.String("target", "flops=0.9", "ratio=R: remove R of every prunable group's channels; flops=F: keep F of the multiply-adds; latency=L: keep L of the measured latency")
	sensitivity := fs.Bool("sensitivity", false, "prune each group alone at several ratios and measure the mAP it costs on --sensitivity-images of --eval; the target is then spent on the groups that cost least")
	sensImages := fs.Int("sensitivity-images", 16, "images of --eval the sensitivity analysis scores on")
	plotPath := fs.String("plot", "", "write a PNG of mAP against latency for the models (needs --eval)")
	int8Model := fs.String("int8", "", "with --plot: the original's INT8 model, to place on the plot")
	prunedInt8 := fs.String("pruned-int8", "", "with --plot: the pruned model's INT8 model (edgedet quantize of --out), to place on the plot")
	norm := fs.String("importance", "contribution", "channel importance: contribution (the share of its consumers' output variance a channel carries, on the calibration frames; comparable across groups, so a flops target is spent where it hurts least), l1 or l2 (norm of the filters producing it)")
	refit := fs.Bool("refit", true, "re-fit the convolutions reading pruned channels by least squares on calibration activations (He et al. 2017)")
	samples := fs.Int("samples", 64, "activation positions sampled per calibration image and convolution for the refit")
	maxImages := fs.Int("max-images", 32, "calibration images used from a directory (0 = all)")
	cfgPath := fs.String("c", "agent.toml", "agent config, for --calib CAMERA")
	frames := fs.Int("frames", 32, "frames to capture from a camera for calibration")
	evalData := fs.String("eval", "", "also evaluate both models (COCO mAP) on this YOLO-labelled directory")
	threads := fs.Int("threads", 1, "ONNX Runtime threads for the latency measurement")
	groups := fs.Bool("groups", false, "print the table of channel groups")
	ortLib := fs.String("ort-lib", "", "ONNX Runtime library (default: search)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case *model == "" || *out == "":
		return fmt.Errorf("%w: --model and --out are required", errUsage)
	case *calibSrc == "" && *refit:
		return fmt.Errorf("%w: --calib is required for the reconstruction (or --refit=false)", errUsage)
	case fs.NArg() > 0:
		return fmt.Errorf("%w: unexpected arguments %v", errUsage, fs.Args())
	case *norm != "l1" && *norm != "l2" && *norm != "contribution":
		return fmt.Errorf("%w: --importance %q is not contribution, l1 or l2", errUsage, *norm)
	case *calibSrc == "" && *norm == "contribution":
		return fmt.Errorf("%w: --importance contribution needs --calib (or choose l1 or l2)", errUsage)
	case *samples < 1:
		return fmt.Errorf("%w: --samples must be >= 1", errUsage)
	case (*sensitivity || *plotPath != "") && *evalData == "":
		return fmt.Errorf("%w: --sensitivity and --plot need --eval DIR", errUsage)
	case *sensitivity && *sensImages < 1:
		return fmt.Errorf("%w: --sensitivity-images must be >= 1", errUsage)
	}
	target, err := parsePruneTarget(*targetFlag)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if err := checkDistinct(*model, *out); err != nil {
		return err
	}
	log := newLogger(stderr, slog.LevelWarn, "text")

	src, err := onnx.LoadModel(*model)
	if err != nil {
		return err
	}
	if ops := onnx.QuantOps(src); len(ops) > 0 {
		return fmt.Errorf("%s is quantized (it has %s): prune its FP32 original, then quantize the pruned model", *model, strings.Join(ops, ", "))
	}
	if _, err := onnx.FoldBatchNorm(src); err != nil {
		return fmt.Errorf("%s: fold BatchNormalization: %w", *model, err)
	}
	a, err := prune.Analyze(src)
	if err != nil {
		return fmt.Errorf("%s: %w", *model, err)
	}
	if *groups {
		a.Table(stdout)
	}
	cleanup, err := initRuntime(*ortLib)
	if err != nil {
		return err
	}
	defer cleanup()
	spec, err := modelSpec(*model)
	if err != nil {
		return err
	}
	inShape := []int64{1, 3, int64(spec.InputHeight), int64(spec.InputWidth)}
	params0, macs0, err := prune.Cost(src, inShape)
	if err != nil {
		return fmt.Errorf("%s: count operations: %w", *model, err)
	}

	var inputs onnx.Inputs
	if *calibSrc != "" {
		ci, err := openCalibInputs(ctx, *calibSrc, *cfgPath, *frames, *maxImages, spec, log, stderr)
		if err != nil {
			return err
		}
		defer ci.Close()
		inputs = ci
	}
	scores, err := channelScores(ctx, a, src, *norm, inputs, *samples, stderr)
	if err != nil {
		return err
	}
	var sens map[int][]float64
	if *sensitivity {
		if sens, err = pruneSensitivity(ctx, a, src, scores, *evalData, *sensImages, log, stdout, stderr); err != nil {
			return err
		}
	}
	pl := planner{a: a, m: src, scores: scores, global: *norm == "contribution", sens: sens, inShape: inShape,
		macs0: macs0, model: *model, threads: *threads, log: log, stderr: stderr}
	plan, err := pl.plan(ctx, target)
	if err != nil {
		return err
	}
	pruned, err := prune.Apply(src, a, plan)
	if err != nil {
		return err
	}
	var refits []refitResult
	if *refit {
		if refits, err = refitConsumers(ctx, src, pruned, a, plan, inputs, *samples, stderr); err != nil {
			return err
		}
	}
	if err := checkPruned(src, pruned, inShape); err != nil {
		return fmt.Errorf("the pruned model is not valid, nothing written: %w", err)
	}
	params1, macs1, err := prune.Cost(pruned, inShape)
	if err != nil {
		return fmt.Errorf("pruned model: count operations: %w", err)
	}
	removed := 0
	for _, idx := range plan {
		removed += len(idx)
	}
	onnx.SetMetadata(pruned, "edgedet.prune.target", *targetFlag)
	onnx.SetMetadata(pruned, "edgedet.prune.importance", *norm)
	onnx.SetMetadata(pruned, "edgedet.prune.channels_removed", strconv.Itoa(removed))
	onnx.SetMetadata(pruned, "edgedet.prune.refit", strconv.FormatBool(*refit))
	if sum, err := onnx.ModelSHA256(*model); err == nil {
		onnx.SetMetadata(pruned, "edgedet.prune.source_sha256", sum)
	}
	if err := onnx.SaveModel(*out, pruned); err != nil {
		return err
	}

	fmt.Fprintf(stdout, "wrote %s: %d channels removed from %d of %d groups (%s)\n", *out, removed, len(plan), len(a.Groups), *targetFlag)
	fmt.Fprintf(stdout, "%-20s %14s %14s %8s\n", "", "before", "after", "after/before")
	fmt.Fprintf(stdout, "%-20s %14d %14d %7.1f%%\n", "parameters", params0, params1, 100*float64(params1)/float64(params0))
	fmt.Fprintf(stdout, "%-20s %14.1fM %13.1fM %7.1f%%\n", "multiply-adds", float64(macs0)/1e6, float64(macs1)/1e6, 100*float64(macs1)/float64(macs0))
	if si, so := fileSize(*model), fileSize(*out); si > 0 && so > 0 {
		fmt.Fprintf(stdout, "%-20s %13.2fMB %12.2fMB %7.1f%%\n", "file size", float64(si)/1e6, float64(so)/1e6, 100*float64(so)/float64(si))
	}
	l0, l1, err := pairedLatency(ctx, *model, *out, *threads, log)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%-20s %12.2fms %12.2fms %7.1f%%  (median, %d threads, measured alternately in this run)\n", "latency", l0, l1, 100*l1/l0, *threads)
	if len(refits) > 0 {
		var plain, fit float64
		kept := 0
		for _, r := range refits {
			plain += r.plain
			fit += r.final
			if r.refitted {
				kept++
			}
		}
		fmt.Fprintf(stdout, "reconstruction: %d convolutions re-fitted (%d kept plain removal); held-out output error %.3f -> %.3f (mean relative)\n",
			kept, len(refits)-kept, plain/float64(len(refits)), fit/float64(len(refits)))
	}
	if *evalData == "" {
		return nil
	}
	models := []string{*model, *out}
	names := []string{"fp32", "pruned"}
	if *plotPath != "" {
		for i, extra := range []string{*int8Model, *prunedInt8} {
			if extra != "" {
				models = append(models, extra)
				names = append(names, []string{"int8", "pruned + int8"}[i])
			}
		}
	}
	sums, err := pruneEval(ctx, models, *evalData, log, stdout, stderr)
	if err != nil {
		return err
	}
	if *plotPath == "" {
		return nil
	}
	var pts []eval.TradeoffPoint
	for i, path := range models {
		_, lat, err := pairedLatency(ctx, *model, path, *threads, log)
		if err != nil {
			return err
		}
		pts = append(pts, eval.TradeoffPoint{Name: names[i], LatencyMs: lat, MAP: sums[i].AP})
	}
	if err := eval.PlotTradeoff(*plotPath, fmt.Sprintf("%s: mAP against latency (%d threads)", strings.TrimSuffix(filepath.Base(*model), ".onnx"), *threads), pts...); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s\n", *plotPath)
	return nil
}

// channelScores ranks every prunable group's channels: by contribution
// (sampled consumer activations of the unpruned model) or filter norm.
func channelScores(ctx context.Context, a *prune.Analysis, m *onnxpb.ModelProto, importance string,
	inputs onnx.Inputs, perImage int, stderr io.Writer) (map[int][]float64, error) {
	scores := map[int][]float64{}
	var samples map[string]*prune.ConvSamples
	if importance == "contribution" {
		all := map[int][]int{}
		for _, g := range a.Groups {
			if g.Prunable {
				all[g.ID] = keptChannels(g.Channels, nil)
			}
		}
		cols, err := a.RemovedInputs(all)
		if err != nil {
			return nil, err
		}
		convs := make([]string, 0, len(cols))
		for c := range cols {
			convs = append(convs, c)
		}
		slices.Sort(convs)
		fmt.Fprintf(stderr, "prune: measuring channel contributions at %d convolutions on %d calibration frames\n", len(convs), inputs.Len())
		if samples, err = prune.CollectConvSamples(ctx, m, inputs, convs, perImage, 2); err != nil {
			return nil, fmt.Errorf("channel contributions: %w", err)
		}
	}
	for _, g := range a.Groups {
		if !g.Prunable {
			continue
		}
		var imp []float64
		var err error
		if samples != nil {
			imp, err = a.Contribution(m, g.ID, samples)
		} else {
			imp, err = a.Importance(g.ID, importance)
		}
		if err != nil {
			return nil, err
		}
		scores[g.ID] = imp
	}
	if len(scores) == 0 {
		return nil, errors.New("no prunable channel group in this model")
	}
	return scores, nil
}

// maxGroupShare caps how much of one group a flops or latency target
// may remove.
const maxGroupShare = 0.5

// planner chooses the channels to remove for a target.
type planner struct {
	a       *prune.Analysis
	m       *onnxpb.ModelProto
	scores  map[int][]float64 // per group, per channel: low = remove first
	global  bool              // scores are comparable across groups (contribution)
	sens    map[int][]float64 // per group, mAP lost at sensitivityRatios (nil: no analysis)
	inShape []int64
	macs0   int64
	model   string // the original's path, for latency
	threads int
	log     *slog.Logger
	stderr  io.Writer
}

// plan returns the channels to remove. ratio=R: the R lowest-scoring
// channels of every group. flops=F and latency=L: a family of plans that
// prune more and more — groups by their measured mAP cost (with the
// sensitivity analysis), else the lowest-scoring channels of the whole
// model (comparable scores), else a uniform share — searched by bisection
// for the least pruning that reaches the target (multiply-adds by Cost,
// latency measured against the original).
func (p *planner) plan(ctx context.Context, t pruneTarget) (map[int][]int, error) {
	if t.ratio > 0 {
		plan := map[int][]int{}
		for id, sc := range p.scores {
			if idx := lowestShare(sc, t.ratio); len(idx) > 0 {
				plan[id] = idx
			}
		}
		return plan, nil
	}
	family, steps := p.family()
	reached := func(plan map[int][]int) (bool, error) {
		pm, err := prune.Apply(p.m, p.a, plan)
		if err != nil {
			return false, err
		}
		if t.flops > 0 {
			_, macs, err := prune.Cost(pm, p.inShape)
			return float64(macs) <= t.flops*float64(p.macs0), err
		}
		ratio, err := p.latencyRatio(ctx, pm)
		fmt.Fprintf(p.stderr, "prune: candidate at %.1f %% of the latency\n", 100*ratio)
		return ratio <= t.latency, err
	}
	lo, hi := 0, steps
	var best map[int][]int
	for lo < hi {
		mid := (lo + hi) / 2
		plan := family(mid)
		ok, err := reached(plan)
		if err != nil {
			return nil, err
		}
		if ok {
			best, hi = plan, mid
		} else {
			lo = mid + 1
		}
	}
	if best == nil {
		if ok, err := reached(family(steps)); err != nil || !ok {
			return nil, fmt.Errorf("--target: not reachable by pruning at most %.0f %% of each prunable group", 100*maxGroupShare)
		}
		best = family(steps)
	}
	return best, nil
}

// family returns plans indexed 0..steps, pruning more as the index grows.
func (p *planner) family() (func(int) map[int][]int, int) {
	ids := make([]int, 0, len(p.scores))
	for id := range p.scores {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	if p.sens != nil {
		// Thresholds on the measured loss: at step k each group is pruned
		// at the largest ratio whose loss is within the k-th smallest loss.
		var losses []float64
		for _, id := range ids {
			losses = append(losses, p.sens[id]...)
		}
		slices.Sort(losses)
		losses = slices.Compact(losses)
		return func(k int) map[int][]int {
			plan := map[int][]int{}
			if k == 0 {
				return plan
			}
			tau := losses[min(k, len(losses))-1]
			for _, id := range ids {
				share := 0.0
				for i, r := range sensitivityRatios {
					if p.sens[id][i] <= tau && r <= maxGroupShare {
						share = r
					}
				}
				if idx := lowestShare(p.scores[id], share); share > 0 && len(idx) > 0 {
					plan[id] = idx
				}
			}
			return plan
		}, len(losses)
	}
	if p.global {
		type ch struct {
			group, idx int
			score      float64
		}
		var all []ch
		for _, id := range ids {
			for i, v := range p.scores[id] {
				all = append(all, ch{id, i, v})
			}
		}
		slices.SortStableFunc(all, func(x, y ch) int { return cmpFloat(x.score, y.score) })
		return func(k int) map[int][]int {
			plan := map[int][]int{}
			for _, c := range all {
				if k == 0 {
					break
				}
				if float64(len(plan[c.group])+1) > maxGroupShare*float64(len(p.scores[c.group])) {
					continue
				}
				plan[c.group] = append(plan[c.group], c.idx)
				k--
			}
			channels := map[int]int{}
			for id := range plan {
				channels[id] = len(p.scores[id])
			}
			return sortPlan(plan, channels)
		}, len(all)
	}
	const n = 100 // uniform shares 0, 0.5 %, ..., maxGroupShare
	return func(k int) map[int][]int {
		plan := map[int][]int{}
		for _, id := range ids {
			if idx := lowestShare(p.scores[id], maxGroupShare*float64(k)/n); len(idx) > 0 {
				plan[id] = idx
			}
		}
		return plan
	}, n
}

// latencyRatio times a candidate against the original.
func (p *planner) latencyRatio(ctx context.Context, pm *onnxpb.ModelProto) (float64, error) {
	dir, err := os.MkdirTemp("", "edgedet-prune-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "candidate.onnx")
	if err := onnx.SaveModel(path, pm); err != nil {
		return 0, err
	}
	l0, l1, err := pairedLatency(ctx, p.model, path, p.threads, p.log)
	if err != nil {
		return 0, err
	}
	return l1 / l0, nil
}

// channelAlign is the multiple a pruned group's remaining channels are
// rounded up to (groups of at least 2× as many channels): ONNX Runtime's
// CPU kernels work in blocks of 8 (and 16 with AVX-512), and an odd
// channel count made pruned yolox_nano slower here, not faster.
const channelAlign = 8

// sortPlan aligns each group's removal (given lowest score first; channels
// groups[id] in the group) so the remaining count is a multiple of
// channelAlign, and sorts the indices.
func sortPlan(plan map[int][]int, channels map[int]int) map[int][]int {
	for id, idx := range plan {
		if c := channels[id]; c >= 2*channelAlign {
			kept := (c - len(idx) + channelAlign - 1) / channelAlign * channelAlign
			idx = idx[:c-kept]
		}
		if len(idx) == 0 {
			delete(plan, id)
			continue
		}
		slices.Sort(idx)
		plan[id] = idx
	}
	return plan
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// refitResult is one consumer convolution's reconstruction, errors on
// held-out calibration samples.
type refitResult struct {
	node         string
	plain, final float64
	refitted     bool
}

// refitConsumers re-fits every group-1 convolution that lost input
// channels (He et al. 2017): from the unpruned network's activations at
// sampled positions of calibration frames, the kept input channels should
// give the unpruned outputs (of the output channels the conv keeps), by
// least squares. A quarter of the samples is held out: where the refit does
// worse there than the plainly cut weights, those stay. Each conv is fitted
// on the unpruned network's inputs, as if the layers before it were intact
// (fitting on the pruned network's own activations, all layers at once,
// over-corrected here: each layer compensates for errors that the refit
// of the layers before it already removes; layer by layer, re-sampling the
// pruned network after each refit, was no better on yolox_nano: mAP 26.0
// against 28.2 at flops=0.97).
func refitConsumers(ctx context.Context, src, pruned *onnxpb.ModelProto, a *prune.Analysis, plan map[int][]int,
	inputs onnx.Inputs, perImage int, stderr io.Writer) ([]refitResult, error) {
	removed, err := a.RemovedInputs(plan)
	if err != nil {
		return nil, err
	}
	rows, err := a.RemovedOutputs(plan)
	if err != nil {
		return nil, err
	}
	convs := make([]string, 0, len(removed))
	for name := range removed {
		convs = append(convs, name)
	}
	slices.Sort(convs)
	if len(convs) == 0 {
		return nil, nil
	}
	fmt.Fprintf(stderr, "prune: sampling the inputs of %d convolutions on %d calibration frames\n", len(convs), inputs.Len())
	orig, err := prune.CollectConvSamples(ctx, src, inputs, convs, perImage, 1)
	if err != nil {
		return nil, fmt.Errorf("reconstruction: %w", err)
	}
	g := onnx.NewGraph(pruned)
	var out []refitResult
	for _, name := range convs {
		o := orig[name]
		_, cout := o.Y.Dims()
		keptOut := keptChannels(cout, rows[name])
		keptIn := keptChannels(o.Cin, removed[name])
		target := *o
		target.Y = selectCols(o.Y, keptOut)
		fit, held := splitSamples(&target)
		r := refitResult{node: name}
		r.plain = held.Error(keptIn, weightsOf(pruned, name), biasOf(pruned, name, len(keptOut)))
		r.final = r.plain
		if w, b, err := fit.Refit(keptIn, ridgeFor(fit, keptIn)); err == nil {
			if e := held.Error(keptIn, w, b); e < r.plain {
				r.final, r.refitted = e, true
				if err := setConvParams(pruned, g, convNode(pruned, name), w, b); err != nil {
					return nil, err
				}
			}
		}
		out = append(out, r)
	}
	return out, nil
}

func selectCols(m *mat.Dense, cols []int) *mat.Dense {
	r, _ := m.Dims()
	out := mat.NewDense(r, len(cols), nil)
	for j, c := range cols {
		for i := range r {
			out.Set(i, j, m.At(i, c))
		}
	}
	return out
}

// ridgeFor is the Tikhonov weight: 1 % of a kept feature column's mean
// energy (the diagonal of XᵀX), so it scales with the activations and the
// number of samples.
func ridgeFor(s *prune.ConvSamples, kept []int) float64 {
	k := s.Kh * s.Kw
	var sum float64
	for _, c := range kept {
		for j := c * k; j < (c+1)*k; j++ {
			col := mat.Col(nil, j, s.X)
			sum += mat.Dot(mat.NewVecDense(len(col), col), mat.NewVecDense(len(col), col))
		}
	}
	return 0.01 * sum / float64(max(1, len(kept)*k))
}

// splitSamples keeps every fourth sample row apart for validation.
func splitSamples(s *prune.ConvSamples) (fit, held *prune.ConvSamples) {
	n, _ := s.X.Dims()
	var fi, hi []int
	for i := range n {
		if i%4 == 3 {
			hi = append(hi, i)
		} else {
			fi = append(fi, i)
		}
	}
	pick := func(rows []int) *prune.ConvSamples {
		c := *s
		c.X = selectRows(s.X, rows)
		c.Y = selectRows(s.Y, rows)
		c.Pos = nil
		return &c
	}
	return pick(fi), pick(hi)
}

func selectRows(m *mat.Dense, rows []int) *mat.Dense {
	_, c := m.Dims()
	out := mat.NewDense(len(rows), c, nil)
	for i, r := range rows {
		out.SetRow(i, m.RawRowView(r))
	}
	return out
}

func keptChannels(n int, removed []int) []int {
	kept := make([]int, 0, n-len(removed))
	for i := range n {
		if _, found := slices.BinarySearch(removed, i); !found {
			kept = append(kept, i)
		}
	}
	return kept
}

func convNode(m *onnxpb.ModelProto, name string) *onnxpb.NodeProto {
	for _, n := range m.GetGraph().GetNode() {
		if n.GetName() == name {
			return n
		}
	}
	return nil
}

func weightsOf(m *onnxpb.ModelProto, conv string) []float32 {
	n := convNode(m, conv)
	if n == nil || len(n.GetInput()) < 2 {
		return nil
	}
	w, _ := onnx.TensorFloats(onnx.NewGraph(m).Initializer(n.GetInput()[1]))
	return w
}

func biasOf(m *onnxpb.ModelProto, conv string, cout int) []float32 {
	n := convNode(m, conv)
	if n != nil && len(n.GetInput()) > 2 && n.GetInput()[2] != "" {
		if b, err := onnx.TensorFloats(onnx.NewGraph(m).Initializer(n.GetInput()[2])); err == nil {
			return b
		}
	}
	return make([]float32, cout)
}

// setConvParams writes re-fitted weights (and bias, added when the conv had
// none) into the pruned model's initializers of node n.
func setConvParams(m *onnxpb.ModelProto, g *onnx.Graph, n *onnxpb.NodeProto, w, b []float32) error {
	if n == nil || len(n.GetInput()) < 2 {
		return errors.New("reconstruction: convolution missing from the pruned model")
	}
	wt := g.Initializer(n.GetInput()[1])
	if wt == nil || onnx.NumElements(wt) != int64(len(w)) {
		return fmt.Errorf("reconstruction of %s: weight %q does not match the re-fitted %d values", n.GetName(), n.GetInput()[1], len(w))
	}
	onnx.SetTensorFloats(wt, w)
	if len(n.GetInput()) > 2 && n.GetInput()[2] != "" {
		bt := g.Initializer(n.GetInput()[2])
		if bt == nil || onnx.NumElements(bt) != int64(len(b)) {
			return fmt.Errorf("reconstruction of %s: bias %q does not match", n.GetName(), n.GetInput()[2])
		}
		onnx.SetTensorFloats(bt, b)
		return nil
	}
	name := n.GetName() + ".refit_bias"
	m.GetGraph().Initializer = append(m.GetGraph().Initializer, onnx.Float32Vector(name, b))
	n.Input = append(n.Input[:2], name)
	return nil
}

// checkPruned runs both models on the same input in ONNX Runtime: the
// pruned one must load, run and give outputs of the original's shapes.
func checkPruned(src, pruned *onnxpb.ModelProto, inShape []int64) error {
	a, err := runOnce(src, inShape)
	if err != nil {
		return fmt.Errorf("original: %w", err)
	}
	b, err := runOnce(pruned, inShape)
	if err != nil {
		return err
	}
	if len(a) != len(b) {
		return fmt.Errorf("%d outputs instead of %d", len(b), len(a))
	}
	for i := range a {
		if !slices.Equal(a[i], b[i]) {
			return fmt.Errorf("output %d has shape %v instead of %v", i, b[i], a[i])
		}
	}
	return nil
}

func fileSize(path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return st.Size()
}

// pairedLatency times the two models alternately, 5 rounds of 20 runs each
// after a warm-up, on the same sample image, and returns their medians in
// ms: alternating keeps a machine whose load changes from favouring one.
func pairedLatency(ctx context.Context, a, b string, threads int, log *slog.Logger) (float64, float64, error) {
	open := func(path string) (*detector.Detector, error) {
		cfg := detector.DefaultConfig()
		cfg.Model, cfg.Threads = path, threads
		return detector.New(cfg, log)
	}
	da, err := open(a)
	if err != nil {
		return 0, 0, err
	}
	defer da.Close()
	db, err := open(b)
	if err != nil {
		return 0, 0, err
	}
	defer db.Close()
	img := gocv.NewMatWithSizeFromScalar(gocv.NewScalar(114, 114, 114, 0), 480, 640, gocv.MatTypeCV8UC3)
	defer img.Close()
	var ta, tb []float64
	run := func(d *detector.Detector, n int, into *[]float64) error {
		for range n {
			res, err := d.Detect(ctx, img, nil)
			if err != nil {
				return err
			}
			*into = append(*into, ms(res.Timings.Inference))
		}
		return nil
	}
	var warm []float64
	if err := run(da, 5, &warm); err != nil {
		return 0, 0, err
	}
	if err := run(db, 5, &warm); err != nil {
		return 0, 0, err
	}
	for range 5 {
		if err := run(da, 20, &ta); err != nil {
			return 0, 0, err
		}
		if err := run(db, 20, &tb); err != nil {
			return 0, 0, err
		}
	}
	return percentiles(ta).P50, percentiles(tb).P50, nil
}

// pruneEval evaluates the models on a YOLO-labelled directory and prints
// each one's mAP and its difference to the first.
func pruneEval(ctx context.Context, models []string, data string, log *slog.Logger, stdout, stderr io.Writer) ([]eval.Summary, error) {
	var sums []eval.Summary
	var ds *eval.Dataset
	for _, path := range models {
		det, err := evalDetector(path, log)
		if err != nil {
			return nil, err
		}
		if ds == nil {
			if ds, err = eval.LoadYOLODataset(data, det.Info().Labels); err != nil {
				det.Close()
				return nil, err
			}
		}
		r, err := evalModel(ctx, det, ds, stderr)
		det.Close()
		if err != nil {
			return nil, err
		}
		sums = append(sums, r.Summary)
	}
	for i, sum := range sums {
		d := summaryDelta(sums[0], sum)
		fmt.Fprintf(stdout, "mAP@0.5:0.95 %-24s %5.1f (%+5.1f)   mAP@0.5 %5.1f (%+5.1f)   (%s, %d images)\n",
			filepath.Base(models[i]), 100*sum.AP, 100*d.AP, 100*sum.AP50, 100*d.AP50, filepath.Base(data), len(ds.Images))
	}
	return sums, nil
}

func evalDetector(path string, log *slog.Logger) (*detector.Detector, error) {
	cfg := detector.DefaultConfig()
	cfg.Model, cfg.ScoreThreshold, cfg.IoUThreshold, cfg.MaxDetections = path, evalScore, evalIoU, evalMaxDet
	return detector.New(cfg, log)
}

// sensitivityRatios are the shares of a group the sensitivity analysis
// removes, alone, to see what each costs.
var sensitivityRatios = []float64{0.25, 0.5}

// pruneSensitivity prunes each group alone at each sensitivityRatios share
// (its lowest-scoring channels) and measures the mAP@0.5:0.95 lost on the
// first n images of data. It prints the table and returns, per group, the
// loss at each ratio.
func pruneSensitivity(ctx context.Context, a *prune.Analysis, m *onnxpb.ModelProto, scores map[int][]float64,
	data string, n int, log *slog.Logger, stdout, stderr io.Writer) (map[int][]float64, error) {
	dir, err := os.MkdirTemp("", "edgedet-prune-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "candidate.onnx")
	var ds *eval.Dataset
	score := func(model *onnxpb.ModelProto) (float64, error) {
		if err := onnx.SaveModel(path, model); err != nil {
			return 0, err
		}
		det, err := evalDetector(path, log)
		if err != nil {
			return 0, err
		}
		defer det.Close()
		if ds == nil {
			if ds, err = eval.LoadYOLODataset(data, det.Info().Labels); err != nil {
				return 0, err
			}
			sub := *ds
			sub.Images = sub.Images[:min(n, len(sub.Images))]
			ds = &sub
		}
		r, err := evalModel(ctx, det, ds, io.Discard)
		if err != nil {
			return 0, err
		}
		return r.Summary.AP, nil
	}
	base, err := score(m)
	if err != nil {
		return nil, err
	}
	ids := make([]int, 0, len(scores))
	for id := range scores {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	bar := progress.New(stderr, len(ids)*len(sensitivityRatios), "pruned variants")
	out := map[int][]float64{}
	for _, id := range ids {
		for _, r := range sensitivityRatios {
			plan := lowestShare(scores[id], r)
			loss := 0.0
			if len(plan) > 0 {
				p, err := prune.Apply(m, a, map[int][]int{id: plan})
				if err != nil {
					return nil, err
				}
				ap, err := score(p)
				if err != nil {
					return nil, fmt.Errorf("sensitivity of group %d: %w", id, err)
				}
				loss = base - ap
			}
			out[id] = append(out[id], loss)
			bar.Add(1)
		}
	}
	bar.Finish()
	fmt.Fprintf(stdout, "sensitivity: mAP@0.5:0.95 lost with one group pruned (of %.1f, on %d images)\n", 100*base, len(ds.Images))
	fmt.Fprintf(stdout, "%6s %9s", "group", "channels")
	for _, r := range sensitivityRatios {
		fmt.Fprintf(stdout, " %8.0f%%", 100*r)
	}
	fmt.Fprintln(stdout, "  producer")
	for _, id := range ids {
		fmt.Fprintf(stdout, "%6d %9d", id, a.Groups[id].Channels)
		for _, l := range out[id] {
			fmt.Fprintf(stdout, " %+9.1f", -100*l)
		}
		fmt.Fprintf(stdout, "  %s\n", a.Groups[id].Producers[0])
	}
	return out, nil
}

// lowestShare is the lowest-scoring share r of a group's channels, the
// remaining count aligned to channelAlign, sorted.
func lowestShare(scores []float64, r float64) []int {
	idx := keptChannels(len(scores), nil)
	slices.SortStableFunc(idx, func(x, y int) int { return cmpFloat(scores[x], scores[y]) })
	n := min(int(r*float64(len(idx))), len(idx)-1)
	plan := sortPlan(map[int][]int{0: slices.Clone(idx[:max(n, 0)])}, map[int]int{0: len(scores)})
	return plan[0]
}

// runOnce runs m on a zero input of inShape and returns its outputs' shapes.
func runOnce(m *onnxpb.ModelProto, inShape []int64) ([][]int64, error) {
	data, err := proto.Marshal(m)
	if err != nil {
		return nil, err
	}
	g := onnx.NewGraph(m)
	var in string
	for _, v := range m.GetGraph().GetInput() {
		if g.Initializer(v.GetName()) == nil {
			in = v.GetName()
			break
		}
	}
	var outs []string
	for _, v := range m.GetGraph().GetOutput() {
		outs = append(outs, v.GetName())
	}
	s, err := ort.NewDynamicAdvancedSessionWithONNXData(data, []string{in}, outs, nil)
	if err != nil {
		return nil, fmt.Errorf("load in ONNX Runtime: %w", err)
	}
	defer s.Destroy()
	x, err := ort.NewEmptyTensor[float32](ort.NewShape(inShape...))
	if err != nil {
		return nil, err
	}
	defer x.Destroy()
	vals := make([]ort.Value, len(outs))
	if err := s.Run([]ort.Value{x}, vals); err != nil {
		return nil, fmt.Errorf("run in ONNX Runtime: %w", err)
	}
	shapes := make([][]int64, len(vals))
	for i, v := range vals {
		shapes[i] = slices.Clone([]int64(v.GetShape()))
		v.Destroy()
	}
	return shapes, nil
}
