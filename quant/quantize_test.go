package quant_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"gocv.io/x/gocv"

	"github.com/edgedet/edgedet/detection"
	"github.com/edgedet/edgedet/detector"
	"github.com/edgedet/edgedet/internal/testenv"
	"github.com/edgedet/edgedet/onnx"
	"github.com/edgedet/edgedet/onnx/onnxpb"
	"github.com/edgedet/edgedet/onnx/onnxtest"
	"github.com/edgedet/edgedet/quant"
)

// imageInputs are calibration inputs read from image files and prepared
// with the detector's own Preprocessor, as the agent's quantize command does.
type imageInputs struct {
	files []string
	pre   *detector.Preprocessor
}

func (in *imageInputs) Len() int { return len(in.files) }

func (in *imageInputs) Input(_ context.Context, i int, dst []float32) error {
	img := gocv.IMRead(in.files[i], gocv.IMReadColor)
	defer img.Close()
	if img.Empty() {
		return fmt.Errorf("%s: cannot decode image", in.files[i])
	}
	_, err := in.pre.Run(img, dst)
	return err
}

// yoloxSpec is the YOLOX-Nano 416 preprocessing (BGR, 0..255, top-left letterbox).
func yoloxSpec() detection.Spec {
	return detection.Spec{Format: detection.FormatYOLOX, InputWidth: 416, InputHeight: 416}.WithDefaults()
}

// cocoInputs returns the first n coco128 training images as YOLOX inputs.
func cocoInputs(t testing.TB, n int) *imageInputs {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(testenv.Shared(t, "datasets", "coco128", "train"), "*.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	if len(files) < n {
		t.Fatalf("coco128 has %d images, want at least %d", len(files), n)
	}
	pre, err := detector.NewPreprocessor(yoloxSpec())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pre.Close() })
	return &imageInputs{files: files[:n], pre: pre}
}

func yoloxModel(t testing.TB) *onnxpb.ModelProto {
	t.Helper()
	return onnxtest.LoadModel(t, testenv.Shared(t, "models", "yolox_nano_416.onnx"))
}

// detect runs the model at path on image with a fresh Detector.
func detect(t testing.TB, path, image string) []detection.Detection {
	t.Helper()
	onnxtest.InitORT(t)
	cfg := detector.DefaultConfig()
	cfg.Model = path
	cfg.ScoreThreshold = 0.3
	cfg.Threads = 1
	d, err := detector.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	img := gocv.IMRead(image, gocv.IMReadColor)
	defer img.Close()
	if img.Empty() {
		t.Fatalf("cannot read %s", image)
	}
	res, err := d.Detect(context.Background(), img, nil)
	if err != nil {
		t.Fatal(err)
	}
	return res.Detections
}

const stemConv = "/backbone/backbone/stem/conv/conv/Conv"

// Quantize YOLOX-Nano (opset 11, 113 Convs) on 8 coco128 images with the
// budget search (the entry region off): the stem conv, which sees the raw
// 0..255 pixels, is a layer the analysis must keep float (split by channel
// range, some of its parts); the detections on dog.jpg match FP32's.
func TestQuantizeYOLOX(t *testing.T) {
	onnxtest.InitORT(t)
	src := yoloxModel(t)
	opt := quant.DefaultOptions()
	opt.SensitivityFrames = 4
	opt.EntryFloat, opt.MaxError, opt.Elementwise = false, 0.03, false
	opt.SplitChannels = true // off by default (latency); checked here on the model it was built for
	var stages []string
	opt.Progress = func(stage string, done, total int) {
		if len(stages) == 0 || stages[len(stages)-1] != stage {
			stages = append(stages, stage)
		}
		if done < 1 || done > total {
			t.Errorf("progress %s: %d of %d", stage, done, total)
		}
	}
	out, rep, err := quant.Quantize(context.Background(), src, cocoInputs(t, 8), opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("error all %.4f final %.4f; quantized %d of %d; float %+v", rep.ErrorAll, rep.ErrorFinal, rep.Quantized, rep.Candidates, rep.FloatLayers())
	if !slices.Equal(stages, []string{"calibrate", "sensitivity", "search"}) {
		t.Errorf("progress stages %v, want calibrate, sensitivity, search", stages)
	}
	if ops := onnx.QuantOps(out); !slices.Contains(ops, "QuantizeLinear") || !slices.Contains(ops, "DequantizeLinear") {
		t.Errorf("QuantOps(out) = %v", ops)
	}
	if onnx.QuantOps(src) != nil {
		t.Error("Quantize modified its input model")
	}

	// The report.
	if rep.OpsetFrom != 11 || rep.Opset != 13 || rep.CalibrationFrames != 8 || rep.Method != opt.Method ||
		(opt.Method == quant.MethodPercentile && rep.Percentile != 99.99) {
		t.Errorf("report header %+v", rep)
	}
	// Splitting a conv into k groups adds k−1 copies of it and of the
	// depthwise conv after it.
	convs := 113
	for _, sp := range rep.Split {
		convs += 2 * (len(sp.Groups) - 1)
	}
	if len(rep.Split) == 0 || !slices.ContainsFunc(rep.Split, func(sp quant.SplitReport) bool { return sp.Node == stemConv }) {
		t.Errorf("split %+v: want the stem conv split (its channels span ±0.03 to ±115)", rep.Split)
	}
	if rep.Candidates != convs || len(rep.Layers) != convs {
		t.Fatalf("candidates %d, layers %d; want %d Convs", rep.Candidates, len(rep.Layers), convs)
	}
	float := rep.FloatLayers()
	if rep.Quantized+len(float) != convs || rep.Quantized == 0 {
		t.Errorf("quantized %d + float %d, want %d with some quantized", rep.Quantized, len(float), convs)
	}
	if rep.ErrorAll <= rep.MaxError || rep.ErrorFinal > rep.MaxError || rep.ErrorFinal <= 0 {
		t.Errorf("error all %g, final %g, budget %g: want all > budget ≥ final > 0", rep.ErrorAll, rep.ErrorFinal, rep.MaxError)
	}
	var stem []quant.LayerReport
	stemFloat := false
	for i := range rep.Layers {
		if l := rep.Layers[i]; strings.HasPrefix(l.Node, stemConv) {
			stem = append(stem, l)
			stemFloat = stemFloat || (l.Float && strings.HasPrefix(l.Reason, "sensitivity:"))
		}
		if rep.Layers[i].Damage < 0 {
			t.Errorf("layer %s damage not measured", rep.Layers[i].Node)
		}
	}
	if !stemFloat {
		t.Errorf("stem conv (parts) reported %+v, want one float for sensitivity", stem)
	}
	for i, l := range float {
		if i > 0 && l.Damage > float[i-1].Damage {
			t.Errorf("FloatLayers not sorted by damage: %v", float)
		}
	}

	// The head (the decode after the last convs) stays float: no head
	// node's output is quantized.
	if len(rep.Head) == 0 {
		t.Fatal("empty head")
	}
	g := onnx.NewGraph(out)
	for _, name := range rep.Head {
		n := onnxtest.NodeByName(out, name)
		if n == nil {
			t.Errorf("head node %s missing from the output", name)
			continue
		}
		for _, o := range n.GetOutput() {
			for _, c := range g.Consumers(o) {
				if c.GetOpType() == "QuantizeLinear" {
					t.Errorf("head node %s output %s is quantized", name, o)
				}
			}
		}
	}

	// Every quantized Conv reads a dequantized input and per-channel INT8
	// weights with one scale per output channel; a float one reads a float
	// activation and its weights are stored int8 (Cast, Mul by the scales:
	// folded back to float by ONNX Runtime at load).
	floatSet := map[string]bool{}
	for _, l := range float {
		floatSet[l.Node] = true
	}
	for _, l := range rep.Layers {
		n := onnxtest.NodeByName(out, l.Node)
		w := n.GetInput()[1]
		if floatSet[l.Node] {
			if p := g.Producer(n.GetInput()[0]); p != nil && p.GetOpType() == "DequantizeLinear" {
				t.Errorf("float layer %s reads the dequantized %s", l.Node, n.GetInput()[0])
			}
			if l.Weights != quant.WeightsInt8 {
				t.Errorf("float layer %s weights reported %q, want int8", l.Node, l.Weights)
			}
			mul := g.Producer(w)
			if mul == nil || mul.GetOpType() != "Mul" || g.Producer(mul.GetInput()[0]).GetOpType() != "Cast" {
				t.Errorf("float layer %s weight %q is not restored from int8 by Cast and Mul", l.Node, w)
			} else if qw := g.Initializer(g.Producer(mul.GetInput()[0]).GetInput()[0]); qw.GetDataType() != int32(onnxpb.TensorProto_INT8) {
				t.Errorf("float layer %s stores its weight as %s", l.Node, dataTypeOf(qw))
			}
			continue
		}
		dq := g.Producer(w)
		if dq == nil || dq.GetOpType() != "DequantizeLinear" {
			t.Errorf("quantized layer %s weight %q is not dequantized", l.Node, w)
			continue
		}
		// (A single-channel conv, like obj_preds, gets a scalar scale.)
		qw, scale := g.Initializer(dq.GetInput()[0]), g.Initializer(dq.GetInput()[1])
		if qw.GetDataType() != int32(onnxpb.TensorProto_INT8) || onnx.NumElements(scale) != qw.GetDims()[0] {
			t.Errorf("layer %s: weight %s dims %v, scale dims %v; want INT8 and one scale per output channel", l.Node, dataTypeOf(qw), qw.GetDims(), scale.GetDims())
		}
		if channels := qw.GetDims()[0]; channels > 1 {
			if a := dq.GetAttribute(); len(a) != 1 || a[0].GetName() != "axis" || a[0].GetI() != 0 {
				t.Errorf("layer %s: weight DequantizeLinear attributes %v, want axis 0", l.Node, a)
			}
		}
		in := g.Producer(n.GetInput()[0])
		if in == nil || in.GetOpType() != "DequantizeLinear" {
			t.Errorf("quantized layer %s input is not dequantized", l.Node)
		}
	}

	// Saved, the model loads in the Detector and finds what FP32 finds on
	// dog.jpg (dog, bicycle, car) in the same places.
	path := onnxtest.SaveModel(t, out, "yolox_nano_416_int8.onnx")
	// The file: at most 35 % of FP32's (every weight in 8 bits).
	fi, err1 := os.Stat(path)
	si, err2 := os.Stat(testenv.Shared(t, "models", "yolox_nano_416.onnx"))
	if err := errors.Join(err1, err2); err != nil {
		t.Fatal(err)
	}
	if ratio := float64(fi.Size()) / float64(si.Size()); ratio > 0.35 {
		t.Errorf("INT8 file %d bytes is %.1f %% of FP32's %d, want ≤ 35 %%", fi.Size(), 100*ratio, si.Size())
	} else {
		t.Logf("INT8 file %.1f %% of FP32's", 100*ratio)
	}
	dog := testenv.Shared(t, "datasets", "samples", "dog.jpg")
	want := detect(t, testenv.Shared(t, "models", "yolox_nano_416.onnx"), dog)
	got := detect(t, path, dog)
	t.Logf("FP32: %v\nINT8: %v", want, got)
	for _, label := range []string{"dog", "bicycle"} {
		matchDetection(t, label, want, got)
	}
	if !matchDetection(t, "car", want, got) {
		matchDetection(t, "truck", want, got)
	}
	for _, g := range got {
		if !slices.ContainsFunc(want, func(w detection.Detection) bool { return w.Label == g.Label }) {
			t.Errorf("INT8 found a %s (%.2f) that FP32 does not", g.Label, g.Score)
		}
	}
}

func dataTypeOf(t *onnxpb.TensorProto) string {
	return onnxpb.TensorProto_DataType(t.GetDataType()).String()
}

// matchDetection checks that got has a label detection overlapping FP32's
// (IoU ≥ 0.9); it reports whether FP32 has one.
func matchDetection(t testing.TB, label string, want, got []detection.Detection) bool {
	t.Helper()
	var w *detection.Detection
	for i := range want {
		if want[i].Label == label {
			w = &want[i]
			break
		}
	}
	if w == nil {
		if label != "car" {
			t.Errorf("FP32 found no %s", label)
		}
		return false
	}
	best := float32(0)
	for _, g := range got {
		if g.Label == label {
			best = max(best, detection.IoU(g.Box, w.Box))
		}
	}
	if best < 0.9 {
		t.Errorf("INT8 %s: best IoU with FP32's box %v is %.3f < 0.9", label, w.Box, best)
	}
	return true
}

func TestQuantizeErrors(t *testing.T) {
	ctx := context.Background()
	onnxtest.InitORT(t)
	src := yoloxModel(t)
	inputs := cocoInputs(t, 1)

	qdq := onnxtest.LoadModel(t, testenv.Shared(t, "models", "yolov8n_int8qdq_320.onnx"))
	_, _, err := quant.Quantize(ctx, qdq, inputs, quant.DefaultOptions())
	if !errors.Is(err, quant.ErrAlreadyQuantized) || !strings.Contains(err.Error(), "QuantizeLinear") {
		t.Errorf("already quantized model: %v, want ErrAlreadyQuantized naming its ops", err)
	}

	if _, _, err := quant.Quantize(ctx, src, &imageInputs{}, quant.DefaultOptions()); err == nil || !strings.Contains(err.Error(), "calibration") {
		t.Errorf("no inputs: %v, want an error about calibration inputs", err)
	}
	if _, _, err := quant.Quantize(ctx, src, nil, quant.DefaultOptions()); err == nil {
		t.Error("nil inputs: no error")
	}

	for _, c := range []struct {
		name string
		edit func(*quant.Options)
		want string
	}{
		{"bad method", func(o *quant.Options) { o.Method = "kl" }, `"kl"`},
		{"bad profile", func(o *quant.Options) { o.Profile = "gpu" }, `"gpu"`},
		{"percentile 50", func(o *quant.Options) { o.Method, o.Percentile = quant.MethodPercentile, 50 }, "percentile 50"},
		{"percentile 101", func(o *quant.Options) { o.Method, o.Percentile = quant.MethodPercentile, 101 }, "percentile 101"},
		{"exclude unknown node", func(o *quant.Options) { o.Exclude = []string{stemConv, "/no/such/Conv"} }, `"/no/such/Conv"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			opt := quant.DefaultOptions()
			c.edit(&opt)
			out, rep, err := quant.Quantize(ctx, src, inputs, opt)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want one naming %s", err, c.want)
			}
			if out != nil || rep != nil {
				t.Error("a model or report returned with an error")
			}
		})
	}

	// A cancelled context stops calibration.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	opt := quant.DefaultOptions()
	opt.MaxError = -1
	if _, _, err := quant.Quantize(cctx, src, inputs, opt); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: %v, want context.Canceled", err)
	}
	// A failing input names its index.
	bad := &imageInputs{files: []string{filepath.Join(t.TempDir(), "missing.jpg")}, pre: inputs.pre}
	if _, _, err := quant.Quantize(ctx, src, bad, opt); err == nil || !strings.Contains(err.Error(), "calibration input 0") || !strings.Contains(err.Error(), "missing.jpg") {
		t.Errorf("unreadable input: %v, want an error naming input 0 and the file", err)
	}
}

// The defaults on YOLOX-Nano with the detection metric: the entry region
// keeps the stem and the first depthwise convolution float (the layers
// whose channels differ by orders of magnitude), ends at an even crossing,
// and the rest is INT8; dog.jpg's objects are found where FP32 finds them.
func TestQuantizeYOLOXEntryRegion(t *testing.T) {
	onnxtest.InitORT(t)
	opt := quant.DefaultOptions()
	opt.Metric = quant.DetectionMetric(yoloxSpec())
	out, rep, err := quant.Quantize(context.Background(), yoloxModel(t), cocoInputs(t, 8), opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("entry %d layers, errors %.3f", rep.EntryLayers, rep.EntryErrors)
	if !rep.CustomMetric || len(rep.EntryErrors) != 17 {
		t.Fatalf("custom metric %v, %d entry errors; want the detection metric and 17 prefixes", rep.CustomMetric, len(rep.EntryErrors))
	}
	if k := rep.EntryLayers; k < 2 || k > 8 || rep.EntryErrors[k] > rep.EntryErrors[0]/2 {
		t.Errorf("entry region of %d layers, error %.3f (all INT8 %.3f): want 2..8 layers halving the error", k, rep.EntryErrors[k], rep.EntryErrors[0])
	}
	for i, l := range rep.Layers {
		entry := i < rep.EntryLayers
		if l.Float != entry || (entry && (l.Weights != quant.WeightsFloat32 || !strings.Contains(l.Reason, "crossing into INT8"))) {
			t.Errorf("layer %d %s: float %v, weights %q, reason %q", i, l.Node, l.Float, l.Weights, l.Reason)
		}
	}
	if rep.Layers[0].Node != stemConv || rep.Quantized != rep.Candidates-rep.EntryLayers || !rep.Elementwise {
		t.Errorf("first layer %s; quantized %d of %d; element-wise %v", rep.Layers[0].Node, rep.Quantized, rep.Candidates, rep.Elementwise)
	}
	path := onnxtest.SaveModel(t, out, "yolox_nano_416_int8.onnx")
	dog := testenv.Shared(t, "datasets", "samples", "dog.jpg")
	want := detect(t, testenv.Shared(t, "models", "yolox_nano_416.onnx"), dog)
	got := detect(t, path, dog)
	for _, label := range []string{"dog", "bicycle"} {
		matchDetection(t, label, want, got)
	}
	if !matchDetection(t, "car", want, got) {
		matchDetection(t, "truck", want, got)
	}
}
