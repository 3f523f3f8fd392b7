package quant

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/edgedet/edgedet/onnx"
	"github.com/edgedet/edgedet/onnx/onnxpb"
)

// failingInputs fails every read: for the stages after the sensitivity
// frames are cached.
type failingInputs struct{ n int }

func (f failingInputs) Len() int { return f.n }

func (failingInputs) Input(context.Context, int, []float32) error {
	return errors.New("frame unreadable")
}

// narrowEntryChain is a chain of eight 1×1 Convs on two channels that
// pass x through, mixing its channels a little, for inputs whose second
// channel is 1000 times narrower than the first: conv0 widens it back
// (its weight row [1, 100] loses precision as int8) and narrows its own
// second output channel by 30, which conv1 undoes. Quantizing x loses its
// narrow channel, quantizing t0 coarsens one, quantizing t1 costs little.
func narrowEntryChain() *onnxpb.ModelProto {
	var nodes []*onnxpb.NodeProto
	var inits []*onnxpb.TensorProto
	in := "x"
	for i := range 8 {
		w := []float32{1, 0.1, 0.1, 1} // [out, in]
		switch i {
		case 0:
			w = []float32{1, 100, 0.1 / 30, 100.0 / 30}
		case 1:
			w[1], w[3] = w[1]*30, w[3]*30
		}
		out := fmt.Sprint("t", i)
		if i == 7 {
			out = "y"
		}
		name := fmt.Sprint("W", i)
		inits = append(inits, onnx.Float32Tensor(name, []int64{2, 2, 1, 1}, w))
		nodes = append(nodes, qtNode(fmt.Sprint("conv", i), "Conv", []string{in, name}, []string{out}))
		in = out
	}
	return qtModel(nodes, inits, qtValueInfo("x", 1, 2, 4, 4), qtValueInfo("y", 1, 2, 4, 4))
}

// scaledInputs are inputs with each channel scaled by its factor.
type scaledInputs struct {
	onnx.Inputs
	scale []float32
}

func (s scaledInputs) Input(ctx context.Context, i int, dst []float32) error {
	if err := s.Inputs.Input(ctx, i, dst); err != nil {
		return err
	}
	plane := len(dst) / len(s.scale)
	for j := range dst {
		dst[j] *= s.scale[j/plane]
	}
	return nil
}

// entryRegionSetup is narrowEntryChain prepared and calibrated on its
// inputs, with its sensitivity measure and the all-INT8 error in the
// report, as chooseFloat leaves them.
func entryRegionSetup(t *testing.T) (*quantizer, *sensitivity, []LayerReport) {
	t.Helper()
	z := calibratedQuantizer(t, narrowEntryChain(), scaledInputs{randomInputs{n: 8, seed: 5}, []float32{1, 1e-3}})
	ctx := context.Background()
	s, err := newSensitivity(ctx, z.p, z.inName, z.inShape, z.inputs, z.opt)
	if err != nil {
		t.Fatal(err)
	}
	all, _ := z.plan(nil)
	if z.rep.ErrorAll, err = s.errorOf(ctx, all); err != nil {
		t.Fatal(err)
	}
	layers := make([]LayerReport, len(z.p.candidates))
	for i, n := range z.p.candidates {
		layers[i] = LayerReport{Node: n.GetName(), Op: n.GetOpType(), Damage: -1}
	}
	return z, s, layers
}

// TestEntryRegionReasons: the entry region of narrowEntryChain ends after
// conv1 (x and t0 have narrow channels); its layers are float with a reason
// quoting the region's error and the all-INT8 one, except an excluded
// layer (always float), which keeps its own.
func TestEntryRegionReasons(t *testing.T) {
	for _, excluded := range []string{"", "conv0"} {
		z, s, layers := entryRegionSetup(t)
		if excluded != "" {
			z.p.excluded[excluded] = true
		}
		f, e, err := z.entryRegion(context.Background(), s, layers)
		if err != nil {
			t.Fatal(err)
		}
		errs := z.rep.EntryErrors
		if len(errs) != 3 || errs[0] != z.rep.ErrorAll || !(errs[0] > errs[1] && errs[1] > errs[2]+entryNoise) || z.rep.EntryLayers != 2 || e != errs[2] {
			t.Fatalf("excluded %q: entry errors %v, %d layers, error %g; want 3 falling errors from %g, the last alone small, 2 layers", excluded, errs, z.rep.EntryLayers, e, z.rep.ErrorAll)
		}
		if len(f) != 2 || !f["conv0"] || !f["conv1"] || len(z.entry) != 2 || !z.entry["conv0"] || !z.entry["conv1"] {
			t.Errorf("excluded %q: float %v, entry %v; want conv0 and conv1", excluded, f, z.entry)
		}
		want := fmt.Sprintf("entry region: the first 2 layers float give output error %.4f (all INT8: %.4f); the crossing into INT8 after them leaves every channel at least 4.5 bits", errs[2], errs[0])
		for _, l := range layers {
			switch {
			case (l.Node == "conv0" || l.Node == "conv1") && l.Node != excluded:
				if !l.Float || l.Reason != want {
					t.Errorf("excluded %q: %s: float %t reason %q, want %q", excluded, l.Node, l.Float, l.Reason, want)
				}
			case l.Float || l.Reason != "":
				t.Errorf("excluded %q: %s: float %t reason %q, want quantized without a reason", excluded, l.Node, l.Float, l.Reason)
			}
		}
	}
}

// TestEntryRegionInputError: when the channel ranges of the crossings
// cannot be measured, the entry region fails with the input's error.
func TestEntryRegionInputError(t *testing.T) {
	z, s, layers := entryRegionSetup(t)
	z.inputs = failingInputs{n: 8}
	_, _, err := z.entryRegion(context.Background(), s, layers)
	if err == nil || !strings.Contains(err.Error(), "entry region") || !strings.Contains(err.Error(), "frame unreadable") {
		t.Errorf("err %v, want the entry region's input error", err)
	}
	if z.rep.EntryErrors != nil || z.entry != nil {
		t.Errorf("a failed entry region left errors %v and entry %v in the report", z.rep.EntryErrors, z.entry)
	}
}
