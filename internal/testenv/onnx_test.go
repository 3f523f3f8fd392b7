package testenv

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/edgedet/edgedet/onnx/onnxpb"
)

// TestIdentityModel: the file decodes as an ONNX model with one Identity
// node from float input x to output y, both of the given shape, opset 13.
func TestIdentityModel(t *testing.T) {
	shape := []int64{1, 3, 7, 5}
	path := IdentityModel(t, "id.onnx", shape)
	if filepath.Base(path) != "id.onnx" {
		t.Errorf("path %q does not end in the given name", path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m onnxpb.ModelProto
	if err := proto.Unmarshal(b, &m); err != nil {
		t.Fatalf("decode %s: %v", path, err)
	}
	if m.GetIrVersion() != 7 || len(m.GetOpsetImport()) != 1 || m.GetOpsetImport()[0].GetVersion() != 13 {
		t.Errorf("ir_version %d, opset %v; want 7 and 13", m.GetIrVersion(), m.GetOpsetImport())
	}
	g := m.GetGraph()
	if len(g.GetNode()) != 1 {
		t.Fatalf("%d nodes, want 1", len(g.GetNode()))
	}
	n := g.GetNode()[0]
	if n.GetOpType() != "Identity" || !slices.Equal(n.GetInput(), []string{"x"}) || !slices.Equal(n.GetOutput(), []string{"y"}) {
		t.Errorf("node %s %v -> %v, want Identity [x] -> [y]", n.GetOpType(), n.GetInput(), n.GetOutput())
	}
	for _, c := range []struct {
		name string
		vi   []*onnxpb.ValueInfoProto
	}{{"x", g.GetInput()}, {"y", g.GetOutput()}} {
		if len(c.vi) != 1 || c.vi[0].GetName() != c.name {
			t.Fatalf("graph value infos %v, want one named %s", c.vi, c.name)
		}
		tt := c.vi[0].GetType().GetTensorType()
		if tt.GetElemType() != 1 {
			t.Errorf("%s elem_type %d, want 1 (FLOAT)", c.name, tt.GetElemType())
		}
		var dims []int64
		for _, d := range tt.GetShape().GetDim() {
			dims = append(dims, d.GetDimValue())
		}
		if !slices.Equal(dims, shape) {
			t.Errorf("%s shape %v, want %v", c.name, dims, shape)
		}
	}
}

// TestORTLibrary: $EDGEDET_ORT_LIB wins; unset, build/lib under the repo
// is used; a missing library fails the test naming it.
func TestORTLibrary(t *testing.T) {
	lib := filepath.Join(t.TempDir(), "libort.so")
	if err := os.WriteFile(lib, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("EDGEDET_ORT_LIB", lib)
	if got := ORTLibrary(t); got != lib {
		t.Errorf("ORTLibrary = %q with EDGEDET_ORT_LIB=%q", got, lib)
	}
	t.Setenv("EDGEDET_ORT_LIB", lib+".absent")
	failing(t, func(tb testing.TB) { ORTLibrary(tb) }, "onnx runtime library missing", "libort.so.absent", "scripts/setup.sh")

	t.Setenv("EDGEDET_ORT_LIB", "")
	def := filepath.Join(RepoRoot(), "build", "lib", "libonnxruntime.so.1")
	if _, err := os.Stat(def); err != nil {
		failing(t, func(tb testing.TB) { ORTLibrary(tb) }, def)
		return
	}
	if got := ORTLibrary(t); got != def {
		t.Errorf("ORTLibrary without EDGEDET_ORT_LIB = %q, want %q", got, def)
	}
}
