package onnx_test

import (
	"bytes"
	"math"
	"reflect"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/edgedet/edgedet/onnx"
	"github.com/edgedet/edgedet/onnx/onnxpb"
)

func TestTensorFloats(t *testing.T) {
	want := []float32{1.5, -2, 0, float32(math.Inf(1)), 3.25, 1e-30}
	dims := []int64{2, 3}
	raw := &onnxpb.TensorProto{
		Name:     proto.String("raw"),
		DataType: proto.Int32(int32(onnxpb.TensorProto_FLOAT)),
		Dims:     dims,
		RawData: []byte{
			0x00, 0x00, 0xc0, 0x3f, // 1.5
			0x00, 0x00, 0x00, 0xc0, // -2
			0x00, 0x00, 0x00, 0x00, // 0
			0x00, 0x00, 0x80, 0x7f, // +Inf
			0x00, 0x00, 0x50, 0x40, // 3.25
			0x60, 0x42, 0xa2, 0x0d, // 1e-30
		},
	}
	typed := &onnxpb.TensorProto{
		Name:      proto.String("typed"),
		DataType:  proto.Int32(int32(onnxpb.TensorProto_FLOAT)),
		Dims:      dims,
		FloatData: want,
	}
	for _, tensor := range []*onnxpb.TensorProto{raw, typed} {
		got, err := onnx.TensorFloats(tensor)
		if err != nil {
			t.Fatalf("%s: %v", tensor.GetName(), err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: TensorFloats = %v, want %v", tensor.GetName(), got, want)
		}
	}

	// SetTensorFloats turns float_data into raw_data with the same values.
	onnx.SetTensorFloats(typed, want)
	if typed.FloatData != nil {
		t.Errorf("float_data not cleared: %v", typed.FloatData)
	}
	if !bytes.Equal(typed.GetRawData(), raw.GetRawData()) {
		t.Errorf("raw_data = %x, want %x", typed.GetRawData(), raw.GetRawData())
	}
	if got, _ := onnx.TensorFloats(typed); !reflect.DeepEqual(got, want) {
		t.Errorf("after SetTensorFloats: %v, want %v", got, want)
	}

	// A scalar (no dims) holds one value.
	s := onnx.Float32Scalar("s", 0.5)
	if got, err := onnx.TensorFloats(s); err != nil || !reflect.DeepEqual(got, []float32{0.5}) || len(s.GetDims()) != 0 {
		t.Errorf("scalar: %v, %v, dims %v", got, err, s.GetDims())
	}
}

func TestTensorFloatsErrors(t *testing.T) {
	for _, tc := range []struct {
		tensor *onnxpb.TensorProto
		want   []string
	}{
		{onnx.Int8Vector("zp", []int8{1, 2}), []string{`"zp"`, "INT8"}},
		{&onnxpb.TensorProto{Name: proto.String("d"), DataType: proto.Int32(int32(onnxpb.TensorProto_DOUBLE)), DoubleData: []float64{1}}, []string{`"d"`, "DOUBLE"}},
		{&onnxpb.TensorProto{Name: proto.String("odd"), DataType: proto.Int32(1), Dims: []int64{1}, RawData: []byte{1, 2, 3}}, []string{`"odd"`, "multiple of 4"}},
		{&onnxpb.TensorProto{Name: proto.String("short"), DataType: proto.Int32(1), Dims: []int64{2, 2}, FloatData: []float32{1, 2, 3}}, []string{`"short"`, "3 values", "want 4"}},
		{&onnxpb.TensorProto{Name: proto.String("ext"), DataType: proto.Int32(1), Dims: []int64{1}, DataLocation: onnxpb.TensorProto_EXTERNAL.Enum()}, []string{`"ext"`, "external"}},
	} {
		_, err := onnx.TensorFloats(tc.tensor)
		if err == nil {
			t.Errorf("TensorFloats(%s) succeeded, want error", tc.tensor.GetName())
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("TensorFloats(%s) error %q lacks %q", tc.tensor.GetName(), err, w)
			}
		}
	}
}

func TestInitializers(t *testing.T) {
	for _, tc := range []struct {
		tensor *onnxpb.TensorProto
		dt     onnxpb.TensorProto_DataType
		dims   []int64
		raw    []byte
	}{
		{onnx.NewInitializer("n", onnxpb.TensorProto_UINT8, []int64{1, 2}, []byte{7, 8}), onnxpb.TensorProto_UINT8, []int64{1, 2}, []byte{7, 8}},
		{onnx.Int8Scalar("i8", -1), onnxpb.TensorProto_INT8, nil, []byte{0xff}},
		{onnx.Int8Vector("i8v", []int8{-128, 127}), onnxpb.TensorProto_INT8, []int64{2}, []byte{0x80, 0x7f}},
		{onnx.Uint8Scalar("u8", 128), onnxpb.TensorProto_UINT8, nil, []byte{128}},
		{onnx.Uint8Vector("u8v", []uint8{0, 255}), onnxpb.TensorProto_UINT8, []int64{2}, []byte{0, 255}},
		{onnx.Int32Scalar("i32", -2), onnxpb.TensorProto_INT32, nil, []byte{0xfe, 0xff, 0xff, 0xff}},
		{onnx.Int32Vector("i32v", []int32{1, 256}), onnxpb.TensorProto_INT32, []int64{2}, []byte{1, 0, 0, 0, 0, 1, 0, 0}},
		{onnx.Int32Tensor("i32t", []int64{1, 1}, []int32{3}), onnxpb.TensorProto_INT32, []int64{1, 1}, []byte{3, 0, 0, 0}},
		{onnx.Float32Vector("f", []float32{1}), onnxpb.TensorProto_FLOAT, []int64{1}, []byte{0, 0, 0x80, 0x3f}},
		{onnx.Float32Tensor("ft", []int64{1, 1}, []float32{-2}), onnxpb.TensorProto_FLOAT, []int64{1, 1}, []byte{0, 0, 0, 0xc0}},
	} {
		tn := tc.tensor
		if tn.GetDataType() != int32(tc.dt) || !reflect.DeepEqual(tn.GetDims(), tc.dims) && len(tc.dims)+len(tn.GetDims()) > 0 || !bytes.Equal(tn.GetRawData(), tc.raw) {
			t.Errorf("%s: data_type %d dims %v raw %x, want %d %v %x", tn.GetName(), tn.GetDataType(), tn.GetDims(), tn.GetRawData(), tc.dt, tc.dims, tc.raw)
		}
	}
	// NewInitializer copies its arguments.
	dims, raw := []int64{1}, []byte{1}
	tn := onnx.NewInitializer("c", onnxpb.TensorProto_UINT8, dims, raw)
	dims[0], raw[0] = 9, 9
	if tn.GetDims()[0] != 1 || tn.GetRawData()[0] != 1 {
		t.Error("NewInitializer aliases its dims or raw slices")
	}
	// An empty raw slice still marks the data as raw (present, zero length).
	if e := onnx.NewInitializer("e", onnxpb.TensorProto_FLOAT, []int64{0}, nil); e.RawData == nil {
		t.Error("NewInitializer with nil raw left raw_data absent")
	}
}
