package train

import (
	"fmt"
	"slices"
)

// Tensor is a dense float32 tensor in row-major (NCHW for images) order.
// Integer tensors (the shape arithmetic exported graphs do with Shape,
// Gather, Concat …) carry their values in ints instead of Data and never
// take part in gradients.
type Tensor struct {
	Shape []int
	Data  []float32
	ints  []int64
}

// NewTensor returns a zero tensor of the given shape (like make, it panics
// on a negative dimension).
func NewTensor(shape ...int) *Tensor {
	return &Tensor{Shape: slices.Clone(shape), Data: make([]float32, numElements(shape))}
}

// FromData wraps data (not copied) as a tensor of the given shape; it fails
// when the lengths disagree.
func FromData(data []float32, shape ...int) (*Tensor, error) {
	if n := numElements(shape); n != len(data) {
		return nil, fmt.Errorf("tensor of shape %v needs %d values, got %d", shape, n, len(data))
	}
	return &Tensor{Shape: slices.Clone(shape), Data: data}, nil
}

func intTensor(v []int64, shape ...int) *Tensor {
	if v == nil {
		v = []int64{}
	}
	return &Tensor{Shape: slices.Clone(shape), ints: v}
}

// Len is the number of elements.
func (t *Tensor) Len() int { return numElements(t.Shape) }

// Clone is a deep copy.
func (t *Tensor) Clone() *Tensor {
	return &Tensor{Shape: slices.Clone(t.Shape), Data: slices.Clone(t.Data), ints: slices.Clone(t.ints)}
}

func (t *Tensor) isInt() bool { return t.ints != nil }

func numElements(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

// stridesOf is the row-major element stride of each axis.
func stridesOf(shape []int) []int {
	s := make([]int, len(shape))
	acc := 1
	for i := len(shape) - 1; i >= 0; i-- {
		s[i] = acc
		acc *= shape[i]
	}
	return s
}

// normAxis maps a possibly negative ONNX axis into [0, rank).
func normAxis(axis, rank int) (int, error) {
	if axis < 0 {
		axis += rank
	}
	if axis < 0 || axis >= rank {
		return 0, fmt.Errorf("axis %d out of range for rank %d", axis, rank)
	}
	return axis, nil
}

// maxElements bounds the tensors an operator may create from a model's
// attributes (pads, scales, sizes): 2^30 float32 values, 4 GiB. A larger
// one is an error rather than an allocation that kills the process.
const maxElements = 1 << 30

func checkSize(op string, shape []int) error {
	n := 1
	for _, d := range shape {
		if d < 0 {
			return fmt.Errorf("%s: output shape %v has a negative dimension", op, shape)
		}
		if d > 0 && n > maxElements/d {
			return fmt.Errorf("%s: output shape %v exceeds %d elements", op, shape, maxElements)
		}
		n *= d
	}
	return nil
}
