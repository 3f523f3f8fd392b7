package train

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/edgedet/edgedet/onnx"
	"github.com/edgedet/edgedet/onnx/onnxpb"
	"github.com/edgedet/edgedet/onnx/onnxtest"
	"github.com/edgedet/edgedet/onnx/onnxtest/graphgen"
)

// qdqConv shapes: input [n, qdqCin, 5, 5], weight [qdqCout, qdqCin, 3, 3].
const (
	qdqCin, qdqCout = 2, 3
	qdqOutScale     = 0.03 // the output's quantization step
)

// qdqWeights is a random Conv weight and its per-output-channel INT8
// scales (max |w| of the channel maps to 127).
func qdqWeights(rng *rand.Rand) (w, scales []float32) {
	w = make([]float32, qdqCout*qdqCin*9)
	scales = make([]float32, qdqCout)
	per := len(w) / qdqCout
	for c := range qdqCout {
		var peak float32
		for i := c * per; i < (c+1)*per; i++ {
			w[i] = (rng.Float32()*2 - 1) * 0.5
			peak = max(peak, float32(math.Abs(float64(w[i]))))
		}
		scales[c] = peak / 127
	}
	return w, scales
}

// quantizeInt8 is ONNX's per-output-channel INT8 QuantizeLinear of w with
// zero point 0 (float32 quotient, round half to even).
func quantizeInt8(w, scales []float32) []int8 {
	q := make([]int8, len(w))
	per := len(w) / len(scales)
	for i, v := range w {
		q[i] = int8(min(max(math.RoundToEven(float64(v/scales[i/per])), -128), 127))
	}
	return q
}

// qdqConvModel is the QDQ form of one Conv as quantization tools write it:
// x → Q/DQ (UINT8, zero point 128) → Conv input; weight → Q/DQ (INT8,
// per output channel) → Conv weight; Conv output → Q/DQ (UINT8) → "y".
// The weight is the float initializer "W", or, when stored, the INT8
// initializer "W.int8" read by the DequantizeLinear directly.
func qdqConvModel(w, wScales []float32, stored bool) *onnxpb.ModelProto {
	b := &graphgen.Builder{Opset: 13}
	wDims := []int64{qdqCout, qdqCin, 3, 3}
	b.Inits = append(b.Inits,
		onnx.Float32Vector("W.s", wScales), onnx.Int8Vector("W.zp", make([]int8, qdqCout)),
		onnx.Float32Scalar("x.s", 2.0/255), onnx.Uint8Scalar("x.zp", 128),
		onnx.Float32Scalar("y.s", qdqOutScale), onnx.Uint8Scalar("y.zp", 128),
		onnx.Float32Vector("B", []float32{0.1, -0.2, 0.05}))
	axis0 := onnx.IntAttr("axis", 0)
	if stored {
		b.Inits = append(b.Inits, onnx.Int8Tensor("W.int8", wDims, quantizeInt8(w, wScales)))
		b.Node("DequantizeLinear", []string{"W.int8", "W.s", "W.zp"}, []string{"W.dq"}, axis0)
	} else {
		b.Inits = append(b.Inits, onnx.Float32Tensor("W", wDims, w))
		b.Node("QuantizeLinear", []string{"W", "W.s", "W.zp"}, []string{"W.q"}, axis0)
		b.Node("DequantizeLinear", []string{"W.q", "W.s", "W.zp"}, []string{"W.dq"}, axis0)
	}
	b.Node("QuantizeLinear", []string{"x", "x.s", "x.zp"}, []string{"x.q"})
	b.Node("DequantizeLinear", []string{"x.q", "x.s", "x.zp"}, []string{"x.dq"})
	b.Node("Conv", []string{"x.dq", "W.dq", "B"}, []string{"c"},
		graphgen.Ints("kernel_shape", 3, 3), graphgen.Ints("pads", 1, 1, 1, 1))
	b.Node("QuantizeLinear", []string{"c", "y.s", "y.zp"}, []string{"c.q"})
	b.Node("DequantizeLinear", []string{"c.q", "y.s", "y.zp"}, []string{"y"})
	return b.Model([]*onnxpb.ValueInfoProto{graphgen.ValueInfo("x", 2, qdqCin, 5, 5)}, []*onnxpb.ValueInfoProto{graphgen.ValueInfo("y")})
}

func mustBuild(t *testing.T, m *onnxpb.ModelProto) *Graph {
	t.Helper()
	g, err := Build(m, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func forwardY(t *testing.T, g *Graph, x *Tensor) *Tensor {
	t.Helper()
	outs, err := g.Forward(map[string]*Tensor{"x": x})
	if err != nil {
		t.Fatal(err)
	}
	return outs["y"]
}

// TestQDQConvBuild: the float weight a QuantizeLinear reads is a
// parameter, the scales and zero points are not; the stored form (INT8
// weight read by DequantizeLinear) builds and computes the same.
func TestQDQConvBuild(t *testing.T) {
	rng := rand.New(rand.NewPCG(41, 42))
	w, ws := qdqWeights(rng)
	g := mustBuild(t, qdqConvModel(w, ws, false))
	var names []string
	for _, p := range g.Params() {
		names = append(names, p.Name)
	}
	slices.Sort(names)
	if want := []string{"B", "W"}; !slices.Equal(names, want) {
		t.Fatalf("params %v, want %v (scales and zero points are not parameters)", names, want)
	}
	stored := mustBuild(t, qdqConvModel(w, ws, true))
	if stored.Param("W.int8") != nil {
		t.Error("the INT8 weight became a parameter")
	}
	x := randTensor(rng, 2, qdqCin, 5, 5)
	y, ys := forwardY(t, g, x), forwardY(t, stored, x)
	if !slices.Equal(y.Shape, []int{2, qdqCout, 5, 5}) || !slices.Equal(y.Data, ys.Data) {
		t.Fatalf("float-weight QDQ %v and stored INT8 weight %v differ", y.Shape, ys.Shape)
	}
	for i, v := range y.Data {
		if q := float64(v) / qdqOutScale; math.Abs(q-math.Round(q)) > 1e-3 {
			t.Fatalf("y[%d] = %g is not a multiple of the output scale", i, v)
		}
	}
}

// TestQDQMatchesORT compares this engine with ONNX Runtime on the QDQ Conv
// (both weight forms) and on a Q→DQ of values whose float32 quotient is a
// tie. RunORT turns graph optimisations off, so ONNX Runtime runs every
// QuantizeLinear, DequantizeLinear and the float Conv as separate nodes (no
// QLinearConv fusion). Quantization of x and W is then bit-identical: both
// divide in float32 and round half to even. Only the Conv sums in another
// order (differences near 1e-7), which can carry a Conv output across a
// rounding boundary of its QuantizeLinear: that element then differs by
// exactly one output step. Such elements are rare (a 1e-7 shift against a
// 0.03 step); at most two of the 150 are allowed, everything else must
// agree to 1e-5.
func TestQDQMatchesORT(t *testing.T) {
	requireORT(t)
	rng := rand.New(rand.NewPCG(43, 44))
	w, ws := qdqWeights(rng)
	x := randTensor(rng, 2, qdqCin, 5, 5)
	for name, m := range map[string]*onnxpb.ModelProto{"float weight": qdqConvModel(w, ws, false), "stored weight": qdqConvModel(w, ws, true)} {
		t.Run(name, func(t *testing.T) {
			path := onnxtest.SaveModel(t, m, "qdq.onnx")
			want := onnxtest.RunORT(t, path, []onnxtest.Input{{Name: "x", Shape: []int64{2, qdqCin, 5, 5}, Data: x.Data}})["y"]
			got := forwardY(t, mustBuild(t, m), x)
			if len(got.Data) != len(want) {
				t.Fatalf("%d values, ONNX Runtime %d", len(got.Data), len(want))
			}
			steps := 0
			for i, v := range want {
				d := math.Abs(float64(got.Data[i] - v))
				switch {
				case d <= 1e-5:
				case math.Abs(d-qdqOutScale) <= 1e-5:
					steps++
				default:
					t.Fatalf("y[%d] = %g, ONNX Runtime %g", i, got.Data[i], v)
				}
			}
			t.Logf("%d of %d values one output step from ONNX Runtime's", steps, len(want))
			if steps > 2 {
				t.Errorf("%d values one output step from ONNX Runtime's, want at most 2", steps)
			}
		})
	}
	t.Run("ties", func(t *testing.T) {
		b := &graphgen.Builder{Opset: 13}
		b.Inits = append(b.Inits, onnx.Float32Scalar("s", 0.2), onnx.Int8Scalar("zp", 0))
		b.Node("QuantizeLinear", []string{"x", "s", "zp"}, []string{"q"})
		b.Node("DequantizeLinear", []string{"q", "s", "zp"}, []string{"y"})
		m := b.Model([]*onnxpb.ValueInfoProto{graphgen.ValueInfo("x", 8)}, []*onnxpb.ValueInfoProto{graphgen.ValueInfo("y")})
		x := mustData([]float32{0.5, 0.7, -0.5, -0.7, 0.3, 0.9, 1.5, 30}, 8)
		want := onnxtest.RunORT(t, onnxtest.SaveModel(t, m, "ties.onnx"), []onnxtest.Input{{Name: "x", Shape: []int64{8}, Data: x.Data}})["y"]
		got := forwardY(t, mustBuild(t, m), x)
		if !slices.Equal(got.Data, want) {
			t.Errorf("Q→DQ of %v: %v, ONNX Runtime %v", x.Data, got.Data, want)
		}
	})
}

// TestQuantizeScaleFromANode: the backwards of QuantizeLinear and
// DequantizeLinear read their scales even when nodes compute them (their
// data must not be released after the forward pass).
func TestQuantizeScaleFromANode(t *testing.T) {
	b := &graphgen.Builder{Opset: 13}
	b.Inits = append(b.Inits, onnx.Float32Tensor("W", []int64{2, 3}, []float32{1, -2, 3, 0.5, 100, -0.25}),
		onnx.Float32Vector("s0", []float32{0.5, 0.25}), onnx.Int8Vector("zp", []int8{0, 0}))
	b.Node("Identity", []string{"s0"}, []string{"qs"})
	b.Node("Identity", []string{"s0"}, []string{"dqs"})
	b.Node("QuantizeLinear", []string{"W", "qs", "zp"}, []string{"q"}, onnx.IntAttr("axis", 0))
	b.Node("DequantizeLinear", []string{"q", "dqs", "zp"}, []string{"y"}, onnx.IntAttr("axis", 0))
	g := mustBuild(t, b.Model(nil, []*onnxpb.ValueInfoProto{graphgen.ValueInfo("y")}))
	outs, tape, err := g.ForwardTrain(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := tape.Backward(map[string]*Tensor{"y": onesLike(outs["y"])}); err != nil {
		t.Fatal(err)
	}
	// 100/0.25 saturates INT8; everything else passes the gradient 1.
	if got, want := g.Param("W").Grad.Data, []float32{1, 1, 1, 1, 0, 1}; !slices.Equal(got, want) {
		t.Errorf("W gradient %v, want %v", got, want)
	}
}

// TestQDQTrainingWithinBounds fine-tunes the QDQ Conv's float weight
// through its quantization towards a teacher whose weights lie three
// quantization steps away: Adam moves W, lowers the loss, and keeps every
// value within ±1.5 steps of where it started, reaching those bounds.
func TestQDQTrainingWithinBounds(t *testing.T) {
	rng := rand.New(rand.NewPCG(45, 46))
	w, ws := qdqWeights(rng)
	per := len(w) / qdqCout
	teacherW := slices.Clone(w)
	lower, upper := make([]float32, len(w)), make([]float32, len(w))
	for i := range w {
		s := ws[i/per]
		teacherW[i] += 3 * s
		lower[i], upper[i] = w[i]-1.5*s, w[i]+1.5*s
	}
	teacher := mustBuild(t, qdqConvModel(teacherW, ws, false))
	student := mustBuild(t, qdqConvModel(w, ws, false))
	if err := student.SetBounds("W", &Bounds{lower, upper}); err != nil {
		t.Fatal(err)
	}
	x := randTensor(rng, 4, qdqCin, 5, 5)
	target := map[string]*Tensor{"y": forwardY(t, teacher, x)}
	loss := func() (float64, map[string]*Tensor, *Tape) {
		outs, tape, err := student.ForwardTrain(map[string]*Tensor{"x": x})
		if err != nil {
			t.Fatal(err)
		}
		l, grads, err := MSE(outs, target, map[string]float64{"y": 1})
		if err != nil {
			t.Fatal(err)
		}
		return l, grads, tape
	}
	first, _, _ := loss()
	opt := &Adam{LR: 0.5 * ws[0]}
	for range 20 {
		_, grads, tape := loss()
		student.ZeroGrad()
		if err := tape.Backward(grads); err != nil {
			t.Fatal(err)
		}
		if err := opt.Step([]*Param{student.Param("W")}); err != nil {
			t.Fatal(err)
		}
	}
	last, _, _ := loss()
	t.Logf("loss %.4g → %.4g", first, last)
	if !(last < 0.7*first) {
		t.Errorf("loss went from %g to %g, want it below 70 %% of that", first, last)
	}
	moved, atBound := 0, 0
	for i, v := range student.Param("W").Value.Data {
		if v < lower[i] || v > upper[i] {
			t.Fatalf("W[%d] = %g outside [%g, %g]", i, v, lower[i], upper[i])
		}
		if v != w[i] {
			moved++
		}
		if v == lower[i] || v == upper[i] {
			atBound++
		}
	}
	t.Logf("%d of %d weights moved, %d on a bound", moved, len(w), atBound)
	if moved == 0 || atBound == 0 {
		t.Errorf("%d weights moved and %d reached a bound, want some of each", moved, atBound)
	}
}
