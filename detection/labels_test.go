package detection

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/edgedet/edgedet/internal/labels"
)

// TestClassLabels: labels win over a labels file, which wins over the COCO
// fallback; the fallback is only taken for 80 or an unknown number of
// classes; names that do not number the classes are an error.
func TestClassLabels(t *testing.T) {
	file := filepath.Join(t.TempDir(), "names.txt")
	if err := os.WriteFile(file, []byte("cat\ndog\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		spec Spec
		nc   int
		want []string
		coco bool
	}{
		{"labels", Spec{Labels: []string{"a", "b"}, LabelsFile: file}, 2, []string{"a", "b"}, false},
		{"labels, classes unknown", Spec{Labels: []string{"a"}}, 0, []string{"a"}, false},
		{"labels file", Spec{LabelsFile: file}, 2, []string{"cat", "dog"}, false},
		{"coco for 80 classes", Spec{}, 80, labels.COCO80, true},
		{"coco for unknown classes", Spec{}, 0, labels.COCO80, true},
	}
	for _, tt := range tests {
		got, coco, err := tt.spec.ClassLabels(tt.nc)
		if err != nil || coco != tt.coco || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: %q, coco %v, %v; want %q, coco %v", tt.name, got, coco, err, tt.want, tt.coco)
		}
	}
	for _, tt := range []struct {
		name string
		spec Spec
		nc   int
		want string
	}{
		{"no labels for 3 classes", Spec{}, 3, "0 labels for 3 classes; set labels or labels_file"},
		{"too few labels", Spec{Labels: []string{"a"}}, 2, "1 labels for 2 classes"},
		{"file for 80 classes", Spec{LabelsFile: file}, 80, "2 labels for 80 classes"},
		{"missing file", Spec{LabelsFile: file + ".gone"}, 2, "names.txt.gone"},
	} {
		got, coco, err := tt.spec.ClassLabels(tt.nc)
		if err == nil || got != nil || coco || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %q, coco %v, %v; want only an error containing %q", tt.name, got, coco, err, tt.want)
		}
	}
}

// TestNewFilter: the threshold applies to every class, min_scores override
// it per label, allow_labels narrows the classes, and labels the model does
// not have are errors naming them.
func TestNewFilter(t *testing.T) {
	names := []string{"person", "car", "dog"}
	f, err := NewFilter(names, 0.25, nil, map[string]float32{"dog": 0.6})
	want := Filter{MinScore: map[int]float32{0: 0.25, 1: 0.25, 2: 0.6}}
	if err != nil || !reflect.DeepEqual(f, want) {
		t.Errorf("NewFilter = %+v, %v; want %+v", f, err, want)
	}
	f, err = NewFilter(names, 0.4, []string{"car", "dog"}, nil)
	want = Filter{Allow: map[int]bool{1: true, 2: true}, MinScore: map[int]float32{0: 0.4, 1: 0.4, 2: 0.4}}
	if err != nil || !reflect.DeepEqual(f, want) {
		t.Errorf("NewFilter with allow = %+v, %v; want %+v", f, err, want)
	}
	f, err = NewFilter(names, 0.4, []string{"dog"}, nil)
	if err != nil || !reflect.DeepEqual(f.Allow, map[int]bool{2: true}) {
		t.Errorf("NewFilter allowing one label = %+v, %v; want only class 2 allowed", f, err)
	}
	for _, tt := range []struct {
		allow []string
		min   map[string]float32
		want  string
	}{
		{[]string{"car", "cat"}, nil, `allow_labels: "cat" is not a label of the model`},
		{nil, map[string]float32{"dog": 0.5, "bus": 0.5, "zebra": 0.5}, `min_scores: "bus" is not a label of the model`},
	} {
		f, err := NewFilter(names, 0.25, tt.allow, tt.min)
		if err == nil || err.Error() != tt.want || !reflect.DeepEqual(f, Filter{}) {
			t.Errorf("NewFilter(allow %q, min %v) = %+v, %v; want only the error %q", tt.allow, tt.min, f, err, tt.want)
		}
	}
}
