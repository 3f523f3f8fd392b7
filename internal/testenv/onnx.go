package testenv

import (
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
)

// IdentityModel writes a minimal valid ONNX model (opset 13) whose single
// float32 input "x" of shape in is passed through Identity to the output
// "y" (same shape). Tests use it to build models with shapes no YOLO
// decoder accepts. It encodes the protobuf by hand so testenv needs no
// generated ONNX types.
func IdentityModel(t testing.TB, name string, shape []int64) string {
	t.Helper()
	valueInfo := func(n string) []byte {
		var dims []byte
		for _, d := range shape {
			var dim []byte
			dim = protowire.AppendTag(dim, 1, protowire.VarintType) // dim_value
			dim = protowire.AppendVarint(dim, uint64(d))
			dims = protowire.AppendTag(dims, 1, protowire.BytesType) // TensorShapeProto.dim
			dims = protowire.AppendBytes(dims, dim)
		}
		var tensor []byte
		tensor = protowire.AppendTag(tensor, 1, protowire.VarintType) // elem_type
		tensor = protowire.AppendVarint(tensor, 1)                    // FLOAT
		tensor = protowire.AppendTag(tensor, 2, protowire.BytesType)  // shape
		tensor = protowire.AppendBytes(tensor, dims)
		var typ []byte
		typ = protowire.AppendTag(typ, 1, protowire.BytesType) // TypeProto.tensor_type
		typ = protowire.AppendBytes(typ, tensor)
		var vi []byte
		vi = protowire.AppendTag(vi, 1, protowire.BytesType)
		vi = protowire.AppendString(vi, n)
		vi = protowire.AppendTag(vi, 2, protowire.BytesType)
		return protowire.AppendBytes(vi, typ)
	}
	var node []byte
	node = protowire.AppendTag(node, 1, protowire.BytesType) // input
	node = protowire.AppendString(node, "x")
	node = protowire.AppendTag(node, 2, protowire.BytesType) // output
	node = protowire.AppendString(node, "y")
	node = protowire.AppendTag(node, 4, protowire.BytesType) // op_type
	node = protowire.AppendString(node, "Identity")
	var graph []byte
	graph = protowire.AppendTag(graph, 1, protowire.BytesType) // node
	graph = protowire.AppendBytes(graph, node)
	graph = protowire.AppendTag(graph, 2, protowire.BytesType) // name
	graph = protowire.AppendString(graph, "g")
	graph = protowire.AppendTag(graph, 11, protowire.BytesType) // input
	graph = protowire.AppendBytes(graph, valueInfo("x"))
	graph = protowire.AppendTag(graph, 12, protowire.BytesType) // output
	graph = protowire.AppendBytes(graph, valueInfo("y"))
	var opset []byte
	opset = protowire.AppendTag(opset, 2, protowire.VarintType) // version
	opset = protowire.AppendVarint(opset, 13)
	var model []byte
	model = protowire.AppendTag(model, 1, protowire.VarintType) // ir_version
	model = protowire.AppendVarint(model, 7)
	model = protowire.AppendTag(model, 7, protowire.BytesType) // graph
	model = protowire.AppendBytes(model, graph)
	model = protowire.AppendTag(model, 8, protowire.BytesType) // opset_import
	model = protowire.AppendBytes(model, opset)
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, model, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
