package train

// axisMap describes a strided gather: output axis k at index i reads the
// source element offset offsets[k][i] (summed over axes). Slice, Transpose,
// Gather, nearest Resize and broadcasting all reduce to it.
type axisMap struct {
	shape   []int   // output shape
	offsets [][]int // per output axis, the source offset of each index
	// result, when set, is the shape the output is given instead of shape
	// (same elements in the same row-major order).
	result []int
}

func (m axisMap) resultShape() []int {
	if m.result != nil {
		return m.result
	}
	return m.shape
}

// stridedMap reads a contiguous tensor of shape as itself, with the source
// strides given (zero stride = broadcast along that axis).
func stridedMap(shape, strides []int) axisMap {
	m := axisMap{shape: shape, offsets: make([][]int, len(shape))}
	for k, d := range shape {
		o := make([]int, d)
		for i := range o {
			o[i] = i * strides[k]
		}
		m.offsets[k] = o
	}
	return m
}

// gather writes dst[o] = src[offset(o)] for every output index o in
// row-major order.
func (m axisMap) gather(dst, src []float32) { gatherInto(m, dst, src) }

func gatherInto[T float32 | int64](m axisMap, dst, src []T) {
	m.walk(func(o, s int) { dst[o] = src[s] }, func(dst0, src0 int, offs []int) {
		d := dst[dst0 : dst0+len(offs)]
		for i, off := range offs {
			d[i] = src[src0+off]
		}
	})
}

// apply reads x through m into a new tensor of m's shape (float or int as
// x is).
func (m axisMap) apply(x *Tensor) *Tensor {
	if x.isInt() {
		v := make([]int64, numElements(m.shape))
		gatherInto(m, v, x.ints)
		return intTensor(v, m.resultShape()...)
	}
	y := NewTensor(m.resultShape()...)
	m.gather(y.Data, x.Data)
	return y
}

// adjoint scatters the gradient g of m's output back onto a zero tensor of
// shape src.
func (m axisMap) adjoint(g *Tensor, src []int) *Tensor {
	gx := NewTensor(src...)
	m.scatterAdd(gx.Data, g.Data)
	return gx
}

// scatterAdd is gather's adjoint: src[offset(o)] += dst[o].
func (m axisMap) scatterAdd(src, dst []float32) {
	m.walk(func(o, s int) { src[s] += dst[o] }, func(dst0, src0 int, offs []int) {
		d := dst[dst0 : dst0+len(offs)]
		for i, off := range offs {
			src[src0+off] += d[i]
		}
	})
}

// walk visits the output in row-major order; the innermost axis is handed
// to inner as one run so the per-element work stays a tight loop.
func (m axisMap) walk(one func(o, s int), inner func(dst0, src0 int, offs []int)) {
	rank := len(m.shape)
	if rank == 0 {
		one(0, 0)
		return
	}
	if numElements(m.shape) == 0 {
		return
	}
	last := m.offsets[rank-1]
	idx := make([]int, rank-1)
	base := 0
	for k := range rank - 1 {
		base += m.offsets[k][0]
	}
	o := 0
	for {
		inner(o, base, last)
		o += len(last)
		k := rank - 2
		for ; k >= 0; k-- {
			base -= m.offsets[k][idx[k]]
			idx[k]++
			if idx[k] < m.shape[k] {
				base += m.offsets[k][idx[k]]
				break
			}
			idx[k] = 0
			base += m.offsets[k][0]
		}
		if k < 0 {
			return
		}
	}
}
