package prune

import (
	"fmt"
	"slices"

	"github.com/edgedet/edgedet/onnx"
	"github.com/edgedet/edgedet/onnx/onnxpb"
	"github.com/edgedet/edgedet/onnx/ortrun"
)

// Check runs both models once on the same zero input of inShape in ONNX
// Runtime (initialised by the caller): the pruned one must load, run and
// give outputs of the original's shapes.
func Check(src, pruned *onnxpb.ModelProto, inShape []int64) error {
	a, err := outputShapes(src, inShape)
	if err != nil {
		return fmt.Errorf("original: %w", err)
	}
	b, err := outputShapes(pruned, inShape)
	if err != nil {
		return err
	}
	if len(a) != len(b) {
		return fmt.Errorf("%d outputs instead of %d", len(b), len(a))
	}
	for i := range a {
		if !slices.Equal(a[i], b[i]) {
			return fmt.Errorf("output %d has shape %v instead of %v", i, b[i], a[i])
		}
	}
	return nil
}

// outputShapes runs m on a zero input of inShape and returns its graph
// outputs' shapes.
func outputShapes(m *onnxpb.ModelProto, inShape []int64) ([][]int64, error) {
	in, err := onnx.ImageInput(m)
	if err != nil {
		return nil, err
	}
	var outs []string
	for _, v := range m.GetGraph().GetOutput() {
		outs = append(outs, v.GetName())
	}
	r, err := ortrun.NewRunner(m, in.GetName(), inShape, outs, 0)
	if err != nil {
		return nil, fmt.Errorf("load in ONNX Runtime: %w", err)
	}
	defer r.Close()
	shapes := make([][]int64, len(outs))
	err = r.Run(func(i int, _ string, shape []int64, _ []float32) error {
		shapes[i] = slices.Clone(shape)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("run in ONNX Runtime: %w", err)
	}
	return shapes, nil
}
