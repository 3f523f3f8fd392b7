package detector

import (
	"errors"
	"fmt"
	"maps"
	"slices"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/edgedet/edgedet/detection"
	"github.com/edgedet/edgedet/internal/cfgtypes"
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
	// Ultralytics metadata wins over a sidecar <model>.toml, which wins
	// over the description edgedet stored in the model's metadata
	// (detection.MetadataSpecKey, written by quantize and prune), which
	// wins over these.
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
