package train

import (
	"math"
	"math/rand/v2"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/edgedet/edgedet/onnx"
	"github.com/edgedet/edgedet/onnx/onnxpb"
	"github.com/edgedet/edgedet/onnx/onnxtest"
	"github.com/edgedet/edgedet/onnx/onnxtest/graphgen"
)

// resizeVariants is a model of opset `opset` on [2,3,5,4] input "x" whose
// outputs are nearest Resizes in the modes other exporters use.
func resizeVariants() *onnxpb.ModelProto {
	b := &graphgen.Builder{}
	b.Inits = append(b.Inits, onnx.Float32Vector("roi", nil), onnx.Float32Vector("noscales", nil),
		onnx.Float32Vector("s2", []float32{1, 1, 2, 2}), onnx.Float32Vector("s15", []float32{1, 1, 1.5, 2.5}),
		onnx.Float32Vector("shrink", []float32{1, 1, 0.6, 0.5}),
		&onnxpb.TensorProto{Name: proto.String("sizes"), DataType: proto.Int32(int32(onnxpb.TensorProto_INT64)), Dims: []int64{4}, Int64Data: []int64{2, 3, 7, 9}})
	mode := func(coord, nearest string) []*onnxpb.AttributeProto {
		return []*onnxpb.AttributeProto{graphgen.String("mode", "nearest"), graphgen.String("coordinate_transformation_mode", coord), graphgen.String("nearest_mode", nearest)}
	}
	b.Node("Resize", []string{"x", "roi", "s2"}, []string{"asym"}, mode("asymmetric", "floor")...)
	b.Node("Resize", []string{"x", "roi", "s15"}, []string{"half"}, mode("half_pixel", "round_prefer_floor")...)
	b.Node("Resize", []string{"x", "roi", "noscales", "sizes"}, []string{"corners"}, mode("align_corners", "round_prefer_ceil")...)
	b.Node("Resize", []string{"x", "roi", "s15"}, []string{"torch"}, mode("pytorch_half_pixel", "ceil")...)
	b.Node("Resize", []string{"x", "roi", "shrink"}, []string{"down"}, mode("asymmetric", "floor")...)
	return b.Model([]*onnxpb.ValueInfoProto{graphgen.ValueInfo("x", 2, 3, 5, 4)}, []*onnxpb.ValueInfoProto{
		graphgen.ValueInfo("asym"), graphgen.ValueInfo("half"), graphgen.ValueInfo("corners"), graphgen.ValueInfo("torch"), graphgen.ValueInfo("down")})
}

// upsample9 is an opset-9 Upsample with scales as an input.
func upsample9() *onnxpb.ModelProto {
	b := &graphgen.Builder{}
	b.Inits = append(b.Inits, onnx.Float32Vector("s", []float32{1, 1, 2, 3}))
	b.Node("Upsample", []string{"x", "s"}, []string{"y"}, graphgen.String("mode", "nearest"))
	m := b.Model([]*onnxpb.ValueInfoProto{graphgen.ValueInfo("x", 2, 3, 5, 4)}, []*onnxpb.ValueInfoProto{graphgen.ValueInfo("y")})
	m.OpsetImport[0].Version = proto.Int64(9)
	return m
}

// TestSmallModelsMatchORT compares this engine with ONNX Runtime on the
// tiny YOLO graph (batch 2) and on nearest Resize/Upsample variants.
func TestSmallModelsMatchORT(t *testing.T) {
	requireORT(t)
	rng := rand.New(rand.NewPCG(21, 22))
	for name, c := range map[string]struct {
		m *onnxpb.ModelProto
		x *Tensor
	}{
		"tiny yolo": {tinyYOLO(9), randTensor(rng, 2, 3, 8, 8)},
		"resize":    {resizeVariants(), randTensor(rng, 2, 3, 5, 4)},
		"upsample9": {upsample9(), randTensor(rng, 2, 3, 5, 4)},
	} {
		t.Run(name, func(t *testing.T) {
			path := onnxtest.SaveModel(t, c.m, "model.onnx")
			shape := make([]int64, len(c.x.Shape))
			for i, d := range c.x.Shape {
				shape[i] = int64(d)
			}
			want := onnxtest.RunORT(t, path, []onnxtest.Input{{Name: "x", Shape: shape, Data: c.x.Data}})
			g, err := Build(c.m, Options{})
			if err != nil {
				t.Fatal(err)
			}
			got, err := g.Forward(map[string]*Tensor{"x": c.x})
			if err != nil {
				t.Fatal(err)
			}
			for out, w := range want {
				y := got[out]
				if y == nil || len(y.Data) != len(w) {
					t.Fatalf("%s: got %v, ONNX Runtime has %d values", out, y, len(w))
				}
				for i, v := range w {
					if math.Abs(float64(y.Data[i]-v)) > 1e-5*math.Max(1, math.Abs(float64(v))) {
						t.Fatalf("%s[%d] = %g, ONNX Runtime %g (shape %v)", out, i, y.Data[i], v, y.Shape)
					}
				}
			}
		})
	}
}
