package quant

import (
	"context"
	"errors"
	"fmt"

	ort "github.com/yalue/onnxruntime_go"
	"google.golang.org/protobuf/proto"

	"github.com/edgedet/edgedet/quant/onnxpb"
)

// Inputs supplies calibration inputs: already preprocessed model inputs
// (NCHW float32), produced on demand so that memory stays bounded. The
// agent implements it with the detector's own preprocessing.
type Inputs interface {
	// Len is the number of inputs.
	Len() int
	// Input writes input i into dst (len = the model input's element count).
	Input(ctx context.Context, i int, dst []float32) error
}

// runner runs one model in ONNX Runtime (which the caller has initialised)
// and returns the named outputs as float32 slices.
type runner struct {
	session *ort.DynamicAdvancedSession
	input   *ort.Tensor[float32]
	outputs []string
}

// newRunner creates a session for m with extra graph outputs for tensors
// (which must be float), reading one float input of shape inShape.
func newRunner(m *onnxpb.ModelProto, inputName string, inShape []int64, outputs []string, threads int) (*runner, error) {
	m = proto.Clone(m).(*onnxpb.ModelProto)
	gp := m.GetGraph()
	existing := map[string]bool{}
	for _, o := range gp.GetOutput() {
		existing[o.GetName()] = true
	}
	for _, t := range outputs {
		if existing[t] {
			continue
		}
		gp.Output = append(gp.Output, &onnxpb.ValueInfoProto{
			Name: proto.String(t),
			Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{TensorType: &onnxpb.TypeProto_Tensor{
				ElemType: proto.Int32(int32(onnxpb.TensorProto_FLOAT)),
			}}},
		})
	}
	data, err := proto.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode model: %w", err)
	}
	opts, err := ort.NewSessionOptions()
	if err != nil {
		return nil, err
	}
	defer opts.Destroy()
	if threads > 0 {
		if err := opts.SetIntraOpNumThreads(threads); err != nil {
			return nil, err
		}
	}
	s, err := ort.NewDynamicAdvancedSessionWithONNXData(data, []string{inputName}, outputs, opts)
	if err != nil {
		return nil, fmt.Errorf("create onnx runtime session: %w", err)
	}
	in, err := ort.NewEmptyTensor[float32](ort.NewShape(inShape...))
	if err != nil {
		s.Destroy()
		return nil, err
	}
	return &runner{session: s, input: in, outputs: outputs}, nil
}

// run executes the model on the current input and calls fn with each
// output's values (valid only during fn).
func (r *runner) run(fn func(i int, name string, values []float32) error) error {
	outs := make([]ort.Value, len(r.outputs))
	if err := r.session.Run([]ort.Value{r.input}, outs); err != nil {
		return fmt.Errorf("run model: %w", err)
	}
	defer func() {
		for _, o := range outs {
			if o != nil {
				o.Destroy()
			}
		}
	}()
	for i, o := range outs {
		t, ok := o.(*ort.Tensor[float32])
		if !ok {
			return fmt.Errorf("output %q is %v, not float32", r.outputs[i], o.GetONNXType())
		}
		if err := fn(i, r.outputs[i], t.GetData()); err != nil {
			return err
		}
	}
	return nil
}

func (r *runner) close() error {
	if r == nil {
		return nil
	}
	return errors.Join(r.session.Destroy(), r.input.Destroy())
}
