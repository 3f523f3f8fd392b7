package onnx

import (
	"slices"

	"github.com/edgedet/edgedet/onnx/onnxpb"
)

// windowedRules are the operators that slide a window over the spatial
// axes: convolution and pooling.
var windowedRules = map[string]shapeRule{
	"Conv": (*Shapes).conv, "ConvInteger": (*Shapes).conv, "QLinearConv": (*Shapes).conv,
	"MaxPool": (*Shapes).pool, "AveragePool": (*Shapes).pool, "LpPool": (*Shapes).pool,
	"GlobalAveragePool": (*Shapes).globalPool, "GlobalMaxPool": (*Shapes).globalPool,
	"GlobalLpPool": (*Shapes).globalPool,
}

// conv: the weight (after QLinearConv's input scale and zero point) gives
// the output channels and the kernel.
func (s *Shapes) conv(n *node) {
	w := s.dims[n.in[1]]
	if n.op == "QLinearConv" {
		w = s.dims[n.in[3]]
	}
	if n.x == nil || len(w) < 3 {
		return
	}
	s.set(n.out[0], windowed(n.NodeProto, n.x, w[0], w[2:]))
}

// pool keeps the channels; MaxPool's optional indices have the same shape.
func (s *Shapes) pool(n *node) {
	if n.x == nil {
		return
	}
	k, _ := s.intsArg(n, "kernel_shape", n.nIn)
	if len(k) != len(n.x)-2 {
		return
	}
	y := windowed(n.NodeProto, n.x, n.x[1], k)
	s.set(n.out[0], y)
	if len(n.out) > 1 {
		s.set(n.out[1], y)
	}
}

// globalPool reduces every spatial axis to 1.
func (s *Shapes) globalPool(n *node) {
	if len(n.x) < 2 {
		return
	}
	y := slices.Clone(n.x)
	for i := 2; i < len(y); i++ {
		y[i] = 1
	}
	s.set(n.out[0], y)
}

// windowAttrs are a windowed node's strides, dilations and pads (begin
// values of every axis, then end values), defaulted and checked against
// sp spatial axes.
func windowAttrs(n *onnxpb.NodeProto, sp int) (strides, dil, pads []int64, ok bool) {
	ones := slices.Repeat([]int64{1}, sp)
	strides, dil, pads = ones, ones, make([]int64, 2*sp)
	if at := Attr(n, "strides"); at != nil {
		strides = at.GetInts()
	}
	if at := Attr(n, "dilations"); at != nil {
		dil = at.GetInts()
	}
	if at := Attr(n, "pads"); at != nil {
		pads = at.GetInts()
	}
	return strides, dil, pads, len(strides) == sp && len(dil) == sp && len(pads) == 2*sp
}

// windowed is the output shape of a Conv or pooling node n over input x
// with c output channels and kernel k, honouring strides, dilations, pads,
// auto_pad and ceil_mode; nil when the attributes do not fit.
func windowed(n *onnxpb.NodeProto, x []int64, c int64, k []int64) []int64 {
	sp := len(x) - 2
	if sp < 1 || len(k) != sp {
		return nil
	}
	strides, dil, pads, ok := windowAttrs(n, sp)
	if !ok {
		return nil
	}
	autoPad := string(Attr(n, "auto_pad").GetS())
	ceil := AttrInt(n, "ceil_mode", 0) != 0
	y := []int64{x[0], c}
	for i := range sp {
		in, st := x[2+i], strides[i]
		if st <= 0 || dil[i] <= 0 {
			return nil
		}
		ext := dil[i]*(k[i]-1) + 1
		var o int64
		switch autoPad {
		case "SAME_UPPER", "SAME_LOWER":
			o = (in + st - 1) / st
		case "VALID":
			o = (in-ext)/st + 1
		default:
			o = windowCount(in, pads[i], pads[sp+i], ext, st, ceil)
		}
		if o <= 0 {
			return nil
		}
		y = append(y, o)
	}
	return y
}

// windowCount is the number of windows of extent ext, stride st, over an
// axis of length in padded by begin and end; 0 when none fits.
func windowCount(in, begin, end, ext, st int64, ceil bool) int64 {
	span := in + begin + end - ext
	if span < 0 {
		return 0
	}
	if !ceil {
		return span/st + 1
	}
	o := (span+st-1)/st + 1
	if (o-1)*st >= in+begin {
		o-- // the last window would start in the end padding
	}
	return o
}
