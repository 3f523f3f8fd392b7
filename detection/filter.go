package detection

// Filter drops detections by label allow-list, per-label minimum score and
// minimum box area. The zero Filter keeps everything.
type Filter struct {
	// Allow lists the class ids to keep (only true entries count). nil keeps
	// every class; an empty non-nil map keeps none.
	Allow map[int]bool
	// MinScore is a per-class minimum score; classes without an entry have
	// no extra minimum. A detection scoring exactly the minimum is kept.
	MinScore map[int]float32
	// MinArea is the minimum box area in frame pixels²; smaller boxes are
	// dropped. 0 drops none.
	MinArea float32
}

// Apply filters dets in place, keeping their order, and returns the kept
// prefix. Boxes must already be in frame pixels for MinArea to mean what it
// says.
func (f Filter) Apply(dets []Detection) []Detection {
	kept := 0
	for _, d := range dets {
		if f.keep(d) {
			dets[kept] = d
			kept++
		}
	}
	return dets[:kept]
}

func (f Filter) keep(d Detection) bool {
	if f.Allow != nil && !f.Allow[d.ClassID] {
		return false
	}
	if m, ok := f.MinScore[d.ClassID]; ok && !(d.Score >= m) {
		return false
	}
	return !(d.Box.Area() < f.MinArea)
}
