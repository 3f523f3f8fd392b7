// Package detector runs YOLO object-detection models in ONNX Runtime:
// preprocessing described per model, output decoders for the common YOLO
// layouts, NMS and filtering, with boxes mapped back to frame pixels.
package detector

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	ort "github.com/yalue/onnxruntime_go"
	"gocv.io/x/gocv"

	"github.com/edgedet/edgedet/internal/labels"
)

// Config configures a Detector. DefaultConfig gives the defaults; decode a
// config file over it.
type Config struct {
	// Model is the path of the .onnx file.
	Model string `toml:"model"`
	// Spec overrides the model description (format, input size, channel
	// order, scale, mean/std, resize, pad value, labels). The model's
	// metadata wins over a sidecar <model>.toml, which wins over these.
	Spec
	// Threads is ONNX Runtime's intra-op thread count (0 = ORT's default).
	Threads int `toml:"threads"`
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
}

// DefaultConfig returns the defaults: score 0.25, IoU 0.45, per-class NMS,
// at most 100 detections, all graph optimisations, the CPU provider with
// fallback on.
func DefaultConfig() Config {
	return Config{
		Providers:         []string{ProviderCPU},
		ProviderFallback:  true,
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
	if _, err := graphOptLevel(c.GraphOptimization); err != nil {
		errs = append(errs, err)
	}
	if c.ScoreThreshold < 0 || c.ScoreThreshold > 1 {
		errs = append(errs, fmt.Errorf("score_threshold: %g not in 0..1", c.ScoreThreshold))
	}
	if c.IoUThreshold <= 0 || c.IoUThreshold > 1 {
		errs = append(errs, fmt.Errorf("iou_threshold: %g not in (0,1]", c.IoUThreshold))
	}
	if c.MaxDetections < 0 {
		errs = append(errs, fmt.Errorf("max_detections: %d must be >= 0", c.MaxDetections))
	}
	if c.MinArea < 0 {
		errs = append(errs, fmt.Errorf("min_area: %g must be >= 0", c.MinArea))
	}
	for l, s := range c.MinScores {
		if s < 0 || s > 1 {
			errs = append(errs, fmt.Errorf("min_scores.%s: %g not in 0..1", l, s))
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
	Format      Format
	InputName   string
	OutputName  string
	InputShape  []int64
	OutputShape []int64
	Spec        Spec // the resolved description
	SpecSource  string
	Labels      []string
	// Provider is the execution provider the session runs on.
	Provider string
	// ProviderErrors are the providers tried before it, each as
	// "<provider>: <ONNX Runtime's reason>".
	ProviderErrors []string
}

// Timings are the stage durations of one Detect call.
type Timings struct {
	Preprocess, Inference, Postprocess time.Duration
}

// Result is what Detect found in one image.
type Result struct {
	Detections []Detection // boxes in image pixels, best first
	Width      int         // image size
	Height     int
	Timings    Timings
}

// Detector runs one model. Detect may be called from several goroutines;
// calls are serialised on the one ONNX Runtime session and its tensors.
type Detector struct {
	log  *slog.Logger
	cfg  Config
	info ModelInfo

	mu      sync.Mutex
	session *ort.AdvancedSession
	input   *ort.Tensor[float32]
	output  *ort.Tensor[float32]
	runOpts *ort.RunOptions
	pre     *Preprocessor
	dec     Decoder
	filter  Filter
	// decodeMin is the lowest score any label accepts: the decoder's cut.
	decodeMin float32
	nmsOpt    NMSOptions
	cand      []Detection
	closed    bool
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
	d := &Detector{log: log.With("component", "detector"), cfg: cfg}
	if err := d.inspect(); err != nil {
		d.Close()
		return nil, err
	}
	if err := d.build(); err != nil {
		// Free what build made before it failed (tensors, scratch Mat).
		d.Close()
		return nil, err
	}
	return d, nil
}

// inspect reads the model's inputs, outputs and metadata and resolves its Spec.
func (d *Detector) inspect() error {
	path := d.cfg.Model
	raw, err := os.ReadFile(path)
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
	side, sidePath, ok, err := LoadSidecar(path)
	if err != nil {
		return err
	}
	if ok {
		spec = spec.Merge(side)
		sources = append(sources, sidePath)
	}
	metaSpec, ok, err := SpecFromMetadata(meta)
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
	inShape := []int64{1, 3, int64(spec.InputHeight), int64(spec.InputWidth)}
	outShape := append([]int64(nil), out.Dimensions...)
	if hasDynamic(outShape) {
		if outShape, err = probeOutputShape(raw, in.Name, out.Name, inShape); err != nil {
			return fmt.Errorf("model %s: %w", path, err)
		}
	}
	if spec.Format == "" {
		f, err := DetectFormat(outShape, spec.InputWidth, spec.InputHeight)
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
		spec.Precision = precisionOf(raw)
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
	dec, err := NewDecoder(spec.Format, info.OutputShape, spec.InputWidth, spec.InputHeight)
	if err != nil {
		return fmt.Errorf("model %s: %w", info.Path, err)
	}
	if spec.Format == FormatFastestV2 {
		if dec, err = newFastestV2Decoder(dec.NumClasses(), spec.InputWidth, spec.InputHeight, spec.Anchors); err != nil {
			return fmt.Errorf("model %s: %w", info.Path, err)
		}
	}
	d.dec = dec
	names := spec.Labels
	if names == nil && spec.LabelsFile != "" {
		if names, err = labels.Load(spec.LabelsFile); err != nil {
			return fmt.Errorf("model %s: %w", info.Path, err)
		}
	}
	nc := dec.NumClasses() // 0: the layout does not tell (end2end)
	if names == nil && (nc == len(labels.COCO80) || nc == 0) {
		d.log.Info("model names no labels; using the 80 COCO classes", "model", info.Path)
		names = labels.COCO80
	}
	if nc != 0 && len(names) != nc {
		return fmt.Errorf("model %s: %d labels for %d classes; set labels or labels_file", info.Path, len(names), nc)
	}
	info.Labels = names
	if d.filter, err = buildFilter(d.cfg, names); err != nil {
		return fmt.Errorf("model %s: %w", info.Path, err)
	}
	d.decodeMin = d.cfg.ScoreThreshold
	for _, s := range d.filter.MinScore {
		d.decodeMin = min(d.decodeMin, s)
	}
	d.nmsOpt = NMSOptions{IoU: d.cfg.IoUThreshold, Agnostic: d.cfg.ClassAgnostic}
	if d.pre, err = NewPreprocessor(spec); err != nil {
		return fmt.Errorf("model %s: %w", info.Path, err)
	}

	if d.input, err = ort.NewEmptyTensor[float32](ort.NewShape(info.InputShape...)); err != nil {
		return fmt.Errorf("allocate input tensor %v: %w", info.InputShape, err)
	}
	if d.output, err = ort.NewEmptyTensor[float32](ort.NewShape(info.OutputShape...)); err != nil {
		return fmt.Errorf("allocate output tensor %v: %w", info.OutputShape, err)
	}
	if err := d.newSession(); err != nil {
		return err
	}
	if d.runOpts, err = ort.NewRunOptions(); err != nil {
		return fmt.Errorf("run options: %w", err)
	}
	d.cand = make([]Detection, 0, 1024)
	d.log.Info("model loaded", "model", info.Path, "format", info.Format, "precision", info.Precision,
		"input", fmt.Sprintf("%dx%d", spec.InputWidth, spec.InputHeight), "channels", spec.ChannelOrder,
		"resize", spec.Resize, "classes", len(names), "description", info.SpecSource, "threads", d.cfg.Threads,
		"provider", info.Provider)
	return nil
}

func buildFilter(cfg Config, labels []string) (Filter, error) {
	index := make(map[string]int, len(labels))
	for i, l := range labels {
		index[l] = i
	}
	// MinArea is applied by postprocess once boxes are in frame pixels.
	f := Filter{MinScore: map[int]float32{}}
	if len(cfg.AllowLabels) > 0 {
		f.Allow = map[int]bool{}
		for _, l := range cfg.AllowLabels {
			id, ok := index[l]
			if !ok {
				return Filter{}, fmt.Errorf("allow_labels: %q is not a label of the model", l)
			}
			f.Allow[id] = true
		}
	}
	for i := range labels {
		f.MinScore[i] = cfg.ScoreThreshold
	}
	for l, s := range cfg.MinScores {
		id, ok := index[l]
		if !ok {
			return Filter{}, fmt.Errorf("min_scores: %q is not a label of the model", l)
		}
		f.MinScore[id] = s
	}
	return f, nil
}

// SetScoreThreshold changes the score below which candidates are dropped
// (for labels without their own min_scores entry), as a config reload does.
func (d *Detector) SetScoreThreshold(t float32) error {
	if t < 0 || t > 1 {
		return fmt.Errorf("score_threshold: %g not in 0..1", t)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
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

// Detect finds objects in img (BGR, 8-bit, 3 channels; not retained) and
// appends them to dst[:0], best first, boxes in img's pixels. Cancelling
// ctx terminates a running inference.
func (d *Detector) Detect(ctx context.Context, img gocv.Mat, dst []Detection) (Result, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return Result{}, ErrClosed
	}
	res := Result{Width: img.Cols(), Height: img.Rows()}
	t0 := time.Now()
	geom, err := d.pre.Run(img, d.input.GetData())
	if err != nil {
		return res, err
	}
	t1 := time.Now()
	if err := d.infer(ctx); err != nil {
		return res, err
	}
	t2 := time.Now()
	res.Detections = d.postprocess(geom, dst[:0])
	res.Timings = Timings{Preprocess: t1.Sub(t0), Inference: t2.Sub(t1), Postprocess: time.Since(t2)}
	return res, nil
}

func (d *Detector) infer(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { d.runOpts.Terminate() })
	err := d.session.RunWithOptions(d.runOpts)
	if !stop() {
		// ctx was cancelled while running: the run was (or is about to be)
		// terminated; re-arm the options for the next call.
		d.runOpts.UnsetTerminate()
		return ctx.Err()
	}
	if err != nil {
		return fmt.Errorf("run model %s: %w", d.info.Name, err)
	}
	return nil
}

// postprocess decodes the output, filters, runs NMS and maps boxes to the frame.
func (d *Detector) postprocess(g Geometry, dst []Detection) []Detection {
	cand := d.dec.Decode(d.output.GetData(), d.decodeMin, d.cand[:0])
	d.cand = cand[:0] // keep any growth for the next frame
	cand = d.filter.Apply(cand)
	cand = NMS(cand, d.nmsOpt)
	area := d.cfg.MinArea
	for _, det := range cand {
		det.Box = g.ToFrame(det.Box)
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

// ErrClosed is returned by Detect after Close.
var ErrClosed = errors.New("detector closed")

// Close frees the session, then its tensors, then the scratch Mat. It is
// idempotent; Detect calls after it return ErrClosed.
func (d *Detector) Close() error {
	if d == nil {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	d.closed = true
	var errs []error
	if d.session != nil {
		errs = append(errs, d.session.Destroy())
	}
	if d.runOpts != nil {
		errs = append(errs, d.runOpts.Destroy())
	}
	if d.input != nil {
		errs = append(errs, d.input.Destroy())
	}
	if d.output != nil {
		errs = append(errs, d.output.Destroy())
	}
	errs = append(errs, d.pre.Close())
	return errors.Join(errs...)
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

// quantOps are operator names that only a quantized graph contains.
var quantOps = [][]byte{
	[]byte("QuantizeLinear"), []byte("DequantizeLinear"), []byte("DynamicQuantizeLinear"),
	[]byte("QLinearConv"), []byte("ConvInteger"), []byte("MatMulInteger"), []byte("QLinearMatMul"),
}

// precisionOf reports "int8" when the serialized graph names a quantization
// operator (op types are stored as plain strings in the protobuf), else "fp32".
func precisionOf(raw []byte) string {
	for _, op := range quantOps {
		if bytes.Contains(raw, op) {
			return "int8"
		}
	}
	return "fp32"
}
