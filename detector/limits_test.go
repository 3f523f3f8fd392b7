package detector_test

import (
	"os"
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

// TestHugeInputSize: a model asking for an input over MaxInputSize is
// refused before any tensor is allocated for it (detection's
// TestSpecHugeInputSize covers metadata and sidecars).
func TestHugeInputSize(t *testing.T) {
	initORT(t)
	model := testenv.IdentityModel(t, "wide.onnx", []int64{1, 3, 100000, 100000})
	cfg := detector.DefaultConfig()
	cfg.Model = model
	_, err := detector.New(cfg, quietLog())
	if err == nil || !strings.Contains(err.Error(), "100000x100000") || !strings.Contains(err.Error(), "1..4096") {
		t.Fatalf("want an input size error, got %v", err)
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
