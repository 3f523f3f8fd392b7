// Package detector runs YOLO object-detection models in ONNX Runtime: it
// owns the runtime and its sessions, the execution providers, the gocv
// preprocessing of frames into input tensors and drawing detections on
// frames. What needs neither cgo library (the detection types, model
// description, output decoders, filters, NMS, letterbox geometry) lives in
// package detection, which Detector uses to decode, filter, suppress and
// map boxes back to frame pixels.
package detector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	ort "github.com/yalue/onnxruntime_go"
	"gocv.io/x/gocv"

	"github.com/edgedet/edgedet/detection"
	"github.com/edgedet/edgedet/internal/cfgtypes"
)

// ModelInfo describes the loaded model, for logs and published messages.
type ModelInfo struct {
	Path        string
	Name        string // file name without .onnx
	Precision   string // fp32, fp16 or int8
	Format      detection.Format
	InputName   string
	OutputName  string
	InputShape  []int64
	OutputShape []int64
	Spec        detection.Spec // the resolved description
	SpecSource  string
	Labels      []string
	// Provider is the execution provider the session runs on.
	Provider string
	// ProviderErrors are the providers tried before it, each as
	// "<provider>: <ONNX Runtime's reason>".
	ProviderErrors []string
	// FusedActivations is the number of INT8 activations the CPU sessions
	// run as table lookups (0: the standard graph; see FuseActivations).
	FusedActivations int
}

// Timings are the stage durations of one frame. Wait is the time the
// prepared frame waited for a free session (other frames were running).
type Timings struct {
	Preprocess, Wait, Inference, Postprocess time.Duration
}

// Result is what Detect found in one image.
type Result struct {
	Detections []detection.Detection // boxes in image pixels, best first
	Width      int                   // image size
	Height     int
	Timings    Timings
}

// Detector runs one model on Config.Sessions ONNX Runtime sessions. Frames
// go through it as Jobs: preallocated slots of input and output tensors and
// preprocessing scratch, so several frames can be in flight (one being
// preprocessed while another runs) and the steady state allocates nothing.
// All methods are safe for concurrent use.
type Detector struct {
	log  *slog.Logger
	cfg  Config
	info ModelInfo
	dec  detection.Decoder

	sessions []*ort.DynamicAdvancedSession
	fuse     fuse
	idle     chan int  // indices of sessions not running
	free     chan *Job // slots not acquired
	jobs     []*Job    // every slot, for Close
	done     chan struct{}
	closing  sync.Once
	closeErr error

	// filterMu guards filter and decodeMin, which SetScoreThreshold changes.
	filterMu sync.RWMutex
	filter   detection.Filter
	// decodeMin is the lowest score any label accepts: the decoder's cut.
	decodeMin float32
	nmsOpt    detection.NMSOptions

	// runHook, when a test sets it (before any Infer), is called with the
	// session index right before the session runs (running true) and
	// right after it returns (false): tests see runs overlap in time.
	runHook func(session int, running bool)
}

// New loads cfg.Model into an ONNX Runtime session (InitRuntime must have
// been called) and prepares its tensors, preprocessing and decoder.
func New(cfg Config, log *slog.Logger) (*Detector, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("detector config: %w", err)
	}
	if !ort.IsInitialized() {
		return nil, errors.New("detector: onnx runtime is not initialised (call InitRuntime)")
	}
	if cfg.Sessions == 0 {
		cfg.Sessions = 1
	}
	if cfg.Slots == 0 {
		cfg.Slots = cfg.Sessions + 1
	}
	d := &Detector{log: log.With("component", "detector"), cfg: cfg, done: make(chan struct{})}
	if err := d.inspect(); err != nil {
		d.Close()
		return nil, err
	}
	if err := d.build(); err != nil {
		// Free what build made before it failed (sessions, tensors, Mats).
		d.Close()
		return nil, err
	}
	return d, nil
}

// build creates the decoder, labels, filter, tensors and the session.
func (d *Detector) build() error {
	info := &d.info
	spec := info.Spec
	dec, err := spec.Decoder(info.OutputShape)
	if err != nil {
		return fmt.Errorf("model %s: %w", info.Path, err)
	}
	d.dec = dec
	names, coco, err := spec.ClassLabels(dec.NumClasses())
	if err != nil {
		return fmt.Errorf("model %s: %w", info.Path, err)
	}
	if coco {
		d.log.Info("model names no labels; using the 80 COCO classes", "model", info.Path)
	}
	info.Labels = names
	// MinArea is applied by postprocess once boxes are in frame pixels.
	if d.filter, err = detection.NewFilter(names, d.cfg.ScoreThreshold, d.cfg.AllowLabels, d.cfg.MinScores); err != nil {
		return fmt.Errorf("model %s: %w", info.Path, err)
	}
	d.decodeMin = d.cfg.ScoreThreshold
	for _, s := range d.filter.MinScore {
		d.decodeMin = min(d.decodeMin, s)
	}
	d.nmsOpt = detection.NMSOptions{IoU: d.cfg.IoUThreshold, Agnostic: d.cfg.ClassAgnostic}
	if err := d.newSessions(); err != nil {
		return err
	}
	if err := d.newJobs(); err != nil {
		return err
	}
	d.log.Info("model loaded", "model", info.Path, "format", info.Format, "precision", info.Precision,
		"input", fmt.Sprintf("%dx%d", spec.InputWidth, spec.InputHeight), "channels", spec.ChannelOrder,
		"resize", spec.Resize, "classes", len(names), "description", info.SpecSource, "threads", d.cfg.Threads,
		"sessions", len(d.sessions), "slots", len(d.jobs), "provider", info.Provider,
		"fused_activations", info.FusedActivations)
	return nil
}

// SetScoreThreshold changes the score below which candidates are dropped
// (for labels without their own min_scores entry), as a config reload does.
func (d *Detector) SetScoreThreshold(t float32) error {
	// cfgtypes refuses NaN, which a plain range test lets through and
	// which would make every detection fail the filter.
	if err := cfgtypes.Float32("score_threshold", t, cfgtypes.Unit); err != nil {
		return err
	}
	d.filterMu.Lock()
	defer d.filterMu.Unlock()
	old := d.cfg.ScoreThreshold
	d.cfg.ScoreThreshold = t
	d.decodeMin = t
	for id, s := range d.filter.MinScore {
		if _, own := d.cfg.MinScores[d.info.Labels[id]]; !own && s == old {
			d.filter.MinScore[id] = t
			s = t
		}
		d.decodeMin = min(d.decodeMin, s)
	}
	return nil
}

// Info describes the loaded model.
func (d *Detector) Info() ModelInfo { return d.info }

// Slots is the number of Jobs the detector has.
func (d *Detector) Slots() int { return len(d.jobs) }

// Detect finds objects in img (BGR, 8-bit, 3 channels; not retained) and
// appends them to dst[:0], best first, boxes in img's pixels. It is
// Acquire, Prepare, Infer, Decode and Release in one call. A running
// inference is not interrupted by ctx: it returns after it.
func (d *Detector) Detect(ctx context.Context, img gocv.Mat, dst []detection.Detection) (Result, error) {
	j, err := d.Acquire(ctx)
	if err != nil {
		return Result{}, err
	}
	defer d.Release(j)
	if err := j.Prepare(img); err != nil {
		return Result{Width: img.Cols(), Height: img.Rows()}, err
	}
	if err := j.Infer(ctx); err != nil {
		return Result{Width: img.Cols(), Height: img.Rows()}, err
	}
	return j.Decode(dst), nil
}

// postprocess decodes j's output, filters, runs NMS and maps boxes to the frame.
func (d *Detector) postprocess(j *Job, dst []detection.Detection) []detection.Detection {
	d.filterMu.RLock()
	cand := d.dec.Decode(j.output.GetData(), d.decodeMin, j.cand[:0])
	j.cand = cand[:0] // keep any growth for the next frame
	cand = d.filter.Apply(cand)
	d.filterMu.RUnlock()
	cand = detection.NMS(cand, d.nmsOpt)
	area := d.cfg.MinArea
	for _, det := range cand {
		det.Box = j.geom.ToFrame(det.Box)
		if area > 0 && det.Box.Area() < area {
			continue
		}
		if det.Box.Area() == 0 || det.ClassID >= len(d.info.Labels) {
			continue
		}
		det.Label = d.info.Labels[det.ClassID]
		dst = append(dst, det)
		if d.cfg.MaxDetections > 0 && len(dst) == d.cfg.MaxDetections {
			break
		}
	}
	return dst
}

// ErrClosed is returned by Acquire, Infer and Detect after Close.
var ErrClosed = errors.New("detector closed")

// Close waits for every acquired Job to be released, then frees the
// sessions, the bindings, the tensors and the scratch Mats. It is
// idempotent; Acquire, Infer and Detect return ErrClosed once it started.
func (d *Detector) Close() error {
	if d == nil {
		return nil
	}
	d.closing.Do(func() {
		close(d.done)
		for range d.jobs {
			<-d.free
		}
		var errs []error
		for _, j := range d.jobs {
			errs = append(errs, j.close())
		}
		for _, s := range d.sessions {
			errs = append(errs, s.Destroy())
		}
		d.closeErr = errors.Join(errs...)
	})
	return d.closeErr
}
