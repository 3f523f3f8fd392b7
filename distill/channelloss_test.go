package distill

import (
	"context"
	"math"
	"testing"

	"github.com/edgedet/edgedet/train"
)

// TestChannelLoss: each channel of the last axis is weighed by the
// inverse of its variance (a constant channel by the mean's), all channels of all
// tensors sharing one unit of weight; the gradient is the loss's.
func TestChannelLoss(t *testing.T) {
	teacher, _ := train.FromData([]float32{1, 0, 5, 3, 4, 5}, 2, 3) // channels {1,3} {0,4} {5,5}
	w := channelVarianceWeights(map[string]*train.Tensor{"y": teacher}, []string{"y"})
	want := []float64{1.0 / 3, 1.0 / 12, 1.0 / 5} // mean variance 5/3
	for c, v := range want {
		if math.Abs(w["y"][c]-v) > 1e-12 {
			t.Errorf("weight of channel %d is %g, want %g", c, w["y"][c], v)
		}
	}
	student, _ := train.FromData([]float32{2, 0, 5, 3, 6, 3}, 2, 3) // off by 1, 2 and 2
	loss, grads, err := channelMSE(map[string]*train.Tensor{"y": student}, map[string]*train.Tensor{"y": teacher}, w)
	if err != nil {
		t.Fatal(err)
	}
	// channel 0: mean (1+0)/2 · 1/3; channel 1: (0+4)/2 · 1/12; channel 2: (0+4)/2 · 1/5
	if wantLoss := 0.5/3 + 2.0/12 + 2.0/5; math.Abs(loss-wantLoss) > 1e-12 {
		t.Errorf("loss %g, want %g", loss, wantLoss)
	}
	wantGrad := []float32{2 * 1 / 3.0 / 2, 0, 0, 0, 2 * 2 / 12.0 / 2, 2 * -2 / 5.0 / 2}
	for i, g := range grads["y"].Data {
		if math.Abs(float64(g-wantGrad[i])) > 1e-6 {
			t.Errorf("grad[%d] = %g, want %g", i, g, wantGrad[i])
		}
	}
	if _, _, err := channelMSE(map[string]*train.Tensor{}, map[string]*train.Tensor{"y": teacher}, w); err == nil {
		t.Error("missing student tensor accepted")
	}
}

// TestMatchOutputsLearnsTeacher: matching the graph outputs instead of the
// heads also brings a perturbed student to its teacher.
func TestMatchOutputsLearnsTeacher(t *testing.T) {
	teacher := tinyDetector(1, 2)
	student := perturbed(tinyDetector(1, 2), 0.3, 9)
	fresh := randomFrames(77, 8, frameSize)
	before, _ := maxOutputGap(t, teacher, student, fresh)
	out, rep, err := Distill(context.Background(), teacher, student, randomFrames(1, 32, frameSize),
		Options{Steps: 200, Batch: 8, LR: 0.01, NoAugment: true, MatchOutputs: true})
	if err != nil {
		t.Fatal(err)
	}
	after, _ := maxOutputGap(t, teacher, out, fresh)
	ph := rep.Phases[0]
	t.Logf("loss %.3g → %.3g; output gap %.3g → %.3g", ph.FirstLoss, ph.LastLoss, before, after)
	if ph.LastLoss > 0.01*ph.FirstLoss || after > before/5 {
		t.Errorf("loss %g → %g, output gap %g → %g: the student did not learn the outputs", ph.FirstLoss, ph.LastLoss, before, after)
	}
}
