package detection

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// A resolved description survives the metadata round trip, without its
// precision and labels file.
func TestSpecMetadataRoundTrip(t *testing.T) {
	pad := 128
	s := Spec{Format: FormatYOLOXLevels, InputWidth: 640, InputHeight: 640, ChannelOrder: "rgb", Scale: 1.0 / 255,
		Mean: ImageNetMean[:], Std: ImageNetStd[:], Resize: ResizeLetterbox, PadValue: &pad,
		Strides: []int{8, 16, 32}, Labels: []string{"person", "bicycle"}, LabelsFile: "/x/coco.names", Precision: "fp32"}
	v, err := s.EncodeMetadata()
	if err != nil {
		t.Fatal(err)
	}
	got, ok, err := SpecFromEdgedetMetadata(map[string]string{MetadataSpecKey: v})
	if err != nil || !ok {
		t.Fatalf("SpecFromEdgedetMetadata(%q) = %v, %v", v, ok, err)
	}
	want := s
	want.Precision, want.LabelsFile = "", ""
	if !reflect.DeepEqual(got, want) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, want)
	}
	if s.Precision != "fp32" || s.LabelsFile == "" {
		t.Error("EncodeMetadata modified its receiver")
	}
}

// Labels that come from a file are stored inline; a missing file is an
// error naming it.
func TestSpecMetadataInlinesLabelsFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "names.txt")
	if err := os.WriteFile(path, []byte("cat\ndog\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	v, err := Spec{Format: FormatYOLOv8, LabelsFile: path}.EncodeMetadata()
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := SpecFromEdgedetMetadata(map[string]string{MetadataSpecKey: v})
	if err != nil || !reflect.DeepEqual(got.Labels, []string{"cat", "dog"}) || got.LabelsFile != "" {
		t.Errorf("labels %q, file %q, err %v; want [cat dog] inline", got.Labels, got.LabelsFile, err)
	}
	missing := filepath.Join(t.TempDir(), "none.txt")
	if _, err := (Spec{LabelsFile: missing}).EncodeMetadata(); err == nil || !strings.Contains(err.Error(), "none.txt") {
		t.Errorf("missing labels file: err %v", err)
	}
}

func TestSpecFromEdgedetMetadataErrors(t *testing.T) {
	if _, ok, err := SpecFromEdgedetMetadata(map[string]string{"names": "{0: 'a'}"}); ok || err != nil {
		t.Errorf("no key: ok %v, err %v", ok, err)
	}
	for v, want := range map[string]string{
		`format = "nope"`:            "nope",
		`colour = "red"`:             "colour",
		`labels_file = "coco.names"`: "labels_file",
		`input_width = "wide"`:       "input_width",
	} {
		_, ok, err := SpecFromEdgedetMetadata(map[string]string{MetadataSpecKey: v})
		if ok || err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), MetadataSpecKey) {
			t.Errorf("%s: ok %v, err %v; want an error naming %q and the key", v, ok, err, want)
		}
	}
}
