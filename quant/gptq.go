package quant

import (
	"math"

	"github.com/edgedet/edgedet/onnx"
	"github.com/edgedet/edgedet/onnx/onnxpb"
)

// Error-compensating weight rounding (GPTQ, Frantar et al. 2022, the
// second-order successor of AdaRound): rounding every weight to the nearest
// step is optimal for the weights but not for the layer's output, which is
// what the next layer sees. With H = E[x xᵀ] over the layer's input patches
// on the calibration frames (the FP32 model is the teacher), the output
// error of a row's rounding δ is δᵀHδ; quantizing the weights one input at
// a time and spreading each one's rounding error over the inputs not yet
// quantized (through the inverse of H) makes the row's output error much
// smaller than nearest rounding does. It matters most where a channel has
// few weights: a 3×3 depthwise channel has nine, so its rounding errors do
// not average out.

// hessianPositions bounds the output positions per frame whose input
// patches a layer's H accumulates (spread evenly over the output).
const hessianPositions = 512

// hessianFrames is how many calibration frames the Hessians use.
const hessianFrames = 16

// maxGPTQPatch bounds the weight row length (input channels per group ×
// kernel size) GPTQ handles: H has patch² entries, and accumulating it
// costs patch² per sampled position.
const maxGPTQPatch = 256

// namedHessian is a Conv's Hessian and the node's name.
type namedHessian struct {
	node string
	h    *hessian
}

// gptqDamp is the fraction of H's mean diagonal added to its diagonal, so
// that it can be inverted when some inputs are (nearly) always zero.
const gptqDamp = 0.01

// convGeom is a 2-D Conv's geometry.
type convGeom struct {
	cin, groups, kh, kw, sh, sw, pt, pl, dh, dw int
}

// patch is the length of one group's input patch (the weight row length).
func (c convGeom) patch() int { return c.cin / c.groups * c.kh * c.kw }

// geometryOf returns Conv n's geometry for weight dims [M, C/g, kh, kw];
// ok is false for what the Hessian does not handle (auto_pad, not 2-D).
func geometryOf(n *onnxpb.NodeProto, dims []int64) (convGeom, bool) {
	if n.GetOpType() != "Conv" || len(dims) != 4 {
		return convGeom{}, false
	}
	for _, a := range n.GetAttribute() {
		if a.GetName() == "auto_pad" && string(a.GetS()) != "" && string(a.GetS()) != "NOTSET" {
			return convGeom{}, false
		}
	}
	ints := func(name string, def []int64) []int64 {
		for _, a := range n.GetAttribute() {
			if a.GetName() == name {
				return a.GetInts()
			}
		}
		return def
	}
	s, d, p := ints("strides", []int64{1, 1}), ints("dilations", []int64{1, 1}), ints("pads", []int64{0, 0, 0, 0})
	if len(s) != 2 || len(d) != 2 || len(p) != 4 {
		return convGeom{}, false
	}
	g := int(onnx.AttrInt(n, "group", 1))
	c := convGeom{cin: int(dims[1]) * g, groups: g, kh: int(dims[2]), kw: int(dims[3]),
		sh: int(s[0]), sw: int(s[1]), pt: int(p[0]), pl: int(p[1]), dh: int(d[0]), dw: int(d[1])}
	if g < 1 || dims[1] < 1 || c.sh < 1 || c.sw < 1 || c.dh < 1 || c.dw < 1 || c.kh < 1 || c.kw < 1 {
		return convGeom{}, false
	}
	return c, true
}

// hessian accumulates Σ x xᵀ over input patches, one matrix per group.
type hessian struct {
	geo   convGeom
	h     [][]float64 // [group] d×d, row-major
	count float64
	frame int
}

func newHessian(geo convGeom) *hessian {
	d := geo.patch()
	h := &hessian{geo: geo, h: make([][]float64, geo.groups)}
	for i := range h.h {
		h.h[i] = make([]float64, d*d)
	}
	return h
}

// add accumulates the patches of NCHW input v (shape) at up to
// hessianPositions output positions of the first batch item.
func (h *hessian) add(shape []int64, v []float32) {
	c := h.geo
	if len(shape) != 4 || int(shape[1]) != c.cin {
		return
	}
	H, W := int(shape[2]), int(shape[3])
	oh := (H+2*c.pt-c.dh*(c.kh-1)-1)/c.sh + 1
	ow := (W+2*c.pl-c.dw*(c.kw-1)-1)/c.sw + 1
	if oh <= 0 || ow <= 0 || len(v) < c.cin*H*W {
		return
	}
	total := oh * ow
	step := max(1, total/hessianPositions)
	d := c.patch()
	cpg := c.cin / c.groups
	x := make([]float64, d)
	for pos := h.frame % step; pos < total; pos += step {
		oy, ox := pos/ow, pos%ow
		for g := range c.groups {
			k := 0
			for ci := g * cpg; ci < (g+1)*cpg; ci++ {
				for ky := range c.kh {
					iy := oy*c.sh - c.pt + ky*c.dh
					for kx := range c.kw {
						ix := ox*c.sw - c.pl + kx*c.dw
						x[k] = 0
						if iy >= 0 && iy < H && ix >= 0 && ix < W {
							x[k] = float64(v[(ci*H+iy)*W+ix])
						}
						k++
					}
				}
			}
			m := h.h[g]
			for i := range d {
				if x[i] == 0 {
					continue
				}
				xi := x[i]
				row := m[i*d : i*d+d]
				for j := i; j < d; j++ {
					row[j] += xi * x[j]
				}
			}
		}
		h.count++
	}
	h.frame++
}

// upperInverseFactor returns U (d×d, upper triangular, row-major) with
// UᵀU = (H/n + damp)⁻¹ for group g's accumulated H, or nil if it is not
// positive definite.
func (h *hessian) upperInverseFactor(g int) []float64 {
	d := h.geo.patch()
	if h.count == 0 {
		return nil
	}
	a := make([]float64, d*d)
	var mean float64
	for i := range d {
		for j := i; j < d; j++ {
			v := h.h[g][i*d+j] / h.count
			a[i*d+j], a[j*d+i] = v, v
		}
		mean += a[i*d+i]
	}
	mean /= float64(d)
	if mean <= 0 {
		return nil
	}
	for i := range d {
		if a[i*d+i] == 0 {
			a[i*d+i] = mean // an input that is always zero
		}
		a[i*d+i] += gptqDamp * mean
	}
	l := cholesky(a, d)
	if l == nil {
		return nil
	}
	inv := choleskyInverse(l, d)
	// With L2 the lower Cholesky factor of inv, U = L2ᵀ: UᵀU = L2 L2ᵀ = inv.
	l2 := cholesky(inv, d)
	if l2 == nil {
		return nil
	}
	u := make([]float64, d*d)
	for i := range d {
		for j := 0; j <= i; j++ {
			u[j*d+i] = l2[i*d+j]
		}
	}
	return u
}

// cholesky returns lower-triangular L with L Lᵀ = a (d×d), or nil.
func cholesky(a []float64, d int) []float64 {
	l := make([]float64, d*d)
	for i := range d {
		for j := 0; j <= i; j++ {
			s := a[i*d+j]
			for k := range j {
				s -= l[i*d+k] * l[j*d+k]
			}
			if i == j {
				if s <= 0 || math.IsNaN(s) {
					return nil
				}
				l[i*d+i] = math.Sqrt(s)
			} else {
				l[i*d+j] = s / l[j*d+j]
			}
		}
	}
	return l
}

// choleskyInverse returns (L Lᵀ)⁻¹ for lower-triangular l.
func choleskyInverse(l []float64, d int) []float64 {
	// li = L⁻¹ (lower triangular).
	li := make([]float64, d*d)
	for i := range d {
		li[i*d+i] = 1 / l[i*d+i]
		for j := 0; j < i; j++ {
			var s float64
			for k := j; k < i; k++ {
				s += l[i*d+k] * li[k*d+j]
			}
			li[i*d+j] = -s / l[i*d+i]
		}
	}
	inv := make([]float64, d*d)
	for i := range d {
		for j := 0; j <= i; j++ {
			var s float64
			for k := i; k < d; k++ {
				s += li[k*d+i] * li[k*d+j]
			}
			inv[i*d+j], inv[j*d+i] = s, s
		}
	}
	return inv
}

// gptqRow quantizes row w (one output channel's weights, in patch order)
// to integers in [−qmax, qmax] of step scale, compensating each rounding
// error on the weights not yet quantized through u (see
// upperInverseFactor).
func gptqRow(w []float32, u []float64, scale float32, qmax float64) []int8 {
	d := len(w)
	r := make([]float64, d)
	for i, v := range w {
		r[i] = float64(v)
	}
	s := float64(scale)
	q := make([]int8, d)
	for j := range d {
		x := min(max(math.Round(r[j]/s), -qmax), qmax)
		q[j] = int8(x)
		e := (r[j] - x*s) / u[j*d+j]
		for k := j + 1; k < d; k++ {
			r[k] -= e * u[j*d+k]
		}
	}
	return q
}

// gptqWeights re-rounds the int8 weights qw of Conv weight wv (dims [M,
// C/g, kh, kw], per-channel scales, or one) with h; it changes nothing for
// a group whose H cannot be factored.
func gptqWeights(wv []float32, qw []int8, dims []int64, scales []float32, h *hessian, qmax float64) {
	m := int(dims[0])
	d := h.geo.patch()
	if m == 0 || len(wv) != m*d || m%h.geo.groups != 0 {
		return
	}
	perGroup := m / h.geo.groups
	factors := make([][]float64, h.geo.groups)
	for o := range m {
		g := o / perGroup
		if factors[g] == nil {
			factors[g] = h.upperInverseFactor(g)
			if factors[g] == nil {
				factors[g] = []float64{}
			}
		}
		if len(factors[g]) == 0 {
			continue
		}
		s := scales[0]
		if len(scales) > 1 {
			s = scales[o]
		}
		copy(qw[o*d:(o+1)*d], gptqRow(wv[o*d:(o+1)*d], factors[g], s, qmax))
	}
}
