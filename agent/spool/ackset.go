package spool

import "slices"

// idRange is the IDs lo..hi, both included.
type idRange struct{ lo, hi uint64 }

// idSet is a set of IDs kept as ascending, disjoint, non-adjacent ranges.
// Acknowledgements mostly arrive in ID order, so it stays a few ranges long
// whatever the number of IDs.
type idSet []idRange

// search returns the index of the first range whose hi is at or above id.
func (s idSet) search(id uint64) int {
	i, _ := slices.BinarySearchFunc(s, id, func(r idRange, id uint64) int {
		if r.hi < id {
			return -1
		}
		return 1
	})
	return i
}

func (s idSet) has(id uint64) bool {
	i := s.search(id)
	return i < len(s) && s[i].lo <= id
}

func (s *idSet) add(id uint64) { s.addRange(id, id) }

// addRange adds lo..hi (nothing if lo > hi).
func (s *idSet) addRange(lo, hi uint64) {
	if lo > hi {
		return
	}
	r := *s
	// Ranges that overlap or touch lo..hi merge with it.
	i := r.search(max(lo, 1) - 1) // first range with hi >= lo-1
	j := i
	for j < len(r) && (hi == ^uint64(0) || r[j].lo <= hi+1) {
		lo, hi = min(lo, r[j].lo), max(hi, r[j].hi)
		j++
	}
	*s = slices.Replace(r, i, j, idRange{lo, hi})
}

// trim removes every ID at or below p.
func (s *idSet) trim(p uint64) {
	r := *s
	i := r.search(p + 1)
	if p == ^uint64(0) {
		i = len(r)
	}
	r = slices.Delete(r, 0, i)
	if len(r) > 0 && r[0].lo <= p {
		r[0].lo = p + 1
	}
	*s = r
}

// count is how many IDs of lo..hi the set holds.
func (s idSet) count(lo, hi uint64) uint64 {
	if lo > hi {
		return 0
	}
	var n uint64
	for i := s.search(lo); i < len(s) && s[i].lo <= hi; i++ {
		n += min(hi, s[i].hi) - max(lo, s[i].lo) + 1
	}
	return n
}

// max is the largest ID held, 0 if none.
func (s idSet) max() uint64 {
	if len(s) == 0 {
		return 0
	}
	return s[len(s)-1].hi
}
