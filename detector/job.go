package detector

import (
	"context"
	"errors"
	"fmt"
	"time"

	ort "github.com/yalue/onnxruntime_go"
	"gocv.io/x/gocv"

	"github.com/edgedet/edgedet/detection"
)

// Job is one frame's way through a Detector. Acquire one, Prepare it with
// a frame, Infer, Decode, then Release it. A Job is used by one goroutine
// at a time; its buffers belong to the Detector.
type Job struct {
	d        *Detector
	input    *ort.Tensor[float32]
	output   *ort.Tensor[float32]
	bindings []*ort.IoBinding // one per session: the same tensors bound to each
	pre      *Preprocessor
	cand     []detection.Detection
	geom     detection.Geometry
	width    int
	height   int
	timings  Timings
	prepared bool
	ran      bool
}

// Acquire takes a free Job, waiting for one (FIFO among waiters, so a
// busy caller cannot starve another). It fails when ctx is done or the
// detector is closed.
func (d *Detector) Acquire(ctx context.Context) (*Job, error) {
	select {
	case <-d.done:
		return nil, ErrClosed
	default:
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	select {
	case j := <-d.free:
		j.prepared, j.ran = false, false
		return j, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-d.done:
		return nil, ErrClosed
	}
}

// Release gives j back. j must not be used afterwards.
func (d *Detector) Release(j *Job) {
	if j == nil {
		return
	}
	d.free <- j // never blocks: free holds every slot
}

// Prepare preprocesses img (BGR, 8-bit, 3 channels; not retained) into the
// job's input tensor.
func (j *Job) Prepare(img gocv.Mat) error {
	t0 := time.Now()
	j.prepared, j.ran = false, false
	j.width, j.height = img.Cols(), img.Rows()
	g, err := j.pre.Run(img, j.input.GetData())
	if err != nil {
		return err
	}
	j.geom, j.prepared = g, true
	j.timings = Timings{Preprocess: time.Since(t0)}
	return nil
}

// Infer runs the model on the prepared input, on the first session that is
// free (waiters are served in order). ctx cancels the wait, not a running
// inference.
func (j *Job) Infer(ctx context.Context) error {
	d := j.d
	if !j.prepared {
		return errors.New("detector: Infer before a successful Prepare")
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	t0 := time.Now()
	var s int
	select {
	case s = <-d.idle:
	case <-ctx.Done():
		return ctx.Err()
	case <-d.done:
		return ErrClosed
	}
	t1 := time.Now()
	if d.runHook != nil {
		d.runHook(s, true)
	}
	err := d.sessions[s].RunWithBinding(j.bindings[s])
	if d.runHook != nil {
		d.runHook(s, false)
	}
	d.idle <- s
	j.timings.Wait, j.timings.Inference = t1.Sub(t0), time.Since(t1)
	if err != nil {
		return fmt.Errorf("run model %s: %w", d.info.Name, err)
	}
	j.ran = true
	return nil
}

// Decode turns the job's output into detections appended to dst[:0]: it
// decodes, filters, runs NMS and maps boxes back to the frame. It returns
// an empty result when Infer did not succeed.
func (j *Job) Decode(dst []detection.Detection) Result {
	res := Result{Width: j.width, Height: j.height, Detections: dst[:0]}
	if !j.ran {
		return res
	}
	t0 := time.Now()
	res.Detections = j.d.postprocess(j, dst[:0])
	j.timings.Postprocess = time.Since(t0)
	res.Timings = j.timings
	return res
}

func (j *Job) close() error {
	var errs []error
	for _, b := range j.bindings {
		if b != nil {
			errs = append(errs, b.Destroy())
		}
	}
	if j.input != nil {
		errs = append(errs, j.input.Destroy())
	}
	if j.output != nil {
		errs = append(errs, j.output.Destroy())
	}
	errs = append(errs, j.pre.Close())
	return errors.Join(errs...)
}

// newJobs allocates cfg.Slots jobs, each with its tensors bound to every
// session. A job is registered in d.jobs as soon as it exists, so Close
// frees it even if a later step fails.
func (d *Detector) newJobs() error {
	info := &d.info
	d.free = make(chan *Job, d.cfg.Slots)
	for range d.cfg.Slots {
		j := &Job{d: d, cand: make([]detection.Detection, 0, 1024)}
		d.jobs = append(d.jobs, j)
		d.free <- j
		var err error
		if j.pre, err = NewPreprocessor(info.Spec); err != nil {
			return fmt.Errorf("model %s: %w", info.Path, err)
		}
		if j.input, err = ort.NewEmptyTensor[float32](ort.NewShape(info.InputShape...)); err != nil {
			return fmt.Errorf("allocate input tensor %v: %w", info.InputShape, err)
		}
		if j.output, err = ort.NewEmptyTensor[float32](ort.NewShape(info.OutputShape...)); err != nil {
			return fmt.Errorf("allocate output tensor %v: %w", info.OutputShape, err)
		}
		for _, s := range d.sessions {
			b, err := s.CreateIoBinding()
			if err != nil {
				return fmt.Errorf("bind tensors: %w", err)
			}
			j.bindings = append(j.bindings, b)
			if err := b.BindInput(info.InputName, j.input); err != nil {
				return fmt.Errorf("bind input %q: %w", info.InputName, err)
			}
			if err := b.BindOutput(info.OutputName, j.output); err != nil {
				return fmt.Errorf("bind output %q: %w", info.OutputName, err)
			}
		}
	}
	return nil
}
