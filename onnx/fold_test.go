package onnx_test

import (
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/edgedet/edgedet/onnx"
	"github.com/edgedet/edgedet/onnx/onnxpb"
	"github.com/edgedet/edgedet/onnx/onnxtest"
)

func attrInts(name string, v ...int64) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_INTS.Enum(), Ints: v}
}

func attrInt(name string, v int64) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_INT.Enum(), I: proto.Int64(v)}
}

func attrFloat(name string, v float32) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_FLOAT.Enum(), F: proto.Float32(v)}
}

func randFloats(rng *rand.Rand, n int, lo, hi float32) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = lo + (hi-lo)*rng.Float32()
	}
	return v
}

// convBNModel builds, with random weights:
//
//	x ─Conv1(no bias)─c1─BN1(ε=1e-3)─n1─Relu─r1─Conv2(group 2)─c2─BN2─n2
//	n2─Conv3(W3,B3)─c3─BN3─y1
//	n2─Conv4(W3,B3)─c4─BN4─n4─Add(n4,c4)─y2
//
// BN1–BN3 fold (Conv3 shares its weight and bias with Conv4, so it gets
// copies); BN4 does not, since Add also reads c4. IR version < 4 lists the
// initializers as graph inputs too, as that IR requires.
func convBNModel(rng *rand.Rand, irVersion, opset int64) *onnxpb.ModelProto {
	var inits []*onnxpb.TensorProto
	w := func(name string, dims ...int64) {
		n := int64(1)
		for _, d := range dims {
			n *= d
		}
		inits = append(inits, onnx.Float32Tensor(name, dims, randFloats(rng, int(n), -0.5, 0.5)))
	}
	bn := func(i string, c int) {
		inits = append(inits,
			onnx.Float32Vector("gamma"+i, randFloats(rng, c, 0.5, 1.5)),
			onnx.Float32Vector("beta"+i, randFloats(rng, c, -0.5, 0.5)),
			onnx.Float32Vector("mean"+i, randFloats(rng, c, -0.5, 0.5)),
			onnx.Float32Vector("var"+i, randFloats(rng, c, 0.2, 2)))
	}
	bnIn := func(x, i string) []string { return []string{x, "gamma" + i, "beta" + i, "mean" + i, "var" + i} }
	w("W1", 4, 3, 3, 3)
	bn("1", 4)
	w("W2", 4, 2, 3, 3)
	w("B2", 4)
	bn("2", 4)
	w("W3", 4, 4, 1, 1)
	w("B3", 4)
	bn("3", 4)
	bn("4", 4)
	// Float data in float_data rather than raw_data must work too.
	for _, t := range inits {
		if t.GetName() == "mean2" {
			v, _ := onnx.TensorFloats(t)
			t.RawData, t.FloatData = nil, v
		}
	}
	pads := attrInts("pads", 1, 1, 1, 1)
	gp := &onnxpb.GraphProto{
		Name: proto.String("conv_bn"),
		Node: []*onnxpb.NodeProto{
			node("conv1", "Conv", []string{"x", "W1"}, []string{"c1"}, pads, attrInts("kernel_shape", 3, 3)),
			node("bn1", "BatchNormalization", bnIn("c1", "1"), []string{"n1"}, attrFloat("epsilon", 1e-3)),
			node("relu", "Relu", []string{"n1"}, []string{"r1"}),
			node("conv2", "Conv", []string{"r1", "W2", "B2"}, []string{"c2"}, pads, attrInt("group", 2)),
			node("bn2", "BatchNormalization", bnIn("c2", "2"), []string{"n2"}),
			node("conv3", "Conv", []string{"n2", "W3", "B3"}, []string{"c3"}),
			node("bn3", "BatchNormalization", bnIn("c3", "3"), []string{"y1"}),
			node("conv4", "Conv", []string{"n2", "W3", "B3"}, []string{"c4"}),
			node("bn4", "BatchNormalization", bnIn("c4", "4"), []string{"n4"}),
			node("add", "Add", []string{"n4", "c4"}, []string{"y2"}),
		},
		Initializer: inits,
		Input:       []*onnxpb.ValueInfoProto{valueInfo("x", 1, 3, 8, 8)},
		Output:      []*onnxpb.ValueInfoProto{valueInfo("y1", 1, 4, 8, 8), valueInfo("y2", 1, 4, 8, 8)},
		ValueInfo:   []*onnxpb.ValueInfoProto{valueInfo("c1", 1, 4, 8, 8), valueInfo("n1", 1, 4, 8, 8)},
	}
	if irVersion < 4 {
		for _, t := range inits {
			gp.Input = append(gp.Input, valueInfo(t.GetName(), t.GetDims()...))
		}
	}
	return &onnxpb.ModelProto{
		IrVersion:    proto.Int64(irVersion),
		ProducerName: proto.String("edgedet quant test"),
		OpsetImport:  []*onnxpb.OperatorSetIdProto{{Version: proto.Int64(opset)}},
		Graph:        gp,
	}
}

func countOp(m *onnxpb.ModelProto, op string) int {
	n := 0
	for _, nd := range m.GetGraph().GetNode() {
		if nd.GetOpType() == op {
			n++
		}
	}
	return n
}

func TestFoldBatchNormRunsSame(t *testing.T) {
	for _, tc := range []struct {
		name      string
		ir, opset int64
	}{
		{"ir8_opset15", 8, 15},
		{"ir3_opset8", 3, 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, uint64(tc.ir)))
			m := convBNModel(rng, tc.ir, tc.opset)
			in := []onnxtest.Input{{Name: "x", Shape: []int64{1, 3, 8, 8}, Data: randFloats(rng, 3*8*8, -1, 1)}}
			want := onnxtest.RunORT(t, onnxtest.SaveModel(t, m, "before.onnx"), in)

			folded, err := onnx.FoldBatchNorm(m)
			if err != nil {
				t.Fatal(err)
			}
			if folded != 3 {
				t.Errorf("folded %d, want 3", folded)
			}
			if n := countOp(m, "BatchNormalization"); n != 1 || onnxtest.NodeByName(m, "bn4") == nil {
				t.Errorf("%d BatchNormalization nodes left, want only bn4", n)
			}
			g := onnx.NewGraph(m)
			for conv, out := range map[string]string{"conv1": "n1", "conv2": "n2", "conv3": "y1", "conv4": "c4"} {
				if got := g.Producer(out); got == nil || got.GetName() != conv {
					t.Errorf("%s is produced by %v, want %s", out, got.GetName(), conv)
				}
			}
			conv1, conv3, conv4 := onnxtest.NodeByName(m, "conv1"), onnxtest.NodeByName(m, "conv3"), onnxtest.NodeByName(m, "conv4")
			if len(conv1.GetInput()) != 3 || g.Initializer(conv1.GetInput()[2]) == nil {
				t.Errorf("conv1 inputs %v: want a created bias initializer", conv1.GetInput())
			}
			if in := conv3.GetInput(); in[1] == "W3" || in[2] == "B3" {
				t.Errorf("conv3 inputs %v: the shared W3/B3 must not be folded in place", in)
			}
			if in := conv4.GetInput(); in[1] != "W3" || in[2] != "B3" {
				t.Errorf("conv4 inputs %v, want W3, B3 untouched", in)
			}
			for _, name := range []string{"gamma1", "var2", "mean3"} {
				if g.Initializer(name) != nil || g.IsInput(name) {
					t.Errorf("initializer %s of a folded BN is still there", name)
				}
			}
			for _, name := range []string{"gamma4", "W3", "B3"} {
				if g.Initializer(name) == nil {
					t.Errorf("initializer %s, still used, was removed", name)
				}
			}
			if g.ValueInfo("c1") != nil || g.ValueInfo("n1") == nil {
				t.Error("value_info of the vanished c1 should go, n1's should stay")
			}
			if tc.ir < 4 {
				for _, init := range m.GetGraph().GetInitializer() {
					if !g.IsInput(init.GetName()) {
						t.Errorf("IR %d: initializer %s is not a graph input", tc.ir, init.GetName())
					}
				}
				if n := len(m.GetGraph().GetInput()); n != len(m.GetGraph().GetInitializer())+1 {
					t.Errorf("IR %d: %d inputs for %d initializers", tc.ir, n, len(m.GetGraph().GetInitializer()))
				}
			}
			if _, err := g.TopoSort(); err != nil {
				t.Fatal(err)
			}
			got := onnxtest.RunORT(t, onnxtest.SaveModel(t, m, "after.onnx"), in)
			onnxtest.CompareOutputs(t, got, want, 1e-4)

			// Folding again finds nothing more.
			if n, err := onnx.FoldBatchNorm(m); n != 0 || err != nil {
				t.Errorf("second FoldBatchNorm = %d, %v; want 0, nil", n, err)
			}
		})
	}
}

// Pairs that must not fold are left alone; the others still fold.
func TestFoldBatchNormSkips(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(m *onnxpb.ModelProto)
	}{
		{"conv output is a graph output", func(m *onnxpb.ModelProto) {
			m.Graph.Output = append(m.Graph.Output, valueInfo("c1"))
		}},
		{"training outputs", func(m *onnxpb.ModelProto) {
			bn := onnxtest.NodeByName(m, "bn1")
			bn.Output = append(bn.Output, "running_mean", "running_var")
		}},
		{"training_mode", func(m *onnxpb.ModelProto) {
			bn := onnxtest.NodeByName(m, "bn1")
			bn.Attribute = append(bn.Attribute, attrInt("training_mode", 1))
		}},
		{"other domain", func(m *onnxpb.ModelProto) { onnxtest.NodeByName(m, "bn1").Domain = proto.String("com.example") }},
		{"param is a graph input", func(m *onnxpb.ModelProto) {
			gp := m.Graph
			gp.Initializer = slices.DeleteFunc(gp.Initializer, func(t *onnxpb.TensorProto) bool { return t.GetName() == "gamma1" })
			gp.Input = append(gp.Input, valueInfo("gamma1", 4))
		}},
		{"weight not FLOAT", func(m *onnxpb.ModelProto) {
			for _, t := range m.Graph.Initializer {
				if t.GetName() == "W1" {
					t.DataType = proto.Int32(int32(onnxpb.TensorProto_FLOAT16))
				}
			}
		}},
		{"param of the wrong size", func(m *onnxpb.ModelProto) {
			for i, t := range m.Graph.Initializer {
				if t.GetName() == "var1" {
					m.Graph.Initializer[i] = onnx.Float32Vector("var1", []float32{1, 1, 1})
				}
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := convBNModel(rand.New(rand.NewPCG(2, 2)), 8, 15)
			tc.mutate(m)
			folded, err := onnx.FoldBatchNorm(m)
			if err != nil {
				t.Fatal(err)
			}
			if folded != 2 || onnxtest.NodeByName(m, "bn1") == nil || onnxtest.NodeByName(m, "bn4") == nil {
				t.Errorf("folded %d (bn1 kept: %v), want 2 with bn1 and bn4 kept", folded, onnxtest.NodeByName(m, "bn1") != nil)
			}
			if got := onnxtest.NodeByName(m, "conv1").GetOutput()[0]; got != "c1" {
				t.Errorf("conv1 now outputs %q, want c1", got)
			}
		})
	}
}

// Corrupt data in a matching pair is an error, and the model is unchanged.
func TestFoldBatchNormErrorLeavesModel(t *testing.T) {
	m := convBNModel(rand.New(rand.NewPCG(3, 3)), 8, 15)
	for _, t := range m.Graph.Initializer {
		if t.GetName() == "beta3" {
			t.RawData = t.RawData[:len(t.RawData)-1]
		}
	}
	before := proto.Clone(m)
	n, err := onnx.FoldBatchNorm(m)
	if err == nil || !strings.Contains(err.Error(), `"beta3"`) {
		t.Errorf("FoldBatchNorm = %d, %v; want an error naming beta3", n, err)
	}
	if !proto.Equal(m, before) {
		t.Error("FoldBatchNorm changed the model although it failed")
	}
}

// The shared models: count their BatchNormalization nodes and fold them.
// Folding must not change what ONNX Runtime computes for yolox_nano_416.
func TestFoldBatchNormSharedModels(t *testing.T) {
	for _, path := range onnxtest.SharedModels(t) {
		m := onnxtest.LoadModel(t, path)
		before := proto.Clone(m)
		bns := countOp(m, "BatchNormalization")
		folded, err := onnx.FoldBatchNorm(m)
		if err != nil {
			t.Errorf("%s: %v", filepath.Base(path), err)
			continue
		}
		t.Logf("%s: %d BatchNormalization nodes, %d folded", filepath.Base(path), bns, folded)
		if folded > bns || countOp(m, "BatchNormalization") != bns-folded {
			t.Errorf("%s: folded %d of %d, %d left", filepath.Base(path), folded, bns, countOp(m, "BatchNormalization"))
		}
		if folded == 0 && !proto.Equal(m, before) {
			t.Errorf("%s: nothing folded but the model changed", filepath.Base(path))
		}
	}

	path := filepathShared(t, "yolox_nano_416.onnx")
	m := onnxtest.LoadModel(t, path)
	if _, err := onnx.FoldBatchNorm(m); err != nil {
		t.Fatal(err)
	}
	in := []onnxtest.Input{{Name: "images", Shape: []int64{1, 3, 416, 416}, Data: randFloats(rand.New(rand.NewPCG(4, 4)), 3*416*416, 0, 255)}}
	onnxtest.CompareOutputs(t, onnxtest.RunORT(t, onnxtest.SaveModel(t, m, "folded.onnx"), in), onnxtest.RunORT(t, path, in), 1e-3)
}

func filepathShared(t testing.TB, name string) string {
	t.Helper()
	for _, p := range onnxtest.SharedModels(t) {
		if filepath.Base(p) == name {
			return p
		}
	}
	t.Fatalf("shared model %s missing", name)
	return ""
}

// yolox_nano_416 was exported with its BatchNorms already fused. Put a
// random BatchNormalization back after every Conv, then fold
// them all again: ONNX Runtime must compute the same on a real model.
func TestFoldBatchNormReinsertedYOLOX(t *testing.T) {
	m := onnxtest.LoadModel(t, filepathShared(t, "yolox_nano_416.onnx"))
	rng := rand.New(rand.NewPCG(5, 5))
	g := onnx.NewGraph(m)
	gp := m.GetGraph()
	var nodes []*onnxpb.NodeProto
	inserted := 0
	for _, n := range gp.GetNode() {
		nodes = append(nodes, n)
		if n.GetOpType() != "Conv" {
			continue
		}
		// The BN takes over the Conv's output name, so every reader of it
		// (SiLU's Sigmoid and Mul both do) now reads the BN.
		c := int(g.Initializer(n.GetInput()[1]).GetDims()[0])
		x := n.GetOutput()[0]
		pre := x + "_prebn"
		p := func(s string) string { return x + "_bn_" + s }
		gp.Initializer = append(gp.Initializer,
			onnx.Float32Vector(p("gamma"), randFloats(rng, c, 0.9, 1.1)),
			onnx.Float32Vector(p("beta"), randFloats(rng, c, -0.05, 0.05)),
			onnx.Float32Vector(p("mean"), randFloats(rng, c, -0.05, 0.05)),
			onnx.Float32Vector(p("var"), randFloats(rng, c, 0.9, 1.1)))
		n.Output[0] = pre
		nodes = append(nodes, node(x+"_bn", "BatchNormalization",
			[]string{pre, p("gamma"), p("beta"), p("mean"), p("var")}, []string{x}))
		inserted++
	}
	gp.Node = nodes
	if inserted == 0 {
		t.Fatal("no Conv in yolox_nano_416 to put a BatchNormalization after")
	}
	in := []onnxtest.Input{{Name: "images", Shape: []int64{1, 3, 416, 416}, Data: randFloats(rng, 3*416*416, 0, 255)}}
	want := onnxtest.RunORT(t, onnxtest.SaveModel(t, m, "with_bn.onnx"), in)

	folded, err := onnx.FoldBatchNorm(m)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("inserted %d BatchNormalization nodes, folded %d", inserted, folded)
	if folded != inserted || countOp(m, "BatchNormalization") != 0 {
		t.Errorf("folded %d of %d inserted, %d left", folded, inserted, countOp(m, "BatchNormalization"))
	}
	if len(gp.GetInitializer()) != len(onnxtest.LoadModel(t, filepathShared(t, "yolox_nano_416.onnx")).GetGraph().GetInitializer()) {
		t.Error("the inserted BatchNorm parameters were not all removed")
	}
	onnxtest.CompareOutputs(t, onnxtest.RunORT(t, onnxtest.SaveModel(t, m, "refolded.onnx"), in), want, 1e-3)
}
