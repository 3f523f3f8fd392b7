package onnx_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/edgedet/edgedet/internal/testenv"
	"github.com/edgedet/edgedet/onnx"
	"github.com/edgedet/edgedet/onnx/onnxpb"
	"github.com/edgedet/edgedet/onnx/onnxtest"
)

// Every shared model decodes, re-encodes to an equal message and, when the
// file is in Go's canonical field order, to the very same bytes.
func TestRoundTripSharedModels(t *testing.T) {
	var identical, other []string
	for _, path := range onnxtest.SharedModels(t) {
		name := filepath.Base(path)
		t.Run(name, func(t *testing.T) {
			orig, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			m := onnxtest.LoadModel(t, path)
			out, err := proto.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			back := &onnxpb.ModelProto{}
			if err := proto.Unmarshal(out, back); err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(m, back) {
				t.Fatal("re-encoded model differs from the loaded one")
			}
			if len(m.ProtoReflect().GetUnknown()) != 0 || len(m.GetGraph().ProtoReflect().GetUnknown()) != 0 {
				t.Logf("model carries fields unknown to ONNX 1.12")
			}
			canonical, why := onnxtest.CheckCanonical(orig, m.ProtoReflect().Descriptor())
			switch {
			case bytes.Equal(orig, out):
				identical = append(identical, name)
			case canonical:
				t.Errorf("file is in canonical order but re-encodes differently: %d bytes, re-encoded %d", len(orig), len(out))
			default:
				other = append(other, name)
				t.Logf("not byte-identical (%d bytes, re-encoded %d): %s", len(orig), len(out), why)
			}
			// Saving writes the same bytes as Marshal.
			saved, err := os.ReadFile(onnxtest.SaveModel(t, m, name))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(saved, out) {
				t.Error("SaveModel wrote other bytes than proto.Marshal")
			}
		})
	}
	t.Logf("byte-identical re-encoding: %v", identical)
	t.Logf("equal but not byte-identical: %v", other)
}

// Fields this ONNX version does not know (from a newer exporter) survive a
// load, edit, save, load cycle, on the model and inside a node and tensor.
func TestUnknownFieldsSurviveEdit(t *testing.T) {
	m := onnxtest.LoadModel(t, onnxtest.SharedModels(t)[0])
	unknown := func(marker string) []byte {
		b := protowire.AppendTag(nil, 999, protowire.BytesType)
		b = protowire.AppendString(b, marker)
		b = protowire.AppendTag(b, 998, protowire.VarintType)
		return protowire.AppendVarint(b, 42)
	}
	modelUnknown := unknown("edgedet-model-extra")
	nodeUnknown := unknown("edgedet-node-extra")
	tensorUnknown := unknown("edgedet-tensor-extra")

	// The model's unknown field is appended to the serialised bytes, as a
	// newer writer would put it; node and tensor ones go inside their
	// messages' encoding.
	node := m.GetGraph().GetNode()[0]
	node.ProtoReflect().SetUnknown(nodeUnknown)
	init := m.GetGraph().GetInitializer()[0]
	init.ProtoReflect().SetUnknown(tensorUnknown)
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	b = append(b, modelUnknown...)
	for _, marker := range []string{"edgedet-model-extra", "edgedet-node-extra", "edgedet-tensor-extra"} {
		if !bytes.Contains(b, []byte(marker)) {
			t.Fatalf("test model lacks %q", marker)
		}
	}
	path := onnxtest.WriteFile(t, "unknown.onnx", b)

	m2 := onnxtest.LoadModel(t, path)
	onnx.SetMetadata(m2, "edgedet.test", "edited")
	m2.GetGraph().GetNode()[1].Name = proto.String("renamed-node")
	out := filepath.Join(t.TempDir(), "edited.onnx")
	if err := onnx.SaveModel(out, m2); err != nil {
		t.Fatal(err)
	}

	m3 := onnxtest.LoadModel(t, out)
	if got := onnx.Metadata(m3)["edgedet.test"]; got != "edited" {
		t.Errorf("metadata edgedet.test = %q, want edited", got)
	}
	if got := m3.GetGraph().GetNode()[1].GetName(); got != "renamed-node" {
		t.Errorf("node 1 name = %q, want renamed-node", got)
	}
	if got := m3.ProtoReflect().GetUnknown(); !bytes.Equal(got, modelUnknown) {
		t.Errorf("model unknown fields = %x, want %x", got, modelUnknown)
	}
	if got := m3.GetGraph().GetNode()[0].ProtoReflect().GetUnknown(); !bytes.Equal(got, nodeUnknown) {
		t.Errorf("node unknown fields = %x, want %x", got, nodeUnknown)
	}
	if got := m3.GetGraph().GetInitializer()[0].ProtoReflect().GetUnknown(); !bytes.Equal(got, tensorUnknown) {
		t.Errorf("tensor unknown fields = %x, want %x", got, tensorUnknown)
	}
}

func TestLoadModelErrors(t *testing.T) {
	jpg := filepath.Join(testenv.Shared(t, "datasets", "samples"), "dog.jpg")
	names := filepath.Join(testenv.Shared(t, "models"), "coco.names")
	empty := onnxtest.WriteFile(t, "empty.onnx", nil)
	// Valid protobuf, but no graph: an ONNX reader must not accept it.
	noGraph := onnxtest.WriteFile(t, "nograph.onnx", protowire.AppendVarint(protowire.AppendTag(nil, 1, protowire.VarintType), 8))
	truncated := func() string {
		b, err := os.ReadFile(onnxtest.SharedModels(t)[0])
		if err != nil {
			t.Fatal(err)
		}
		return onnxtest.WriteFile(t, "truncated.onnx", b[:len(b)/2])
	}()
	for _, path := range []string{jpg, names, empty, noGraph, truncated} {
		m, err := onnx.LoadModel(path)
		if err == nil {
			t.Errorf("LoadModel(%s) = %v, want error", path, m)
			continue
		}
		if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), ": not an ONNX model: ") {
			t.Errorf("LoadModel(%s) error %q does not name the file and say it is not an ONNX model", path, err)
		}
		if !errors.Is(err, onnx.ErrNotONNX) {
			t.Errorf("LoadModel(%s) error %q does not wrap ErrNotONNX", path, err)
		}
	}
	missing := filepath.Join(t.TempDir(), "missing.onnx")
	_, err := onnx.LoadModel(missing)
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		t.Errorf("LoadModel(missing) error = %v, want not-exist naming the file", err)
	}
}

func TestSaveModelAtomic(t *testing.T) {
	m := onnxtest.LoadModel(t, onnxtest.SharedModels(t)[0])
	dir := t.TempDir()
	path := filepath.Join(dir, "out.onnx")
	if err := os.WriteFile(path, []byte("old contents"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := onnx.SaveModel(path, m); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "out.onnx" {
		t.Errorf("dir holds %v, want only out.onnx (temp file left behind?)", entries)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, want 0644", fi.Mode().Perm())
	}
	if got := onnxtest.LoadModel(t, path); !proto.Equal(got, m) {
		t.Error("saved model does not load back equal")
	}

	bad := filepath.Join(dir, "no-such-dir", "out.onnx")
	if err := onnx.SaveModel(bad, m); err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("SaveModel into a missing dir: error %v, want one naming %s", err, bad)
	}
}

func TestModelSHA256(t *testing.T) {
	path := onnxtest.SharedModels(t)[0]
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	got, err := onnx.ModelSHA256(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := hex.EncodeToString(sum[:]); got != want {
		t.Errorf("ModelSHA256 = %s, want %s", got, want)
	}
	missing := filepath.Join(t.TempDir(), "missing.onnx")
	if _, err := onnx.ModelSHA256(missing); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("ModelSHA256(missing) error %v, want one naming the file", err)
	}
}

func TestMetadata(t *testing.T) {
	m := &onnxpb.ModelProto{}
	if md := onnx.Metadata(m); len(md) != 0 {
		t.Errorf("Metadata of empty model = %v", md)
	}
	onnx.SetMetadata(m, "a", "1")
	onnx.SetMetadata(m, "b", "2")
	onnx.SetMetadata(m, "a", "3")
	if want := map[string]string{"a": "3", "b": "2"}; !reflect.DeepEqual(onnx.Metadata(m), want) {
		t.Errorf("Metadata = %v, want %v", onnx.Metadata(m), want)
	}
	if n := len(m.GetMetadataProps()); n != 2 {
		t.Errorf("%d metadata_props entries, want 2 (replace, not append)", n)
	}
	if k := m.GetMetadataProps()[0].GetKey(); k != "a" {
		t.Errorf("first entry %q, want a (replacing keeps the position)", k)
	}
	// A duplicated key, as a careless writer may leave, collapses to one.
	m.MetadataProps = append(m.MetadataProps, &onnxpb.StringStringEntryProto{Key: proto.String("a"), Value: proto.String("dup")})
	onnx.SetMetadata(m, "a", "4")
	if n := len(m.GetMetadataProps()); n != 2 || onnx.Metadata(m)["a"] != "4" {
		t.Errorf("after SetMetadata on a duplicated key: %v", m.GetMetadataProps())
	}
}

func TestQuantOps(t *testing.T) {
	for _, path := range onnxtest.SharedModels(t) {
		name := filepath.Base(path)
		ops := onnx.QuantOps(onnxtest.LoadModel(t, path))
		t.Logf("%s: %v", name, ops)
		if quantised := strings.Contains(name, "int8"); quantised != (len(ops) > 0) {
			t.Errorf("%s: QuantOps = %v, but the name says quantised=%v", name, ops, quantised)
		}
		want := "fp32"
		if strings.Contains(name, "int8") {
			want = "int8"
		}
		if got := onnx.Precision(onnxtest.LoadModel(t, path)); got != want {
			t.Errorf("%s: Precision = %q, want %q", name, got, want)
		}
	}
	// Ops inside a subgraph count too.
	m := &onnxpb.ModelProto{Graph: &onnxpb.GraphProto{Node: []*onnxpb.NodeProto{{
		OpType: proto.String("If"),
		Attribute: []*onnxpb.AttributeProto{{Name: proto.String("then_branch"), G: &onnxpb.GraphProto{
			Node: []*onnxpb.NodeProto{{OpType: proto.String("QLinearConv")}, {OpType: proto.String("DequantizeLinear")}},
		}}},
	}}}}
	if got, want := onnx.QuantOps(m), []string{"DequantizeLinear", "QLinearConv"}; !reflect.DeepEqual(got, want) {
		t.Errorf("QuantOps(subgraph) = %v, want %v", got, want)
	}
	if got := onnx.Precision(m); got != "int8" {
		t.Errorf("Precision(subgraph with QLinearConv) = %q, want int8", got)
	}
}
