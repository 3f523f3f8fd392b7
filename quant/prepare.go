package quant

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"google.golang.org/protobuf/proto"

	"github.com/edgedet/edgedet/onnx"
	"github.com/edgedet/edgedet/onnx/onnxpb"
)

// checkExclude rejects an --exclude entry that names no node or op type
// of m, before any work is done.
func checkExclude(m *onnxpb.ModelProto, exclude []string) error {
	known := map[string]bool{}
	for _, n := range m.GetGraph().GetNode() {
		known[n.GetName()], known[n.GetOpType()] = true, true
	}
	for _, e := range exclude {
		if !known[e] {
			return fmt.Errorf("exclude: %q names no node or op type of the model", e)
		}
	}
	return nil
}

func opTypePresent(p *prepared, op string) bool {
	for _, n := range p.order {
		if n.GetOpType() == op {
			return true
		}
	}
	return false
}

// nameNodes gives every unnamed node a unique name (op_index), so plans and
// reports can refer to nodes.
func nameNodes(m *onnxpb.ModelProto) {
	seen := map[string]bool{}
	for _, n := range m.GetGraph().GetNode() {
		seen[n.GetName()] = true
	}
	for i, n := range m.GetGraph().GetNode() {
		if n.GetName() == "" {
			name := fmt.Sprintf("%s_%d", n.GetOpType(), i)
			for seen[name] {
				name += "_"
			}
			seen[name] = true
			n.Name = proto.String(name)
		}
	}
}

// modelInput returns the single image input's name and concrete shape.
func modelInput(m *onnxpb.ModelProto, override []int64) (string, []int64, error) {
	in, err := onnx.ImageInput(m)
	if err != nil {
		return "", nil, err
	}
	tt := in.GetType().GetTensorType()
	var shape []int64
	dynamic := false
	for _, d := range tt.GetShape().GetDim() {
		v := d.GetDimValue()
		if v <= 0 {
			dynamic = true
		}
		shape = append(shape, v)
	}
	if len(shape) != 4 {
		return "", nil, fmt.Errorf("model input %q has shape %v; edgedet needs [1,3,H,W]", in.GetName(), shape)
	}
	if dynamic {
		if len(override) != 4 {
			return "", nil, fmt.Errorf("model input %q has dynamic shape %v: give the input size (input_width/input_height in the model description)", in.GetName(), shape)
		}
		for i, v := range shape {
			if v > 0 && v != override[i] {
				return "", nil, fmt.Errorf("model input %q has shape %v, which does not match %v", in.GetName(), shape, override)
			}
		}
		shape = slices.Clone(override)
	}
	if n := onnx.NumElements(&onnxpb.TensorProto{Dims: shape}); n < 0 || n > maxInputValues {
		return "", nil, fmt.Errorf("model input %q has shape %v: more than %d values (a 3x4096x4096 image)", in.GetName(), shape, maxInputValues)
	}
	return in.GetName(), shape, nil
}

// maxInputValues bounds the calibration input tensor a model's declared
// input shape may ask for: one 3x4096x4096 image.
const maxInputValues = 3 * 4096 * 4096

// prepare folds and upgrades a copy of m, names its nodes, finds its input,
// splits channels if asked and analyses it for QDQ.
func (z *quantizer) prepare(ctx context.Context, m *onnxpb.ModelProto) error {
	opt, rep := z.opt, z.rep
	fp := proto.Clone(m).(*onnxpb.ModelProto)
	var err error
	if rep.FoldedBatchNorms, err = onnx.FoldBatchNorm(fp); err != nil {
		return fmt.Errorf("fold batch normalization: %w", err)
	}
	if rep.OpsetFrom, err = onnx.UpgradeOpset(fp); err != nil {
		return err
	}
	rep.Opset = max(rep.OpsetFrom, onnx.MinQDQOpset)
	nameNodes(fp)
	inName, inShape, err := modelInput(fp, opt.InputShape)
	if err != nil {
		return err
	}
	exclude := map[string]bool{}
	for _, e := range opt.Exclude {
		exclude[e] = true
	}
	if err := checkExclude(fp, opt.Exclude); err != nil {
		return err
	}
	if opt.SplitChannels {
		if rep.Split, err = splitChannels(ctx, fp, inName, inShape, z.inputs, opt.Threads, exclude); err != nil {
			return err
		}
	}
	p, err := analyse(fp, exclude)
	if err != nil {
		return err
	}
	p.exactSiLU = opt.ExactSiLU
	for _, e := range opt.Exclude {
		if p.byName[e] == nil && !opTypePresent(p, e) {
			return fmt.Errorf("exclude: %q names no node or op type of the model", e)
		}
	}
	for _, n := range p.order {
		if p.head[n.GetName()] {
			rep.Head = append(rep.Head, n.GetName())
		}
	}
	rep.Candidates = len(p.candidates)
	if len(p.candidates) == 0 {
		return errors.New("the model has no Conv, Gemm or MatMul with constant weights to quantize")
	}
	z.fp, z.inName, z.inShape, z.p = fp, inName, inShape, p
	return nil
}
