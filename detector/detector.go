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
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	ort "github.com/yalue/onnxruntime_go"
	"gocv.io/x/gocv"

	"github.com/edgedet/edgedet/detection"
	"github.com/edgedet/edgedet/internal/cfgtypes"
	"github.com/edgedet/edgedet/internal/readlimit"
	"github.com/edgedet/edgedet/onnx"
)

// MaxModelSize is the largest model file edgedet reads: 2 GiB, the most a
// serialised protobuf (an ONNX model without external data) can be.
const MaxModelSize = 2 << 30

// Config configures a Detector. DefaultConfig gives the defaults; decode a
// config file over it.
type Config struct {
	// Model is the path of the .onnx file.
	Model string `toml:"model"`
	// Spec overrides the model description (format, input size, channel
	// order, scale, mean/std, resize, pad value, labels). The model's
	// metadata wins over a sidecar <model>.toml, which wins over these.
	detection.Spec
	// Threads is ONNX Runtime's intra-op thread count per session (0 =
	// ORT's default: one per core).
	Threads int `toml:"threads"`
	// Sessions is the number of ONNX Runtime sessions frames run on in
	// parallel (default 1). Cameras share them; more than one can only pay
	// when the cores outnumber Threads, or on accelerators (measure with
	// edgedet bench --video --cameras N --sessions N).
	Sessions int `toml:"sessions"`
	// Slots is the number of frames that can be in flight at once
	// (preprocessed, waiting, running or being decoded); 0 = Sessions+1,
	// enough for one frame to be preprocessed while every session runs.
	// The agent sets it from the number of cameras.
	Slots int `toml:"-"`
	// SpinWait keeps ONNX Runtime's intra-op threads spinning between
	// runs ("session.intra_op.allow_spinning"). It shaves a little latency
	// off back-to-back runs but burns CPU while the agent waits for the
	// next frame; off by default (measured here at 10 fps with 2 threads:
	// 41 % CPU instead of 83 %).
	SpinWait bool `toml:"spin_wait"`
	// GraphOptimization is "disable", "basic", "extended" or "all".
	GraphOptimization string `toml:"graph_optimization"`
	// ScoreThreshold drops candidates scoring below it.
	ScoreThreshold float32 `toml:"score_threshold"`
	// IoUThreshold is the NMS overlap above which the lower box is dropped.
	IoUThreshold float32 `toml:"iou_threshold"`
	// ClassAgnostic makes NMS suppress overlapping boxes of any class.
	ClassAgnostic bool `toml:"class_agnostic"`
	// MaxDetections caps detections per frame (0 = no cap).
	MaxDetections int `toml:"max_detections"`
	// MinArea drops boxes smaller than this many frame pixels.
	MinArea float32 `toml:"min_area"`
	// AllowLabels keeps only these labels (empty = all).
	AllowLabels []string `toml:"allow_labels"`
	// MinScores sets a per-label score threshold instead of ScoreThreshold.
	MinScores map[string]float32 `toml:"min_scores"`
	// ProfilePrefix, when set, turns on ONNX Runtime's profiler; it writes
	// <prefix>_<timestamp>.json when the detector is closed.
	ProfilePrefix string `toml:"-"`
	// ONNXRuntimeLibrary is the libonnxruntime.so path the binary loads
	// (empty = search; see platforms.FindONNXRuntime).
	ONNXRuntimeLibrary string `toml:"onnxruntime_library"`
	// Providers are the ONNX Runtime execution providers to try, in order of
	// preference: tensorrt, cuda, openvino, xnnpack, acl, armnn, cpu
	// (default ["cpu"]). cpu, if listed, must be last. webgpu is refused
	// (appending it breaks ONNX Runtime's teardown); armnn is accepted but
	// always fails, as the prebuilt libraries do not have it.
	Providers []string `toml:"providers"`
	// ProviderFallback: a provider that fails is logged with ONNX Runtime's
	// reason and the next one is tried; false makes the first failure a
	// startup error.
	ProviderFallback bool `toml:"provider_fallback"`
	// ProviderOptions are passed to each provider as is, keyed by provider
	// name, e.g. [detector.provider_options.tensorrt] trt_fp16_enable = "1",
	// trt_int8_enable = "1", trt_engine_cache_enable = "1",
	// trt_engine_cache_path = "/var/cache/edgedet",
	// trt_max_workspace_size = "1073741824".
	ProviderOptions map[string]map[string]string `toml:"provider_options"`
	// FuseActivations runs the activations of INT8 (QDQ) models on the CPU
	// provider as one 256-entry table lookup per element (package
	// detector/lut): ONNX Runtime optimises the model once at load, the
	// quantised SiLU/Sigmoid/LeakyRelu/HardSwish of the optimised graph are
	// rewritten to edgedet's custom operator, and the sessions load that
	// graph, which stays in memory. Other models and providers are not
	// affected. Default true.
	FuseActivations bool `toml:"fuse_activations"`
}

// DefaultConfig returns the defaults: score 0.25, IoU 0.45, per-class NMS,
// at most 100 detections, all graph optimisations, the CPU provider with
// fallback on.
func DefaultConfig() Config {
	return Config{
		Providers:         []string{ProviderCPU},
		ProviderFallback:  true,
		FuseActivations:   true,
		GraphOptimization: "all",
		ScoreThreshold:    0.25,
		IoUThreshold:      0.45,
		MaxDetections:     100,
	}
}

// Validate reports every invalid field, named as in the config file.
func (c Config) Validate() error {
	var errs []error
	if c.Model == "" {
		errs = append(errs, errors.New("model: not set"))
	}
	if c.Threads < 0 {
		errs = append(errs, fmt.Errorf("threads: %d must be >= 0", c.Threads))
	}
	if c.Sessions < 0 || c.Sessions > 16 {
		errs = append(errs, fmt.Errorf("sessions: %d not in 0..16", c.Sessions))
	}
	if c.Slots < 0 {
		errs = append(errs, fmt.Errorf("slots: %d must be >= 0", c.Slots))
	}
	if _, err := graphOptLevel(c.GraphOptimization); err != nil {
		errs = append(errs, err)
	}
	// NaN would pass a plain range test and turn NMS off: cfgtypes rejects
	// NaN and ±Inf for every float key.
	if err := cfgtypes.Float32("score_threshold", c.ScoreThreshold, cfgtypes.Unit); err != nil {
		errs = append(errs, err)
	}
	if err := cfgtypes.Float32("iou_threshold", c.IoUThreshold, cfgtypes.UnitOpen); err != nil {
		errs = append(errs, err)
	}
	if c.MaxDetections < 0 {
		errs = append(errs, fmt.Errorf("max_detections: %d must be >= 0", c.MaxDetections))
	}
	if err := cfgtypes.Float32("min_area", c.MinArea, cfgtypes.NonNegative); err != nil {
		errs = append(errs, err)
	}
	for _, l := range slices.Sorted(maps.Keys(c.MinScores)) {
		if err := cfgtypes.Float32("min_scores."+l, c.MinScores[l], cfgtypes.Unit); err != nil {
			errs = append(errs, err)
		}
	}
	errs = append(errs, c.validateProviders()...)
	if err := c.Spec.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func graphOptLevel(s string) (ort.GraphOptimizationLevel, error) {
	switch s {
	case "disable":
		return ort.GraphOptimizationLevelDisableAll, nil
	case "basic":
		return ort.GraphOptimizationLevelEnableBasic, nil
	case "extended":
		return ort.GraphOptimizationLevelEnableExtended, nil
	case "all", "":
		return ort.GraphOptimizationLevelEnableAll, nil
	}
	return 0, fmt.Errorf("graph_optimization: %q is not one of disable, basic, extended, all", s)
}

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

// inspect reads the model's inputs, outputs and metadata and resolves its Spec.
func (d *Detector) inspect() error {
	path := d.cfg.Model
	raw, err := readlimit.ReadRegularFile(path, MaxModelSize)
	if err != nil {
		return fmt.Errorf("load model: %w", err)
	}
	ins, outs, err := ort.GetInputOutputInfoWithONNXData(raw)
	if err != nil {
		return fmt.Errorf("load model %s: not a valid ONNX model: %w", path, err)
	}
	if len(ins) != 1 {
		return fmt.Errorf("model %s has %d inputs (%s); edgedet runs models with one image input", path, len(ins), ioNames(ins))
	}
	if len(outs) != 1 {
		return fmt.Errorf("model %s has %d outputs (%s); edgedet decodes YOLO models with one output tensor", path, len(outs), ioNames(outs))
	}
	in, out := ins[0], outs[0]
	if in.DataType != ort.TensorElementDataTypeFloat || out.DataType != ort.TensorElementDataTypeFloat {
		return fmt.Errorf("model %s: input %q is %v and output %q is %v; edgedet needs float32 input and output", path, in.Name, in.DataType, out.Name, out.DataType)
	}
	if len(in.Dimensions) != 4 || (in.Dimensions[1] != 3 && in.Dimensions[1] > 0) {
		return fmt.Errorf("model %s: input %q has shape %v; edgedet needs an NCHW image input [1,3,H,W]", path, in.Name, in.Dimensions)
	}

	meta := map[string]string{}
	if md, err := ort.GetModelMetadataWithONNXData(raw); err == nil {
		keys, _ := md.GetCustomMetadataMapKeys()
		for _, k := range keys {
			if v, ok, _ := md.LookupCustomMetadataMap(k); ok {
				meta[k] = v
			}
		}
		md.Destroy()
	}

	spec := d.cfg.Spec
	sources := []string{"config"}
	side, sidePath, ok, err := detection.LoadSidecar(path)
	if err != nil {
		return err
	}
	if ok {
		spec = spec.Merge(side)
		sources = append(sources, sidePath)
	}
	metaSpec, ok, err := detection.SpecFromMetadata(meta)
	if err != nil {
		return fmt.Errorf("model %s: %w", path, err)
	}
	if ok {
		spec = spec.Merge(metaSpec)
		sources = append(sources, "onnx metadata")
	}
	if h, w := in.Dimensions[2], in.Dimensions[3]; h > 0 && w > 0 {
		if (spec.InputWidth != 0 && int64(spec.InputWidth) != w) || (spec.InputHeight != 0 && int64(spec.InputHeight) != h) {
			return fmt.Errorf("model %s: input %q is fixed at %dx%d but the description says %dx%d", path, in.Name, w, h, spec.InputWidth, spec.InputHeight)
		}
		spec.InputWidth, spec.InputHeight = int(w), int(h)
	}
	if spec.InputWidth <= 0 || spec.InputHeight <= 0 {
		return fmt.Errorf("model %s: input %q has dynamic size %v; set input_width and input_height", path, in.Name, in.Dimensions)
	}
	if err := detection.CheckInputSize(spec.InputWidth, spec.InputHeight); err != nil {
		return fmt.Errorf("model %s: input %q: %w", path, in.Name, err)
	}
	inShape := []int64{1, 3, int64(spec.InputHeight), int64(spec.InputWidth)}
	outShape := append([]int64(nil), out.Dimensions...)
	if hasDynamic(outShape) {
		if outShape, err = probeOutputShape(raw, in.Name, out.Name, inShape); err != nil {
			return fmt.Errorf("model %s: %w", path, err)
		}
	}
	if spec.Format == "" {
		f, err := detection.DetectFormat(outShape, spec.InputWidth, spec.InputHeight)
		if err != nil {
			return fmt.Errorf("model %s: %w", path, err)
		}
		spec.Format = f
	}
	spec = spec.WithDefaults()
	if err := spec.Validate(); err != nil {
		return fmt.Errorf("model %s description: %w", path, err)
	}
	if spec.Precision == "" {
		m, err := onnx.DecodeModel(raw)
		if err != nil {
			return fmt.Errorf("model %s: %w", path, err)
		}
		spec.Precision = onnx.Precision(m)
	}
	d.info = ModelInfo{
		Path:        path,
		Name:        strings.TrimSuffix(filepath.Base(path), filepath.Ext(path)),
		Precision:   spec.Precision,
		Format:      spec.Format,
		InputName:   in.Name,
		OutputName:  out.Name,
		InputShape:  inShape,
		OutputShape: outShape,
		Spec:        spec,
		SpecSource:  strings.Join(sources, " < "),
	}
	return nil
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
	if t < 0 || t > 1 {
		return fmt.Errorf("score_threshold: %g not in 0..1", t)
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

func ioNames(infos []ort.InputOutputInfo) string {
	names := make([]string, len(infos))
	for i, in := range infos {
		names[i] = fmt.Sprintf("%s%v", in.Name, in.Dimensions)
	}
	return strings.Join(names, ", ")
}

func hasDynamic(shape []int64) bool {
	for _, d := range shape {
		if d <= 0 {
			return true
		}
	}
	return false
}

// probeOutputShape runs the model once on a zero input to learn the output
// shape of a model exported with dynamic axes.
func probeOutputShape(raw []byte, inName, outName string, inShape []int64) ([]int64, error) {
	s, err := ort.NewDynamicAdvancedSessionWithONNXData(raw, []string{inName}, []string{outName}, nil)
	if err != nil {
		return nil, fmt.Errorf("probe output shape: %w", err)
	}
	defer s.Destroy()
	in, err := ort.NewEmptyTensor[float32](ort.NewShape(inShape...))
	if err != nil {
		return nil, fmt.Errorf("probe output shape: %w", err)
	}
	defer in.Destroy()
	outs := []ort.Value{nil}
	if err := s.Run([]ort.Value{in}, outs); err != nil {
		return nil, fmt.Errorf("probe output shape with input %v: %w", inShape, err)
	}
	defer outs[0].Destroy()
	return append([]int64(nil), outs[0].GetShape()...), nil
}
