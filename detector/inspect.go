package detector

import (
	"fmt"
	"path/filepath"
	"strings"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/edgedet/edgedet/detection"
	"github.com/edgedet/edgedet/internal/readlimit"
	"github.com/edgedet/edgedet/onnx"
)

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
	own, ok, err := detection.SpecFromEdgedetMetadata(meta)
	if err != nil {
		return fmt.Errorf("model %s: %w", path, err)
	}
	if ok {
		spec = spec.Merge(own)
		sources = append(sources, "onnx metadata "+detection.MetadataSpecKey)
	}
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
