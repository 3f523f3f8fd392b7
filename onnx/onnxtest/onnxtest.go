// Package onnxtest holds test helpers for packages that edit ONNX models:
// the shared models, load/save, and a reference run in ONNX Runtime.
package onnxtest

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"

	ort "github.com/yalue/onnxruntime_go"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/edgedet/edgedet/detector"
	"github.com/edgedet/edgedet/internal/testenv"
	"github.com/edgedet/edgedet/onnx"
	"github.com/edgedet/edgedet/onnx/onnxpb"
)

// SharedModels is every .onnx under the shared models directory, sorted.
func SharedModels(t testing.TB) []string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(testenv.Shared(t, "models"), "*.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) == 0 {
		t.Fatal("no .onnx models in the shared models directory")
	}
	sort.Strings(paths)
	return paths
}

func LoadModel(t testing.TB, path string) *onnxpb.ModelProto {
	t.Helper()
	m, err := onnx.LoadModel(path)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func SaveModel(t testing.TB, m *onnxpb.ModelProto, name string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := onnx.SaveModel(path, m); err != nil {
		t.Fatal(err)
	}
	return path
}

func InitORT(t testing.TB) {
	t.Helper()
	if err := detector.InitRuntime(testenv.ORTLibrary(t)); err != nil {
		t.Fatal(err)
	}
}

// Input is one float32 input of a model run.
type Input struct {
	Name  string
	Shape []int64
	Data  []float32
}

// RunORT runs the model at path once on CPU with graph optimisations off
// (so ONNX Runtime's own Conv+BN fusion does not hide ours) and returns
// every float32 output by name.
func RunORT(t testing.TB, path string, inputs []Input) map[string][]float32 {
	t.Helper()
	InitORT(t)
	_, outInfo, err := ort.GetInputOutputInfo(path)
	if err != nil {
		t.Fatalf("inspect %s: %v", path, err)
	}
	outNames := make([]string, len(outInfo))
	for i, o := range outInfo {
		outNames[i] = o.Name
	}
	inNames := make([]string, len(inputs))
	for i, in := range inputs {
		inNames[i] = in.Name
	}
	opts, err := ort.NewSessionOptions()
	if err != nil {
		t.Fatal(err)
	}
	defer opts.Destroy()
	if err := opts.SetGraphOptimizationLevel(ort.GraphOptimizationLevelDisableAll); err != nil {
		t.Fatal(err)
	}
	if err := opts.SetIntraOpNumThreads(1); err != nil {
		t.Fatal(err)
	}
	s, err := ort.NewDynamicAdvancedSession(path, inNames, outNames, opts)
	if err != nil {
		t.Fatalf("session for %s: %v", path, err)
	}
	defer s.Destroy()
	ins := make([]ort.Value, len(inputs))
	for i, in := range inputs {
		tensor, err := ort.NewTensor(ort.NewShape(in.Shape...), in.Data)
		if err != nil {
			t.Fatal(err)
		}
		defer tensor.Destroy()
		ins[i] = tensor
	}
	outs := make([]ort.Value, len(outNames))
	if err := s.Run(ins, outs); err != nil {
		t.Fatalf("run %s: %v", path, err)
	}
	res := make(map[string][]float32, len(outs))
	for i, o := range outs {
		defer o.Destroy()
		ft, ok := o.(*ort.Tensor[float32])
		if !ok {
			t.Fatalf("%s output %q is %T, want float32 tensor", path, outNames[i], o)
		}
		res[outNames[i]] = append([]float32(nil), ft.GetData()...)
	}
	return res
}

// CompareOutputs fails when any value differs by more than tol·max(1, |want|).
func CompareOutputs(t testing.TB, got, want map[string][]float32, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d outputs, want %d", len(got), len(want))
	}
	for name, w := range want {
		g, ok := got[name]
		if !ok {
			t.Fatalf("output %q missing", name)
		}
		if len(g) != len(w) {
			t.Fatalf("output %q: %d values, want %d", name, len(g), len(w))
		}
		worst, at := 0.0, -1
		for i := range w {
			d := float64(g[i]) - float64(w[i])
			if d < 0 {
				d = -d
			}
			scale := max(1, abs64(float64(w[i])))
			if d/scale > worst {
				worst, at = d/scale, i
			}
		}
		if worst > tol {
			t.Errorf("output %q[%d] = %g, want %g (relative diff %.3g > %g)", name, at, g[at], w[at], worst, tol)
		} else {
			t.Logf("output %q: %d values, max scaled diff %.3g", name, len(w), worst)
		}
	}
}

func abs64(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

// CheckCanonical reports whether b, a serialised message of type md, has
// every field in the order and encoding Go's protobuf writes: known fields
// by ascending number, each repeated field contiguous, repeated scalars
// packed exactly when the descriptor says so, unknown fields last. Only
// such input can re-serialise byte for byte. why explains a "no".
func CheckCanonical(b []byte, md protoreflect.MessageDescriptor) (ok bool, why string) {
	last := protowire.Number(0)
	unknownSeen := false
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return false, "bad tag"
		}
		b = b[n:]
		vn := protowire.ConsumeFieldValue(num, typ, b)
		if vn < 0 {
			return false, "bad value"
		}
		val := b[:vn]
		b = b[vn:]
		fd := md.Fields().ByNumber(num)
		if fd == nil {
			unknownSeen = true
			continue
		}
		if unknownSeen {
			return false, fmt.Sprintf("%s: known field %d after an unknown field", md.FullName(), num)
		}
		if num < last || (num == last && !fd.IsList()) {
			return false, fmt.Sprintf("%s: field %d after field %d", md.FullName(), num, last)
		}
		last = num
		if fd.IsList() && fd.Kind() != protoreflect.MessageKind && fd.Kind() != protoreflect.StringKind && fd.Kind() != protoreflect.BytesKind {
			if packed := typ == protowire.BytesType; packed != fd.IsPacked() {
				return false, fmt.Sprintf("%s.%s: packed=%v, descriptor says %v", md.FullName(), fd.Name(), packed, fd.IsPacked())
			}
		}
		if fd.Kind() == protoreflect.MessageKind && typ == protowire.BytesType {
			sub, _ := protowire.ConsumeBytes(val)
			if ok, why := CheckCanonical(sub, fd.Message()); !ok {
				return false, why
			}
		}
	}
	return true, ""
}

// WriteFile writes b to name in a fresh temp dir and returns the path.
func WriteFile(t testing.TB, name string, b []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// NodeByName is the node of m's main graph called name, or nil.
func NodeByName(m *onnxpb.ModelProto, name string) *onnxpb.NodeProto {
	for _, n := range m.GetGraph().GetNode() {
		if n.GetName() == name {
			return n
		}
	}
	return nil
}
