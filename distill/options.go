package distill

import (
	"time"

	"github.com/edgedet/edgedet/onnx/onnxpb"
)

// Phase names, as Progress and Report give them.
const (
	PhaseBlockwise = "block-wise"
	PhaseEndToEnd  = "end-to-end"
)

// Defaults of the zero Options fields.
const (
	DefaultBatch      = 4
	DefaultLR         = 1e-3
	DefaultBlockShare = 0.3
	DefaultMinLRShare = 0.05
	DefaultE2ELRShare = 0.3
)

// CommandMosaic is the Mosaic share edgedet's commands use unless told
// otherwise: on yolox_nano pruned to flops=0.8 and 57 frames, 661 steps
// ended at mAP 0.134 with it against 0.116 without (same seed and steps).
// The library's zero value stays "no mosaic".
const CommandMosaic = 0.5

// Options adjust Distill. The zero value of a field means its default;
// at least one of Steps and Duration must be set.
type Options struct {
	// Steps is the number of optimiser steps over both phases (0 = no
	// step limit).
	Steps int
	// Duration is the training time budget, measured with Now (0 = no time
	// limit). Time spent in Checkpoint callbacks does not count.
	Duration time.Duration
	// BlockShare is the share of the budget (of Steps and of Duration)
	// given to the block-wise phase when the student has differing
	// regions (default DefaultBlockShare; negative: none).
	BlockShare float64
	// Batch is the number of images per step (default DefaultBatch).
	Batch int
	// LR is the learning rate of each phase (default DefaultLR), relative
	// to the size of each parameter tensor: a step changes a tensor by
	// about LR times its RMS. It rises over the first steps of a phase
	// (at most 10, at most a tenth of a step budget) and then decays along
	// a cosine to MinLRShare·LR at the end of the phase.
	LR float64
	// MinLRShare is the learning rate at the end of a phase, as a share of
	// LR (default DefaultMinLRShare).
	MinLRShare float64
	// EndToEndLRShare scales LR in the end-to-end phase (default
	// DefaultE2ELRShare): errors there propagate through the whole
	// network, and at the block-wise rate it lost mAP on yolox_nano.
	EndToEndLRShare float64
	// HeadLoss is how the end-to-end phase matches the head tensors:
	// HeadLossDetection (the default) or HeadLossMSE.
	HeadLoss string
	// SGD uses SGD with momentum 0.9 instead of Adam.
	SGD bool
	// FeatureWeight adds, in the end-to-end phase, the outputs of the
	// differing regions (intermediate features whose channels still
	// correspond) to the head loss with this share of its weight (0 =
	// heads only).
	FeatureWeight float64
	// NoAugment turns off the augmentation of the frames (horizontal flip,
	// crop resized back, brightness, contrast and saturation jitter).
	NoAugment bool
	// Mosaic is the share of the frames (0–1) built, as in YOLO training,
	// from four frames, each shrunk into one quadrant around a random
	// centre, then flipped and colour-jittered (0 = none; ignored with
	// NoAugment): more varied frames from few.
	Mosaic float64
	// Seed makes the frame order and the augmentation reproducible.
	Seed uint64

	// TeacherSHA256 and DataDescription are recorded in the output
	// model's metadata.
	TeacherSHA256, DataDescription string

	// Now is the clock the budget is measured with (default time.Now).
	Now func() time.Time
	// Progress, when set, is called after every step.
	Progress func(Progress)
	// Checkpoint, when set, is called every CheckpointSteps steps and
	// every CheckpointEvery of training time with a copy of the student;
	// an error it returns stops Distill.
	Checkpoint      func(Checkpoint) error
	CheckpointSteps int
	CheckpointEvery time.Duration
}

// Progress is the state after one step.
type Progress struct {
	Phase string
	// Step counts the steps of all phases so far; Steps is Options.Steps.
	Step, Steps int
	// Elapsed is the training time so far; Budget is Options.Duration.
	Elapsed, Budget time.Duration
	// Loss is this step's loss: the mean over the matched tensors of their
	// loss divided by the loss of a student that predicts the teacher's
	// mean (for the squared error, the teacher's variance).
	Loss float64
}

// Checkpoint is a copy of the student during training.
type Checkpoint struct {
	Phase   string
	Step    int
	Elapsed time.Duration
	Model   *onnxpb.ModelProto
}

// PhaseReport is what one phase did.
type PhaseReport struct {
	Name  string
	Steps int
	// Losses are the steps' losses; FirstLoss and LastLoss the means of
	// the first and of the last fifth of them (1 to 10 steps), since one
	// batch's loss is noisy.
	Losses              []float64
	FirstLoss, LastLoss float64
	Elapsed             time.Duration
}

// Region is a part of the student that differs from the teacher.
type Region struct {
	Nodes, Inputs, Outputs []string
}

// Report describes a distillation.
type Report struct {
	// Regions are the differing parts of the student the block-wise phase
	// trained; Heads the tensors the end-to-end phase matched, of which
	// LogitHeads in probability space and ConfidenceHeads weighed per
	// cell by the teacher's confidence (HeadLossDetection).
	Regions                     []Region
	Heads                       []string
	LogitHeads, ConfidenceHeads []string
	Phases                      []PhaseReport
	// Steps and Images count all phases; Elapsed is the training time.
	Steps, Images int
	FinalLoss     float64
	Elapsed       time.Duration
}

func (o Options) withDefaults() Options {
	if o.Batch <= 0 {
		o.Batch = DefaultBatch
	}
	if o.LR <= 0 {
		o.LR = DefaultLR
	}
	if o.BlockShare == 0 {
		o.BlockShare = DefaultBlockShare
	}
	if o.EndToEndLRShare <= 0 {
		o.EndToEndLRShare = DefaultE2ELRShare
	}
	if o.MinLRShare <= 0 {
		o.MinLRShare = DefaultMinLRShare
	}
	if o.HeadLoss == "" {
		o.HeadLoss = HeadLossDetection
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}
