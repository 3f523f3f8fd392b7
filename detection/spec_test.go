package detection

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSpecHugeInputSize: metadata or a sidecar asking for an input over
// MaxInputSize is refused, naming the key (or the file) and the size.
func TestSpecHugeInputSize(t *testing.T) {
	_, _, err := SpecFromMetadata(map[string]string{"imgsz": "[320, 1000000]"})
	if err == nil || !strings.Contains(err.Error(), "imgsz") || !strings.Contains(err.Error(), "1000000") {
		t.Fatalf("metadata imgsz: want an input size error, got %v", err)
	}
	_, err = ParseSidecar([]byte("input_width = 100000\ninput_height = 320\n"), "/m/x.toml")
	if err == nil || !strings.Contains(err.Error(), "/m/x.toml") || !strings.Contains(err.Error(), "100000x320") {
		t.Fatalf("sidecar: want an input size error naming the file, got %v", err)
	}
}

func TestSpecFromMetadataNames(t *testing.T) {
	tests := []struct {
		names string
		want  string // joined labels, or an error substring after "error: "
	}{
		{"{0: 'person', 1: \"bicycle\"}", "person,bicycle"},
		{"{1: 'b', 0: 'a'}", "a,b"},
		{"{}", ""},
		{"{0: 'a', 2: 'c'}", "error: 1 missing"},
		{"{0: 'a', 0: 'b'}", "error: class id 0 named twice"},
		{"{65535: 'x'}", "error: 0 missing"},
		{"{-1: 'x'}", "error: \"-1\" is not a non-negative integer"},
		{"{99999999999999999999: 'x'}", "error: is not a non-negative integer"},
		{"{0: person}", "error: not quoted"},
		{"{0:'a',1:'b'}", "a,b"},
		{"{0: 'a', }", "a"},
		{"{0: ''}", ""},
		{"[0: 'a']", "error: is not a {id: 'name'} dict"},
		{"{0: 'a'", "error: is not a {id: 'name'} dict"},
		{"0: 'a'}", "error: is not a {id: 'name'} dict"},
		{"{0 'a'}", "error: missing ':'"},
		{"{: 'a'}", "error: class id \"\" is not a non-negative integer"},
		{"{65536: 'x'}", "error: class id 65536: more than 65536 classes"},
		{"{0:}", "error: class 0: name is not quoted"},
		{"{0: }", "error: class 0: name is not quoted"},
		{"{0: 'a}", "error: class 0: unterminated name"},
	}
	for _, tt := range tests {
		spec, _, err := SpecFromMetadata(map[string]string{"names": tt.names})
		if w, isErr := strings.CutPrefix(tt.want, "error: "); isErr {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("names %s: want error containing %q, got %v", tt.names, w, err)
			}
			continue
		}
		if err != nil || strings.Join(spec.Labels, ",") != tt.want {
			t.Errorf("names %s: got %q, %v; want %q", tt.names, spec.Labels, err, tt.want)
		}
	}
}

func TestLoadSidecarBoundsSize(t *testing.T) {
	dir := t.TempDir()
	model := filepath.Join(dir, "m.onnx")
	big := "labels = [\"a\"]\n" + strings.Repeat("# padding\n", 200000)
	if err := os.WriteFile(filepath.Join(dir, "m.toml"), []byte(big), 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, _, err := LoadSidecar(model)
	if err == nil || !strings.Contains(err.Error(), "m.toml") || !strings.Contains(err.Error(), "too large") {
		t.Fatalf("2 MB sidecar: want a too-large error naming it, got %v", err)
	}
}
