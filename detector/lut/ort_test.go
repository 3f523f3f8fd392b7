package lut

import (
	"errors"
	"reflect"
	"testing"

	ort "github.com/yalue/onnxruntime_go"
	"google.golang.org/protobuf/proto"

	"github.com/edgedet/edgedet/quant/onnxpb"
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
			// Exact against the reference; within the sigmoid's rounding of the
			// unrewritten graph.
			for i, v := range x {
				q := c.in.quantize(float64(v))
				ref := float32(c.out.dequantize(refSiLU(q, c.in, c.out)))
				if got[i] != ref {
					t.Fatalf("%+v: x=%v: got %v, reference %v", c, v, got[i], ref)
				}
			}
			limit := 1.0
			if quantSig {
				limit = 2
			}
			if d := maxSteps(got, want, c.out.Scale); d > limit {
				t.Errorf("%+v quantised sigmoid %v: %.1f steps from the unrewritten graph", c, quantSig, d)
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
