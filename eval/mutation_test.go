package eval

import (
	"slices"
	"testing"

	"github.com/edgedet/edgedet/internal/labels"
)

// Tests here pin behaviours that mutation testing (make mutate) showed the
// other tests did not: each one fails for a specific operator change.

// The COCO 80 -> 91 category id table is 1..90 without the ten ids COCO
// never annotated (from the instances_val2017.json category list: 12
// street sign, 26 hat, 29 shoe, 30 eye glasses, 45 plate, 66 mirror, 68
// window, 69 desk, 71 door, 83 blender).
func TestCategoryIDsAreCOCOsFullTable(t *testing.T) {
	unannotated := []int{12, 26, 29, 30, 45, 66, 68, 69, 71, 83}
	var want []int
	for id := 1; id <= 90; id++ {
		if !slices.Contains(unannotated, id) {
			want = append(want, id)
		}
	}
	if got := CategoryIDs(labels.COCO80[:]); !slices.Equal(got, want) {
		t.Errorf("CategoryIDs(COCO80) =\n%v\nwant\n%v", got, want)
	}
}
