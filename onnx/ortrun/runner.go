// Package ortrun runs an ONNX model held in memory in ONNX Runtime with
// chosen intermediate tensors exposed as outputs: the quantiser calibrates
// with it and the pruner samples activations with it. The caller initialises
// ONNX Runtime (detector.InitRuntime).
package ortrun

import (
	"errors"
	"fmt"

	ort "github.com/yalue/onnxruntime_go"
	"google.golang.org/protobuf/proto"

	"github.com/edgedet/edgedet/onnx/onnxpb"
)

// Runner runs one model in ONNX Runtime (which the caller has initialised)
// with chosen tensors exposed as outputs, and hands them over as float32
// slices: calibration in package quant, activation sampling in package prune.
type Runner struct {
	session *ort.DynamicAdvancedSession
	input   *ort.Tensor[float32]
	outputs []string
}

// NewRunner creates a session for a copy of m with extra graph outputs for
// tensors (which must be float), reading one float input of shape inShape;
// threads is ONNX Runtime's intra-op thread count (0 = its default).
func NewRunner(m *onnxpb.ModelProto, inputName string, inShape []int64, outputs []string, threads int) (*Runner, error) {
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
	return &Runner{session: s, input: in, outputs: outputs}, nil
}

// Input is the input tensor's data: fill it before Run.
func (r *Runner) Input() []float32 { return r.input.GetData() }

// Run executes the model on the current input and calls fn with each
// output's shape and values, in order (valid only during fn).
func (r *Runner) Run(fn func(i int, name string, shape []int64, values []float32) error) error {
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
		if err := fn(i, r.outputs[i], t.GetShape(), t.GetData()); err != nil {
			return err
		}
	}
	return nil
}

// Close frees the session and the input tensor.
func (r *Runner) Close() error {
	if r == nil {
		return nil
	}
	return errors.Join(r.session.Destroy(), r.input.Destroy())
}
