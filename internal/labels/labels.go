// Package labels reads class-name lists and holds the standard COCO one.
// It is plain Go, shared by the detector and the evaluator.
package labels

import (
	"errors"
	"fmt"
	"strings"

	"github.com/edgedet/edgedet/internal/readlimit"
)

// MaxClasses is the most class names edgedet accepts from a names file or a
// model's metadata (COCO has 80, LVIS 1203); it bounds the memory a class
// list taken from a file can claim.
const MaxClasses = 1 << 16

// MaxFileSize is the largest class-names file Load reads.
const MaxFileSize = 4 << 20

// Load reads a class-names file: one name per line; blank lines and lines
// starting with # are skipped. A file without names, with more than
// MaxClasses names or larger than MaxFileSize is an error.
func Load(path string) ([]string, error) {
	data, err := readlimit.ReadFile(path, MaxFileSize)
	if err != nil {
		return nil, fmt.Errorf("read class names: %w", err)
	}
	names, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("class names file %s: %w", path, err)
	}
	return names, nil
}

// Parse reads class names from the text of a names file (see Load).
// Names are trimmed of surrounding white space.
func Parse(data []byte) ([]string, error) {
	var names []string
	for line := range strings.SplitSeq(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if len(names) == MaxClasses {
			return nil, fmt.Errorf("more than %d names", MaxClasses)
		}
		names = append(names, line)
	}
	if len(names) == 0 {
		return nil, errors.New("no names")
	}
	return names, nil
}

// COCO80 are the 80 COCO detection classes in their usual order, spelt as
// in the official COCO annotations (and by Ultralytics).
var COCO80 = []string{
	"person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
	"fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
	"elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
	"skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard",
	"tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
	"sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
	"potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone",
	"microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors", "teddy bear",
	"hair drier", "toothbrush",
}
