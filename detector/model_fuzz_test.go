package detector_test

import (
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/edgedet/edgedet/detection"
	"github.com/edgedet/edgedet/detector"
	"github.com/edgedet/edgedet/onnx"
	"github.com/edgedet/edgedet/onnx/onnxpb"
)

// writeModel writes m to a file in t's temporary directory and returns its
// path.
func writeModel(t testing.TB, m *onnxpb.ModelProto) string {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "head.onnx")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// reshapeModel is a tiny model ONNX Runtime runs that edgedet reads as a
// YOLOv8 head: x [1,3,64,64] reshaped to y [1,6,2048] (4 box channels and
// 2 classes over 2048 anchors), with Ultralytics metadata.
func reshapeModel(names string) *onnxpb.ModelProto {
	vi := func(name string, dims ...int64) *onnxpb.ValueInfoProto {
		var d []*onnxpb.TensorShapeProto_Dimension
		for _, v := range dims {
			d = append(d, &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: v}})
		}
		return &onnxpb.ValueInfoProto{Name: proto.String(name), Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{
			TensorType: &onnxpb.TypeProto_Tensor{ElemType: proto.Int32(int32(onnxpb.TensorProto_FLOAT)), Shape: &onnxpb.TensorShapeProto{Dim: d}}}}}
	}
	shape := []byte{}
	for _, v := range []int64{1, 6, 2048} {
		for k := 0; k < 8; k++ {
			shape = append(shape, byte(uint64(v)>>(8*k)))
		}
	}
	m := &onnxpb.ModelProto{
		IrVersion:   proto.Int64(8),
		OpsetImport: []*onnxpb.OperatorSetIdProto{{Version: proto.Int64(13)}},
		Graph: &onnxpb.GraphProto{
			Name:        proto.String("g"),
			Node:        []*onnxpb.NodeProto{{Name: proto.String("r"), OpType: proto.String("Reshape"), Input: []string{"x", "s"}, Output: []string{"y"}}},
			Initializer: []*onnxpb.TensorProto{onnx.NewInitializer("s", onnxpb.TensorProto_INT64, []int64{3}, shape)},
			Input:       []*onnxpb.ValueInfoProto{vi("x", 1, 3, 64, 64)},
			Output:      []*onnxpb.ValueInfoProto{vi("y", 1, 6, 2048)},
		},
	}
	onnx.SetMetadata(m, "author", "Ultralytics")
	onnx.SetMetadata(m, "imgsz", "[64, 64]")
	onnx.SetMetadata(m, "names", names)
	return m
}

// FuzzNewDetector loads fuzzed model files the way detect, eval, quantize
// and run do (ONNX Runtime parses the file; edgedet reads its inputs,
// outputs and metadata and picks a decoder). Any file must give an error
// or a detector whose labels match its classes and that closes cleanly.
func FuzzNewDetector(f *testing.F) {
	for _, names := range []string{"{0: 'a', 1: 'b'}", "{4611686018427387903: 'x'}", "{0: 'a', 1000000000: 'b'}"} {
		b, err := proto.Marshal(reshapeModel(names))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("this is not a protobuf"))
	initORT(f)
	model := filepath.Join(f.TempDir(), "m.onnx")
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(model, data, 0o644); err != nil {
			t.Fatal(err)
		}
		cfg := detector.DefaultConfig()
		cfg.Model, cfg.Threads, cfg.Sessions = model, 1, 1
		d, err := detector.New(cfg, quietLog())
		if err != nil {
			return
		}
		info := d.Info()
		if len(info.Labels) == 0 || len(info.Labels) > 1<<16 {
			t.Errorf("%d labels", len(info.Labels))
		}
		if err := d.Close(); err != nil {
			t.Fatalf("close: %v", err)
		}
	})
}

// TestFuzzSeedModelLoads keeps FuzzNewDetector's first seed a model that
// loads, so the fuzzer starts from the whole load path.
func TestFuzzSeedModelLoads(t *testing.T) {
	model := writeModel(t, reshapeModel("{0: 'a', 1: 'b'}"))
	cfg := detector.DefaultConfig()
	cfg.Model = model
	d := newDetector(t, cfg)
	if info := d.Info(); info.Format != detection.FormatYOLOv8 || len(info.Labels) != 2 || info.Labels[1] != "b" {
		t.Fatalf("loaded as %s with labels %q", info.Format, info.Labels)
	}
}
