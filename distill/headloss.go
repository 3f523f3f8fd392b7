package distill

import (
	"fmt"
	"math"
	"slices"

	"github.com/edgedet/edgedet/onnx"
	"github.com/edgedet/edgedet/onnx/onnxpb"
	"github.com/edgedet/edgedet/train"
)

// Head-loss kinds, Options.HeadLoss.
const (
	// HeadLossDetection matches the logits a Sigmoid reads in probability
	// space and weighs the other heads by the teacher's confidence.
	HeadLossDetection = "detection"
	// HeadLossMSE matches every head tensor by its squared error.
	HeadLossMSE = "mse"
)

// headTerm is how the end-to-end loss matches one head tensor.
type headTerm struct {
	name string
	// logit: the tensor is read only by Sigmoids, and is matched by the
	// KL divergence of the probabilities (CellSigmoidKL); otherwise by
	// the squared error.
	logit bool
	// confidence, when set, are the logit heads whose product of
	// per-cell maximum probabilities (the teacher's detection score)
	// weighs each cell of this tensor; nil: every cell weighs the same.
	confidence []string
}

// detectionTerms assigns the heads their terms from the student graph:
// heads read only by Sigmoids are logits; heads of the same spatial size
// [N C H W] form a level whose confidence at a cell is the product over
// its logit heads of their highest probability there. A level's
// single-channel logits (objectness) are matched at every cell, since a
// student's false positive anywhere costs; its other heads (box
// offsets; class logits when there is an objectness) only matter where
// the teacher sees an object and are weighed by that confidence. Without
// a single-channel logit every logit is matched everywhere. Heads of a
// level without logits, or whose shape is not [N C H W], keep the plain
// squared error.
func detectionTerms(m *onnxpb.ModelProto, heads []string, shapes *onnx.Shapes) []headTerm {
	g := onnx.NewGraph(m)
	levels := map[string][]int{} // spatial size → indices into terms
	var order []string
	terms := make([]headTerm, len(heads))
	for i, h := range heads {
		terms[i].name = h
		cons := g.Consumers(h)
		terms[i].logit = len(cons) > 0 && !g.IsOutput(h) && !slices.ContainsFunc(cons, func(n *onnxpb.NodeProto) bool { return n.GetOpType() != "Sigmoid" })
		sh := shapes.Shape(h)
		if len(sh) != 4 {
			terms[i].logit = false
			continue
		}
		key := fmt.Sprint(sh[2:])
		if _, ok := levels[key]; !ok {
			order = append(order, key)
		}
		levels[key] = append(levels[key], i)
	}
	for _, key := range order {
		var logits []string
		objectness := false
		for _, i := range levels[key] {
			if terms[i].logit {
				logits = append(logits, terms[i].name)
				objectness = objectness || shapes.Shape(terms[i].name)[1] == 1
			}
		}
		if len(logits) == 0 {
			continue
		}
		for _, i := range levels[key] {
			everywhere := terms[i].logit && (!objectness || shapes.Shape(terms[i].name)[1] == 1)
			if !everywhere {
				terms[i].confidence = logits
			}
		}
	}
	return terms
}

// mseTerms matches every head by its squared error at every cell.
func mseTerms(heads []string) []headTerm {
	terms := make([]headTerm, len(heads))
	for i, h := range heads {
		terms[i].name = h
	}
	return terms
}

// confidence is the product over the logit heads of their highest
// probability at each cell: [N 1 H W].
func confidence(tv map[string]*train.Tensor, logits []string) *train.Tensor {
	var c *train.Tensor
	for _, name := range logits {
		x := tv[name]
		n, ch, inner := x.Shape[0], x.Shape[1], x.Len()/(x.Shape[0]*x.Shape[1])
		if c == nil {
			c = train.NewTensor(slices.Concat([]int{n, 1}, x.Shape[2:])...)
			for i := range c.Data {
				c.Data[i] = 1
			}
		}
		for b := range n {
			for r := range inner {
				best := float32(math.Inf(-1))
				for k := range ch {
					best = max(best, x.Data[(b*ch+k)*inner+r])
				}
				c.Data[b*inner+r] *= float32(1 / (1 + math.Exp(-float64(best))))
			}
		}
	}
	return c
}

// confidenceKey names a term's confidence map in the maps cellWeights
// computes (one per distinct set of logit heads).
func (h headTerm) confidenceKey() string { return fmt.Sprint(h.confidence) }

// cells is the term's confidence map among cells, nil when every cell
// weighs the same.
func (h headTerm) cells(cells map[string]*train.Tensor) *train.Tensor {
	if h.confidence == nil {
		return nil
	}
	return cells[h.confidenceKey()]
}

// termLoss is one term's loss and gradient, before its normalising weight.
func termLoss(h headTerm, got, want *train.Tensor, cells map[string]*train.Tensor) (float64, *train.Tensor, error) {
	c := h.cells(cells)
	if h.logit {
		return train.CellSigmoidKL(got, want, c)
	}
	return train.CellSquaredError(got, want, c)
}

// cellWeights computes the confidence maps the terms use, by level.
func cellWeights(terms []headTerm, tv map[string]*train.Tensor) map[string]*train.Tensor {
	cells := map[string]*train.Tensor{}
	for _, h := range terms {
		if key := h.confidenceKey(); h.confidence != nil && cells[key] == nil {
			cells[key] = confidence(tv, h.confidence)
		}
	}
	return cells
}

// termWeights gives each term the weight total/(n·baseline), where the
// baseline is its loss when the student predicts the teacher's (weighted)
// mean everywhere: each head contributes equally whatever its scale, and
// such a student scores total.
func termWeights(terms []headTerm, tv map[string]*train.Tensor, total float64) (map[string]float64, error) {
	cells := cellWeights(terms, tv)
	w := map[string]float64{}
	for _, h := range terms {
		want := tv[h.name]
		constant := train.NewTensor(want.Shape...)
		mean := weightedMean(want, h.cells(cells), h.logit)
		for i := range constant.Data {
			constant.Data[i] = float32(mean)
		}
		base, _, err := termLoss(h, constant, want, cells)
		if err != nil {
			return nil, fmt.Errorf("head %s: %w", h.name, err)
		}
		if base < 1e-12 {
			base = 1
		}
		w[h.name] = total / (float64(len(terms)) * base)
	}
	return w, nil
}

// weightedMean is the mean of x (of its probabilities, as a logit, when
// logit) with each cell weighed by cells (nil: equally).
func weightedMean(x, cells *train.Tensor, logit bool) float64 {
	var sum, total float64
	inner := x.Len() / max(1, x.Shape[0]*x.Shape[1])
	for i, v := range x.Data {
		w := 1.0
		if cells != nil {
			w = float64(cells.Data[i/(x.Shape[1]*inner)*inner+i%inner])
		}
		if logit {
			v = float32(1 / (1 + math.Exp(-float64(v))))
		}
		sum += w * float64(v)
		total += w
	}
	if total == 0 {
		return 0
	}
	m := sum / total
	if logit {
		m = min(max(m, 1e-6), 1-1e-6)
		return math.Log(m / (1 - m))
	}
	return m
}

// headLoss is Σ_k w_k·loss_k over the terms, with the gradient of each
// head tensor.
func headLoss(terms []headTerm, got, tv map[string]*train.Tensor, weights map[string]float64) (float64, map[string]*train.Tensor, error) {
	cells := cellWeights(terms, tv)
	grads := map[string]*train.Tensor{}
	var loss float64
	for _, h := range terms {
		y, t := got[h.name], tv[h.name]
		if y == nil || t == nil {
			return 0, nil, fmt.Errorf("head %s: not computed", h.name)
		}
		l, g, err := termLoss(h, y, t, cells)
		if err != nil {
			return 0, nil, fmt.Errorf("head %s: %w", h.name, err)
		}
		w := weights[h.name]
		for i := range g.Data {
			g.Data[i] *= float32(w)
		}
		loss += w * l
		grads[h.name] = g
	}
	return loss, grads, nil
}
