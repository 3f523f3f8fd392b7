package onnx_test

import (
	"encoding/binary"
	"math"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/edgedet/edgedet/onnx"
	"github.com/edgedet/edgedet/onnx/onnxpb"
)

func TestFloat16Bits(t *testing.T) {
	for _, c := range []struct {
		f float32
		h uint16
	}{
		{0, 0x0000}, {float32(math.Copysign(0, -1)), 0x8000}, {1, 0x3c00}, {-2, 0xc000}, {0.5, 0x3800},
		{65504, 0x7bff}, {65520, 0x7c00}, {1e5, 0x7c00}, {-7e4, 0xfc00}, {1e6, 0x7c00}, {-1e6, 0xfc00},
		{0.1, 0x2e66},                         // 0.0999755859375
		{1 + 1.0/2048, 0x3c00},                // tie: to even (down)
		{1 + 3.0/2048, 0x3c02},                // tie: to even (up)
		{float32(math.Ldexp(1, -14)), 0x0400}, // smallest normal
		{float32(math.Ldexp(1, -24)), 0x0001}, // smallest subnormal
		{float32(math.Ldexp(3, -25)), 0x0002}, // 1.5 × smallest subnormal: tie to even
		{float32(math.Ldexp(1, -26)), 0x0000}, // below half the smallest subnormal
		{float32(math.Inf(1)), 0x7c00}, {float32(math.Inf(-1)), 0xfc00},
	} {
		if got := onnx.Float16Bits(c.f); got != c.h {
			t.Errorf("Float16Bits(%g) = %#04x, want %#04x", c.f, got, c.h)
		}
	}
	if h := onnx.Float16Bits(float32(math.NaN())); h&0x7c00 != 0x7c00 || h&0x3ff == 0 {
		t.Errorf("Float16Bits(NaN) = %#04x, not a NaN", h)
	}
	// Every finite half value survives the round trip.
	for h := range uint16(0x7c00) {
		for _, sign := range []uint16{0, 0x8000} {
			if got := onnx.Float16Bits(onnx.Float16Value(h | sign)); got != h|sign {
				t.Fatalf("Float16Bits(onnx.Float16Value(%#04x)) = %#04x", h|sign, got)
			}
		}
	}
}

func TestFloat16Value(t *testing.T) {
	for _, c := range []struct {
		h    uint16
		want float32
	}{
		{0x0001, float32(math.Ldexp(1, -24))}, {0x8001, -float32(math.Ldexp(1, -24))},
		{0x03ff, float32(math.Ldexp(1023, -24))}, {0x0400, float32(math.Ldexp(1, -14))},
		{0x3c00, 1}, {0xc000, -2}, {0x7bff, 65504}, {0x7c00, float32(math.Inf(1))}, {0xfc00, float32(math.Inf(-1))},
	} {
		if got := onnx.Float16Value(c.h); got != c.want {
			t.Errorf("Float16Value(%#04x) = %g, want %g", c.h, got, c.want)
		}
	}
	if v := onnx.Float16Value(0x7e00); !math.IsNaN(float64(v)) {
		t.Errorf("Float16Value(0x7e00) = %g, want NaN", v)
	}
}

func TestFloat16Tensor(t *testing.T) {
	tt := onnx.Float16Tensor("h", []int64{3}, []float32{1, -2, 65520})
	raw := tt.GetRawData()
	if len(raw) != 6 || tt.GetDataType() != 10 {
		t.Fatalf("tensor %v", tt)
	}
	for i, want := range []uint16{0x3c00, 0xc000, 0x7c00} {
		if got := binary.LittleEndian.Uint16(raw[2*i:]); got != want {
			t.Errorf("value %d: %#04x, want %#04x", i, got, want)
		}
	}
}

// TestHoldsFloats: a FLOAT tensor holds its floats when its raw or typed
// data has exactly one value per element of its dims.
func TestHoldsFloats(t *testing.T) {
	raw := onnx.Float32Tensor("r", []int64{2, 3}, make([]float32, 6))
	typed := &onnxpb.TensorProto{DataType: proto.Int32(int32(onnxpb.TensorProto_FLOAT)), Dims: []int64{3}, FloatData: []float32{1, 2, 3}}
	short := onnx.NewInitializer("s", onnxpb.TensorProto_FLOAT, []int64{2, 3}, make([]byte, 20))
	shortTyped := &onnxpb.TensorProto{DataType: proto.Int32(int32(onnxpb.TensorProto_FLOAT)), Dims: []int64{3}, FloatData: []float32{1, 2}}
	ext := onnx.Float32Tensor("e", []int64{1}, []float32{1})
	ext.DataLocation = onnxpb.TensorProto_EXTERNAL.Enum()
	for name, c := range map[string]struct {
		t    *onnxpb.TensorProto
		want bool
	}{
		"raw": {raw, true}, "typed": {typed, true}, "short raw": {short, false}, "short typed": {shortTyped, false},
		"external": {ext, false}, "int8": {onnx.Int8Vector("i", []int8{1}), false}, "nil": {nil, false},
	} {
		if got := onnx.HoldsFloats(c.t); got != c.want {
			t.Errorf("%s: HoldsFloats = %t, want %t", name, got, c.want)
		}
	}
}
