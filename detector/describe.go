package detector

import (
	"errors"
	"fmt"

	ort "github.com/yalue/onnxruntime_go"
)

// Describe resolves the description of cfg.Model as New does (input size,
// format, precision, preprocessing, from the config, a sidecar file and the
// model's metadata) without creating the inference session, its tensors or
// the decoder: what tools that prepare frames the way the agent does
// (calibration, pruning) need. ONNX Runtime must be initialised, since it
// reads the model's inputs and outputs; a model with a dynamic output shape
// is run once on a zero input to learn it, as New does. ModelInfo.Labels
// and Provider stay empty: they are resolved when the session is built.
func Describe(cfg Config) (ModelInfo, error) {
	if err := cfg.Validate(); err != nil {
		return ModelInfo{}, fmt.Errorf("detector config: %w", err)
	}
	if !ort.IsInitialized() {
		return ModelInfo{}, errors.New("detector: onnx runtime is not initialised (call InitRuntime)")
	}
	d := &Detector{cfg: cfg}
	if err := d.inspect(); err != nil {
		return ModelInfo{}, err
	}
	return d.info, nil
}
