package agent

import (
	"context"

	"gocv.io/x/gocv"

	"github.com/edgedet/edgedet/detection"
	"github.com/edgedet/edgedet/detector"
)

// Detector is what the agent needs of the model: a description of it, a
// live score threshold, and jobs that carry a frame through it in steps
// so one camera's next frame is preprocessed while its previous one runs.
// *detector.Detector is one (wrapped by New); tests use a fake. The agent
// never closes it: whoever built it does, after Run returned. All methods
// are safe for concurrent use.
type Detector interface {
	// Info describes the model: name, precision, provider, input spec and
	// labels.
	Info() detector.ModelInfo
	// SetScoreThreshold changes the default score cut (a config reload).
	SetScoreThreshold(t float32) error
	// Acquire takes a free job, waiting for one; it fails when ctx is done
	// or the detector is closed (detector.ErrClosed).
	Acquire(ctx context.Context) (Job, error)
	// Release gives a job back; nil is ignored. The job must not be used
	// afterwards.
	Release(j Job)
}

// Job is one frame's way through a Detector: Prepare, Infer, Decode, in
// that order, by one goroutine at a time (prepare may hand it to finish).
type Job interface {
	// Prepare preprocesses img (BGR, not retained) into the job's input.
	Prepare(img gocv.Mat) error
	// Infer runs the model on the prepared input; ctx cancels the wait
	// for a session, not a running inference.
	Infer(ctx context.Context) error
	// Decode appends the detections to dst[:0], boxes in the prepared
	// image's pixels; empty when Infer did not succeed.
	Decode(dst []detection.Detection) detector.Result
}

// onnxDetector adapts *detector.Detector, whose Acquire returns its own
// *detector.Job, to Detector.
type onnxDetector struct{ *detector.Detector }

var (
	_ Detector = onnxDetector{}
	_ Job      = (*detector.Job)(nil)
)

func (d onnxDetector) Acquire(ctx context.Context) (Job, error) {
	j, err := d.Detector.Acquire(ctx)
	if err != nil {
		return nil, err // never a typed nil inside the interface
	}
	return j, nil
}

func (d onnxDetector) Release(j Job) {
	if j, ok := j.(*detector.Job); ok {
		d.Detector.Release(j)
	}
}
