package train

import (
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/edgedet/edgedet/onnx/onnxpb"
)

// FuzzMalformedGraph edits one node of the tiny YOLO graph (an attribute's
// value, or one input renamed to another tensor of the graph) and the input
// shape: Build and Forward must return an error or a result, never panic.
func FuzzMalformedGraph(f *testing.F) {
	f.Add(uint8(0), uint8(0), int64(0), uint8(0), uint8(0), uint8(8))
	f.Add(uint8(4), uint8(1), int64(-3), uint8(2), uint8(5), uint8(7))
	f.Add(uint8(13), uint8(0), int64(7), uint8(1), uint8(9), uint8(1))
	f.Add(uint8(19), uint8(0), int64(5), uint8(0), uint8(30), uint8(3))
	f.Fuzz(func(t *testing.T, nodeIdx, attrIdx uint8, value int64, inputIdx, renameTo, size uint8) {
		m := tinyYOLO(1)
		nodes := m.GetGraph().GetNode()
		n := nodes[int(nodeIdx)%len(nodes)]
		if attrs := n.GetAttribute(); len(attrs) > 0 {
			a := attrs[int(attrIdx)%len(attrs)]
			if len(a.Ints) > 0 {
				a.Ints[int(attrIdx)%len(a.Ints)] = value
			} else if a.I != nil {
				a.I = proto.Int64(value)
			}
		}
		if renameTo%4 == 0 && len(n.Input) > 0 {
			var names []string
			for _, other := range nodes {
				names = append(names, other.GetOutput()...)
			}
			for _, init := range m.GetGraph().GetInitializer() {
				names = append(names, init.GetName())
			}
			n.Input[int(inputIdx)%len(n.Input)] = names[int(renameTo)%len(names)]
		}
		g, err := Build(m, Options{})
		if err != nil {
			return
		}
		s := 1 + int(size)%12
		outs, tape, err := g.ForwardTrain(map[string]*Tensor{"x": NewTensor(1, 3, s, s)})
		if err != nil {
			return
		}
		grads := map[string]*Tensor{}
		for name, y := range outs {
			grads[name] = NewTensor(y.Shape...)
		}
		_ = tape.Backward(grads)
		_ = onnxpb.TensorProto{}
	})
}
