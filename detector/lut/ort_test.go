package lut

import (
	"errors"
	"reflect"
	"slices"
	"testing"

	ort "github.com/yalue/onnxruntime_go"
	"google.golang.org/protobuf/proto"

	"github.com/edgedet/edgedet/onnx/onnxpb"
)

func TestRewrittenSiLURunsInORT(t *testing.T) {
	shape := []int64{1, 3, 11, 13} // 429 elements: a vector tail on every path
	n := 3 * 11 * 13
	x := ramp(n, -9, 12)
	for _, c := range qcases {
		for _, quantSig := range []bool{false, true} {
			m := siluQDQ(shape, c.in, c.out, quantSig)
			want := runModel(t, m, x, shape, false, ort.GraphOptimizationLevelDisableAll)
			rw := proto.Clone(m).(*onnxpb.ModelProto)
			k, err := Rewrite(rw)
			if err != nil || k != 1 {
				t.Fatalf("rewrite: %d, %v", k, err)
			}
			got := runModel(t, rw, x, shape, true, ort.GraphOptimizationLevelEnableAll)
			if quantSig {
				// The table reproduces the graph's sigmoid rounding: the same
				// numbers as the unrewritten model.
				if !slices.Equal(got, want) {
					t.Fatalf("%+v: rewritten %v, unrewritten %v", c, got, want)
				}
				continue
			}
			// Exact against the reference; within one step of ORT's float32
			// SiLU (ties may round the other way).
			for i, v := range x {
				q := c.in.quantize(float64(v))
				ref := float32(c.out.dequantize(refSiLU(q, c.in, c.out)))
				if got[i] != ref {
					t.Fatalf("%+v: x=%v: got %v, reference %v", c, v, got[i], ref)
				}
			}
			if d := maxSteps(got, want, c.out.Scale); d > 1.01 {
				t.Errorf("%+v: %.1f steps from the unrewritten graph", c, d)
			}
		}
	}
}

func TestRegisterRejectsUnloadedLibrary(t *testing.T) {
	initORT(t)
	opts, err := ort.NewSessionOptions()
	if err != nil {
		t.Fatal(err)
	}
	defer opts.Destroy()
	if err := Register(opts, "/nonexistent/libonnxruntime.so.1"); err == nil {
		t.Fatal("no error for a library that is not loaded")
	}
}

func TestRegisterRejectsDestroyedOptions(t *testing.T) {
	lib := initORT(t)
	opts, err := ort.NewSessionOptions()
	if err != nil {
		t.Fatal(err)
	}
	opts.Destroy()
	if err := Register(opts, lib); err == nil {
		t.Fatal("no error for destroyed options")
	}
	if err := Register(nil, lib); err == nil {
		t.Fatal("no error for nil options")
	}
}

func TestOptionsLayoutCheck(t *testing.T) {
	if err := checkOptionsLayout(reflect.TypeFor[ort.SessionOptions]()); err != nil {
		t.Fatalf("onnxruntime_go's own SessionOptions: %v", err)
	}
	type twoFields struct {
		o *int
		x int
	}
	type wrongName struct{ p *int }
	type wrongType struct{ o *int }
	for _, typ := range []reflect.Type{reflect.TypeFor[twoFields](), reflect.TypeFor[wrongName](),
		reflect.TypeFor[wrongType](), reflect.TypeFor[int]()} {
		if err := checkOptionsLayout(typ); !errors.Is(err, ErrOptionsLayout) {
			t.Errorf("%s: got %v, want ErrOptionsLayout", typ, err)
		}
	}
}

func TestVersionCheck(t *testing.T) {
	for v, ok := range map[string]bool{"1.24.1": true, "1.25.0": true, "2.0.0": true, "1.23.2": false,
		"1.9.0": false, "": false, "garbage": false} {
		if versionOK(v) != ok {
			t.Errorf("version %q: ok = %v, want %v", v, !ok, ok)
		}
	}
}

// refTable is the expected dequantised output for x through f.
func refOutput(x []float32, f func(float64) float64, in, out QParams) []float32 {
	y := make([]float32, len(x))
	for i, v := range x {
		q := in.quantize(float64(v))
		y[i] = float32(out.dequantize(out.quantize(f(in.dequantize(q)))))
	}
	return y
}

func TestRewrittenUnaryOpsRunInORT(t *testing.T) {
	shape := []int64{1, 2, 9, 9}
	x := ramp(162, -7, 7)
	for _, c := range []struct {
		op    string
		attrs []*onnxpb.AttributeProto
		f     func(float64) float64
	}{
		{"Sigmoid", nil, Sigmoid},
		{"HardSwish", nil, HardSwish},
		{"LeakyRelu", []*onnxpb.AttributeProto{floatAttr("alpha", 0.1)}, LeakyReLU(float64(float32(0.1)))},
	} {
		for _, qp := range [][2]QParams{{u8in, u8out}, {s8in, s8out}} {
			tb := newTiny(shape, qp[0], qp[1])
			a := tb.node(c.op, []string{tb.dq(tb.q("x", "in", "xq"), "in", "xf")}, "a", c.attrs...)
			tb.dq(tb.q(a, "out", "yq"), "out", "y")
			m := tb.model()
			if k, err := Rewrite(m); k != 1 || err != nil {
				t.Fatalf("%s: rewrite %d, %v", c.op, k, err)
			}
			got := runModel(t, m, x, shape, true, ort.GraphOptimizationLevelEnableAll)
			want := refOutput(x, c.f, qp[0], qp[1])
			if !slices.Equal(got, want) {
				t.Fatalf("%s %+v: got %v, want %v", c.op, qp, got[:8], want[:8])
			}
		}
	}
}

// TestOptimizeAndRewrite: ORT fuses the all-INT8 QDQ SiLU into
// QLinearSigmoid + QLinearMul; the rewrite of that optimised graph runs
// and computes the table. (Only uint8: ORT's CPU optimiser turns an int8
// tiny graph's inner Q/DQ pairs into uint8, leaving int8 in and uint8 out,
// which the rewrite leaves alone.)
func TestOptimizeAndRewrite(t *testing.T) {
	initORT(t)
	shape := []int64{1, 3, 11, 13}
	x := ramp(3*11*13, -9, 12)
	for _, qp := range [][2]QParams{{u8in, u8out}, {{Scale: 0.1, Zero: 200}, {Scale: 0.03, Zero: 3}}} {
		b, err := proto.Marshal(siluQDQ(shape, qp[0], qp[1], true))
		if err != nil {
			t.Fatal(err)
		}
		opt, n, err := OptimizeAndRewrite(b, t.TempDir(), nil)
		if err != nil || n != 1 {
			t.Fatalf("%+v: rewrote %d, %v", qp, n, err)
		}
		m := &onnxpb.ModelProto{}
		if err := proto.Unmarshal(opt, m); err != nil {
			t.Fatal(err)
		}
		if findOp(m, "QLinearMul") != nil || findOp(m, "QLinearSigmoid") != nil {
			t.Fatalf("ops left: %v", opTypes(m))
		}
		got := runModel(t, m, x, shape, true, ort.GraphOptimizationLevelEnableExtended)
		want := runModel(t, siluQDQ(shape, qp[0], qp[1], true), x, shape, false, ort.GraphOptimizationLevelEnableAll)
		// ORT's QLinearMul requantises with a float32 multiplier, so a value
		// near a rounding tie may land one step away.
		k := 0
		for i := range got {
			if got[i] != want[i] {
				k++
			}
		}
		if d := maxSteps(got, want, qp[1].Scale); d > 1.01 || k > len(got)/50 {
			t.Fatalf("%+v: %d of %d differ from the unrewritten model, by up to %.1f steps", qp, k, len(got), d)
		}
	}
}

func TestOptimizeAndRewriteBadModel(t *testing.T) {
	initORT(t)
	if _, _, err := OptimizeAndRewrite([]byte("not a model"), t.TempDir(), nil); err == nil {
		t.Fatal("no error for a bad model")
	}
}

func TestRewrittenModelWithoutRegisterFailsCleanly(t *testing.T) {
	initORT(t)
	m := siluQDQ([]int64{1, 1, 2, 2}, u8in, u8out, false)
	if _, err := Rewrite(m); err != nil {
		t.Fatal(err)
	}
	b, _ := proto.Marshal(m)
	opts, err := ort.NewSessionOptions()
	if err != nil {
		t.Fatal(err)
	}
	defer opts.Destroy()
	s, err := ort.NewDynamicAdvancedSessionWithONNXData(b, []string{"x"}, []string{"y"}, opts)
	if err == nil {
		s.Destroy()
		t.Fatal("a session without Register loaded the custom op")
	}
}
