package spool

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// TestIDSetAgainstMap checks idSet against a plain map on random operations.
func TestIDSetAgainstMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var s idSet
	ref := map[uint64]bool{}
	for op := range 20000 {
		switch k := rng.IntN(10); {
		case k < 6:
			id := 1 + rng.Uint64N(200)
			s.add(id)
			ref[id] = true
		case k < 8:
			lo := 1 + rng.Uint64N(200)
			hi := lo + rng.Uint64N(10)
			s.addRange(lo, hi)
			for id := lo; id <= hi; id++ {
				ref[id] = true
			}
		default:
			p := rng.Uint64N(60)
			s.trim(p)
			for id := range ref {
				if id <= p {
					delete(ref, id)
				}
			}
		}
		for i, r := range s {
			if r.lo > r.hi || (i > 0 && s[i-1].hi+1 >= r.lo) {
				t.Fatalf("op %d: ranges not ascending, disjoint and apart: %v", op, s)
			}
		}
		lo, hi := 1+rng.Uint64N(220), 1+rng.Uint64N(220)
		var want uint64
		for id := lo; id <= hi; id++ {
			if ref[id] {
				want++
			}
			if s.has(id) != ref[id] {
				t.Fatalf("op %d: has(%d) = %v, want %v; set %v", op, id, s.has(id), ref[id], s)
			}
		}
		if got := s.count(lo, hi); got != want {
			t.Fatalf("op %d: count(%d, %d) = %d, want %d; set %v", op, lo, hi, got, want, s)
		}
	}
}

func TestIDSetEdges(t *testing.T) {
	const top = ^uint64(0)
	var s idSet
	s.addRange(top-2, top)
	s.add(top - 3)
	s.add(0)
	if want := (idSet{{0, 0}, {top - 3, top}}); !slices.Equal(s, want) {
		t.Fatalf("set = %v, want %v", s, want)
	}
	if n := s.count(0, top); n != 5 {
		t.Fatalf("count = %d, want 5", n)
	}
	s.trim(top)
	if len(s) != 0 {
		t.Fatalf("trim(max) left %v", s)
	}
}

// addRange at the edges of the ID space: an inverted range adds nothing,
// a range touching ID 0 merges with it, and a range up to the largest ID
// merges with every range it reaches (without hi+1 overflowing).
func TestIDSetAddRangeEdges(t *testing.T) {
	const top = ^uint64(0)
	s := idSet{{3, 4}}
	s.addRange(9, 7)
	if want := (idSet{{3, 4}}); !slices.Equal(s, want) {
		t.Errorf("addRange(9, 7): set = %v, want %v unchanged", s, want)
	}
	s = idSet{{0, 0}}
	s.addRange(1, 1)
	if want := (idSet{{0, 1}}); !slices.Equal(s, want) {
		t.Errorf("addRange(1, 1) next to 0: set = %v, want %v", s, want)
	}
	s = idSet{{10, 20}, {30, 40}}
	s.addRange(15, top)
	if want := (idSet{{10, top}}); !slices.Equal(s, want) {
		t.Errorf("addRange(15, max): set = %v, want %v", s, want)
	}
}
