package detection

import (
	"fmt"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/edgedet/edgedet/internal/labels"
)

// MetadataSpecKey is the ONNX metadata key under which edgedet stores a
// model description, in the sidecar's TOML syntax. `edgedet quantize` and
// `edgedet prune` write the description of their source model there, so
// that a model derived from one that needed a sidecar (an unusual output
// layout, RGB input, ImageNet normalisation) runs without copying it. It
// ranks below a sidecar next to the model, which the user controls.
const MetadataSpecKey = "edgedet.spec"

// EncodeMetadata returns s in sidecar syntax for MetadataSpecKey: the
// labels inline, read from the labels file if that is where they are (its
// path would not travel with the model), and no precision (a derived model
// has its own).
func (s Spec) EncodeMetadata() (string, error) {
	if s.Labels == nil && s.LabelsFile != "" {
		names, err := labels.Load(s.LabelsFile)
		if err != nil {
			return "", err
		}
		s.Labels = names
	}
	s.Precision, s.LabelsFile = "", ""
	var b strings.Builder
	if err := toml.NewEncoder(&b).Encode(s); err != nil {
		return "", fmt.Errorf("encode model description: %w", err)
	}
	return b.String(), nil
}

// SpecFromEdgedetMetadata reads the description stored under
// MetadataSpecKey; ok is false when there is none. It must be a valid
// sidecar without labels_file.
func SpecFromEdgedetMetadata(meta map[string]string) (spec Spec, ok bool, err error) {
	v, has := meta[MetadataSpecKey]
	if !has {
		return Spec{}, false, nil
	}
	if len(v) > maxSidecarSize {
		return Spec{}, false, fmt.Errorf("metadata %s: %d bytes, more than %d", MetadataSpecKey, len(v), maxSidecarSize)
	}
	name := "metadata " + MetadataSpecKey
	if spec, err = ParseSidecar([]byte(v), name); err != nil {
		return Spec{}, false, err
	}
	if spec.LabelsFile != "" {
		return Spec{}, false, fmt.Errorf("%s: labels_file %q: a model's metadata lists its labels instead", name, spec.LabelsFile)
	}
	return spec, true, nil
}
