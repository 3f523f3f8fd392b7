package detector_test

import (
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/edgedet/edgedet/detection"
	"github.com/edgedet/edgedet/detector"
	"github.com/edgedet/edgedet/onnx"
	"github.com/edgedet/edgedet/onnx/onnxpb"
)

// valueInfo declares a tensor of elem type typ; each dim is an int64 size
// or a string naming a dynamic axis.
func valueInfo(name string, typ onnxpb.TensorProto_DataType, dims ...any) *onnxpb.ValueInfoProto {
	var d []*onnxpb.TensorShapeProto_Dimension
	for _, v := range dims {
		switch v := v.(type) {
		case string:
			d = append(d, &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: v}})
		default:
			d = append(d, &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: int64(v.(int))}})
		}
	}
	return &onnxpb.ValueInfoProto{Name: proto.String(name), Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{
		TensorType: &onnxpb.TypeProto_Tensor{ElemType: proto.Int32(int32(typ)), Shape: &onnxpb.TensorShapeProto{Dim: d}}}}}
}

// headModel is reshapeModel with the declared input and output (and any
// extra inputs or outputs) given, and x reshaped to [1,6,-1]: a YOLOv8 head
// of 2 classes over 2048 anchors when x is 3x64x64, whose output size ONNX
// Runtime cannot know before a run when x's size is dynamic.
func headModel(t *testing.T, in, out []*onnxpb.ValueInfoProto) string {
	t.Helper()
	m := reshapeModel("{0: 'a', 1: 'b'}")
	m.Graph.Input, m.Graph.Output = in, out
	shape := []byte{}
	for _, v := range []int64{1, 6, -1} {
		for k := range 8 {
			shape = append(shape, byte(uint64(v)>>(8*k)))
		}
	}
	m.Graph.Initializer = []*onnxpb.TensorProto{onnx.NewInitializer("s", onnxpb.TensorProto_INT64, []int64{3}, shape)}
	for _, extra := range out[1:] { // extra outputs: copies of y
		m.Graph.Node = append(m.Graph.Node, &onnxpb.NodeProto{OpType: proto.String("Identity"), Input: []string{"y"}, Output: []string{extra.GetName()}})
	}
	m.MetadataProps = slices.DeleteFunc(m.MetadataProps, func(p *onnxpb.StringStringEntryProto) bool { return p.GetKey() == "imgsz" })
	return writeModel(t, m)
}

// TestInspectModelShapes: what New reads from a model's inputs and
// outputs, accepted or refused with an error naming the model, the
// tensor and its shape.
func TestInspectModelShapes(t *testing.T) {
	initORT(t)
	f := onnxpb.TensorProto_FLOAT
	x := valueInfo("x", f, 1, 3, 64, 64)
	y := valueInfo("y", f, 1, 6, 2048)
	for _, tc := range []struct {
		name      string
		in, out   []*onnxpb.ValueInfoProto
		w, h      int      // description's input size
		wantErr   []string // nil: loads, as a 2-class YOLOv8 head
		wantShape []int64
		wantOut   []int64 // nil: [1 6 2048]
	}{
		{name: "fixed", in: []*onnxpb.ValueInfoProto{x}, out: []*onnxpb.ValueInfoProto{y}, wantShape: []int64{1, 3, 64, 64}},
		{name: "fixed, description agrees", in: []*onnxpb.ValueInfoProto{x}, out: []*onnxpb.ValueInfoProto{y}, w: 64, h: 64, wantShape: []int64{1, 3, 64, 64}},
		{name: "two inputs", in: []*onnxpb.ValueInfoProto{x, valueInfo("z", f, 1, 3, 64, 64)}, out: []*onnxpb.ValueInfoProto{y},
			wantErr: []string{"has 2 inputs", "x[1 3 64 64]", "z[1 3 64 64]"}},
		{name: "two outputs", in: []*onnxpb.ValueInfoProto{x}, out: []*onnxpb.ValueInfoProto{y, valueInfo("y2", f, 1, 6, 2048)},
			wantErr: []string{"has 2 outputs", "y[1 6 2048], y2[1 6 2048]"}},
		{name: "int input", in: []*onnxpb.ValueInfoProto{valueInfo("x", onnxpb.TensorProto_INT32, 1, 3, 64, 64)}, out: []*onnxpb.ValueInfoProto{valueInfo("y", onnxpb.TensorProto_INT32, 1, 6, 2048)},
			wantErr: []string{`input "x"`, "float32"}},
		{name: "one channel", in: []*onnxpb.ValueInfoProto{valueInfo("x", f, 1, 1, 96, 64)}, out: []*onnxpb.ValueInfoProto{valueInfo("y", f, 1, 6, 1024)},
			wantErr: []string{`input "x" has shape [1 1 96 64]`, "NCHW"}},
		{name: "dynamic channels", in: []*onnxpb.ValueInfoProto{valueInfo("x", f, 1, "c", 64, 64)}, out: []*onnxpb.ValueInfoProto{y}, wantShape: []int64{1, 3, 64, 64}},
		{name: "description disagrees with the width", in: []*onnxpb.ValueInfoProto{x}, out: []*onnxpb.ValueInfoProto{y}, w: 32, h: 64,
			wantErr: []string{"fixed at 64x64", "says 32x64"}},
		{name: "description disagrees with the height", in: []*onnxpb.ValueInfoProto{x}, out: []*onnxpb.ValueInfoProto{y}, w: 64, h: 32,
			wantErr: []string{"fixed at 64x64", "says 64x32"}},
		{name: "dynamic size, no description", in: []*onnxpb.ValueInfoProto{valueInfo("x", f, 1, 3, "h", "w")}, out: []*onnxpb.ValueInfoProto{y},
			wantErr: []string{`input "x" has dynamic size`, "input_width"}},
		{name: "dynamic height only", in: []*onnxpb.ValueInfoProto{valueInfo("x", f, 1, 3, "h", 64)}, out: []*onnxpb.ValueInfoProto{y},
			wantErr: []string{"dynamic size"}},
		{name: "dynamic size, only the width described", in: []*onnxpb.ValueInfoProto{valueInfo("x", f, 1, 3, "h", "w")}, out: []*onnxpb.ValueInfoProto{y}, w: 64,
			wantErr: []string{`input "x" has dynamic size`, "input_height"}},
		{name: "dynamic size, only the height described", in: []*onnxpb.ValueInfoProto{valueInfo("x", f, 1, 3, "h", "w")}, out: []*onnxpb.ValueInfoProto{y}, h: 64,
			wantErr: []string{`input "x" has dynamic size`, "input_width"}},
		// A side of 1 pixel is a fixed size, not a dynamic one (3x64x1
		// values reshape to [1,6,32]).
		{name: "fixed at 1 pixel wide", in: []*onnxpb.ValueInfoProto{valueInfo("x", f, 1, 3, 64, 1)}, out: []*onnxpb.ValueInfoProto{valueInfo("y", f, 1, 6, "a")},
			wantShape: []int64{1, 3, 64, 1}, wantOut: []int64{1, 6, 32}},
		{name: "fixed at 1 pixel high", in: []*onnxpb.ValueInfoProto{valueInfo("x", f, 1, 3, 1, 64)}, out: []*onnxpb.ValueInfoProto{valueInfo("y", f, 1, 6, "a")},
			wantShape: []int64{1, 3, 1, 64}, wantOut: []int64{1, 6, 32}},
		{name: "fixed wider than edgedet takes", in: []*onnxpb.ValueInfoProto{valueInfo("x", f, 1, 3, 64, 5000)}, out: []*onnxpb.ValueInfoProto{valueInfo("y", f, 1, 6, 160000)},
			wantErr: []string{`input "x": input size: 5000x64`}},
		{name: "dynamic height, described", in: []*onnxpb.ValueInfoProto{valueInfo("x", f, 1, 3, "h", 64)}, out: []*onnxpb.ValueInfoProto{y}, w: 64, h: 64,
			wantShape: []int64{1, 3, 64, 64}},
		{name: "dynamic size, described", in: []*onnxpb.ValueInfoProto{valueInfo("x", f, 1, 3, "h", "w")}, out: []*onnxpb.ValueInfoProto{y}, w: 64, h: 64,
			wantShape: []int64{1, 3, 64, 64}},
		{name: "dynamic output, probed", in: []*onnxpb.ValueInfoProto{valueInfo("x", f, 1, 3, "h", "w")}, out: []*onnxpb.ValueInfoProto{valueInfo("y", f, "n", "c", "a")}, w: 64, h: 64,
			wantShape: []int64{1, 3, 64, 64}},
		// 3x33x33 values do not reshape to [1,6,-1].
		{name: "dynamic output, probe fails", in: []*onnxpb.ValueInfoProto{valueInfo("x", f, 1, 3, "h", "w")}, out: []*onnxpb.ValueInfoProto{valueInfo("y", f, 1, 6, "a")}, w: 33, h: 33,
			wantErr: []string{"probe output shape with input [1 3 33 33]"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := detector.DefaultConfig()
			cfg.Model = headModel(t, tc.in, tc.out)
			cfg.InputWidth, cfg.InputHeight = tc.w, tc.h
			d, err := detector.New(cfg, quietLog())
			if tc.wantErr != nil {
				if err == nil {
					info := d.Info()
					d.Close()
					t.Fatalf("loaded (%+v), want an error", info)
				}
				for _, w := range append(tc.wantErr, cfg.Model) {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not contain %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			info := d.Info()
			if tc.wantOut == nil {
				tc.wantOut = []int64{1, 6, 2048}
			}
			if info.Format != detection.FormatYOLOv8 || !slices.Equal(info.InputShape, tc.wantShape) ||
				!slices.Equal(info.OutputShape, tc.wantOut) || len(info.Labels) != 2 || info.Name != "head" ||
				info.InputName != "x" || info.OutputName != "y" || info.Precision != "fp32" {
				t.Errorf("info %+v", info)
			}
		})
	}
}

// TestInspectNeedsFloatOutput: a float input is not enough: an output of
// another type (here a Cast to double after the head) is refused.
func TestInspectNeedsFloatOutput(t *testing.T) {
	initORT(t)
	m := reshapeModel("{0: 'a', 1: 'b'}")
	m.Graph.Node[0].Output = []string{"r"}
	m.Graph.Node = append(m.Graph.Node, &onnxpb.NodeProto{OpType: proto.String("Cast"), Input: []string{"r"}, Output: []string{"y"},
		Attribute: []*onnxpb.AttributeProto{{Name: proto.String("to"), Type: onnxpb.AttributeProto_INT.Enum(), I: proto.Int64(int64(onnxpb.TensorProto_DOUBLE))}}})
	m.Graph.Output = []*onnxpb.ValueInfoProto{valueInfo("y", onnxpb.TensorProto_DOUBLE, 1, 6, 2048)}
	cfg := detector.DefaultConfig()
	cfg.Model = writeModel(t, m)
	d, err := detector.New(cfg, quietLog())
	if err == nil {
		d.Close()
		t.Fatal("loaded a model with a double output")
	}
	if !strings.Contains(err.Error(), `output "y" is`) || !strings.Contains(err.Error(), "needs float32 input and output") {
		t.Errorf("error %q, want the output's type refused", err)
	}
}
