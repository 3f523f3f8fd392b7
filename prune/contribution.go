package prune

import (
	"fmt"

	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/gonum/stat"

	"github.com/edgedet/edgedet/onnx"
	"github.com/edgedet/edgedet/onnx/onnxpb"
)

// Contribution ranks the channels of group g by what they add to the
// outputs of the convolutions that read them, measured on calibration
// activations (samples of those consumers, from CollectConvSamples on the
// unpruned model m): for channel c the variance of W_c·x_c summed over the
// consumers' outputs, divided by the variance of those outputs. The
// channel's mean is left out, as the reconstruction's bias takes it over.
// Unlike a filter norm this sees a channel whose filter is small but whose
// activations are large (BatchNormalization folded into the weights), and
// the values of different groups are comparable: the share of their
// consumers' output variance each channel carries alone (channels are
// correlated, so a group's shares can sum to more than 1).
func (a *Analysis) Contribution(m *onnxpb.ModelProto, g int, samples map[string]*ConvSamples) ([]float64, error) {
	if g < 0 || g >= len(a.Groups) {
		return nil, fmt.Errorf("contribution: no group %d", g)
	}
	n := a.Groups[g].Channels
	all := make([]int, n)
	for i := range all {
		all[i] = i
	}
	cols, err := a.RemovedInputs(map[int][]int{g: all})
	if err != nil {
		return nil, err
	}
	graph := onnx.NewGraph(m)
	out := make([]float64, n)
	for conv, idx := range cols {
		s := samples[conv]
		if s == nil {
			return nil, fmt.Errorf("contribution of group %d: no samples of consumer %s", g, conv)
		}
		node := nodeByName(m, conv)
		if node == nil || len(node.GetInput()) < 2 {
			return nil, fmt.Errorf("contribution of group %d: consumer %s not in the model", g, conv)
		}
		w, err := onnx.TensorFloats(graph.Initializer(node.GetInput()[1]))
		if err != nil {
			return nil, fmt.Errorf("contribution of group %d: weights of %s: %w", g, conv, err)
		}
		rows, cout := s.Y.Dims()
		k := s.Kh * s.Kw
		if len(w) != cout*s.Cin*k || len(idx)%n != 0 {
			return nil, fmt.Errorf("contribution of group %d: consumer %s does not match its samples", g, conv)
		}
		var total float64 // the consumer's output variance
		for o := range cout {
			total += stat.Variance(mat.Col(nil, o, s.Y), nil)
		}
		if total == 0 || rows < 2 {
			continue
		}
		cov := mat.NewSymDense(k, nil)
		wc := mat.NewDense(cout, k, nil)
		block := mat.NewDense(rows, k, nil)
		var tmp mat.Dense
		for j, col := range idx { // the group's channels, in order, block after block
			c := j % n
			for r := range rows {
				copy(block.RawRowView(r), s.X.RawRowView(r)[col*k:(col+1)*k])
			}
			stat.CovarianceMatrix(cov, block, nil)
			for o := range cout {
				row := wc.RawRowView(o)
				for t, v := range w[(o*s.Cin+col)*k : (o*s.Cin+col+1)*k] {
					row[t] = float64(v)
				}
			}
			// Σ_o w_o Σ w_oᵀ = trace(W Σ Wᵀ): the variance the channel adds.
			tmp.Mul(wc, cov)
			var v float64
			for o := range cout {
				v += mat.Dot(tmp.RowView(o), wc.RowView(o))
			}
			out[c] += v / total
		}
	}
	return out, nil
}

func nodeByName(m *onnxpb.ModelProto, name string) *onnxpb.NodeProto {
	for i, nd := range m.GetGraph().GetNode() {
		if nodeName(nd, i) == name {
			return nd
		}
	}
	return nil
}
