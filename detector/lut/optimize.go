package lut

import (
	"fmt"
	"os"
	"path/filepath"

	ort "github.com/yalue/onnxruntime_go"
	"google.golang.org/protobuf/proto"

	"github.com/edgedet/edgedet/onnx"
)

// OptimizeAndRewrite is Rewrite after ONNX Runtime's own optimisation, which
// is what makes the rewrite pay on the CPU provider.
//
// ORT's layout transformer moves QLinearConv to channels-last and cancels
// the transposes around it only through operators it knows; rewriting the
// QDQ model first leaves an unknown operator between two convolutions and
// gains a transpose on each side (yolox_nano all-INT8: 211 transposes
// instead of 11). So this lets ORT optimise model at level "all" (QDQ
// fusion, NHWC layout; configure may set more options, it must not set an
// optimised-model path), writes the optimised graph to a temporary file in
// dir (os.TempDir() if empty), reads it back and rewrites its
// QLinearSigmoid/QLinearMul pairs and DQ → activation → Q patterns.
//
// The result is hardware-specific (ORT's blocked layouts depend on the
// CPU's vector width): load it in this process, with Register and with the
// graph optimisation level GraphOptimizationLevelEnableExtended or lower,
// which does not redo the layout. n == 0 means nothing was rewritten; the
// caller should then load the original model as usual.
func OptimizeAndRewrite(model []byte, dir string, configure func(*ort.SessionOptions) error) (
	optimized []byte, n int, err error) {
	f, err := os.CreateTemp(dir, "edgedet-lut-*.onnx")
	if err != nil {
		return nil, 0, fmt.Errorf("lut optimise: %w", err)
	}
	path := f.Name()
	f.Close()
	defer os.Remove(path)
	if err := optimizeTo(model, path, configure); err != nil {
		return nil, 0, err
	}
	m, err := onnx.LoadModel(path)
	if err != nil {
		return nil, 0, fmt.Errorf("lut optimise: read back: %w", err)
	}
	if n, err = Rewrite(m); err != nil || n == 0 {
		return nil, 0, err
	}
	b, err := proto.Marshal(m)
	if err != nil {
		return nil, 0, fmt.Errorf("lut optimise: encode %s: %w", filepath.Base(path), err)
	}
	return b, n, nil
}

func optimizeTo(model []byte, path string, configure func(*ort.SessionOptions) error) error {
	ins, outs, err := ort.GetInputOutputInfoWithONNXData(model)
	if err != nil {
		return fmt.Errorf("lut optimise: inspect model: %w", err)
	}
	opts, err := ort.NewSessionOptions()
	if err != nil {
		return fmt.Errorf("lut optimise: session options: %w", err)
	}
	defer opts.Destroy()
	if configure != nil {
		if err := configure(opts); err != nil {
			return fmt.Errorf("lut optimise: configure: %w", err)
		}
	}
	if err := opts.SetGraphOptimizationLevel(ort.GraphOptimizationLevelEnableAll); err != nil {
		return fmt.Errorf("lut optimise: %w", err)
	}
	if err := opts.SetOptimizedModelFilePath(path); err != nil {
		return fmt.Errorf("lut optimise: optimised model path %s: %w", path, err)
	}
	s, err := ort.NewDynamicAdvancedSessionWithONNXData(model, names(ins), names(outs), opts)
	if err != nil {
		return fmt.Errorf("lut optimise: %w", err)
	}
	return s.Destroy()
}

func names(io []ort.InputOutputInfo) []string {
	n := make([]string, len(io))
	for i, x := range io {
		n[i] = x.Name
	}
	return n
}
