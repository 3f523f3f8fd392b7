package eval

import (
	"errors"
	"math"
	"strings"
	"testing"
)

// FuzzParseLabels feeds YOLO label files (class cx cy w h per line) for a
// fuzzed image size and class count. An accepted file gives one object per
// non-blank line with a class the names have and a finite, non-empty box
// inside [-W/2, 3W/2] x [-H/2, 3H/2] (centres and sizes are in 0..1); a
// rejected one gives a *LabelError naming the file and a line it has.
func FuzzParseLabels(f *testing.F) {
	// From coco128/train/000000000009.txt.
	f.Add([]byte("45 0.479492 0.688771 0.955609 0.5955\n45 0.736516 0.247188 0.498875 0.476417\n50 0.637063 0.732938 0.494125 0.510583\n"), 640, 480, 80)
	f.Add([]byte("0 0.5 0.5 1 1\r\n\r\n1 0 1 1e-300 0.5"), 20, 20, 2)
	f.Add([]byte("0 0.5 0.5 0.1 0.1\n1 0.5 0.5 0.1\n"), 20, 20, 2)
	f.Add([]byte("9223372036854775807 0.5 0.5 0.1 0.1\n"), 1, 1, 1)
	f.Add([]byte("-1 NaN +Inf 0x1p-2 1e400\n"), 64, 64, 80)
	f.Add([]byte("0 0.5 0.5 0 0.1\n"), 2147483647, 2147483647, 1)
	f.Add([]byte(""), 0, 0, 0)
	const path = "/data/labels/x.txt"
	f.Fuzz(func(t *testing.T, data []byte, w, h, numClasses int) {
		if w <= 0 || h <= 0 {
			return // imageSize rejects such headers before labels are read
		}
		objs, err := parseLabels(data, path, w, h, numClasses)
		lines := strings.Split(string(data), "\n")
		if err != nil {
			var le *LabelError
			if !errors.As(err, &le) || le.Path != path || le.Line < 1 || le.Line > len(lines) {
				t.Fatalf("error %v is not a *LabelError for a line of %s", err, path)
			}
			return
		}
		nonBlank := 0
		for _, l := range lines {
			if strings.TrimSpace(l) != "" {
				nonBlank++
			}
		}
		if len(objs) != nonBlank {
			t.Fatalf("%d objects from %d non-blank lines", len(objs), nonBlank)
		}
		W, H := float64(w), float64(h)
		for _, o := range objs {
			if o.ClassID < 0 || o.ClassID >= numClasses {
				t.Fatalf("%+v: class not in 0..%d", o, numClasses-1)
			}
			b := o.Box
			for _, v := range b {
				if math.IsNaN(v) || math.IsInf(v, 0) {
					t.Fatalf("%+v: box not finite", o)
				}
			}
			if !(b[0] <= b[2] && b[1] <= b[3]) {
				t.Fatalf("%+v: inverted box", o)
			}
			if b[0] < -W/2 || b[2] > 1.5*W || b[1] < -H/2 || b[3] > 1.5*H {
				t.Fatalf("%+v: box outside the image's reach %dx%d", o, w, h)
			}
		}
	})
}
