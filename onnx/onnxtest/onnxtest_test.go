package onnxtest

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/edgedet/edgedet/internal/testenv"
	"github.com/edgedet/edgedet/onnx/onnxpb"
)

// recordTB records what a helper reports; Fatal and Fatalf stop the helper
// by panicking with the recorder, which expectFatal recovers.
type recordTB struct {
	testing.TB
	fatal  string
	errors []string
	logs   []string
}

func (r *recordTB) Helper() {}
func (r *recordTB) Fatal(args ...any) {
	r.fatal = fmt.Sprint(args...)
	panic(r)
}
func (r *recordTB) Fatalf(format string, args ...any) {
	r.fatal = fmt.Sprintf(format, args...)
	panic(r)
}
func (r *recordTB) Errorf(format string, args ...any) {
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}
func (r *recordTB) Logf(format string, args ...any) {
	r.logs = append(r.logs, fmt.Sprintf(format, args...))
}

// run calls fn with a fresh recorder on t and returns it; stopped says
// whether fn ended in Fatal.
func run(t *testing.T, fn func(tb testing.TB)) (r *recordTB, stopped bool) {
	t.Helper()
	r = &recordTB{TB: t}
	func() {
		defer func() {
			if p := recover(); p != nil {
				if p != r {
					panic(p)
				}
				stopped = true
			}
		}()
		fn(r)
	}()
	return r, stopped
}

// expectFatal fails t unless fn calls Fatal with a message holding every want.
func expectFatal(t *testing.T, fn func(tb testing.TB), want ...string) {
	t.Helper()
	r, stopped := run(t, fn)
	if !stopped {
		t.Fatalf("helper returned without failing the test (errors %q)", r.errors)
	}
	for _, w := range want {
		if !strings.Contains(r.fatal, w) {
			t.Errorf("failure %q does not contain %q", r.fatal, w)
		}
	}
}

func TestSharedModels(t *testing.T) {
	paths := SharedModels(t)
	if !slices.IsSorted(paths) {
		t.Errorf("SharedModels not sorted: %q", paths)
	}
	for _, p := range paths {
		if filepath.Ext(p) != ".onnx" {
			t.Errorf("%s is not an .onnx file", p)
		}
		if _, err := os.Stat(p); err != nil {
			t.Error(err)
		}
	}
	shared := t.TempDir()
	if err := os.Mkdir(filepath.Join(shared, "models"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("EDGEDET_SHARED", shared)
	expectFatal(t, func(tb testing.TB) { SharedModels(tb) }, "no .onnx models")
}

// TestLoadSaveModel: a saved model loads back equal; a missing file or an
// unwritable destination fails the test naming it.
func TestLoadSaveModel(t *testing.T) {
	m := LoadModel(t, testenv.IdentityModel(t, "id.onnx", []int64{1, 2}))
	path := SaveModel(t, m, "copy.onnx")
	if filepath.Base(path) != "copy.onnx" {
		t.Errorf("SaveModel path %q", path)
	}
	if back := LoadModel(t, path); !proto.Equal(back, m) {
		t.Error("saved model does not load back equal")
	}
	expectFatal(t, func(tb testing.TB) { LoadModel(tb, filepath.Join(t.TempDir(), "absent.onnx")) }, "absent.onnx")
	expectFatal(t, func(tb testing.TB) { SaveModel(tb, m, filepath.Join("no-such-dir", "m.onnx")) }, "no-such-dir")
}

func TestWriteFile(t *testing.T) {
	path := WriteFile(t, "blob.bin", []byte{1, 2, 3})
	if b, err := os.ReadFile(path); err != nil || !slices.Equal(b, []byte{1, 2, 3}) || filepath.Base(path) != "blob.bin" {
		t.Errorf("WriteFile wrote %v (%v) at %q", b, err, path)
	}
	expectFatal(t, func(tb testing.TB) { WriteFile(tb, filepath.Join("no-such-dir", "b"), nil) }, "no-such-dir")
}

func TestNodeByName(t *testing.T) {
	m := LoadModel(t, testenv.IdentityModel(t, "id.onnx", []int64{3}))
	m.Graph.Node[0].Name = proto.String("ident")
	if n := NodeByName(m, "ident"); n == nil || n.GetOpType() != "Identity" {
		t.Errorf("NodeByName(ident) = %v", n)
	}
	if n := NodeByName(m, "absent"); n != nil {
		t.Errorf("NodeByName(absent) = %v, want nil", n)
	}
	if n := NodeByName(&onnxpb.ModelProto{}, "ident"); n != nil {
		t.Errorf("NodeByName on a model without graph = %v", n)
	}
}

// TestRunORT: an Identity model returns its input; a missing file, a wrong
// input name, a wrong input shape and too little data each fail the test.
func TestRunORT(t *testing.T) {
	shape := []int64{1, 2, 3}
	path := testenv.IdentityModel(t, "id.onnx", shape)
	x := []float32{0, -1.5, 2, 3.25, 1e6, -7}
	got := RunORT(t, path, []Input{{Name: "x", Shape: shape, Data: x}})
	if len(got) != 1 || !slices.Equal(got["y"], x) {
		t.Errorf("RunORT = %v, want y = %v", got, x)
	}
	expectFatal(t, func(tb testing.TB) { RunORT(tb, path+".absent", nil) }, "inspect", "id.onnx.absent")
	expectFatal(t, func(tb testing.TB) {
		RunORT(tb, path, []Input{{Name: "nope", Shape: shape, Data: x}})
	}, "run "+path, "nope")
	expectFatal(t, func(tb testing.TB) {
		RunORT(tb, path, []Input{{Name: "x", Shape: []int64{1, 6}, Data: x}})
	}, "run "+path)
	expectFatal(t, func(tb testing.TB) {
		RunORT(tb, path, []Input{{Name: "x", Shape: shape, Data: x[:2]}})
	})
}

// TestInitORTOtherLibrary: once ONNX Runtime is loaded, InitORT with a
// different library fails the test.
func TestInitORTOtherLibrary(t *testing.T) {
	InitORT(t)
	InitORT(t) // again with the same library: fine
	other := WriteFile(t, "libother.so", nil)
	t.Setenv("EDGEDET_ORT_LIB", other)
	expectFatal(t, func(tb testing.TB) { InitORT(tb) }, "libother.so")
}

func TestCompareOutputs(t *testing.T) {
	want := map[string][]float32{"a": {1, -200, 0.5}, "b": {0}}
	t.Run("within tolerance", func(t *testing.T) {
		// -200.1 is 5e-4 off relative to 200; 0.5004 is 4e-4 off (scale 1).
		got := map[string][]float32{"a": {1, -200.1, 0.5004}, "b": {0}}
		r, stopped := run(t, func(tb testing.TB) { CompareOutputs(tb, got, want, 1e-3) })
		if stopped || len(r.errors) != 0 || len(r.logs) != 2 {
			t.Errorf("stopped %v, errors %q, logs %q; want two logs only", stopped, r.errors, r.logs)
		}
	})
	t.Run("beyond tolerance", func(t *testing.T) {
		got := map[string][]float32{"a": {1, -200, 0.6}, "b": {0}}
		r, _ := run(t, func(tb testing.TB) { CompareOutputs(tb, got, want, 1e-3) })
		if len(r.errors) != 1 || !strings.Contains(r.errors[0], `output "a"[2] = 0.6, want 0.5`) {
			t.Errorf("errors %q, want one naming a[2]", r.errors)
		}
	})
	t.Run("relative to large values", func(t *testing.T) {
		got := map[string][]float32{"a": {1, -201, 0.5}, "b": {0}}
		r, _ := run(t, func(tb testing.TB) { CompareOutputs(tb, got, want, 1e-3) })
		if len(r.errors) != 1 || !strings.Contains(r.errors[0], `"a"[1]`) {
			t.Errorf("errors %q, want one naming a[1] (0.5%% off)", r.errors)
		}
	})
	for _, c := range []struct {
		name string
		got  map[string][]float32
		msg  string
	}{
		{"output count", map[string][]float32{"a": {1, -200, 0.5}}, "got 1 outputs, want 2"},
		{"missing output", map[string][]float32{"a": {1, -200, 0.5}, "c": {0}}, `output "b" missing`},
		{"length", map[string][]float32{"a": {1, -200}, "b": {0}}, `output "a": 2 values, want 3`},
	} {
		t.Run(c.name, func(t *testing.T) {
			expectFatal(t, func(tb testing.TB) { CompareOutputs(tb, c.got, want, 1e-3) }, c.msg)
		})
	}
}

// TestCheckCanonical feeds hand-made ModelProto encodings: Go's own
// encoding and unknown fields last pass; each ordering or encoding Go
// would not write is refused with a reason naming it.
func TestCheckCanonical(t *testing.T) {
	md := (&onnxpb.ModelProto{}).ProtoReflect().Descriptor()
	tag := func(b []byte, num protowire.Number, typ protowire.Type) []byte {
		return protowire.AppendTag(b, num, typ)
	}
	varint := func(b []byte, num protowire.Number, v uint64) []byte {
		return protowire.AppendVarint(tag(b, num, protowire.VarintType), v)
	}
	bytesField := func(b []byte, num protowire.Number, v []byte) []byte {
		return protowire.AppendBytes(tag(b, num, protowire.BytesType), v)
	}
	m := &onnxpb.ModelProto{
		IrVersion: proto.Int64(7),
		Graph: &onnxpb.GraphProto{
			Name:        proto.String("g"),
			Initializer: []*onnxpb.TensorProto{{Dims: []int64{2, 3}, Name: proto.String("w")}},
		},
		OpsetImport: []*onnxpb.OperatorSetIdProto{{Version: proto.Int64(13)}, {Domain: proto.String("ai.onnx.ml"), Version: proto.Int64(3)}},
	}
	goEncoded, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var packedDims []byte
	packedDims = protowire.AppendVarint(packedDims, 2)
	packedDims = protowire.AppendVarint(packedDims, 3)
	tensorPacked := bytesField(nil, 1, packedDims)  // TensorProto.dims, packed
	graphPacked := bytesField(nil, 5, tensorPacked) // GraphProto.initializer

	for _, c := range []struct {
		name string
		b    []byte
		why  string // "" when canonical
	}{
		{"go encoding", goEncoded, ""},
		{"empty", nil, ""},
		{"unknown field last", varint(goEncoded, 999, 1), ""},
		{"descending fields", varint(bytesField(nil, 7, nil), 1, 7), "onnx.ModelProto: field 1 after field 7"},
		{"singular field twice", varint(varint(nil, 1, 7), 1, 8), "onnx.ModelProto: field 1 after field 1"},
		{"known after unknown", varint(varint(nil, 999, 1), 1, 7), "onnx.ModelProto: known field 1 after an unknown field"},
		{"packed where descriptor says unpacked", bytesField(nil, 7, graphPacked), "onnx.TensorProto.dims: packed=true, descriptor says false"},
		{"bad tag", []byte{0x00}, "bad tag"},
		{"truncated value", tag(nil, 2, protowire.BytesType), "bad value"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ok, why := CheckCanonical(c.b, md)
			if ok != (c.why == "") || why != c.why {
				t.Errorf("CheckCanonical = %v, %q; want %v, %q", ok, why, c.why == "", c.why)
			}
		})
	}
}
