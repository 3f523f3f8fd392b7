package onnx_test

import (
	"slices"
	"testing"

	"github.com/edgedet/edgedet/onnx"
	"github.com/edgedet/edgedet/onnx/onnxtest"
)

// TestInferShapesYOLOX checks shape inference through YOLOX's whole graph:
// the Focus stem's Slices, SPP's MaxPools, Resize, and the head's Reshape
// whose target shape is computed from Shape, Slice and Concat.
func TestInferShapesYOLOX(t *testing.T) {
	m := onnxtest.LoadModel(t, filepathShared(t, "yolox_nano_416.onnx"))
	s, err := onnx.InferShapes(m, []int64{1, 3, 416, 416})
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string][]int64{
		"/backbone/backbone/stem/Concat_output_0":               {1, 12, 208, 208},
		"/backbone/backbone/dark5/dark5.1/m.2/MaxPool_output_0": {1, 128, 13, 13},
		"/backbone/upsample/Resize_output_0":                    {1, 128, 26, 26},
		"/head/Reshape_output_0":                                {1, 85, 2704},
		"output":                                                {1, 3549, 85},
	} {
		if got := s.Shape(name); !slices.Equal(got, want) {
			t.Errorf("%s: shape %v, want %v", name, got, want)
		}
	}
	// A batch of two doubles everything.
	s2, err := onnx.InferShapes(m, []int64{2, 3, 416, 416})
	if err != nil {
		t.Fatal(err)
	}
	if got := s2.Shape("output"); !slices.Equal(got, []int64{2, 3549, 85}) {
		t.Errorf("batch 2 output shape %v", got)
	}
}
