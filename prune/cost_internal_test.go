package prune

import (
	"path/filepath"
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/edgedet/edgedet/internal/testenv"
	"github.com/edgedet/edgedet/onnx"
	"github.com/edgedet/edgedet/onnx/onnxpb"
)

// TestInferShapesYOLOX checks shape inference through YOLOX's whole graph:
// the Focus stem's Slices, SPP's MaxPools, Resize, and the head's Reshape
// whose target shape is computed from Shape, Slice and Concat.
func TestInferShapesYOLOX(t *testing.T) {
	m, err := onnx.LoadModel(filepath.Join(testenv.Shared(t, "models"), "yolox_nano_416.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := inferShapes(m, []int64{1, 3, 416, 416})
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
		if got := s.shape(name); !slices.Equal(got, want) {
			t.Errorf("%s: shape %v, want %v", name, got, want)
		}
	}
	// A batch of two doubles everything.
	s2, err := inferShapes(m, []int64{2, 3, 416, 416})
	if err != nil {
		t.Fatal(err)
	}
	if got := s2.shape("output"); !slices.Equal(got, []int64{2, 3549, 85}) {
		t.Errorf("batch 2 output shape %v", got)
	}
}

func TestWindowed(t *testing.T) {
	s := &shapes{}
	cases := []struct {
		name  string
		attrs map[string][]int64
		pad   string
		ceil  bool
		in    []int64
		k     []int64
		want  []int64
	}{
		{"same-3x3", map[string][]int64{"pads": {1, 1, 1, 1}}, "", false, []int64{1, 3, 8, 8}, []int64{3, 3}, []int64{1, 4, 8, 8}},
		{"stride2", map[string][]int64{"pads": {1, 1, 1, 1}, "strides": {2, 2}}, "", false, []int64{1, 3, 9, 8}, []int64{3, 3}, []int64{1, 4, 5, 4}},
		{"dilated", map[string][]int64{"dilations": {2, 2}}, "", false, []int64{1, 3, 9, 9}, []int64{3, 3}, []int64{1, 4, 5, 5}},
		{"same-upper", map[string][]int64{"strides": {2, 2}}, "SAME_UPPER", false, []int64{1, 3, 9, 9}, []int64{3, 3}, []int64{1, 4, 5, 5}},
		{"valid", map[string][]int64{"strides": {2, 2}}, "VALID", false, []int64{1, 3, 9, 9}, []int64{3, 3}, []int64{1, 4, 4, 4}},
		{"ceil", map[string][]int64{"strides": {2, 2}}, "", true, []int64{1, 3, 8, 8}, []int64{3, 3}, []int64{1, 4, 4, 4}},
		{"floor", map[string][]int64{"strides": {2, 2}}, "", false, []int64{1, 3, 8, 8}, []int64{3, 3}, []int64{1, 4, 3, 3}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n := testNode(c.attrs, c.pad, c.ceil)
			if got := s.windowed(n, c.in, 4, c.k); !slices.Equal(got, c.want) {
				t.Errorf("got %v, want %v", got, c.want)
			}
		})
	}
}

// testNode is a pooling node with the given ints attributes.
func testNode(attrs map[string][]int64, autoPad string, ceil bool) *onnxpb.NodeProto {
	n := &onnxpb.NodeProto{OpType: proto.String("MaxPool")}
	for name, v := range attrs {
		n.Attribute = append(n.Attribute, &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_INTS.Enum(), Ints: v})
	}
	if autoPad != "" {
		n.Attribute = append(n.Attribute, &onnxpb.AttributeProto{Name: proto.String("auto_pad"), Type: onnxpb.AttributeProto_STRING.Enum(), S: []byte(autoPad)})
	}
	if ceil {
		n.Attribute = append(n.Attribute, &onnxpb.AttributeProto{Name: proto.String("ceil_mode"), Type: onnxpb.AttributeProto_INT.Enum(), I: proto.Int64(1)})
	}
	return n
}
