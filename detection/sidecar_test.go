package detection

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestLoadSidecar: no sidecar is not an error; a valid one is read with a
// relative labels_file taken from its directory; a broken, invalid or
// misspelt one is an error naming the file.
func TestLoadSidecar(t *testing.T) {
	dir := t.TempDir()
	model := filepath.Join(dir, "m.onnx")
	side := filepath.Join(dir, "m.toml")
	spec, path, ok, err := LoadSidecar(model)
	if err != nil || ok || path != side || !reflect.DeepEqual(spec, Spec{}) {
		t.Fatalf("no sidecar: %+v, %q, %v, %v; want nothing from %s", spec, path, ok, err, side)
	}

	write := func(text string) {
		t.Helper()
		if err := os.WriteFile(side, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("format = \"yolox\"\ninput_width = 416\ninput_height = 320\nlabels_file = \"names.txt\"\npad_value = 0\n")
	spec, path, ok, err = LoadSidecar(model)
	want := Spec{Format: FormatYOLOX, InputWidth: 416, InputHeight: 320, LabelsFile: filepath.Join(dir, "names.txt"), PadValue: intp(0)}
	if err != nil || !ok || path != side || !reflect.DeepEqual(spec, want) {
		t.Fatalf("valid sidecar: %+v, %q, %v, %v; want %+v", spec, path, ok, err, want)
	}
	write("labels_file = \"/etc/edgedet/names.txt\"\n")
	if spec, _, _, err := LoadSidecar(model); err != nil || spec.LabelsFile != "/etc/edgedet/names.txt" {
		t.Errorf("absolute labels_file: %q, %v; want it unchanged", spec.LabelsFile, err)
	}

	for _, tt := range []struct{ name, text, want string }{
		{"invalid value", "format = \"yolov3\"\n", `format: "yolov3"`},
		{"unknown key", "colour = \"red\"\n", `unknown key "colour"`},
		{"not toml", "format = \n", "m.toml"},
	} {
		write(tt.text)
		spec, _, ok, err := LoadSidecar(model)
		if err == nil || ok || !reflect.DeepEqual(spec, Spec{}) ||
			!strings.Contains(err.Error(), side) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %+v, %v, %v; want only an error naming %s and %q", tt.name, spec, ok, err, side, tt.want)
		}
	}
}

// TestSpecFromMetadata: the Ultralytics keys each give their part of the
// spec; metadata without any of them says nothing.
func TestSpecFromMetadata(t *testing.T) {
	tests := []struct {
		name string
		meta map[string]string
		want Spec
		ok   bool
	}{
		{"none", map[string]string{"author": "Ultralytics", "end2end": "True"}, Spec{}, false},
		{"imgsz h, w", map[string]string{"imgsz": "[320, 640]"}, Spec{InputWidth: 640, InputHeight: 320}, true},
		{"imgsz one side", map[string]string{"imgsz": "[416]"}, Spec{InputWidth: 416, InputHeight: 416}, true},
		{"imgsz smallest", map[string]string{"imgsz": "(1, 2)"}, Spec{InputWidth: 2, InputHeight: 1}, true},
		{"stride", map[string]string{"stride": " 32 "}, Spec{}, true},
		{"names", map[string]string{"names": "{0: 'a'}"}, Spec{Labels: []string{"a"}}, true},
		{"ultralytics end2end", map[string]string{"author": "Ultralytics", "end2end": "True", "stride": "32"},
			Spec{Format: FormatEnd2End}, true},
		{"other end2end", map[string]string{"author": "someone", "end2end": "True", "stride": "32"}, Spec{}, true},
	}
	for _, tt := range tests {
		got, ok, err := SpecFromMetadata(tt.meta)
		if err != nil || ok != tt.ok || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: %+v, %v, %v; want %+v, %v", tt.name, got, ok, err, tt.want, tt.ok)
		}
	}
	for _, tt := range []struct{ key, value, want string }{
		{"imgsz", "[]", `metadata imgsz: "[]" is not [h, w]`},
		{"imgsz", "[1, 2, 3]", "is not [h, w]"},
		{"imgsz", "[a, 3]", "is not [h, w]"},
		{"imgsz", "[0, 3]", "is not [h, w]"},
		{"stride", "x", `metadata stride: "x" is not an integer`},
		{"names", "[a]", "metadata names"},
	} {
		got, ok, err := SpecFromMetadata(map[string]string{tt.key: tt.value})
		if err == nil || ok || !reflect.DeepEqual(got, Spec{}) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s %q: %+v, %v, %v; want only an error containing %q", tt.key, tt.value, got, ok, err, tt.want)
		}
	}
}
