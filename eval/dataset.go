// Package eval measures detection accuracy the way COCO does: it loads a
// YOLO-format dataset, scores detections with the algorithm of pycocotools'
// COCOeval (bbox), exports COCO JSON that pycocotools can load, and plots
// precision–recall curves. It is plain Go: images are only read for their
// header, the detector is run by the caller.
package eval

import (
	"bufio"
	"errors"
	"fmt"
	"image"
	_ "image/jpeg" // register decoders for image.DecodeConfig
	_ "image/png"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	_ "golang.org/x/image/bmp"

	"github.com/edgedet/edgedet/internal/readlimit"
)

// Object is one ground-truth object.
type Object struct {
	ClassID int
	// Box is x1, y1, x2, y2 in image pixels.
	Box [4]float64
}

// Image is one dataset image and its ground truth.
type Image struct {
	// ID identifies the image in an Evaluator and in COCO JSON: the file
	// stem as a number when every stem in the dataset is a decimal number
	// (COCO's own ids, e.g. 000000000009.jpg -> 9, as Ultralytics does),
	// else the 1-based position in file-name order.
	ID     int
	Path   string
	Width  int
	Height int
	// LabelPath is the YOLO label file, "" when there is none.
	LabelPath string
	Objects   []Object
}

// Dataset is a set of images with YOLO-format labels.
type Dataset struct {
	Dir    string
	Images []Image // in file-name order
	Names  []string
	// MissingLabels lists images that have no label file; they count as
	// images with no objects.
	MissingLabels []string
}

// imageExts are the image file extensions LoadYOLODataset picks up.
var imageExts = map[string]bool{".jpg": true, ".jpeg": true, ".png": true, ".bmp": true}

// LoadYOLODataset reads the images in dir and their YOLO labels. Two layouts
// are accepted:
//
//   - flat: dir/<stem>.jpg next to dir/<stem>.txt (darknet, FastestDet);
//   - Ultralytics: dir/images/**/<stem>.jpg with dir/labels/**/<stem>.txt,
//     used when dir itself holds no images (every split under images/ is
//     taken). Pass a split's folder (…/images/val2017, or images/val2017)
//     for one split: labels are its path with the last images/ -> labels/.
//
// A label line is "class cx cy w h", the centre and size normalised by the
// image size, which is read from the image header. An image without a label
// file has no objects and is listed in MissingLabels. names are the class
// names; every class id must index them.
func LoadYOLODataset(dir string, names []string) (*Dataset, error) {
	if len(names) == 0 {
		return nil, fmt.Errorf("load dataset %s: no class names", dir)
	}
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("load dataset: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("load dataset %s: not a directory", dir)
	}
	paths, err := listImages(dir)
	if err != nil {
		return nil, fmt.Errorf("load dataset %s: %w", dir, err)
	}
	if len(paths) == 0 {
		imagesDir := filepath.Join(dir, "images")
		if st, err := os.Stat(imagesDir); err == nil && st.IsDir() {
			if paths, err = walkImages(imagesDir); err != nil {
				return nil, fmt.Errorf("load dataset %s: %w", dir, err)
			}
		}
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("load dataset %s: no images (.jpg .jpeg .png .bmp) in it or in its images/ folder", dir)
	}
	ds := &Dataset{Dir: dir, Names: slices.Clone(names), Images: make([]Image, 0, len(paths))}
	numeric := true
	seen := map[int]bool{}
	for _, p := range paths {
		n, err := strconv.Atoi(stem(p))
		if err != nil || n < 0 || seen[n] {
			numeric = false
			break
		}
		seen[n] = true
	}
	for i, p := range paths {
		img := Image{ID: i + 1, Path: p}
		if numeric {
			img.ID, _ = strconv.Atoi(stem(p))
		}
		if img.Width, img.Height, err = imageSize(p); err != nil {
			return nil, err
		}
		img.LabelPath = labelPath(p)
		if img.LabelPath == "" {
			ds.MissingLabels = append(ds.MissingLabels, p)
		} else if img.Objects, err = readLabels(img.LabelPath, img.Width, img.Height, len(names)); err != nil {
			return nil, err
		}
		ds.Images = append(ds.Images, img)
	}
	return ds, nil
}

func listImages(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var paths []string
	for _, e := range entries {
		if !e.IsDir() && imageExts[strings.ToLower(filepath.Ext(e.Name()))] {
			paths = append(paths, filepath.Join(dir, e.Name()))
		}
	}
	return paths, nil // ReadDir sorts by name
}

func walkImages(dir string) ([]string, error) {
	var paths []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && imageExts[strings.ToLower(filepath.Ext(p))] {
			paths = append(paths, p)
		}
		return nil
	})
	return paths, err // WalkDir visits in lexical order
}

func stem(p string) string {
	b := filepath.Base(p)
	return strings.TrimSuffix(b, filepath.Ext(b))
}

// labelPath returns the label file of an image: <stem>.txt beside it, else
// the Ultralytics path (last images/ folder -> labels/), else "".
func labelPath(img string) string {
	s := strings.TrimSuffix(img, filepath.Ext(img)) + ".txt"
	if fileExists(s) {
		return s
	}
	sep, p := string(filepath.Separator), string(filepath.Separator)+s // p: a relative s may start with images/
	if i := strings.LastIndex(p, sep+"images"+sep); i >= 0 {
		u := (p[:i] + sep + "labels" + sep + p[i+len(sep+"images"+sep):])[1:]
		if fileExists(u) {
			return u
		}
	}
	return ""
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

// imageSize reads the width and height from the image header.
func imageSize(path string) (w, h int, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, fmt.Errorf("read image size: %w", err)
	}
	defer f.Close()
	cfg, _, err := image.DecodeConfig(bufio.NewReader(f))
	if err != nil {
		return 0, 0, fmt.Errorf("read image size of %s: %w", path, err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return 0, 0, fmt.Errorf("read image size of %s: header says %dx%d", path, cfg.Width, cfg.Height)
	}
	return cfg.Width, cfg.Height, nil
}

// LabelError is a malformed line of a label file.
type LabelError struct {
	Path string
	Line int
	Err  error
}

func (e *LabelError) Error() string { return fmt.Sprintf("%s:%d: %v", e.Path, e.Line, e.Err) }
func (e *LabelError) Unwrap() error { return e.Err }

// ErrClassRange is wrapped by the LabelError of a class id that does not
// index the class names.
var ErrClassRange = errors.New("class id out of range")

// maxLabelFileSize bounds one image's label file: at ~40 bytes a line it
// is room for 400 000 objects.
const maxLabelFileSize = 16 << 20

func readLabels(path string, w, h, numClasses int) ([]Object, error) {
	data, err := readlimit.ReadFile(path, maxLabelFileSize)
	if err != nil {
		return nil, fmt.Errorf("read labels: %w", err)
	}
	return parseLabels(data, path, w, h, numClasses)
}

// parseLabels reads the YOLO label lines of the w x h image whose label
// file is path (named in errors).
func parseLabels(data []byte, path string, w, h, numClasses int) ([]Object, error) {
	var objs []Object
	W, H := float64(w), float64(h)
	for i, line := range strings.Split(string(data), "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		bad := func(format string, args ...any) error {
			return &LabelError{Path: path, Line: i + 1, Err: fmt.Errorf(format, args...)}
		}
		if len(fields) != 5 {
			return nil, bad("want 5 fields \"class cx cy w h\", got %d", len(fields))
		}
		class, err := strconv.Atoi(fields[0])
		if err != nil {
			return nil, bad("class %q is not an integer", fields[0])
		}
		if class < 0 || class >= numClasses {
			return nil, &LabelError{Path: path, Line: i + 1,
				Err: fmt.Errorf("%w: class %d, the names have %d classes (0..%d)", ErrClassRange, class, numClasses, numClasses-1)}
		}
		var v [4]float64
		for k, name := range []string{"cx", "cy", "w", "h"} {
			x, err := strconv.ParseFloat(fields[k+1], 64)
			if err != nil || math.IsNaN(x) || math.IsInf(x, 0) {
				return nil, bad("%s %q is not a number", name, fields[k+1])
			}
			if x < 0 || x > 1 {
				return nil, bad("%s %s is outside 0..1 (coordinates are normalised by the image size)", name, fields[k+1])
			}
			v[k] = x
		}
		if v[2] == 0 || v[3] == 0 {
			return nil, bad("box has zero width or height")
		}
		cx, cy, bw, bh := v[0]*W, v[1]*H, v[2]*W, v[3]*H
		objs = append(objs, Object{ClassID: class, Box: [4]float64{cx - bw/2, cy - bh/2, cx + bw/2, cy + bh/2}})
	}
	return objs, nil
}

// NumObjects counts the ground-truth objects.
func (d *Dataset) NumObjects() int {
	n := 0
	for _, img := range d.Images {
		n += len(img.Objects)
	}
	return n
}

// EmptyImages counts the images with no objects (empty or missing label file).
func (d *Dataset) EmptyImages() int {
	n := 0
	for _, img := range d.Images {
		if len(img.Objects) == 0 {
			n++
		}
	}
	return n
}

// Subset returns a dataset with the images at the given indices, in that
// order. Images keep their IDs; the slices are shared with d.
func (d *Dataset) Subset(indices ...int) *Dataset {
	s := &Dataset{Dir: d.Dir, Names: d.Names, Images: make([]Image, 0, len(indices))}
	missing := map[string]bool{}
	for _, p := range d.MissingLabels {
		missing[p] = true
	}
	for _, i := range indices {
		img := d.Images[i]
		s.Images = append(s.Images, img)
		if missing[img.Path] {
			s.MissingLabels = append(s.MissingLabels, img.Path)
		}
	}
	return s
}

// Split returns the first n images and the rest (n is clamped to 0..len).
func (d *Dataset) Split(n int) (first, rest *Dataset) {
	n = max(0, min(n, len(d.Images)))
	var a, b []int
	for i := range d.Images {
		if i < n {
			a = append(a, i)
		} else {
			b = append(b, i)
		}
	}
	return d.Subset(a...), d.Subset(b...)
}

// Halves splits the images alternately: even holds images 0, 2, 4, …,
// odd holds 1, 3, 5, …. Use one half to calibrate a quantizer and the other
// to evaluate it; alternating keeps both halves alike when file order
// follows content.
func (d *Dataset) Halves() (even, odd *Dataset) {
	var a, b []int
	for i := range d.Images {
		if i%2 == 0 {
			a = append(a, i)
		} else {
			b = append(b, i)
		}
	}
	return d.Subset(a...), d.Subset(b...)
}
