package ortrun_test

import (
	"errors"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/edgedet/edgedet/internal/testenv"
	"github.com/edgedet/edgedet/onnx/onnxpb"
	"github.com/edgedet/edgedet/onnx/onnxtest"
	"github.com/edgedet/edgedet/onnx/ortrun"
)

func TestMain(m *testing.M) { testenv.RunCheckingLeaks(m) }

// negRelu is x → Neg → a → Relu → y on a [1,4] float input: a is an
// intermediate tensor that only an extra output exposes.
func negRelu() *onnxpb.ModelProto {
	vi := func(name string) *onnxpb.ValueInfoProto {
		return &onnxpb.ValueInfoProto{Name: proto.String(name), Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{
			TensorType: &onnxpb.TypeProto_Tensor{
				ElemType: proto.Int32(int32(onnxpb.TensorProto_FLOAT)),
				Shape: &onnxpb.TensorShapeProto{Dim: []*onnxpb.TensorShapeProto_Dimension{
					{Value: &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: 1}},
					{Value: &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: 4}},
				}},
			}}}}
	}
	return &onnxpb.ModelProto{
		IrVersion:   proto.Int64(8),
		OpsetImport: []*onnxpb.OperatorSetIdProto{{Version: proto.Int64(13)}},
		Graph: &onnxpb.GraphProto{
			Name: proto.String("neg_relu"),
			Node: []*onnxpb.NodeProto{
				{Name: proto.String("neg"), OpType: proto.String("Neg"), Input: []string{"x"}, Output: []string{"a"}},
				{Name: proto.String("relu"), OpType: proto.String("Relu"), Input: []string{"a"}, Output: []string{"y"}},
			},
			Input:  []*onnxpb.ValueInfoProto{vi("x")},
			Output: []*onnxpb.ValueInfoProto{vi("y")},
		},
	}
}

func TestRunnerExposesIntermediateTensors(t *testing.T) {
	onnxtest.InitORT(t)
	m := negRelu()
	r, err := ortrun.NewRunner(m, "x", []int64{1, 4}, []string{"a", "y"}, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if len(m.GetGraph().GetOutput()) != 1 {
		t.Errorf("NewRunner changed the caller's model: %d outputs", len(m.GetGraph().GetOutput()))
	}
	copy(r.Input(), []float32{-2, -0.5, 0, 3})
	want := map[string][]float32{"a": {2, 0.5, 0, -3}, "y": {2, 0.5, 0, 0}}
	var seen []string
	err = r.Run(func(i int, name string, shape []int64, values []float32) error {
		seen = append(seen, name)
		if len(shape) != 2 || shape[0] != 1 || shape[1] != 4 {
			t.Errorf("output %d %q: shape %v, want [1 4]", i, name, shape)
		}
		for j, w := range want[name] {
			if values[j] != w {
				t.Errorf("output %q[%d] = %g, want %g", name, j, values[j], w)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != 2 || seen[0] != "a" || seen[1] != "y" {
		t.Errorf("outputs visited %v, want [a y] in order", seen)
	}
	stop := errors.New("stop")
	calls := 0
	if err := r.Run(func(int, string, []int64, []float32) error { calls++; return stop }); !errors.Is(err, stop) || calls != 1 {
		t.Errorf("Run with a failing callback = %v after %d calls, want the callback's error after 1", err, calls)
	}
}

func TestRunnerErrors(t *testing.T) {
	onnxtest.InitORT(t)
	if _, err := ortrun.NewRunner(negRelu(), "x", []int64{1, 4}, []string{"no_such_tensor"}, 1); err == nil {
		t.Error("NewRunner with an output the graph does not have: no error")
	}
	// ONNX Runtime checks input names when the model runs.
	r, err := ortrun.NewRunner(negRelu(), "wrong_input", []int64{1, 4}, []string{"y"}, 0)
	if err == nil {
		err = r.Run(func(int, string, []int64, []float32) error { return nil })
		r.Close()
	}
	if err == nil {
		t.Error("a runner with an unknown input name ran without error")
	}
	var nilRunner *ortrun.Runner
	if err := nilRunner.Close(); err != nil {
		t.Errorf("Close of a nil runner = %v", err)
	}
}
