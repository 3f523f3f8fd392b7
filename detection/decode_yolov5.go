package detection

// yolov5Decoder reads [1, N, 5+nc] rows cx,cy,w,h,obj,cls...
type yolov5Decoder struct {
	nc, n int
}

func (d *yolov5Decoder) NumClasses() int { return d.nc }

func (d *yolov5Decoder) Decode(out []float32, minScore float32, dst []Detection) []Detection {
	stride := 5 + d.nc
	checkLen(FormatYOLOv5, out, stride*d.n)
	for i := range d.n {
		row := out[i*stride : (i+1)*stride]
		obj := row[4]
		// Class scores are probabilities (<= 1), so obj*cls <= obj.
		if !(obj >= minScore) {
			continue
		}
		cls, best := argmax(row[5:])
		score := obj * best
		if !(score >= minScore) {
			continue
		}
		dst = appendCandidate(dst, cls, score, cxcywh(row[0], row[1], row[2], row[3]))
	}
	return dst
}
