package distill

import (
	"context"
	"fmt"
	"math/rand/v2"

	"google.golang.org/protobuf/proto"

	"github.com/edgedet/edgedet/onnx"
	"github.com/edgedet/edgedet/onnx/onnxpb"
	"github.com/edgedet/edgedet/onnx/onnxtest/graphgen"
)

// newBuilder draws Conv weights in ±2/fan-in, the scale the tests here
// were tuned with.
func newBuilder(seed, stream uint64) *graphgen.Builder {
	b := graphgen.New(seed, stream)
	b.ConvScale = 2
	return b
}

// tinyDetector is a miniature detector on [1,3,8,8] "x": two Conv+SiLU
// blocks c1 → c2, a third c3, and two heads read c3's activation: "h1"
// (4 channels, reshaped to the output "box" [1,4,64]) and "h2" (objCh
// channels, through a Sigmoid to the output "obj").
func tinyDetector(seed uint64, objCh int) *onnxpb.ModelProto {
	b := newBuilder(seed, 7)
	b.Conv("x", "c1", 3, 6, 3, 1, 1)
	b.SiLU("c1", "a1")
	b.Conv("a1", "c2", 6, 6, 3, 1, 1)
	b.SiLU("c2", "a2")
	b.Conv("a2", "c3", 6, 6, 1, 1, 1)
	b.SiLU("c3", "a3")
	b.Conv("a3", "h1", 6, 4, 1, 1, 1)
	b.Inits = append(b.Inits, &onnxpb.TensorProto{Name: proto.String("boxshape"), DataType: proto.Int32(int32(onnxpb.TensorProto_INT64)),
		Dims: []int64{3}, Int64Data: []int64{1, 4, -1}})
	b.Node("Reshape", []string{"h1", "boxshape"}, []string{"box"})
	b.Conv("a3", "h2", 6, objCh, 1, 1, 1)
	b.Node("Sigmoid", []string{"h2"}, []string{"obj"})
	return &onnxpb.ModelProto{
		IrVersion:   proto.Int64(7),
		OpsetImport: []*onnxpb.OperatorSetIdProto{{Version: proto.Int64(13)}},
		Graph: &onnxpb.GraphProto{Name: proto.String("tiny"), Node: b.Nodes, Initializer: b.Inits,
			Input:  []*onnxpb.ValueInfoProto{graphgen.ValueInfo("x", 1, 3, 8, 8)},
			Output: []*onnxpb.ValueInfoProto{graphgen.ValueInfo("box", 1, 4, 64), graphgen.ValueInfo("obj", 1, int64(objCh), 8, 8)}},
	}
}

// pruneOutputs removes output channels drop of Conv conv (rows of its
// weight and bias) and the matching input channels of the Convs reading
// its activation act, as structured pruning does.
func pruneOutputs(m *onnxpb.ModelProto, conv, act string, drop ...int) {
	init := map[string]*onnxpb.TensorProto{}
	for _, t := range m.GetGraph().GetInitializer() {
		init[t.GetName()] = t
	}
	keep := func(i int) bool {
		for _, d := range drop {
			if d == i {
				return false
			}
		}
		return true
	}
	w, b := init[conv+".w"], init[conv+".b"]
	wv, _ := onnx.TensorFloats(w)
	bv, _ := onnx.TensorFloats(b)
	cout, per := int(w.Dims[0]), int(w.Dims[1]*w.Dims[2]*w.Dims[3])
	var nw, nb []float32
	for o := range cout {
		if keep(o) {
			nw = append(nw, wv[o*per:(o+1)*per]...)
			nb = append(nb, bv[o])
		}
	}
	kept := int64(len(nb))
	*w = *onnx.Float32Tensor(w.GetName(), []int64{kept, w.Dims[1], w.Dims[2], w.Dims[3]}, nw)
	*b = *onnx.Float32Vector(b.GetName(), nb)
	for _, n := range m.GetGraph().GetNode() {
		if n.GetOpType() != "Conv" || n.GetInput()[0] != act {
			continue
		}
		c := init[n.GetInput()[1]]
		cv, _ := onnx.TensorFloats(c)
		co, ci, kk := int(c.Dims[0]), int(c.Dims[1]), int(c.Dims[2]*c.Dims[3])
		var nc []float32
		for o := range co {
			for i := range ci {
				if keep(i) {
					nc = append(nc, cv[(o*ci+i)*kk:(o*ci+i+1)*kk]...)
				}
			}
		}
		*c = *onnx.Float32Tensor(c.GetName(), []int64{c.Dims[0], kept, c.Dims[2], c.Dims[3]}, nc)
	}
}

// frames are random inputs of a fixed shape, as onnx.Inputs.
type frames struct {
	data [][]float32
}

func randomFrames(seed uint64, n, size int) *frames {
	rng := rand.New(rand.NewPCG(seed, 3))
	f := &frames{}
	for range n {
		x := make([]float32, size)
		for i := range x {
			x[i] = rng.Float32()*2 - 1
		}
		f.data = append(f.data, x)
	}
	return f
}

func (f *frames) Len() int { return len(f.data) }

func (f *frames) Input(_ context.Context, i int, dst []float32) error {
	if len(dst) != len(f.data[i]) {
		return fmt.Errorf("frame %d has %d values, dst %d", i, len(f.data[i]), len(dst))
	}
	copy(dst, f.data[i])
	return nil
}
