package detection

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/edgedet/edgedet/internal/cfgtypes"
	"github.com/edgedet/edgedet/internal/labels"
	"github.com/edgedet/edgedet/internal/readlimit"
)

// MaxInputSize is the largest model input width or height edgedet accepts
// (from the model, its metadata, a sidecar or the config): one 4096x4096
// input tensor already takes 192 MiB per slot.
const MaxInputSize = 4096

// ImageNetMean and ImageNetStd are the per-channel (R, G, B) mean and
// standard deviation of ImageNet images scaled to 0..1, the normalisation
// many PyTorch backbones are trained with (yolox_levels' default).
var (
	ImageNetMean = [3]float32{0.485, 0.456, 0.406}
	ImageNetStd  = [3]float32{0.229, 0.224, 0.225}
)

// maxSidecarSize is the largest model sidecar LoadSidecar reads.
const maxSidecarSize = 1 << 20

// Spec describes how a model wants its input prepared and its output read.
// Zero values mean "not set": specs from several places are layered with
// Merge and completed by WithDefaults.
type Spec struct {
	// Format selects the output decoder; empty = detect from the output shape.
	Format Format `toml:"format"`
	// InputWidth and InputHeight are the model input size in pixels; empty =
	// taken from the model's input shape.
	InputWidth  int `toml:"input_width"`
	InputHeight int `toml:"input_height"`
	// ChannelOrder is "bgr" or "rgb".
	ChannelOrder string `toml:"channel_order"`
	// Scale multiplies each 0..255 pixel value before Mean/Std (1/255 for
	// Ultralytics, 1 for YOLOX).
	Scale float32 `toml:"scale"`
	// Mean and Std (per channel, in model channel order) normalise the scaled
	// value: (v*Scale - Mean) / Std.
	Mean []float32 `toml:"mean"`
	Std  []float32 `toml:"std"`
	// Resize is the resize mode.
	Resize ResizeMode `toml:"resize"`
	// PadValue is the 0..255 grey level of letterbox padding.
	PadValue *int `toml:"pad_value"`
	// Strides are the YOLOX grid strides (default 8,16,32).
	Strides []int `toml:"strides"`
	// Anchors are Yolo-FastestV2's anchor sizes: 3 (w, h) pairs for stride
	// 16, then 3 for stride 32, in input pixels (default: the COCO model's).
	Anchors []float32 `toml:"anchors"`
	// Labels are the class names in class-id order; LabelsFile is a text file
	// with one name per line (relative to the file that names it).
	Labels     []string `toml:"labels"`
	LabelsFile string   `toml:"labels_file"`
	// Precision is "fp32", "fp16" or "int8"; empty = read from the graph.
	Precision string `toml:"precision"`
}

// Merge returns s with every field that o sets replacing s's.
func (s Spec) Merge(o Spec) Spec {
	if o.Format != "" {
		s.Format = o.Format
	}
	if o.InputWidth != 0 {
		s.InputWidth = o.InputWidth
	}
	if o.InputHeight != 0 {
		s.InputHeight = o.InputHeight
	}
	if o.ChannelOrder != "" {
		s.ChannelOrder = o.ChannelOrder
	}
	if o.Scale != 0 {
		s.Scale = o.Scale
	}
	if o.Mean != nil {
		s.Mean = append([]float32(nil), o.Mean...)
	}
	if o.Std != nil {
		s.Std = append([]float32(nil), o.Std...)
	}
	if o.Resize != "" {
		s.Resize = o.Resize
	}
	if o.PadValue != nil {
		v := *o.PadValue
		s.PadValue = &v
	}
	if o.Strides != nil {
		s.Strides = append([]int(nil), o.Strides...)
	}
	if o.Anchors != nil {
		s.Anchors = append([]float32(nil), o.Anchors...)
	}
	if o.Labels != nil {
		s.Labels = append([]string(nil), o.Labels...)
		s.LabelsFile = ""
	} else if o.LabelsFile != "" {
		s.LabelsFile = o.LabelsFile
		s.Labels = nil
	}
	if o.Precision != "" {
		s.Precision = o.Precision
	}
	return s
}

// WithDefaults fills what is still unset with the conventions of the
// spec's format: the official YOLOX export takes BGR 0..255 with a top-left
// letterbox; Ultralytics-style heads take RGB /255 with a centred one;
// yolox_levels (bubbliiiing/yolox-pytorch) takes RGB /255 normalised with
// the ImageNet mean and std, centred letterbox with grey 128 padding.
func (s Spec) WithDefaults() Spec {
	if s.Format == FormatYOLOXLevels {
		if s.Scale == 0 {
			s.Scale = 1.0 / 255
		}
		if s.Mean == nil {
			s.Mean = append([]float32(nil), ImageNetMean[:]...)
		}
		if s.Std == nil {
			s.Std = append([]float32(nil), ImageNetStd[:]...)
		}
		if s.PadValue == nil {
			v := 128
			s.PadValue = &v
		}
	}
	if s.Format == FormatFastestV2 {
		// Yolo-FastestV2: BGR, plain resize, /255.
		if s.ChannelOrder == "" {
			s.ChannelOrder = "bgr"
		}
		if s.Resize == "" {
			s.Resize = ResizeStretch
		}
		if s.Anchors == nil {
			s.Anchors = append([]float32(nil), DefaultFastestV2Anchors...)
		}
	}
	yolox := s.Format == FormatYOLOX
	if s.ChannelOrder == "" {
		s.ChannelOrder = "rgb"
		if yolox {
			s.ChannelOrder = "bgr"
		}
	}
	if s.Scale == 0 {
		s.Scale = 1.0 / 255
		if yolox {
			s.Scale = 1
		}
	}
	if s.Mean == nil {
		s.Mean = []float32{0, 0, 0}
	}
	if s.Std == nil {
		s.Std = []float32{1, 1, 1}
	}
	if s.Resize == "" {
		s.Resize = ResizeLetterbox
		if yolox {
			s.Resize = ResizeLetterboxTopLeft
		}
	}
	if s.PadValue == nil {
		v := 114
		s.PadValue = &v
	}
	if s.Strides == nil {
		s.Strides = []int{8, 16, 32}
	}
	return s
}

// Validate reports every invalid field, naming it. Unset fields are valid:
// a partial spec (from config or a sidecar) validates too.
func (s Spec) Validate() error {
	var errs []error
	switch s.Format {
	case "", FormatYOLOv8, FormatYOLOv5, FormatYOLOX, FormatYOLOXLevels, FormatEnd2End, FormatFastestV2:
	default:
		errs = append(errs, fmt.Errorf("format: %q is not one of yolov8, yolov5, yolox, yolox_levels, end2end, fastestv2", s.Format))
	}
	if s.Anchors != nil && len(s.Anchors) != 12 {
		errs = append(errs, fmt.Errorf("anchors: %d values, want 12 (3 w,h pairs for stride 16, then 3 for stride 32)", len(s.Anchors)))
	}
	for i, v := range s.Anchors {
		if err := cfgtypes.Float32(fmt.Sprintf("anchors[%d]", i), v, cfgtypes.Positive); err != nil {
			errs = append(errs, err)
		}
	}
	if err := CheckInputSize(s.InputWidth, s.InputHeight); err != nil {
		errs = append(errs, err)
	}
	if s.ChannelOrder != "" && s.ChannelOrder != "bgr" && s.ChannelOrder != "rgb" {
		errs = append(errs, fmt.Errorf("channel_order: %q is not \"bgr\" or \"rgb\"", s.ChannelOrder))
	}
	if s.Scale != 0 { // 0 = unset
		if err := cfgtypes.Float32("scale", s.Scale, cfgtypes.Positive); err != nil {
			errs = append(errs, err)
		}
	}
	for i, v := range s.Mean {
		if err := cfgtypes.Float32(fmt.Sprintf("mean[%d]", i), v, cfgtypes.AnyFinite); err != nil {
			errs = append(errs, err)
		}
	}
	if s.Mean != nil && len(s.Mean) != 3 {
		errs = append(errs, fmt.Errorf("mean: %v must have 3 values", s.Mean))
	}
	if s.Std != nil && len(s.Std) != 3 {
		errs = append(errs, fmt.Errorf("std: %v must have 3 values", s.Std))
	} else {
		for i, v := range s.Std {
			if v == 0 {
				errs = append(errs, fmt.Errorf("std[%d]: must not be 0", i))
			} else if err := cfgtypes.Float32(fmt.Sprintf("std[%d]", i), v, cfgtypes.AnyFinite); err != nil {
				errs = append(errs, err)
			}
		}
	}
	switch s.Resize {
	case "", ResizeLetterbox, ResizeLetterboxTopLeft, ResizeStretch:
	default:
		errs = append(errs, fmt.Errorf("resize: %q is not one of letterbox, letterbox_topleft, stretch", s.Resize))
	}
	if s.PadValue != nil && (*s.PadValue < 0 || *s.PadValue > 255) {
		errs = append(errs, fmt.Errorf("pad_value: %d not in 0..255", *s.PadValue))
	}
	for _, st := range s.Strides {
		if st <= 0 {
			errs = append(errs, fmt.Errorf("strides: %v must be positive", s.Strides))
			break
		}
	}
	switch s.Precision {
	case "", "fp32", "fp16", "int8":
	default:
		errs = append(errs, fmt.Errorf("precision: %q is not one of fp32, fp16, int8", s.Precision))
	}
	return errors.Join(errs...)
}

// CheckInputSize accepts an unset (0) or a 1..MaxInputSize width and height.
func CheckInputSize(w, h int) error {
	if w < 0 || h < 0 || w > MaxInputSize || h > MaxInputSize {
		return fmt.Errorf("input size: %dx%d: width and height must be in 1..%d", w, h, MaxInputSize)
	}
	return nil
}

// Decoder returns the decoder for the model output shape outShape, as the
// spec's format and input size describe it. Yolo-FastestV2 decodes with the
// spec's anchors, so call it on a completed spec (see WithDefaults).
func (s Spec) Decoder(outShape []int64) (Decoder, error) {
	dec, err := NewDecoder(s.Format, outShape, s.InputWidth, s.InputHeight)
	if err != nil || s.Format != FormatFastestV2 {
		return dec, err
	}
	fv, err := newFastestV2Decoder(dec.NumClasses(), s.InputWidth, s.InputHeight, s.Anchors)
	if err != nil {
		return nil, err
	}
	return fv, nil
}

// LoadSidecar reads <model without .onnx>.toml next to the model, if any.
// A missing sidecar is not an error (ok is false); an invalid one (or one
// over 1 MiB) is.
func LoadSidecar(modelPath string) (spec Spec, path string, ok bool, err error) {
	path = strings.TrimSuffix(modelPath, filepath.Ext(modelPath)) + ".toml"
	data, err := readlimit.ReadFile(path, maxSidecarSize)
	if errors.Is(err, os.ErrNotExist) {
		return Spec{}, path, false, nil
	}
	if err != nil {
		return Spec{}, path, false, fmt.Errorf("read model sidecar: %w", err)
	}
	if spec, err = ParseSidecar(data, path); err != nil {
		return Spec{}, path, false, err
	}
	return spec, path, true, nil
}

// ParseSidecar decodes the text of the sidecar at path (named in errors;
// a relative labels_file is taken relative to its directory) and validates
// the partial Spec it describes.
func ParseSidecar(data []byte, path string) (Spec, error) {
	var spec Spec
	md, err := toml.Decode(string(data), &spec)
	if err != nil {
		return Spec{}, fmt.Errorf("model sidecar %s: %w", path, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		return Spec{}, fmt.Errorf("model sidecar %s: unknown key %q", path, und[0].String())
	}
	if err := spec.Validate(); err != nil {
		return Spec{}, fmt.Errorf("model sidecar %s: %w", path, err)
	}
	if spec.LabelsFile != "" && !filepath.IsAbs(spec.LabelsFile) {
		spec.LabelsFile = filepath.Join(filepath.Dir(path), spec.LabelsFile)
	}
	return spec, nil
}

// SpecFromMetadata reads the keys Ultralytics exports write into the ONNX
// metadata: names ({0: 'person', ...}), imgsz ([h, w]) and stride.
// It returns ok=false when the metadata has none of them.
func SpecFromMetadata(meta map[string]string) (spec Spec, ok bool, err error) {
	if v, has := meta["names"]; has {
		names, err := parseNamesDict(v)
		if err != nil {
			return Spec{}, false, fmt.Errorf("metadata names: %w", err)
		}
		spec.Labels, ok = names, true
	}
	if v, has := meta["imgsz"]; has {
		dims, err := parseIntList(v)
		if err != nil || len(dims) == 0 || len(dims) > 2 {
			return Spec{}, false, fmt.Errorf("metadata imgsz: %.40q is not [h, w]", v)
		}
		spec.InputHeight, spec.InputWidth = dims[0], dims[len(dims)-1]
		if err := CheckInputSize(spec.InputWidth, spec.InputHeight); err != nil {
			return Spec{}, false, fmt.Errorf("metadata imgsz: %w", err)
		}
		ok = true
	}
	if v, has := meta["stride"]; has {
		if _, err := strconv.Atoi(strings.TrimSpace(v)); err != nil {
			return Spec{}, false, fmt.Errorf("metadata stride: %.40q is not an integer", v)
		}
		ok = true
	}
	if ok && meta["author"] == "Ultralytics" {
		// Ultralytics always letterboxes centred, RGB, /255, pad 114.
		if meta["end2end"] == "True" {
			spec.Format = FormatEnd2End
		}
	}
	return spec, ok, nil
}

// parseNamesDict parses a Python dict literal of int -> str, as Ultralytics
// writes it: {0: 'person', 1: "bicycle", ...}.
func parseNamesDict(s string) ([]string, error) {
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, "{") || !strings.HasSuffix(s, "}") {
		return nil, fmt.Errorf("%.40q is not a {id: 'name'} dict", s)
	}
	body := s[1 : len(s)-1]
	byID := map[int]string{}
	maxID := -1
	for i := 0; i < len(body); {
		for i < len(body) && (body[i] == ' ' || body[i] == ',' || body[i] == '\n') {
			i++
		}
		if i >= len(body) {
			break
		}
		colon := strings.IndexByte(body[i:], ':')
		if colon < 0 {
			return nil, fmt.Errorf("missing ':' after %.20q", body[i:])
		}
		key := strings.TrimSpace(body[i : i+colon])
		id, err := strconv.Atoi(key)
		if err != nil || id < 0 {
			return nil, fmt.Errorf("class id %.20q is not a non-negative integer", key)
		}
		if id >= labels.MaxClasses {
			return nil, fmt.Errorf("class id %d: more than %d classes", id, labels.MaxClasses)
		}
		if _, dup := byID[id]; dup {
			return nil, fmt.Errorf("class id %d named twice", id)
		}
		i += colon + 1
		for i < len(body) && body[i] == ' ' {
			i++
		}
		if i >= len(body) || (body[i] != '\'' && body[i] != '"') {
			return nil, fmt.Errorf("class %d: name is not quoted", id)
		}
		q := body[i]
		end := strings.IndexByte(body[i+1:], q)
		if end < 0 {
			return nil, fmt.Errorf("class %d: unterminated name", id)
		}
		byID[id] = body[i+1 : i+1+end]
		maxID = max(maxID, id)
		i += end + 2
	}
	names := make([]string, maxID+1)
	for id := range names {
		n, ok := byID[id]
		if !ok {
			return nil, fmt.Errorf("class ids are not contiguous: %d missing", id)
		}
		names[id] = n
	}
	return names, nil
}

func parseIntList(s string) ([]int, error) {
	s = strings.Trim(strings.TrimSpace(s), "[]()")
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		v, err := strconv.Atoi(f)
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("%q is not a positive integer", f)
		}
		out = append(out, v)
	}
	return out, nil
}
