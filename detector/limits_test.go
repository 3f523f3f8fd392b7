package detector_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/edgedet/edgedet/detector"
	"github.com/edgedet/edgedet/internal/testenv"
)

// withMetadata appends metadata_props entries (ModelProto field 14) to the
// serialised model at path: appending a field keeps a protobuf valid.
func withMetadata(t *testing.T, path string, kv ...string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		var e []byte
		e = protowire.AppendTag(e, 1, protowire.BytesType)
		e = protowire.AppendString(e, kv[i])
		e = protowire.AppendTag(e, 2, protowire.BytesType)
		e = protowire.AppendString(e, kv[i+1])
		b = protowire.AppendTag(b, 14, protowire.BytesType)
		b = protowire.AppendBytes(b, e)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestHugeClassIDInMetadata: a names dict with a huge class id made
// detect, eval and quantize (all through detector.New) panic in makeslice;
// an id of 1e9 allocated gigabytes. It must be an error naming the model
// file and the id.
func TestHugeClassIDInMetadata(t *testing.T) {
	initORT(t)
	for _, id := range []string{"4611686018427387903", "1000000000", "65536"} {
		t.Run(id, func(t *testing.T) {
			model := testenv.IdentityModel(t, "huge.onnx", []int64{1, 3, 64, 64})
			withMetadata(t, model, "author", "Ultralytics", "names", "{0: 'person', "+id+": 'x'}")
			cfg := detector.DefaultConfig()
			cfg.Model = model
			d, err := detector.New(cfg, quietLog())
			if err == nil {
				d.Close()
				t.Fatal("want an error")
			}
			for _, w := range []string{model, "class id " + id, "more than 65536 classes"} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %q", err, w)
				}
			}
		})
	}
}

// TestHugeInputSize: a model or description asking for an input over
// MaxInputSize is refused before any tensor is allocated for it.
func TestHugeInputSize(t *testing.T) {
	initORT(t)
	model := testenv.IdentityModel(t, "wide.onnx", []int64{1, 3, 100000, 100000})
	cfg := detector.DefaultConfig()
	cfg.Model = model
	_, err := detector.New(cfg, quietLog())
	if err == nil || !strings.Contains(err.Error(), "100000x100000") || !strings.Contains(err.Error(), "1..4096") {
		t.Fatalf("want an input size error, got %v", err)
	}

	_, _, err = detector.SpecFromMetadata(map[string]string{"imgsz": "[320, 1000000]"})
	if err == nil || !strings.Contains(err.Error(), "imgsz") || !strings.Contains(err.Error(), "1000000") {
		t.Fatalf("metadata imgsz: want an input size error, got %v", err)
	}
	_, err = detector.ParseSidecar([]byte("input_width = 100000\ninput_height = 320\n"), "/m/x.toml")
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
	}
	for _, tt := range tests {
		spec, _, err := detector.SpecFromMetadata(map[string]string{"names": tt.names})
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
	_, _, _, err := detector.LoadSidecar(model)
	if err == nil || !strings.Contains(err.Error(), "m.toml") || !strings.Contains(err.Error(), "too large") {
		t.Fatalf("2 MB sidecar: want a too-large error naming it, got %v", err)
	}
}

// TestModelNotRegularFile: a model path naming /dev/zero read forever
// (until the process ran out of memory).
func TestModelNotRegularFile(t *testing.T) {
	initORT(t)
	cfg := detector.DefaultConfig()
	cfg.Model = "/dev/zero"
	if _, err := detector.New(cfg, quietLog()); err == nil || !strings.Contains(err.Error(), "/dev/zero: not a regular file") {
		t.Fatalf("want a not-a-regular-file error, got %v", err)
	}
}
