package train

// depthwiseForward is a Conv with one input and one output channel per
// group, computed directly (a GEMM per channel would be 1×k·k×p).
func depthwiseForward(g convGeom, x, w, y []float32) {
	parallelFor(g.n*g.c, 1, func(lo, hi int) {
		for nc := lo; nc < hi; nc++ {
			c := nc % g.c
			plane := x[nc*g.h*g.w : (nc+1)*g.h*g.w]
			out := y[nc*g.ho*g.wo : (nc+1)*g.ho*g.wo]
			kern := w[c*g.kh*g.kw : (c+1)*g.kh*g.kw]
			for oy := range g.ho {
				row := out[oy*g.wo : (oy+1)*g.wo]
				for ky := range g.kh {
					iy := oy*g.strideH - g.padT + ky*g.dilH
					if iy < 0 || iy >= g.h {
						continue
					}
					line := plane[iy*g.w : (iy+1)*g.w]
					for kx := range g.kw {
						wv := kern[ky*g.kw+kx]
						ox0, ox1 := validRange(g.wo, g.w, -g.padL+kx*g.dilW, g.strideW)
						ix := ox0*g.strideW - g.padL + kx*g.dilW
						for ox := ox0; ox < ox1; ox++ {
							row[ox] += wv * line[ix]
							ix += g.strideW
						}
					}
				}
			}
		}
	})
}

// validRange is the range [lo,hi) of output columns ox whose input column
// off + ox·stride lies inside [0, w).
func validRange(wo, w, off, stride int) (int, int) {
	lo := 0
	if off < 0 {
		lo = (-off + stride - 1) / stride
	}
	hi := wo
	if last := off + (wo-1)*stride; last >= w {
		hi = (w-1-off)/stride + 1
		if w-1-off < 0 {
			hi = 0
		}
	}
	if hi < lo {
		hi = lo
	}
	return lo, hi
}

// depthwiseBackward adds the input and weight gradients of
// depthwiseForward. Weight gradients are summed per channel, so the work
// is split by channel and each channel loops over the batch.
func depthwiseBackward(g convGeom, x, w, gy, gx, gw []float32) {
	parallelFor(g.c, 1, func(lo, hi int) {
		for c := lo; c < hi; c++ {
			kern := w[c*g.kh*g.kw : (c+1)*g.kh*g.kw]
			gkern := gw[c*g.kh*g.kw : (c+1)*g.kh*g.kw]
			for n := range g.n {
				nc := n*g.c + c
				plane := x[nc*g.h*g.w : (nc+1)*g.h*g.w]
				gplane := gx[nc*g.h*g.w : (nc+1)*g.h*g.w]
				grad := gy[nc*g.ho*g.wo : (nc+1)*g.ho*g.wo]
				for oy := range g.ho {
					row := grad[oy*g.wo : (oy+1)*g.wo]
					for ky := range g.kh {
						iy := oy*g.strideH - g.padT + ky*g.dilH
						if iy < 0 || iy >= g.h {
							continue
						}
						line := plane[iy*g.w : (iy+1)*g.w]
						gline := gplane[iy*g.w : (iy+1)*g.w]
						for kx := range g.kw {
							wv := kern[ky*g.kw+kx]
							ox0, ox1 := validRange(g.wo, g.w, -g.padL+kx*g.dilW, g.strideW)
							ix := ox0*g.strideW - g.padL + kx*g.dilW
							var s float32
							for ox := ox0; ox < ox1; ox++ {
								s += row[ox] * line[ix]
								gline[ix] += wv * row[ox]
								ix += g.strideW
							}
							gkern[ky*g.kw+kx] += s
						}
					}
				}
			}
		}
	})
}
