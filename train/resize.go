package train

import (
	"fmt"
	"math"
)

// resizeParams describe a nearest-neighbour Resize (or Upsample): how an
// output coordinate maps to an input one and how it is rounded.
type resizeParams struct {
	coordMode   string // asymmetric, half_pixel, pytorch_half_pixel, align_corners, tf_half_pixel_for_nn
	nearestMode string // floor, ceil, round_prefer_floor, round_prefer_ceil, or simple (Resize-10 and Upsample: ceil when shrinking, else floor)
}

func checkResizeParams(p resizeParams) error {
	switch p.coordMode {
	case "asymmetric", "half_pixel", "pytorch_half_pixel", "align_corners", "tf_half_pixel_for_nn":
	default:
		return fmt.Errorf("coordinate_transformation_mode %q is not supported", p.coordMode)
	}
	switch p.nearestMode {
	case "floor", "ceil", "round_prefer_floor", "round_prefer_ceil":
	default:
		return fmt.Errorf("nearest_mode %q is not supported", p.nearestMode)
	}
	return nil
}

// sourceIndex is the input index output index o reads along an axis of
// input length in, output length out, scale s.
func (p resizeParams) sourceIndex(o, in, out int, s float64) int {
	var x float64
	switch p.coordMode {
	case "half_pixel":
		x = (float64(o)+0.5)/s - 0.5
	case "pytorch_half_pixel":
		if out > 1 {
			x = (float64(o)+0.5)/s - 0.5
		}
	case "align_corners":
		if out > 1 {
			x = float64(o) * float64(in-1) / float64(out-1)
		}
	case "tf_half_pixel_for_nn":
		x = (float64(o) + 0.5) / s
	default:
		x = float64(o) / s
	}
	var i int
	switch p.nearestMode {
	case "simple":
		if s < 1 {
			i = int(math.Ceil(x))
		} else {
			i = int(math.Floor(x))
		}
	case "ceil":
		i = int(math.Ceil(x))
	case "round_prefer_floor":
		if x-math.Floor(x) == 0.5 {
			i = int(math.Floor(x))
		} else {
			i = int(math.Round(x))
		}
	case "round_prefer_ceil":
		i = int(math.Round(x))
		if x-math.Floor(x) == 0.5 {
			i = int(math.Ceil(x))
		}
	default:
		i = int(math.Floor(x))
	}
	return min(max(i, 0), in-1)
}

// resizeKernel is nearest Resize. Its target comes from the scales or
// sizes input (ins[scalesAt] / ins[sizesAt], -1 when absent), read at run
// time.
type resizeKernel struct {
	p                 resizeParams
	scalesAt, sizesAt int
}

func (k resizeKernel) keeps() (uint, bool) { return 0, false }

func (k resizeKernel) target(ins []*Tensor) (scales []float64, sizes []int, err error) {
	x := ins[0]
	rank := len(x.Shape)
	if k.sizesAt >= 0 && k.sizesAt < len(ins) && ins[k.sizesAt] != nil && ins[k.sizesAt].Len() > 0 {
		sz := ins[k.sizesAt]
		if !sz.isInt() || len(sz.ints) != rank {
			return nil, nil, fmt.Errorf("resize: sizes %v do not match input rank %d", sz.ints, rank)
		}
		sizes = make([]int, rank)
		scales = make([]float64, rank)
		for i, v := range sz.ints {
			if v <= 0 {
				return nil, nil, fmt.Errorf("resize: size %d on axis %d is not positive", v, i)
			}
			sizes[i] = int(v)
			scales[i] = float64(v) / float64(x.Shape[i])
		}
		return scales, sizes, nil
	}
	if k.scalesAt < 0 || k.scalesAt >= len(ins) || ins[k.scalesAt] == nil {
		return nil, nil, fmt.Errorf("resize: neither scales nor sizes given")
	}
	sc := ins[k.scalesAt]
	if sc.isInt() || len(sc.Data) != rank {
		return nil, nil, fmt.Errorf("resize: scales %v do not match input rank %d", sc.Data, rank)
	}
	scales = make([]float64, rank)
	sizes = make([]int, rank)
	for i, v := range sc.Data {
		if v <= 0 {
			return nil, nil, fmt.Errorf("resize: scale %g on axis %d is not positive", v, i)
		}
		scales[i] = float64(v)
		size := math.Floor(float64(x.Shape[i]) * float64(v))
		if size > maxElements {
			return nil, nil, fmt.Errorf("resize: scale %g on axis %d gives %g elements", v, i, size)
		}
		sizes[i] = int(size)
	}
	return scales, sizes, nil
}

func (k resizeKernel) indexMap(ins []*Tensor) (axisMap, error) {
	x := ins[0]
	scales, sizes, err := k.target(ins)
	if err != nil {
		return axisMap{}, err
	}
	if err := checkSize("resize", sizes); err != nil {
		return axisMap{}, err
	}
	st := stridesOf(x.Shape)
	m := axisMap{shape: sizes, offsets: make([][]int, len(sizes))}
	for a, out := range sizes {
		offs := make([]int, out)
		for o := range offs {
			offs[o] = k.p.sourceIndex(o, x.Shape[a], out, scales[a]) * st[a]
		}
		m.offsets[a] = offs
	}
	return m, nil
}

func (k resizeKernel) forward(ins []*Tensor) ([]*Tensor, any, error) {
	m, err := k.indexMap(ins)
	if err != nil {
		return nil, nil, err
	}
	y := NewTensor(m.shape...)
	m.gather(y.Data, ins[0].Data)
	return []*Tensor{y}, m, nil
}

func (k resizeKernel) backward(ins, _ []*Tensor, state any, gOuts []*Tensor) ([]*Tensor, error) {
	grads := make([]*Tensor, len(ins))
	if gOuts[0] != nil {
		gx := NewTensor(ins[0].Shape...)
		state.(axisMap).scatterAdd(gx.Data, gOuts[0].Data)
		grads[0] = gx
	}
	return grads, nil
}
