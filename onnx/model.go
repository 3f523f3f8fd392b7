// Package onnx is edgedet's ONNX graph toolkit, shared by the quantiser
// (package quant) and the pruner (package prune): loading and atomically
// saving models, metadata, reading and writing tensor data, indexing a graph
// (producers, consumers, initializers, topological order), opset upgrades,
// folding BatchNormalization into Conv, shape inference (InferShapes, one
// shape_*.go file per operator family), the model's image input, and
// recognising models that are already quantised (QuantOps, Precision).
//
// It is plain Go (no cgo) and works on the generated types in onnx/onnxpb;
// running a model in ONNX Runtime is package onnx/ortrun. Fields unknown to
// ONNX 1.12 survive a load-edit-save round trip.
package onnx

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"

	"google.golang.org/protobuf/proto"

	"github.com/edgedet/edgedet/internal/readlimit"
	"github.com/edgedet/edgedet/onnx/onnxpb"
)

// maxModelSize is the largest model file LoadModel reads: 2 GiB, the most
// a serialised protobuf can be.
const maxModelSize = 2 << 30

// LoadModel reads and decodes the ONNX model at path. A file that does not
// decode as a ModelProto with a graph gives an error of the form
// "load model <path>: not an ONNX model: ...". Models with external data
// load, but their external tensors hold no data here.
func LoadModel(path string) (*onnxpb.ModelProto, error) {
	b, err := readlimit.ReadRegularFile(path, maxModelSize)
	if err != nil {
		return nil, fmt.Errorf("load model %s: %w", path, err)
	}
	m, err := DecodeModel(b)
	if err != nil {
		return nil, fmt.Errorf("load model %s: %w", path, err)
	}
	return m, nil
}

// ErrNotONNX is wrapped by the errors of LoadModel and DecodeModel for input
// that is not an ONNX model.
var ErrNotONNX = errors.New("not an ONNX model")

// DecodeModel decodes a serialised ModelProto. It rejects input that decodes
// but has no ir_version or no graph (an empty file, most text files), which
// protobuf alone would accept as an empty message.
func DecodeModel(b []byte) (*onnxpb.ModelProto, error) {
	m := &onnxpb.ModelProto{}
	if err := proto.Unmarshal(b, m); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotONNX, err)
	}
	switch {
	case len(b) == 0:
		return nil, fmt.Errorf("%w: empty file", ErrNotONNX)
	case m.GetIrVersion() <= 0:
		return nil, fmt.Errorf("%w: no ir_version", ErrNotONNX)
	case m.GetGraph() == nil:
		return nil, fmt.Errorf("%w: no graph", ErrNotONNX)
	}
	return m, nil
}

// SaveModel serialises m and writes it to path atomically: it writes a
// temporary file in the same directory, syncs it, renames it over path and
// syncs the directory, so readers see the old file or the new one, never a
// partial one. The file gets mode 0644. The caller makes sure path is not the
// model it is still reading from.
func SaveModel(path string, m *onnxpb.ModelProto) error {
	b, err := proto.Marshal(m)
	if err != nil {
		return fmt.Errorf("save model %s: encode: %w", path, err)
	}
	if err := writeFileAtomic(path, b, 0o644); err != nil {
		return fmt.Errorf("save model %s: %w", path, err)
	}
	return nil
}

func writeFileAtomic(path string, b []byte, mode os.FileMode) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err = f.Write(b); err != nil {
		return err
	}
	if err = f.Chmod(mode); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp, path); err != nil {
		return err
	}
	// The rename is durable only once the directory entry is synced.
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// ModelSHA256 is the lowercase hex SHA-256 of the file at path.
func ModelSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("hash model: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hash model %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// SetMetadata sets metadata_props[key] to value, replacing the value of an
// existing entry with that key (and dropping any later duplicates of it).
func SetMetadata(m *onnxpb.ModelProto, key, value string) {
	props := m.MetadataProps[:0:0]
	set := false
	for _, p := range m.MetadataProps {
		if p.GetKey() != key {
			props = append(props, p)
			continue
		}
		if !set {
			p.Value = proto.String(value)
			props = append(props, p)
			set = true
		}
	}
	if !set {
		props = append(props, &onnxpb.StringStringEntryProto{Key: proto.String(key), Value: proto.String(value)})
	}
	m.MetadataProps = props
}

// Metadata returns the model's metadata_props as a map; for a duplicated key
// the first entry wins, as with SetMetadata.
func Metadata(m *onnxpb.ModelProto) map[string]string {
	md := make(map[string]string, len(m.GetMetadataProps()))
	for _, p := range m.GetMetadataProps() {
		if _, ok := md[p.GetKey()]; !ok {
			md[p.GetKey()] = p.GetValue()
		}
	}
	return md
}

// quantOpTypes are operator types that only appear in quantised models: the
// standard ONNX ones and ONNX Runtime's com.microsoft contrib ones.
var quantOpTypes = map[string]bool{
	// ai.onnx
	"QuantizeLinear":        true,
	"DequantizeLinear":      true,
	"DynamicQuantizeLinear": true,
	"QLinearConv":           true,
	"QLinearMatMul":         true,
	"ConvInteger":           true,
	"MatMulInteger":         true,
	// com.microsoft
	"DynamicQuantizeMatMul":       true,
	"DynamicQuantizeLSTM":         true,
	"MatMulIntegerToFloat":        true,
	"MatMulNBits":                 true,
	"MatMulBnb4":                  true,
	"QGemm":                       true,
	"QAttention":                  true,
	"QLinearAdd":                  true,
	"QLinearMul":                  true,
	"QLinearAveragePool":          true,
	"QLinearGlobalAveragePool":    true,
	"QLinearConcat":               true,
	"QLinearLeakyRelu":            true,
	"QLinearSigmoid":              true,
	"QLinearSoftmax":              true,
	"QLinearReduceMean":           true,
	"QLinearWhere":                true,
	"QLinearConvTranspose":        true,
	"QuantizeWithOrder":           true,
	"DequantizeWithOrder":         true,
	"QOrderedMatMul":              true,
	"QOrderedLayerNormalization":  true,
	"QOrderedGelu":                true,
	"QOrderedAttention":           true,
	"QOrderedLongformerAttention": true,
}

// QuantOps returns the sorted, distinct operator types in m's graph
// (subgraphs included) that show the model is already quantised, such as
// QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear, QLinearConv,
// ConvInteger or MatMulInteger. It returns nil for a float model.
func QuantOps(m *onnxpb.ModelProto) []string {
	seen := map[string]bool{}
	walkNodes(m.GetGraph(), func(n *onnxpb.NodeProto) {
		if quantOpTypes[n.GetOpType()] {
			seen[n.GetOpType()] = true
		}
	})
	if len(seen) == 0 {
		return nil
	}
	ops := make([]string, 0, len(seen))
	for op := range seen {
		ops = append(ops, op)
	}
	sort.Strings(ops)
	return ops
}

// Precision is "int8" for a quantised model (QuantOps finds an operator
// that only quantised graphs contain) and "fp32" otherwise.
func Precision(m *onnxpb.ModelProto) string {
	if len(QuantOps(m)) > 0 {
		return "int8"
	}
	return "fp32"
}

// walkNodes calls fn for every node of g and of its subgraphs (If, Loop,
// Scan bodies), depth first.
func walkNodes(g *onnxpb.GraphProto, fn func(*onnxpb.NodeProto)) {
	for _, n := range g.GetNode() {
		fn(n)
		for _, a := range n.GetAttribute() {
			if a.GetG() != nil {
				walkNodes(a.GetG(), fn)
			}
			for _, sg := range a.GetGraphs() {
				walkNodes(sg, fn)
			}
		}
	}
}

// ImageInput returns m's single input that is not an initializer, and an
// error unless there is exactly one and it is a float tensor.
func ImageInput(m *onnxpb.ModelProto) (*onnxpb.ValueInfoProto, error) {
	gp := m.GetGraph()
	inits := map[string]bool{}
	for _, t := range gp.GetInitializer() {
		inits[t.GetName()] = true
	}
	var ins []*onnxpb.ValueInfoProto
	for _, vi := range gp.GetInput() {
		if !inits[vi.GetName()] {
			ins = append(ins, vi)
		}
	}
	if len(ins) != 1 {
		return nil, fmt.Errorf("model has %d inputs; edgedet handles models with one image input", len(ins))
	}
	if tt := ins[0].GetType().GetTensorType(); tt == nil || tt.GetElemType() != int32(onnxpb.TensorProto_FLOAT) {
		return nil, fmt.Errorf("model input %q is not a float tensor", ins[0].GetName())
	}
	return ins[0], nil
}
