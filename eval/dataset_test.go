package eval

import (
	"errors"
	"image"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/edgedet/edgedet/internal/labels"
)

// sharedDir is ../shared beside the checkout, or $EDGEDET_SHARED. (The eval
// tests stay cgo-free, so they do not use internal/testenv, which links
// OpenCV.)
func shared(t testing.TB, elem ...string) string {
	t.Helper()
	dir := os.Getenv("EDGEDET_SHARED")
	if dir == "" {
		_, file, _, _ := runtime.Caller(0)
		dir = filepath.Join(filepath.Dir(file), "..", "..", "shared")
	}
	p := filepath.Join(append([]string{dir}, elem...)...)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("shared test data missing: %v (the checkout needs ../shared beside it, or set EDGEDET_SHARED)", err)
	}
	return p
}

func coco128(t testing.TB) *Dataset {
	t.Helper()
	names, err := labels.Load(shared(t, "datasets", "coco128", "coco.names"))
	if err != nil {
		t.Fatal(err)
	}
	ds, err := LoadYOLODataset(shared(t, "datasets", "coco128", "train"), names)
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

func TestLoadCOCO128(t *testing.T) {
	ds := coco128(t)
	// The dataset README: 100 images, 741 boxes, 2 empty label files.
	if len(ds.Images) != 100 || ds.NumObjects() != 741 || ds.EmptyImages() != 2 || len(ds.MissingLabels) != 0 {
		t.Fatalf("%d images, %d objects, %d empty, %d without labels; want 100, 741, 2, 0",
			len(ds.Images), ds.NumObjects(), ds.EmptyImages(), len(ds.MissingLabels))
	}
	for _, img := range ds.Images {
		if len(img.Objects) == 0 && !strings.HasSuffix(img.Path, "000000000250.jpg") && !strings.HasSuffix(img.Path, "000000000508.jpg") {
			t.Errorf("%s has no objects", img.Path)
		}
	}
	img := ds.Images[0]
	if img.ID != 9 || filepath.Base(img.Path) != "000000000009.jpg" || img.Width != 640 || img.Height != 480 {
		t.Fatalf("first image %+v, want id 9, 640x480", img)
	}
	// First line of 000000000009.txt: "45 0.479492 0.688771 0.955609 0.5955"
	// (a bowl). x1 = (0.479492 - 0.955609/2)·640 = 1.08,
	// y1 = (0.688771 - 0.5955/2)·480 = 187.69008, x2 = 612.66976,
	// y2 = 473.53008 — COCO's own box is [1.08, 187.69, 611.59, 285.84].
	o := img.Objects[0]
	want := [4]float64{1.08, 187.69008, 612.66976, 473.53008}
	for i := range want {
		if o.ClassID != 45 || math.Abs(o.Box[i]-want[i]) > 1e-9 {
			t.Fatalf("first object %+v, want class 45 box %v", o, want)
		}
	}
	if ds.Names[45] != "bowl" {
		t.Errorf("names[45] = %q", ds.Names[45])
	}
}

func TestSplitAndHalves(t *testing.T) {
	ds := coco128(t)
	even, odd := ds.Halves()
	if len(even.Images) != 50 || len(odd.Images) != 50 || even.Images[1].ID != ds.Images[2].ID || odd.Images[0].ID != ds.Images[1].ID {
		t.Errorf("halves: %d and %d images", len(even.Images), len(odd.Images))
	}
	if even.NumObjects()+odd.NumObjects() != 741 || even.EmptyImages()+odd.EmptyImages() != 2 {
		t.Errorf("halves lose objects: %d + %d", even.NumObjects(), odd.NumObjects())
	}
	first, rest := ds.Split(30)
	if len(first.Images) != 30 || len(rest.Images) != 70 || rest.Images[0].ID != ds.Images[30].ID {
		t.Errorf("split(30): %d and %d images", len(first.Images), len(rest.Images))
	}
	if a, b := ds.Split(500); len(a.Images) != 100 || len(b.Images) != 0 {
		t.Errorf("split(500): %d and %d", len(a.Images), len(b.Images))
	}
	// A half evaluates on its own: its image IDs are a subset.
	e := NewEvaluator(odd)
	if err := e.Add(ds.Images[0].ID, nil); err == nil {
		t.Error("the odd half accepted an image of the even half")
	}
}

// writePNG writes a w×h PNG.
func writePNG(t *testing.T, path string, w, h int) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := png.Encode(f, image.NewGray(image.Rect(0, 0, w, h))); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestLoadUltralyticsLayout(t *testing.T) {
	root := t.TempDir()
	writePNG(t, filepath.Join(root, "images", "val", "b.png"), 200, 100)
	writePNG(t, filepath.Join(root, "images", "val", "a.png"), 100, 50)
	writePNG(t, filepath.Join(root, "images", "val", "c.png"), 10, 10)
	writeFile(t, filepath.Join(root, "labels", "val", "a.txt"), "1 0.5 0.5 0.2 0.4\n\n")
	writeFile(t, filepath.Join(root, "labels", "val", "b.txt"), "0 0.25 0.5 0.5 1\n1 0.5 0.5 1 1\n")
	// c.png has no label file.
	for _, dir := range []string{root, filepath.Join(root, "images", "val")} {
		ds, err := LoadYOLODataset(dir, []string{"cat", "dog"})
		if err != nil {
			t.Fatal(err)
		}
		if len(ds.Images) != 3 || ds.NumObjects() != 3 || len(ds.MissingLabels) != 1 || !strings.HasSuffix(ds.MissingLabels[0], "c.png") {
			t.Fatalf("%s: %d images, %d objects, missing %v", dir, len(ds.Images), ds.NumObjects(), ds.MissingLabels)
		}
		// Stems are not numbers: IDs are 1-based positions in name order.
		a := ds.Images[0]
		if a.ID != 1 || filepath.Base(a.Path) != "a.png" || a.Width != 100 || a.Height != 50 {
			t.Fatalf("first image %+v", a)
		}
		// "1 0.5 0.5 0.2 0.4" on 100×50: centre (50, 25), size 20×20.
		if got := a.Objects[0]; got.ClassID != 1 || got.Box != [4]float64{40, 15, 60, 35} {
			t.Errorf("a.png object %+v", got)
		}
		if got := ds.Images[1].Objects[0].Box; got != [4]float64{0, 0, 100, 100} {
			t.Errorf("b.png first box %v", got)
		}
	}
}

func TestLoadErrors(t *testing.T) {
	names := []string{"cat", "dog"}
	cases := []struct {
		name, label string
		want        []string
	}{
		{"fields", "0 0.5 0.5 0.1 0.1\n1 0.5 0.5 0.1\n", []string{"x.txt:2:", "want 5 fields", "got 4"}},
		{"class", "cat 0.5 0.5 0.1 0.1\n", []string{"x.txt:1:", `class "cat" is not an integer`}},
		{"range", "0 0.5 0.5 0.1 0.1\n\n2 0.5 0.5 0.1 0.1\n", []string{"x.txt:3:", "class id out of range", "class 2", "2 classes"}},
		{"number", "0 0.5 abc 0.1 0.1\n", []string{"x.txt:1:", `cy "abc" is not a number`}},
		{"normalised", "1 0.5 0.5 1.5 0.1\n", []string{"x.txt:1:", "w 1.5 is outside 0..1"}},
		{"empty box", "1 0.5 0.5 0 0.1\n", []string{"x.txt:1:", "zero width or height"}},
	}
	for _, tc := range cases {
		dir := t.TempDir()
		writePNG(t, filepath.Join(dir, "x.png"), 20, 20)
		writeFile(t, filepath.Join(dir, "x.txt"), tc.label)
		_, err := LoadYOLODataset(dir, names)
		if err == nil {
			t.Errorf("%s: no error", tc.name)
			continue
		}
		var le *LabelError
		if !errors.As(err, &le) || le.Path != filepath.Join(dir, "x.txt") {
			t.Errorf("%s: %v is not a *LabelError for x.txt", tc.name, err)
		}
		if (tc.name == "range") != errors.Is(err, ErrClassRange) {
			t.Errorf("%s: errors.Is(ErrClassRange) = %v", tc.name, errors.Is(err, ErrClassRange))
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not mention %q", tc.name, err, w)
			}
		}
	}

	empty := t.TempDir()
	writeFile(t, filepath.Join(empty, "notes.txt"), "no images here")
	if _, err := LoadYOLODataset(empty, names); err == nil || !strings.Contains(err.Error(), empty) || !strings.Contains(err.Error(), "no images") {
		t.Errorf("empty dir: %v", err)
	}
	missing := filepath.Join(empty, "nope")
	if _, err := LoadYOLODataset(missing, names); err == nil || !strings.Contains(err.Error(), missing) || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing dir: %v", err)
	}
	bad := t.TempDir()
	writeFile(t, filepath.Join(bad, "broken.jpg"), "not a jpeg")
	if _, err := LoadYOLODataset(bad, names); err == nil || !strings.Contains(err.Error(), "broken.jpg") {
		t.Errorf("corrupt image: %v", err)
	}
	if _, err := LoadYOLODataset(bad, nil); err == nil || !strings.Contains(err.Error(), "no class names") {
		t.Errorf("no names: %v", err)
	}
}

func TestLabelFileSizeBounded(t *testing.T) {
	dir := t.TempDir()
	writePNG(t, filepath.Join(dir, "x.png"), 20, 20)
	writeFile(t, filepath.Join(dir, "x.txt"), "0 0.5 0.5 0.1 0.1\n"+strings.Repeat("\n", maxLabelFileSize))
	_, err := LoadYOLODataset(dir, []string{"cat"})
	if err == nil || !strings.Contains(err.Error(), "x.txt") || !strings.Contains(err.Error(), "too large") {
		t.Fatalf("17 MB label file: want a too-large error naming it, got %v", err)
	}
}

// A split given relative to the dataset's root (images/val, as from `cd
// dataset; edgedet eval --data images/val`) finds its labels under
// labels/val like an absolute path does.
func TestLoadUltralyticsRelativeSplit(t *testing.T) {
	root := t.TempDir()
	writePNG(t, filepath.Join(root, "images", "val", "a.png"), 100, 50)
	writeFile(t, filepath.Join(root, "labels", "val", "a.txt"), "0 0.5 0.5 0.2 0.4\n")
	t.Chdir(root)
	for _, dir := range []string{filepath.Join("images", "val"), "images/../images/val", "."} {
		ds, err := LoadYOLODataset(dir, []string{"cat"})
		if err != nil {
			t.Fatalf("%s: %v", dir, err)
		}
		if len(ds.Images) != 1 || len(ds.MissingLabels) != 0 || ds.NumObjects() != 1 ||
			ds.Images[0].LabelPath != filepath.Join("labels", "val", "a.txt") {
			t.Errorf("%s: %d images, missing labels %v, %d objects, label path %q; want labels/val/a.txt",
				dir, len(ds.Images), ds.MissingLabels, ds.NumObjects(), ds.Images[0].LabelPath)
		}
	}
}
