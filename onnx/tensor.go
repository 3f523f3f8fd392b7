package onnx

import (
	"encoding/binary"
	"fmt"
	"math"

	"google.golang.org/protobuf/proto"

	"github.com/edgedet/edgedet/onnx/onnxpb"
)

// NumElements is the product of t's dims (1 for a scalar). It is -1 when a
// dim is negative or the product overflows.
func NumElements(t *onnxpb.TensorProto) int64 {
	n := int64(1)
	for _, d := range t.GetDims() {
		if d < 0 || (d > 0 && n > math.MaxInt64/d) {
			return -1
		}
		n *= d
	}
	return n
}

// HoldsFloats reports whether t is a FLOAT tensor stored in the file (not
// externally) whose data holds exactly the elements its dims claim. Code
// that sizes buffers or loops from a weight's dims checks it first, so a
// tensor claiming 2^40 elements it does not hold is refused, not allocated.
func HoldsFloats(t *onnxpb.TensorProto) bool {
	if t == nil || t.GetDataType() != int32(onnxpb.TensorProto_FLOAT) || t.GetDataLocation() == onnxpb.TensorProto_EXTERNAL {
		return false
	}
	n := NumElements(t)
	if t.RawData != nil {
		return n >= 0 && int64(len(t.GetRawData())) == 4*n
	}
	return n >= 0 && int64(len(t.GetFloatData())) == n
}

// tensorLabel names a tensor in errors.
func tensorLabel(t *onnxpb.TensorProto) string {
	return fmt.Sprintf("tensor %q (data_type %s)", t.GetName(), dataTypeName(t.GetDataType()))
}

func dataTypeName(dt int32) string {
	if name, ok := onnxpb.TensorProto_DataType_name[dt]; ok {
		return name
	}
	return fmt.Sprintf("%d", dt)
}

// TensorFloats returns the values of a FLOAT tensor, from raw_data
// (little-endian) or from float_data. It fails, naming the tensor and its
// data_type, for any other data type, for external data, and when the data
// length does not match the dims.
func TensorFloats(t *onnxpb.TensorProto) ([]float32, error) {
	if t.GetDataType() != int32(onnxpb.TensorProto_FLOAT) {
		return nil, fmt.Errorf("%s: want FLOAT", tensorLabel(t))
	}
	if t.GetDataLocation() == onnxpb.TensorProto_EXTERNAL {
		return nil, fmt.Errorf("%s: data is stored externally", tensorLabel(t))
	}
	n := NumElements(t)
	var v []float32
	if raw := t.GetRawData(); t.RawData != nil {
		if len(raw)%4 != 0 {
			return nil, fmt.Errorf("%s: raw_data has %d bytes, not a multiple of 4", tensorLabel(t), len(raw))
		}
		v = make([]float32, len(raw)/4)
		for i := range v {
			v[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		}
	} else {
		v = append([]float32(nil), t.GetFloatData()...)
	}
	if int64(len(v)) != n {
		return nil, fmt.Errorf("%s: has %d values, dims %v want %d", tensorLabel(t), len(v), t.GetDims(), n)
	}
	return v, nil
}

// SetTensorFloats stores v in t's raw_data (little-endian), clears
// float_data and sets data_type to FLOAT. It leaves dims alone: the caller
// keeps them consistent with len(v).
func SetTensorFloats(t *onnxpb.TensorProto, v []float32) {
	t.DataType = proto.Int32(int32(onnxpb.TensorProto_FLOAT))
	t.RawData = float32Bytes(v)
	t.FloatData = nil
}

func float32Bytes(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, f := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(f))
	}
	return b
}

// NewInitializer returns a tensor named name of type dt and shape dims whose
// data is raw (little-endian, as ONNX stores raw_data). dims and raw are
// copied. nil dims make a scalar.
func NewInitializer(name string, dt onnxpb.TensorProto_DataType, dims []int64, raw []byte) *onnxpb.TensorProto {
	return &onnxpb.TensorProto{
		Name:     proto.String(name),
		DataType: proto.Int32(int32(dt)),
		Dims:     append([]int64(nil), dims...),
		RawData:  append([]byte{}, raw...),
	}
}

// Float32Tensor is a FLOAT initializer of shape dims holding v; it panics if
// len(v) does not match dims, a programming error.
func Float32Tensor(name string, dims []int64, v []float32) *onnxpb.TensorProto {
	checkLen(name, dims, len(v))
	return NewInitializer(name, onnxpb.TensorProto_FLOAT, dims, float32Bytes(v))
}

// Float32Vector is a 1-D FLOAT initializer holding v.
func Float32Vector(name string, v []float32) *onnxpb.TensorProto {
	return Float32Tensor(name, []int64{int64(len(v))}, v)
}

// Float32Scalar is a 0-D FLOAT initializer.
func Float32Scalar(name string, v float32) *onnxpb.TensorProto {
	return Float32Tensor(name, nil, []float32{v})
}

// Int8Tensor is an INT8 initializer of shape dims holding v; it panics if
// len(v) does not match dims.
func Int8Tensor(name string, dims []int64, v []int8) *onnxpb.TensorProto {
	checkLen(name, dims, len(v))
	b := make([]byte, len(v))
	for i, x := range v {
		b[i] = byte(x)
	}
	return NewInitializer(name, onnxpb.TensorProto_INT8, dims, b)
}

// Int8Vector is a 1-D INT8 initializer holding v.
func Int8Vector(name string, v []int8) *onnxpb.TensorProto {
	return Int8Tensor(name, []int64{int64(len(v))}, v)
}

// Int8Scalar is a 0-D INT8 initializer (e.g. a QuantizeLinear zero point).
func Int8Scalar(name string, v int8) *onnxpb.TensorProto {
	return Int8Tensor(name, nil, []int8{v})
}

// Uint8Tensor is a UINT8 initializer of shape dims holding v; it panics if
// len(v) does not match dims.
func Uint8Tensor(name string, dims []int64, v []uint8) *onnxpb.TensorProto {
	checkLen(name, dims, len(v))
	return NewInitializer(name, onnxpb.TensorProto_UINT8, dims, v)
}

// Uint8Vector is a 1-D UINT8 initializer holding v.
func Uint8Vector(name string, v []uint8) *onnxpb.TensorProto {
	return Uint8Tensor(name, []int64{int64(len(v))}, v)
}

// Uint8Scalar is a 0-D UINT8 initializer.
func Uint8Scalar(name string, v uint8) *onnxpb.TensorProto {
	return Uint8Tensor(name, nil, []uint8{v})
}

// Int32Tensor is an INT32 initializer of shape dims holding v; it panics if
// len(v) does not match dims.
func Int32Tensor(name string, dims []int64, v []int32) *onnxpb.TensorProto {
	checkLen(name, dims, len(v))
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], uint32(x))
	}
	return NewInitializer(name, onnxpb.TensorProto_INT32, dims, b)
}

// Int32Vector is a 1-D INT32 initializer holding v (e.g. a quantised bias).
func Int32Vector(name string, v []int32) *onnxpb.TensorProto {
	return Int32Tensor(name, []int64{int64(len(v))}, v)
}

// Int32Scalar is a 0-D INT32 initializer.
func Int32Scalar(name string, v int32) *onnxpb.TensorProto {
	return Int32Tensor(name, nil, []int32{v})
}

func checkLen(name string, dims []int64, n int) {
	t := &onnxpb.TensorProto{Dims: dims}
	if want := NumElements(t); want != int64(n) {
		panic(fmt.Sprintf("quant: tensor %q: %d values for dims %v (want %d)", name, n, dims, want))
	}
}

// Float16Tensor is a FLOAT16 initializer of shape dims holding v rounded to
// the nearest half-precision value; it panics if len(v) does not match dims.
func Float16Tensor(name string, dims []int64, v []float32) *onnxpb.TensorProto {
	checkLen(name, dims, len(v))
	b := make([]byte, 2*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint16(b[2*i:], Float16Bits(x))
	}
	return NewInitializer(name, onnxpb.TensorProto_FLOAT16, dims, b)
}

// Float16Bits is f as an IEEE 754 half-precision value, rounded to nearest
// (ties to even); values beyond the half range become ±Inf, NaN stays NaN.
func Float16Bits(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int32(b>>23) & 0xff
	mant := b & 0x7fffff
	switch {
	case exp == 0xff: // Inf or NaN
		if mant != 0 {
			return sign | 0x7e00
		}
		return sign | 0x7c00
	case exp-127+15 >= 0x1f: // overflow
		return sign | 0x7c00
	case exp-127+15 <= 0: // half subnormal or zero
		e := exp - 127 + 15
		if e < -10 {
			return sign
		}
		m := mant | 0x800000 // implicit leading 1
		shift := uint32(14 - e)
		half := uint32(1) << (shift - 1)
		r := m >> shift
		rem := m & (1<<shift - 1)
		if rem > half || (rem == half && r&1 == 1) {
			r++
		}
		return sign | uint16(r)
	}
	e := uint32(exp - 127 + 15)
	r := e<<10 | mant>>13
	rem := mant & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && r&1 == 1) {
		r++ // may carry into the exponent, which is the right result (up to Inf)
	}
	return sign | uint16(r)
}

// Float16Value is the float32 value of half-precision bits h.
func Float16Value(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h & 0x3ff)
	switch {
	case exp == 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case exp == 0:
		v := float32(mant) / (1 << 24)
		if sign != 0 {
			v = -v
		}
		return v
	}
	return math.Float32frombits(sign | (exp-15+127)<<23 | mant<<13)
}
