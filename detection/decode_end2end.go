package detection

import "math"

// end2endDecoder reads [1, K, 6] rows x1,y1,x2,y2,score,class.
type end2endDecoder struct {
	k int
}

func (d *end2endDecoder) NumClasses() int { return 0 }

// maxExactClass bounds class ids read from float32: every integer up to 2^24
// is exact in float32, and it keeps the int conversion well defined.
const maxExactClass = 1 << 24

func (d *end2endDecoder) Decode(out []float32, minScore float32, dst []Detection) []Detection {
	checkLen(FormatEnd2End, out, 6*d.k)
	for i := range d.k {
		row := out[i*6 : i*6+6]
		score := row[4]
		if !(score >= minScore) {
			continue
		}
		c := row[5]
		// Skip rows whose class is not a whole number in [0, 2^24]
		// (NaN fails the range test).
		if !(c >= 0 && c <= maxExactClass) || c != float32(math.Trunc(float64(c))) {
			continue
		}
		dst = appendCandidate(dst, int(c), score, Box{X1: row[0], Y1: row[1], X2: row[2], Y2: row[3]})
	}
	return dst
}
