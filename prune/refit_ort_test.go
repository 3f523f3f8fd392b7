package prune

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"gocv.io/x/gocv"
	"gonum.org/v1/gonum/mat"
	"google.golang.org/protobuf/proto"

	"github.com/edgedet/edgedet/detection"
	"github.com/edgedet/edgedet/detector"
	"github.com/edgedet/edgedet/internal/testenv"
	"github.com/edgedet/edgedet/onnx"
	"github.com/edgedet/edgedet/onnx/onnxpb"
	"github.com/edgedet/edgedet/onnx/ortrun"
)

// refitSliceInputs are fixed preprocessed inputs.
type refitSliceInputs [][]float32

func (s refitSliceInputs) Len() int { return len(s) }

func (s refitSliceInputs) Input(_ context.Context, i int, dst []float32) error {
	if len(dst) != len(s[i]) {
		return fmt.Errorf("input %d has %d values, destination %d", i, len(s[i]), len(dst))
	}
	copy(dst, s[i])
	return nil
}

func refitInitORT(t testing.TB) {
	t.Helper()
	if err := detector.InitRuntime(testenv.ORTLibrary(t)); err != nil {
		t.Fatal(err)
	}
}

func refitIntsAttr(name string, v ...int64) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_INTS.Enum(), Ints: v}
}

func refitValueInfo(name string, dims ...int64) *onnxpb.ValueInfoProto {
	shape := &onnxpb.TensorShapeProto{}
	for _, d := range dims {
		shape.Dim = append(shape.Dim, &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: d}})
	}
	return &onnxpb.ValueInfoProto{Name: proto.String(name), Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{TensorType: &onnxpb.TypeProto_Tensor{
		ElemType: proto.Int32(int32(onnxpb.TensorProto_FLOAT)), Shape: shape,
	}}}}
}

func refitRandomTensor(rng *rand.Rand, name string, dims ...int64) *onnxpb.TensorProto {
	n := int64(1)
	for _, d := range dims {
		n *= d
	}
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(rng.NormFloat64())
	}
	return onnx.Float32Tensor(name, dims, v)
}

// refitConvModel is x[1,3,11,13] → Relu → conv "A" (stride 2×1, dilation
// 2×1, asymmetric pads) → ya, x → conv "B" (SAME_LOWER, stride 2, no bias) →
// yb, and x → grouped conv "G" → yg.
func refitConvModel(rng *rand.Rand) *onnxpb.ModelProto {
	conv := func(name, in, out string, attrs []*onnxpb.AttributeProto, inputs ...string) *onnxpb.NodeProto {
		return &onnxpb.NodeProto{Name: proto.String(name), OpType: proto.String("Conv"),
			Input: append([]string{in}, inputs...), Output: []string{out}, Attribute: attrs}
	}
	g := &onnxpb.GraphProto{
		Name: proto.String("convs"),
		Node: []*onnxpb.NodeProto{
			{Name: proto.String("relu"), OpType: proto.String("Relu"), Input: []string{"x"}, Output: []string{"r"}},
			conv("A", "r", "ya", []*onnxpb.AttributeProto{
				refitIntsAttr("strides", 2, 1), refitIntsAttr("dilations", 2, 1), refitIntsAttr("pads", 1, 0, 2, 1),
				refitIntsAttr("kernel_shape", 3, 2)}, "wa", "ba"),
			conv("B", "x", "yb", []*onnxpb.AttributeProto{
				refitIntsAttr("strides", 2, 2),
				{Name: proto.String("auto_pad"), Type: onnxpb.AttributeProto_STRING.Enum(), S: []byte("SAME_LOWER")}}, "wb"),
			conv("G", "x", "yg", []*onnxpb.AttributeProto{
				{Name: proto.String("group"), Type: onnxpb.AttributeProto_INT.Enum(), I: proto.Int64(3)}}, "wg"),
		},
		Initializer: []*onnxpb.TensorProto{
			refitRandomTensor(rng, "wa", 4, 3, 3, 2), refitRandomTensor(rng, "ba", 4),
			refitRandomTensor(rng, "wb", 5, 3, 3, 3), refitRandomTensor(rng, "wg", 3, 1, 1, 1),
		},
		Input:  []*onnxpb.ValueInfoProto{refitValueInfo("x", 1, 3, 11, 13)},
		Output: []*onnxpb.ValueInfoProto{refitValueInfo("ya"), refitValueInfo("yb"), refitValueInfo("yg")},
	}
	return &onnxpb.ModelProto{
		IrVersion:   proto.Int64(7),
		OpsetImport: []*onnxpb.OperatorSetIdProto{{Version: proto.Int64(13)}},
		Graph:       g,
	}
}

// refitCheckAgainstORT runs m on every input with each conv's output
// exposed and compares ONNX Runtime's values at the sampled positions with
// s.Y, and s.Y with X·Wᵀ + b recomputed from the model's weights. Both
// must agree within tol (relative, Frobenius and worst element against the
// largest |value|).
func refitCheckAgainstORT(t *testing.T, m *onnxpb.ModelProto, inputs onnx.Inputs, samples map[string]*ConvSamples, tol float64) {
	t.Helper()
	g := onnx.NewGraph(m)
	nodes := map[string]*onnxpb.NodeProto{}
	for _, n := range m.GetGraph().GetNode() {
		nodes[n.GetName()] = n
	}
	var names, outs []string
	for name := range samples {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		outs = append(outs, nodes[name].GetOutput()[0])
	}
	inName, inShape, err := refitModelInput(m)
	if err != nil {
		t.Fatal(err)
	}
	r, err := ortrun.NewRunner(m, inName, inShape, outs, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ortY := map[string]*mat.Dense{}
	for _, name := range names {
		ortY[name] = mat.NewDense(samples[name].Y.RawMatrix().Rows, samples[name].Y.RawMatrix().Cols, nil)
	}
	for i := 0; i < inputs.Len(); i++ {
		if err := inputs.Input(context.Background(), i, r.Input()); err != nil {
			t.Fatal(err)
		}
		err := r.Run(func(_ int, out string, shape []int64, v []float32) error {
			name := names[slices.Index(outs, out)]
			s := samples[name]
			cout, hw := int(shape[1]), int(shape[2]*shape[3])
			if cout != s.Y.RawMatrix().Cols {
				return fmt.Errorf("%s output shape %v, samples have %d channels", name, shape, s.Y.RawMatrix().Cols)
			}
			for row, p := range s.Pos {
				if p.Input != i {
					continue
				}
				for o := 0; o < cout; o++ {
					ortY[name].Set(row, o, float64(v[o*hw+p.Y*int(shape[3])+p.X]))
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range names {
		s := samples[name]
		n := nodes[name]
		w, err := onnx.TensorFloats(g.Initializer(n.GetInput()[1]))
		if err != nil {
			t.Fatal(err)
		}
		rows, cout := s.Y.Dims()
		b := make([]float32, cout)
		if len(n.GetInput()) > 2 {
			if b, err = onnx.TensorFloats(g.Initializer(n.GetInput()[2])); err != nil {
				t.Fatal(err)
			}
		}
		if len(s.Pos) != rows {
			t.Fatalf("%s: %d positions for %d rows", name, len(s.Pos), rows)
		}
		wT := mat.NewDense(s.Cin*s.Kh*s.Kw, cout, nil)
		for o := 0; o < cout; o++ {
			for j := 0; j < s.Cin*s.Kh*s.Kw; j++ {
				wT.Set(j, o, float64(w[o*s.Cin*s.Kh*s.Kw+j]))
			}
		}
		var direct mat.Dense
		direct.Mul(s.X, wT)
		for i := 0; i < rows; i++ {
			for o := 0; o < cout; o++ {
				direct.Set(i, o, direct.At(i, o)+float64(b[o]))
			}
		}
		for _, ref := range []struct {
			what string
			m    mat.Matrix
		}{{"X·Wᵀ+b", &direct}, {"onnx runtime's conv output", ortY[name]}} {
			fro, worst := refitRelDiff(s.Y, ref.m)
			t.Logf("%s: Y vs %s over %d samples: relative difference %.2e (worst element %.2e)", name, ref.what, rows, fro, worst)
			if fro > tol || worst > tol {
				t.Errorf("%s: Y differs from %s: relative %g, worst element %g (tolerance %g)", name, ref.what, fro, worst, tol)
			}
		}
	}
}

// refitRelDiff is ||a-b||_F/||b||_F and max|a-b|/max|b|.
func refitRelDiff(a, b mat.Matrix) (fro, worst float64) {
	var maxD, maxB, sumD, sumB float64
	rows, cols := b.Dims()
	for i := 0; i < rows; i++ {
		for j := 0; j < cols; j++ {
			d := a.At(i, j) - b.At(i, j)
			sumD += d * d
			sumB += b.At(i, j) * b.At(i, j)
			maxD = max(maxD, math.Abs(d))
			maxB = max(maxB, math.Abs(b.At(i, j)))
		}
	}
	return math.Sqrt(sumD / sumB), maxD / maxB
}

// TestRefitCollectConvModel checks sampling against ONNX Runtime on a
// small model with strides, dilations, asymmetric and SAME padding.
func TestRefitCollectConvModel(t *testing.T) {
	refitInitORT(t)
	rng := rand.New(rand.NewPCG(3, 4))
	m := refitConvModel(rng)
	var in refitSliceInputs
	for i := 0; i < 3; i++ {
		v := make([]float32, 3*11*13)
		for j := range v {
			v[j] = float32(rng.NormFloat64())
		}
		in = append(in, v)
	}
	ctx := context.Background()
	for _, perConv := range []int{7, 100} { // 100 > B's 6×7 output map: all positions, then repeats
		samples, err := CollectConvSamples(ctx, m, in, []string{"A", "B"}, perConv, 42)
		if err != nil {
			t.Fatal(err)
		}
		for name, s := range samples {
			if rows, _ := s.X.Dims(); rows != len(in)*perConv {
				t.Errorf("%s: %d rows, want %d", name, rows, len(in)*perConv)
			}
		}
		if a := samples["A"]; a.Cin != 3 || a.Kh != 3 || a.Kw != 2 {
			t.Errorf("A: Cin, Kh, Kw = %d, %d, %d", a.Cin, a.Kh, a.Kw)
		}
		refitCheckAgainstORT(t, m, in, samples, 1e-5)
	}

	// Deterministic per seed, and per conv whatever else is listed.
	s1, err := CollectConvSamples(ctx, m, in, []string{"A", "B"}, 5, 7)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := CollectConvSamples(ctx, m, in, []string{"B"}, 5, 7)
	if err != nil {
		t.Fatal(err)
	}
	s3, err := CollectConvSamples(ctx, m, in, []string{"B"}, 5, 8)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(s1["B"].Pos, s2["B"].Pos) || !mat.Equal(s1["B"].X, s2["B"].X) {
		t.Error("same seed, different samples")
	}
	if slices.Equal(s2["B"].Pos, s3["B"].Pos) {
		t.Error("different seeds, same positions")
	}

	for _, tc := range []struct {
		convs []string
		want  string
	}{
		{[]string{"G"}, `"G" has group=3`},
		{[]string{"nope"}, `"nope": no such node`},
		{[]string{"relu"}, "not Conv"},
		{[]string{"A", "A"}, "twice"},
	} {
		_, err := CollectConvSamples(ctx, m, in, tc.convs, 5, 1)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("CollectConvSamples(%v): error %v, want one containing %q", tc.convs, err, tc.want)
		}
	}
}

// refitImageInputs preprocess images on demand with the detector's
// Preprocessor, as the quantize command's calibration inputs do.
type refitImageInputs struct {
	files []string
	pre   *detector.Preprocessor
}

func (e *refitImageInputs) Len() int { return len(e.files) }

func (e *refitImageInputs) Input(_ context.Context, i int, dst []float32) error {
	img := gocv.IMRead(e.files[i], gocv.IMReadColor)
	defer img.Close()
	if img.Empty() {
		return fmt.Errorf("%s: cannot decode image", e.files[i])
	}
	if _, err := e.pre.Run(img, dst); err != nil {
		return fmt.Errorf("%s: %w", e.files[i], err)
	}
	return nil
}

func refitNewImageInputs(t *testing.T, spec detection.Spec, files []string) *refitImageInputs {
	t.Helper()
	pre, err := detector.NewPreprocessor(spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pre.Close() })
	return &refitImageInputs{files: files, pre: pre}
}

// refitPickConvs picks group=1 Convs whose weight has Cin > 8: the first
// with a k×k kernel (k > 1), the 1x1 one with the most input channels and
// the middle one of the other 1x1 convs, in graph order.
func refitPickConvs(t *testing.T, m *onnxpb.ModelProto) []string {
	t.Helper()
	g := onnx.NewGraph(m)
	var kxk, ones []string
	cins := map[string]int64{}
	for _, n := range m.GetGraph().GetNode() {
		if n.GetOpType() != "Conv" || len(n.GetInput()) < 2 {
			continue
		}
		group := int64(1)
		if a := findAttr(n, "group"); a != nil {
			group = a.GetI()
		}
		w := g.Initializer(n.GetInput()[1])
		if group != 1 || w == nil || len(w.GetDims()) != 4 || w.GetDims()[1] <= 8 {
			continue
		}
		cins[n.GetName()] = w.GetDims()[1]
		if w.GetDims()[2] > 1 || w.GetDims()[3] > 1 {
			kxk = append(kxk, n.GetName())
		} else {
			ones = append(ones, n.GetName())
		}
	}
	if len(kxk) == 0 || len(ones) < 2 {
		t.Fatalf("model has %d group=1 k×k convs and %d 1x1 convs with Cin > 8: want >= 1 and >= 2", len(kxk), len(ones))
	}
	widest := ones[0]
	for _, n := range ones {
		if cins[n] > cins[widest] {
			widest = n
		}
	}
	rest := slices.DeleteFunc(slices.Clone(ones), func(n string) bool { return n == widest })
	return []string{kxk[0], widest, rest[len(rest)/2]}
}

// TestRefitYOLOXNano samples three convs of the real model on coco128,
// checks the samples against ONNX Runtime, removes the 30% of input
// channels with the smallest weight norm and checks that Refit's error on
// held-out images is lower than plain removal's.
func TestRefitYOLOXNano(t *testing.T) {
	refitInitORT(t)
	m, err := onnx.LoadModel(testenv.Shared(t, "models", "yolox_nano_416.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	dir := testenv.Shared(t, "datasets", "coco128", "train")
	files, err := filepath.Glob(filepath.Join(dir, "*.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	if len(files) < 24 {
		t.Fatalf("%s has %d images, want >= 24", dir, len(files))
	}
	if _, err := os.Stat(files[0]); err != nil {
		t.Fatal(err)
	}
	spec := detection.Spec{Format: detection.FormatYOLOX, InputWidth: 416, InputHeight: 416}.WithDefaults()
	train := refitNewImageInputs(t, spec, files[:16])
	held := refitNewImageInputs(t, spec, files[16:24])

	convs := refitPickConvs(t, m)
	t.Logf("convs: %v", convs)
	const perConv = 160
	ctx := context.Background()
	fit, err := CollectConvSamples(ctx, m, train, convs, perConv, 1)
	if err != nil {
		t.Fatal(err)
	}
	test, err := CollectConvSamples(ctx, m, held, convs, perConv, 2)
	if err != nil {
		t.Fatal(err)
	}
	refitCheckAgainstORT(t, m, train, fit, 1e-3)

	g := onnx.NewGraph(m)
	nodes := map[string]*onnxpb.NodeProto{}
	for _, n := range m.GetGraph().GetNode() {
		nodes[n.GetName()] = n
	}
	for _, name := range convs {
		s, h := fit[name], test[name]
		n := nodes[name]
		w, err := onnx.TensorFloats(g.Initializer(n.GetInput()[1]))
		if err != nil {
			t.Fatal(err)
		}
		b, err := onnx.TensorFloats(g.Initializer(n.GetInput()[2]))
		if err != nil {
			t.Fatal(err)
		}
		_, cout := s.Y.Dims()
		kk := s.Kh * s.Kw
		// Keep the 70% of input channels with the largest weight norm.
		norms := make([]float64, s.Cin)
		for o := 0; o < cout; o++ {
			for c := 0; c < s.Cin; c++ {
				for _, v := range w[(o*s.Cin+c)*kk : (o*s.Cin+c+1)*kk] {
					norms[c] += float64(v) * float64(v)
				}
			}
		}
		order := make([]int, s.Cin)
		for i := range order {
			order[i] = i
		}
		sort.SliceStable(order, func(i, j int) bool { return norms[order[i]] < norms[order[j]] })
		removed := s.Cin * 3 / 10
		kept := slices.Clone(order[removed:])
		slices.Sort(kept)

		plainW := SliceInputChannels(w, cout, s.Cin, s.Kh, s.Kw, kept)
		rw, rb, err := s.Refit(kept, 1e-3)
		if err != nil {
			t.Fatal(err)
		}
		full := h.Error(refitAll(s.Cin), w, b)
		plainFit, refitFit := s.Error(kept, plainW, b), s.Error(kept, rw, rb)
		plainHeld, refitHeld := h.Error(kept, plainW, b), h.Error(kept, rw, rb)
		t.Logf("%s (Cin %d, %dx%d, Cout %d; %d channels removed; %d fit / %d held-out samples): relative error plain removal %.4f -> refit %.4f held out (fit set: %.4f -> %.4f; unpruned %.1e)",
			name, s.Cin, s.Kh, s.Kw, cout, removed, s.Y.RawMatrix().Rows, h.Y.RawMatrix().Rows, plainHeld, refitHeld, plainFit, refitFit, full)
		if full > 1e-6 {
			t.Errorf("%s: unpruned weights have error %g on held-out samples, want ≈ 0", name, full)
		}
		if !(refitHeld < plainHeld) {
			t.Errorf("%s: refit error %g on held-out samples is not below plain removal's %g", name, refitHeld, plainHeld)
		}
	}
}

func refitAll(n int) []int {
	v := make([]int, n)
	for i := range v {
		v[i] = i
	}
	return v
}
