package distill

import (
	"fmt"
	"slices"

	"github.com/edgedet/edgedet/train"
)

// channelWeights weigh each channel (index on the last axis) of each
// matched tensor.
type channelWeights map[string][]float64

// channelVarianceWeights gives channel c of each named tensor the weight
// 1/(K·variance of the channel in tv), K the number of channels of all
// tensors together: every channel counts the same, whatever its scale
// (box coordinates in pixels next to class probabilities). A channel whose
// variance is below a thousandth of the tensor's mean channel variance
// counts as having the mean, and a tensor constant on the batch weighs 1/K
// per channel. The last axis is
// the channel axis of YOLO's [N, anchors, 4+1+classes] outputs.
func channelVarianceWeights(tv map[string]*train.Tensor, names []string) channelWeights {
	k := 0
	for _, n := range names {
		k += lastDim(tv[n])
	}
	w := channelWeights{}
	for _, n := range names {
		t := tv[n]
		c := lastDim(t)
		vals := make([]float32, 0, len(t.Data)/max(c, 1))
		vars := make([]float64, c)
		var mean float64
		for ch := range c {
			vals = vals[:0]
			for i := ch; i < len(t.Data); i += c {
				vals = append(vals, t.Data[i])
			}
			vars[ch] = variance(vals)
			mean += vars[ch] / float64(c)
		}
		w[n] = make([]float64, c)
		for ch, v := range vars {
			// A channel almost constant on the batch must not dominate.
			if v < 1e-3*mean {
				v = mean
			}
			if v < 1e-12 {
				v = 1
			}
			w[n][ch] = 1 / (float64(k) * v)
		}
	}
	return w
}

func lastDim(t *train.Tensor) int {
	if len(t.Shape) == 0 {
		return 1
	}
	return t.Shape[len(t.Shape)-1]
}

// channelMSE is Σ over tensors and channels of weight × mean squared error
// of the channel, and its gradients.
func channelMSE(got, want map[string]*train.Tensor, w channelWeights) (float64, map[string]*train.Tensor, error) {
	var loss float64
	grads := map[string]*train.Tensor{}
	for name, cw := range w {
		y, t := got[name], want[name]
		if y == nil || t == nil || !slices.Equal(y.Shape, t.Shape) || lastDim(y) != len(cw) {
			return 0, nil, fmt.Errorf("match %q: student and teacher tensors differ or are missing", name)
		}
		c := len(cw)
		per := float64(len(y.Data) / c)
		g := train.NewTensor(y.Shape...)
		for i, v := range y.Data {
			d := float64(v) - float64(t.Data[i])
			wc := cw[i%c]
			loss += wc * d * d / per
			g.Data[i] = float32(2 * wc * d / per)
		}
		grads[name] = g
	}
	return loss, grads, nil
}
