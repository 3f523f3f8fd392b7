package detection

// yolov8Decoder reads [1, 4+nc, N] channel-major: value(c, i) = out[c*N+i].
type yolov8Decoder struct {
	nc, n int
}

func (d *yolov8Decoder) NumClasses() int { return d.nc }

// yolov8Block is how many anchors Decode scores at once. The per-block
// best-score tables live on the stack, and each class row is read as a
// contiguous run of yolov8Block values instead of one value per cache line.
const yolov8Block = 256

func (d *yolov8Decoder) Decode(out []float32, minScore float32, dst []Detection) []Detection {
	n := d.n
	checkLen(FormatYOLOv8, out, (4+d.nc)*n)
	var best [yolov8Block]float32
	var cls [yolov8Block]int32
	for lo := 0; lo < n; lo += yolov8Block {
		hi := min(lo+yolov8Block, n)
		bs := best[:hi-lo]
		cs := cls[:len(bs)]
		copy(bs, out[4*n+lo:4*n+hi])
		clear(cs)
		for c := 1; c < d.nc; c++ {
			row := out[(4+c)*n+lo : (4+c)*n+hi]
			row = row[:len(bs)]
			for j, s := range row {
				if s > bs[j] { // strict: the first class wins ties
					bs[j], cs[j] = s, int32(c)
				}
			}
		}
		for j, s := range bs {
			if !(s >= minScore) {
				continue
			}
			i := lo + j
			box := cxcywh(out[i], out[n+i], out[2*n+i], out[3*n+i])
			dst = appendCandidate(dst, int(cs[j]), s, box)
		}
	}
	return dst
}
