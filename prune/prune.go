package prune

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/edgedet/edgedet/internal/latency"
	"github.com/edgedet/edgedet/onnx"
	"github.com/edgedet/edgedet/onnx/onnxpb"
)

// Options configure Prune. DefaultOptions gives the defaults.
type Options struct {
	// Target is how much to prune.
	Target Target
	// Importance ranks a group's channels: ImportanceContribution (needs
	// calibration inputs), ImportanceL1 or ImportanceL2.
	Importance string
	// Refit re-fits the convolutions reading pruned channels by least
	// squares on calibration activations (He et al. 2017); needs inputs.
	Refit bool
	// Samples is how many activation positions are sampled per calibration
	// input and convolution (contribution and refit).
	Samples int
	// InputShape is the model input's [1,3,H,W].
	InputShape []int64
	// OpenTimer, if set, measures latency: the pruned model against the
	// original for the report, and the candidates of a latency target
	// (which needs it).
	OpenTimer latency.Open
	// Score, if set, runs the sensitivity analysis: each group pruned alone
	// at SensitivityRatios, scored; a flops or latency target is then spent
	// on the groups that cost least.
	Score Scorer
	// Progress, if set, is called after each sensitivity variant.
	Progress func(done, total int)
	// Status receives one line per long step ("prune: sampling ..."); nil
	// discards them.
	Status io.Writer
}

// DefaultOptions: keep 90 % of the multiply-adds, channels ranked by their
// contribution, least-squares reconstruction from 64 samples per input.
func DefaultOptions() Options {
	return Options{
		Target:     Target{FLOPs: 0.9},
		Importance: ImportanceContribution,
		Refit:      true,
		Samples:    64,
	}
}

// Report describes a pruning run.
type Report struct {
	Target     string
	Importance string
	// Analysis is the channel groups of the (BatchNormalization-folded)
	// original; Plan the channels removed per group ID.
	Analysis        *Analysis
	Plan            map[int][]int
	ChannelsRemoved int
	// Parameters and multiply-adds (Cost) before and after.
	ParamsBefore, ParamsAfter int64
	MACsBefore, MACsAfter     int64
	// LatencyBefore and LatencyAfter are the paired medians (0 without
	// Options.OpenTimer).
	LatencyBefore, LatencyAfter time.Duration
	// Refits are the reconstructed convolutions (Options.Refit).
	Refits []RefitResult
	// Sensitivity is the analysis' result (Options.Score), else nil.
	Sensitivity *Sensitivity
}

// ErrQuantized is returned for a model that already has quantized ops:
// prune its FP32 original, then quantize the pruned model.
var ErrQuantized = errors.New("model is quantized")

// Prune returns a copy of the FP32 model m (which it does not modify) with
// whole channels removed to reach opt.Target, and the report of what it
// did. inputs are calibration inputs (preprocessed frames), needed for the
// contribution importance and the refit, else may be nil. ONNX Runtime must
// be initialised: the pruned model is run once to check it.
func Prune(ctx context.Context, m *onnxpb.ModelProto, inputs onnx.Inputs, opt Options) (*onnxpb.ModelProto, *Report, error) {
	if err := opt.validate(inputs); err != nil {
		return nil, nil, err
	}
	status := opt.Status
	if status == nil {
		status = io.Discard
	}
	src, a, err := FoldAndAnalyze(m)
	if err != nil {
		return nil, nil, err
	}
	rep := &Report{Target: opt.Target.String(), Importance: opt.Importance, Analysis: a}
	if rep.ParamsBefore, rep.MACsBefore, err = Cost(src, opt.InputShape); err != nil {
		return nil, nil, fmt.Errorf("count operations: %w", err)
	}
	scores, err := channelScores(ctx, a, src, opt.Importance, inputs, opt.Samples, status)
	if err != nil {
		return nil, nil, err
	}
	var sens map[int][]float64
	if opt.Score != nil {
		if rep.Sensitivity, err = sensitivity(ctx, a, src, scores, opt.Score, opt.Progress); err != nil {
			return nil, nil, err
		}
		sens = rep.Sensitivity.Loss
	}
	pl := planner{a: a, m: src, orig: m, scores: scores, global: opt.Importance == ImportanceContribution, sens: sens,
		inShape: opt.InputShape, macs0: rep.MACsBefore, open: opt.OpenTimer, status: status}
	if rep.Plan, err = pl.plan(ctx, opt.Target); err != nil {
		return nil, nil, err
	}
	pruned, err := Apply(src, a, rep.Plan)
	if err != nil {
		return nil, nil, err
	}
	if opt.Refit {
		if rep.Refits, err = reconstruct(ctx, src, pruned, a, rep.Plan, inputs, opt.Samples, status); err != nil {
			return nil, nil, err
		}
	}
	if err := Check(src, pruned, opt.InputShape); err != nil {
		return nil, nil, fmt.Errorf("the pruned model is not valid: %w", err)
	}
	if rep.ParamsAfter, rep.MACsAfter, err = Cost(pruned, opt.InputShape); err != nil {
		return nil, nil, fmt.Errorf("pruned model: count operations: %w", err)
	}
	for _, idx := range rep.Plan {
		rep.ChannelsRemoved += len(idx)
	}
	onnx.SetMetadata(pruned, "edgedet.prune.target", rep.Target)
	onnx.SetMetadata(pruned, "edgedet.prune.importance", opt.Importance)
	onnx.SetMetadata(pruned, "edgedet.prune.channels_removed", strconv.Itoa(rep.ChannelsRemoved))
	onnx.SetMetadata(pruned, "edgedet.prune.refit", strconv.FormatBool(opt.Refit))
	if opt.OpenTimer != nil {
		if rep.LatencyBefore, rep.LatencyAfter, err = latency.PairedModels(ctx, opt.OpenTimer, m, pruned, "original", "pruned model"); err != nil {
			return nil, nil, err
		}
	}
	return pruned, rep, nil
}

// FoldAndAnalyze returns a copy of the FP32 model m with its
// BatchNormalization folded into the convolutions before them, and that
// copy's channel groups: what Prune plans on.
func FoldAndAnalyze(m *onnxpb.ModelProto) (*onnxpb.ModelProto, *Analysis, error) {
	if ops := onnx.QuantOps(m); len(ops) > 0 {
		return nil, nil, fmt.Errorf("%w (it has %s): prune its FP32 original, then quantize the pruned model", ErrQuantized, strings.Join(ops, ", "))
	}
	src := proto.Clone(m).(*onnxpb.ModelProto)
	if _, err := onnx.FoldBatchNorm(src); err != nil {
		return nil, nil, fmt.Errorf("fold BatchNormalization: %w", err)
	}
	a, err := Analyze(src)
	if err != nil {
		return nil, nil, err
	}
	return src, a, nil
}

func (o Options) validate(inputs onnx.Inputs) error {
	if err := o.Target.validate(); err != nil {
		return err
	}
	switch o.Importance {
	case ImportanceContribution, ImportanceL1, ImportanceL2:
	default:
		return fmt.Errorf("importance %q is not %s, %s or %s", o.Importance, ImportanceContribution, ImportanceL1, ImportanceL2)
	}
	noInputs := inputs == nil || inputs.Len() == 0
	switch {
	case noInputs && o.Importance == ImportanceContribution:
		return errors.New("importance contribution needs calibration inputs")
	case noInputs && o.Refit:
		return errors.New("the refit needs calibration inputs")
	case o.Samples < 1 && (o.Refit || o.Importance == ImportanceContribution):
		return fmt.Errorf("samples %d: want >= 1", o.Samples)
	case len(o.InputShape) != 4:
		return fmt.Errorf("input shape %v: want [1,3,H,W]", o.InputShape)
	case o.Target.Latency > 0 && o.OpenTimer == nil:
		return errors.New("a latency target needs Options.OpenTimer")
	}
	return nil
}
