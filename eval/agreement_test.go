package eval

import (
	"errors"
	"math"
	"testing"
)

func TestAgreement(t *testing.T) {
	ref := [][]Detection{
		{{ClassID: 0, Score: 0.9, Box: [4]float64{10, 10, 110, 110}}, {ClassID: 1, Score: 0.8, Box: [4]float64{200, 50, 260, 200}}, {ClassID: 1, Score: 0.1, Box: [4]float64{0, 0, 5, 5}}},
		{{ClassID: 2, Score: 0.7, Box: [4]float64{30, 40, 90, 100}}},
	}
	// Identical detections agree completely, the low-scored one included
	// (it is not ground truth, and ranks below every match).
	if a, err := Agreement(ref, ref, 3, 0.25); err != nil || math.Abs(a-1) > 1e-9 {
		t.Errorf("Agreement(ref, ref) = %v, %v; want 1", a, err)
	}
	// Missing one of the three objects: the AP of the classes present
	// drops for that class only.
	missing := [][]Detection{ref[0][:1], ref[1]}
	a, err := Agreement(ref, missing, 3, 0.25)
	if err != nil || math.Abs(a-2.0/3) > 1e-9 {
		t.Errorf("one of three classes missed: %v, %v; want 2/3", a, err)
	}
	// A box moved by a tenth of its size matches at low IoU thresholds
	// only.
	moved := [][]Detection{{{ClassID: 0, Score: 0.9, Box: [4]float64{20, 20, 120, 120}}, ref[0][1]}, ref[1]}
	if a, err := Agreement(ref, moved, 3, 0.25); err != nil || a <= 2.0/3 || a >= 1 {
		t.Errorf("one box moved: %v, %v; want between 2/3 and 1", a, err)
	}
	// Nothing to compare with: a clear error.
	if _, err := Agreement([][]Detection{{}}, [][]Detection{{}}, 3, 0.25); !errors.Is(err, ErrNoReference) {
		t.Errorf("no reference objects: err %v, want ErrNoReference", err)
	}
	if _, err := Agreement(ref, ref[:1], 3, 0.25); err == nil {
		t.Error("image counts differ: no error")
	}
	bad := [][]Detection{{{ClassID: 5, Score: 0.9}}}
	if _, err := Agreement(bad, bad, 3, 0.25); err == nil {
		t.Error("class id outside the classes: no error")
	}
}
