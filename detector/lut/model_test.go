package lut_test

import (
	"os"
	"testing"

	ort "github.com/yalue/onnxruntime_go"
	"gocv.io/x/gocv"
	"google.golang.org/protobuf/proto"

	"github.com/edgedet/edgedet/detection"
	"github.com/edgedet/edgedet/detector"
	"github.com/edgedet/edgedet/detector/lut"
	"github.com/edgedet/edgedet/internal/testenv"
	"github.com/edgedet/edgedet/onnx"
)

func loadORT(t *testing.T) string {
	t.Helper()
	lib := testenv.ORTLibrary(t)
	if !ort.IsInitialized() {
		ort.SetSharedLibraryPath(lib)
		if err := ort.InitializeEnvironment(ort.WithLogLevelError()); err != nil {
			t.Fatalf("load onnx runtime %s: %v", lib, err)
		}
	}
	return lib
}

// detect runs model (ONNX bytes) on input and returns the detections
// after NMS, in input pixels.
func detect(t *testing.T, lib string, model []byte, register bool, level ort.GraphOptimizationLevel,
	input []float32, side int, outShape []int64) []detection.Detection {
	t.Helper()
	opts, err := ort.NewSessionOptions()
	if err != nil {
		t.Fatal(err)
	}
	defer opts.Destroy()
	if err := opts.SetGraphOptimizationLevel(level); err != nil {
		t.Fatal(err)
	}
	if register {
		if err := lut.Register(opts, lib); err != nil {
			t.Fatal(err)
		}
	}
	in, err := ort.NewTensor(ort.NewShape(1, 3, int64(side), int64(side)), input)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Destroy()
	out, err := ort.NewEmptyTensor[float32](ort.NewShape(outShape...))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Destroy()
	s, err := ort.NewAdvancedSessionWithONNXData(model, []string{"images"}, []string{"output0"},
		[]ort.Value{in}, []ort.Value{out}, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Destroy()
	if err := s.Run(); err != nil {
		t.Fatal(err)
	}
	dec, err := detection.NewDecoder(detection.FormatYOLOv8, outShape, side, side)
	if err != nil {
		t.Fatal(err)
	}
	return detection.NMS(dec.Decode(out.GetData(), 0.25, nil), detection.NMSOptions{IoU: 0.45})
}

// TestRewrittenQDQModelFindsSameObjects: a real QDQ model (Ultralytics
// YOLOv8n quantised by onnxruntime.quantization, SiLU as DQ → Sigmoid →
// Q → DQ → Mul → Q) finds the same objects on dog.jpg rewritten before or
// after ORT's optimisation as unrewritten.
func TestRewrittenQDQModelFindsSameObjects(t *testing.T) {
	lib := loadORT(t)
	const side = 320
	outShape := []int64{1, 84, 2100}
	b, err := os.ReadFile(testenv.Shared(t, "models", "yolov8n_int8qdq_320.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	spec := detection.Spec{Format: detection.FormatYOLOv8, InputWidth: side, InputHeight: side}.WithDefaults()
	p, err := detector.NewPreprocessor(spec)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	img := gocv.IMRead(testenv.Shared(t, "datasets", "samples", "dog.jpg"), gocv.IMReadColor)
	defer img.Close()
	if img.Empty() {
		t.Fatal("dog.jpg did not decode")
	}
	input := make([]float32, p.Len())
	if _, err := p.Run(img, input); err != nil {
		t.Fatal(err)
	}
	want := detect(t, lib, b, false, ort.GraphOptimizationLevelEnableAll, input, side, outShape)
	if len(want) < 2 {
		t.Fatalf("unrewritten model found %d objects, want dog and bicycle", len(want))
	}

	m, err := onnx.DecodeModel(b)
	if err != nil {
		t.Fatal(err)
	}
	n, err := lut.Rewrite(m)
	if err != nil || n != 58 {
		t.Fatalf("rewrite: %d patterns, %v; want its 58 SiLUs", n, err)
	}
	pre, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	post, n, err := lut.OptimizeAndRewrite(b, t.TempDir(), nil)
	if err != nil || n == 0 {
		t.Fatalf("optimise and rewrite: %d, %v", n, err)
	}
	for name, got := range map[string][]detection.Detection{
		"rewritten":            detect(t, lib, pre, true, ort.GraphOptimizationLevelEnableAll, input, side, outShape),
		"optimised, rewritten": detect(t, lib, post, true, ort.GraphOptimizationLevelEnableExtended, input, side, outShape),
	} {
		if len(got) != len(want) {
			t.Fatalf("%s: %d objects %v, unrewritten %d %v", name, len(got), got, len(want), want)
		}
		for _, w := range want {
			if !found(got, w) {
				t.Errorf("%s: lost %+v; found %v", name, w, got)
			}
		}
	}
}

func found(dets []detection.Detection, w detection.Detection) bool {
	for _, d := range dets {
		if d.ClassID == w.ClassID && detection.IoU(d.Box, w.Box) > 0.9 {
			return true
		}
	}
	return false
}
