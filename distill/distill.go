package distill

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/edgedet/edgedet/onnx"
	"github.com/edgedet/edgedet/onnx/onnxpb"
	"github.com/edgedet/edgedet/train"
)

// Metadata keys Distill writes into the returned model.
const (
	MetaTeacherSHA256 = "edgedet.distill.teacher_sha256"
	MetaData          = "edgedet.distill.data"
	MetaSteps         = "edgedet.distill.steps"
	MetaFinalLoss     = "edgedet.distill.final_loss"
	MetaDuration      = "edgedet.distill.duration"
)

// Distill trains student to reproduce teacher on the frames of data and
// returns the trained student (BatchNorm folded, metadata added) and a
// report. The models are not modified. Block-wise first: each region
// where the student differs from the teacher (pruned channels) is fed the
// teacher's tensors at its borders and trained to reproduce the teacher's
// tensors at its outputs. Then end to end from the image, on the head
// tensors (the last Convs before the graph outputs), matched as
// Options.HeadLoss says and each normalised by the loss of predicting the
// teacher's mean. It stops at the step or time budget; when ctx is
// cancelled it returns an error wrapping ctx.Err() and no model.
func Distill(ctx context.Context, teacher, student *onnxpb.ModelProto, data onnx.Inputs, opt Options) (*onnxpb.ModelProto, *Report, error) {
	opt = opt.withDefaults()
	switch {
	case opt.Steps < 0 || opt.Duration < 0:
		return nil, nil, fmt.Errorf("distill: negative budget (steps %d, duration %v)", opt.Steps, opt.Duration)
	case opt.Steps == 0 && opt.Duration == 0:
		return nil, nil, errors.New("distill: no budget: set a number of steps or a duration")
	case opt.HeadLoss != HeadLossDetection && opt.HeadLoss != HeadLossMSE:
		return nil, nil, fmt.Errorf("distill: unknown head loss %q (want %q or %q)", opt.HeadLoss, HeadLossDetection, HeadLossMSE)
	case !(opt.Mosaic >= 0 && opt.Mosaic <= 1):
		return nil, nil, fmt.Errorf("distill: mosaic share %g outside [0, 1]", opt.Mosaic)
	case data == nil || data.Len() == 0:
		return nil, nil, errors.New("distill: no frames to distill on (the data source is empty)")
	}
	t, err := newTrainer(teacher, student, data, opt)
	if err != nil {
		return nil, nil, err
	}
	if err := t.run(ctx); err != nil {
		return nil, nil, err
	}
	m := t.student.Model()
	rep := t.report
	if opt.TeacherSHA256 != "" {
		onnx.SetMetadata(m, MetaTeacherSHA256, opt.TeacherSHA256)
	}
	if opt.DataDescription != "" {
		onnx.SetMetadata(m, MetaData, opt.DataDescription)
	}
	onnx.SetMetadata(m, MetaSteps, strconv.Itoa(rep.Steps))
	onnx.SetMetadata(m, MetaFinalLoss, strconv.FormatFloat(rep.FinalLoss, 'g', 6, 64))
	onnx.SetMetadata(m, MetaDuration, rep.Elapsed.Round(time.Second).String())
	return m, rep, nil
}

// trainer holds one distillation's state.
type trainer struct {
	opt              Options
	teacher, student *train.Graph
	plan             *plan
	terms            []headTerm         // how the end-to-end phase matches the heads
	studentModel     *onnxpb.ModelProto // folded
	data             onnx.Inputs
	rng              *rand.Rand
	order            []int // frame order of the current epoch
	next             int   // position in order

	start  time.Time
	paused time.Duration // spent in Checkpoint callbacks
	step   int
	lastCk time.Duration
	report *Report
}

func newTrainer(teacher, student *onnxpb.ModelProto, data onnx.Inputs, opt Options) (*trainer, error) {
	tf, err := folded(teacher, "teacher")
	if err != nil {
		return nil, err
	}
	sf, err := folded(student, "student")
	if err != nil {
		return nil, err
	}
	p, err := makePlan(tf, sf)
	if err != nil {
		return nil, fmt.Errorf("distill: %w", err)
	}
	t := &trainer{opt: opt, plan: p, studentModel: sf, data: data, rng: rand.New(rand.NewPCG(opt.Seed, 0x5eed)), report: &Report{Heads: p.heads}}
	if t.teacher, err = train.Build(tf, train.Options{}); err != nil {
		return nil, fmt.Errorf("distill: teacher: %w", err)
	}
	if t.student, err = train.Build(sf, train.Options{}); err != nil {
		return nil, fmt.Errorf("distill: student: %w", err)
	}
	t.terms = mseTerms(p.heads)
	if opt.HeadLoss == HeadLossDetection {
		t.terms = p.detection
	}
	for _, h := range t.terms {
		if h.logit {
			t.report.LogitHeads = append(t.report.LogitHeads, h.name)
		}
		if h.confidence != nil {
			t.report.ConfidenceHeads = append(t.report.ConfidenceHeads, h.name)
		}
	}
	for _, r := range p.regions {
		t.report.Regions = append(t.report.Regions, Region{Nodes: r.nodes, Inputs: r.inputs, Outputs: r.outputs})
	}
	return t, nil
}

// elapsed is the training time so far.
func (t *trainer) elapsed() time.Duration { return t.opt.Now().Sub(t.start) - t.paused }

// run trains both phases within the budget.
func (t *trainer) run(ctx context.Context) error {
	t.start = t.opt.Now()
	share := t.opt.BlockShare
	if len(t.plan.regions) == 0 || share < 0 {
		share = 0
	}
	share = min(share, 1)
	blockSteps := int(float64(t.opt.Steps)*share + 0.5)
	blockTime := time.Duration(float64(t.opt.Duration) * share)
	if share > 0 && (t.opt.Steps == 0 || blockSteps > 0) {
		if err := t.phase(ctx, PhaseBlockwise, blockSteps, blockTime, t.opt.LR, t.blockStep); err != nil {
			return err
		}
	}
	if err := t.phase(ctx, PhaseEndToEnd, t.opt.Steps-t.step, t.opt.Duration, t.opt.LR*t.opt.EndToEndLRShare, t.endToEndStep); err != nil {
		return err
	}
	t.report.Steps = t.step
	t.report.Images = t.step * t.opt.Batch
	t.report.Elapsed = t.elapsed()
	if n := len(t.report.Phases); n > 0 {
		t.report.FinalLoss = t.report.Phases[n-1].LastLoss
	}
	return nil
}

// stepFunc computes the loss of a batch and the parameters' gradients,
// and returns the loss; weights (of the matched tensors) is nil on the
// first step of a phase, which sets it.
type stepFunc func(x *train.Tensor, weights map[string]float64) (float64, map[string]float64, error)

// phase trains with step, from learning rate baseLR, until steps steps (when Options.Steps is set) or
// until the training time reaches until (when Options.Duration is set).
func (t *trainer) phase(ctx context.Context, name string, steps int, until time.Duration, baseLR float64, step stepFunc) error {
	rep := PhaseReport{Name: name}
	begin := t.elapsed()
	o := newScaledOptimizer(t.student, t.studentModel, t.opt.SGD)
	var weights map[string]float64
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("distill interrupted after %d steps: %w", t.step, err)
		}
		el := t.elapsed()
		if t.opt.Steps > 0 && rep.Steps >= steps || t.opt.Duration > 0 && el >= until {
			break
		}
		var done float64
		if t.opt.Steps > 0 {
			done = float64(rep.Steps) / float64(steps)
		}
		if t.opt.Duration > 0 && until > begin {
			done = max(done, float64(el-begin)/float64(until-begin))
		}
		lr := cosineLR(baseLR, t.opt.MinLRShare, done)
		if warm := warmupSteps(steps, t.opt.Steps > 0); rep.Steps < warm {
			lr *= float64(rep.Steps+1) / float64(warm+1)
		}
		x, err := t.batch(ctx)
		if err != nil {
			return err
		}
		loss, w, err := step(x, weights)
		if err == nil {
			err = o.step(lr)
		}
		if err != nil {
			return fmt.Errorf("distill %s step %d: %w", name, t.step+1, err)
		}
		weights = w
		t.step++
		rep.Steps++
		rep.Losses = append(rep.Losses, loss)
		el = t.elapsed()
		rep.Elapsed = el - begin
		if t.opt.Progress != nil {
			t.opt.Progress(Progress{Phase: name, Step: t.step, Steps: t.opt.Steps, Elapsed: el, Budget: t.opt.Duration, Loss: loss})
		}
		if err := t.checkpoint(name, el); err != nil {
			return err
		}
	}
	if rep.Steps > 0 {
		n := max(1, min(maxLossWindow, rep.Steps/5))
		rep.FirstLoss, rep.LastLoss = mean(rep.Losses[:n]), mean(rep.Losses[rep.Steps-n:])
		t.report.Phases = append(t.report.Phases, rep)
	}
	return nil
}

// maxLossWindow is the most steps PhaseReport's first and last losses
// average over (a fifth of the phase's steps, at least one).
const maxLossWindow = 10

func mean(x []float64) float64 {
	var s float64
	for _, v := range x {
		s += v
	}
	return s / float64(len(x))
}

// checkpoint calls Options.Checkpoint when one is due; its time does not
// count as training time.
func (t *trainer) checkpoint(phase string, el time.Duration) error {
	o := t.opt
	if o.Checkpoint == nil {
		return nil
	}
	due := o.CheckpointSteps > 0 && t.step%o.CheckpointSteps == 0 || o.CheckpointEvery > 0 && el-t.lastCk >= o.CheckpointEvery
	if !due {
		return nil
	}
	t.lastCk = el
	err := o.Checkpoint(Checkpoint{Phase: phase, Step: t.step, Elapsed: el, Model: t.student.Model()})
	t.paused = o.Now().Sub(t.start) - el // training time resumes where it was
	if err != nil {
		return fmt.Errorf("distill checkpoint at step %d: %w", t.step, err)
	}
	return nil
}

// maxWarmup is the number of steps over which a phase's learning rate
// rises linearly to its start value (Adam's first steps are as large as
// the learning rate whatever the gradient), capped at a tenth of a step
// budget.
const maxWarmup = 10

func warmupSteps(steps int, limited bool) int {
	if limited {
		return min(maxWarmup, steps/10)
	}
	return maxWarmup
}

// cosineLR decays lr along half a cosine from lr (done = 0) to
// minShare·lr (done ≥ 1).
func cosineLR(lr, minShare, done float64) float64 {
	done = min(max(done, 0), 1)
	return lr * (minShare + (1-minShare)*0.5*(1+math.Cos(math.Pi*done)))
}
