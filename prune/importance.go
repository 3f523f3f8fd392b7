package prune

import (
	"fmt"
	"io"
	"math"
	"text/tabwriter"

	"github.com/edgedet/edgedet/onnx"
)

// Importance returns one score per channel of group g: the norm of each
// producing Conv's filter for that channel (its weights along the output
// channel), summed over the producers. norm is "l1" (sum of absolute
// values) or "l2" (Euclidean norm).
//
// When a BatchNormalization directly follows a producer (not folded), that
// producer's norm is multiplied by the channel's |γ|/sqrt(var+ε): the
// filter norm the Conv would have after onnx.FoldBatchNorm, so a model
// ranks its channels the same whether its BatchNormalization is folded or
// not. (The BN shift does not enter: like the Conv bias, it is not part
// of the filter.)
//
// It reads the weights of the analysed model as they are now.
func (a *Analysis) Importance(g int, norm string) ([]float64, error) {
	if g < 0 || g >= len(a.Groups) {
		return nil, fmt.Errorf("importance: no group %d (have %d)", g, len(a.Groups))
	}
	if norm != "l1" && norm != "l2" {
		return nil, fmt.Errorf("importance: norm %q is not l1 or l2", norm)
	}
	graph := onnx.NewGraph(a.model)
	nodes := a.model.GetGraph().GetNode()
	c := a.Groups[g].Channels
	score := make([]float64, c)
	for _, p := range a.plans[g].producers {
		if p.node >= len(nodes) {
			return nil, fmt.Errorf("importance: group %d: model changed since analysis", g)
		}
		conv := nodes[p.node]
		wt := graph.Initializer(conv.GetInput()[1])
		if wt == nil {
			return nil, fmt.Errorf("importance: Conv %s: weight %q is gone", nodeLabel(conv, p.node), conv.GetInput()[1])
		}
		w, err := onnx.TensorFloats(wt)
		if err != nil {
			return nil, fmt.Errorf("importance: Conv %s: %w", nodeLabel(conv, p.node), err)
		}
		if len(wt.GetDims()) == 0 || wt.GetDims()[0] != int64(c) || len(w)%c != 0 {
			return nil, fmt.Errorf("importance: Conv %s: weight %q has dims %v, want %d output channels", nodeLabel(conv, p.node), wt.GetName(), wt.GetDims(), c)
		}
		scale, err := bnScale(a, graph, p.bn, c)
		if err != nil {
			return nil, fmt.Errorf("importance: %w", err)
		}
		per := len(w) / c
		for o := 0; o < c; o++ {
			var s float64
			for _, v := range w[o*per : (o+1)*per] {
				if norm == "l1" {
					s += math.Abs(float64(v))
				} else {
					s += float64(v) * float64(v)
				}
			}
			if norm == "l2" {
				s = math.Sqrt(s)
			}
			if scale != nil {
				s *= scale[o]
			}
			score[o] += s
		}
	}
	return score, nil
}

// bnScale is |γ|/sqrt(var+ε) of BatchNormalization node bn, or nil when
// bn < 0.
func bnScale(a *Analysis, graph *onnx.Graph, bn, c int) ([]float64, error) {
	if bn < 0 {
		return nil, nil
	}
	n := a.model.GetGraph().GetNode()[bn]
	eps := 1e-5
	for _, at := range n.GetAttribute() {
		if at.GetName() == "epsilon" {
			eps = float64(at.GetF())
		}
	}
	var p [2][]float32
	for k, input := range []int{1, 4} { // scale, var
		name := n.GetInput()[input]
		t := graph.Initializer(name)
		if t == nil {
			return nil, fmt.Errorf("BatchNormalization %s: parameter %q is gone", nodeLabel(n, bn), name)
		}
		v, err := onnx.TensorFloats(t)
		if err != nil {
			return nil, fmt.Errorf("BatchNormalization %s: %w", nodeLabel(n, bn), err)
		}
		if len(v) != c {
			return nil, fmt.Errorf("BatchNormalization %s: parameter %q has %d values, want %d", nodeLabel(n, bn), name, len(v), c)
		}
		p[k] = v
	}
	s := make([]float64, c)
	for i := range s {
		s[i] = math.Abs(float64(p[0][i])) / math.Sqrt(float64(p[1][i])+eps)
	}
	return s, nil
}

// Table writes the groups as an aligned table: ID, channels, the first
// producer (and how many more), how many Convs consume the group, and
// "prunable" or the reason it is blocked; then a summary line.
func (a *Analysis) Table(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tCH\tPRODUCERS\tCONSUMERS\tSTATUS")
	prunable, channels := 0, 0
	for _, g := range a.Groups {
		prod := firstOf(g.Producers)
		if len(g.Producers) > 1 {
			prod = fmt.Sprintf("%s (+%d more)", prod, len(g.Producers)-1)
		}
		status := "prunable"
		if !g.Prunable {
			status = "blocked: " + g.Reason
		} else {
			prunable++
			channels += g.Channels
		}
		fmt.Fprintf(tw, "%d\t%d\t%s\t%d\t%s\n", g.ID, g.Channels, prod, len(g.Consumers), status)
	}
	tw.Flush()
	fmt.Fprintf(w, "%d groups: %d prunable (%d channels), %d blocked\n", len(a.Groups), prunable, channels, len(a.Groups)-prunable)
}
