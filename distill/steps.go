package distill

import (
	"context"
	"fmt"
	"slices"

	"github.com/edgedet/edgedet/train"
)

// batch reads the next Options.Batch frames (a new random order every
// epoch) and augments them; with Options.Mosaic, that share of them are
// mosaics of four frames.
func (t *trainer) batch(ctx context.Context) (*train.Tensor, error) {
	c, h, w := int(t.plan.inShape[1]), int(t.plan.inShape[2]), int(t.plan.inShape[3])
	size := c * h * w
	x := train.NewTensor(t.opt.Batch, c, h, w)
	var tmp []float32
	if !t.opt.NoAugment {
		tmp = make([]float32, size)
	}
	for b := range t.opt.Batch {
		img := x.Data[b*size : (b+1)*size]
		if !t.opt.NoAugment && t.opt.Mosaic > 0 && t.rng.Float64() < t.opt.Mosaic {
			if err := t.mosaic(ctx, img, tmp, c, h, w); err != nil {
				return nil, err
			}
			a := drawAugmentation(t.rng, h, w)
			a.cropY, a.cropX, a.cropH, a.cropW = 0, 0, h, w // the mosaic already rescaled its frames
			a.apply(img, tmp, c, h, w)
			continue
		}
		if err := t.readFrame(ctx, img); err != nil {
			return nil, err
		}
		if !t.opt.NoAugment {
			drawAugmentation(t.rng, h, w).apply(img, tmp, c, h, w)
		}
	}
	return x, nil
}

// readFrame reads the next frame of the epoch's order into dst.
func (t *trainer) readFrame(ctx context.Context, dst []float32) error {
	if t.next == len(t.order) {
		t.order = t.rng.Perm(t.data.Len())
		t.next = 0
	}
	i := t.order[t.next]
	t.next++
	if err := t.data.Input(ctx, i, dst); err != nil {
		return fmt.Errorf("distill: frame %d: %w", i, err)
	}
	return nil
}

// mosaic fills img with the next four frames, each shrunk into one
// quadrant around a random centre; tmp is scratch of img's length.
func (t *trainer) mosaic(ctx context.Context, img, tmp []float32, c, h, w int) error {
	for _, q := range mosaicQuadrants(t.rng, h, w) {
		if err := t.readFrame(ctx, tmp); err != nil {
			return err
		}
		if q.h == 0 || q.w == 0 {
			continue
		}
		resizeRect(tmp, img, c, h, w, mosaicSource(t.rng, h, w, q), q)
	}
	return nil
}

// blockStep trains every differing region on the teacher's tensors at its
// borders.
func (t *trainer) blockStep(x *train.Tensor, weights map[string]float64) (float64, map[string]float64, error) {
	var want, outs []string
	for _, r := range t.plan.regions {
		for _, n := range slices.Concat(r.inputs, r.outputs) {
			if n != t.plan.input && !slices.Contains(want, n) {
				want = append(want, n)
			}
		}
		outs = append(outs, r.outputs...)
	}
	tv, err := t.teacher.Forward(map[string]*train.Tensor{t.plan.input: x}, want...)
	if err != nil {
		return 0, nil, fmt.Errorf("teacher: %w", err)
	}
	tv[t.plan.input] = x
	if weights == nil {
		weights = varianceWeights(tv, outs, 1)
	}
	t.student.ZeroGrad()
	var total float64
	for _, r := range t.plan.regions {
		in := map[string]*train.Tensor{}
		for _, n := range r.inputs {
			in[n] = tv[n]
		}
		got, tape, err := t.student.ForwardTrain(in, r.outputs...)
		if err != nil {
			return 0, nil, fmt.Errorf("student region %s: %w", r.nodes[0], err)
		}
		loss, grads, err := train.MSE(got, tv, pick(weights, r.outputs))
		if err != nil {
			return 0, nil, err
		}
		if err := tape.Backward(grads); err != nil {
			return 0, nil, err
		}
		total += loss
	}
	return total, weights, nil
}

// endToEndStep runs the student from the image and matches the head
// tensors by t.terms (and, with FeatureWeight, the regions' outputs by
// their squared error) to the teacher's.
func (t *trainer) endToEndStep(x *train.Tensor, weights map[string]float64) (float64, map[string]float64, error) {
	want := slices.Clone(t.plan.heads)
	var features []string
	if t.opt.FeatureWeight > 0 {
		for _, r := range t.plan.regions {
			for _, n := range r.outputs {
				if !slices.Contains(want, n) {
					features = append(features, n)
					want = append(want, n)
				}
			}
		}
	}
	in := map[string]*train.Tensor{t.plan.input: x}
	tv, err := t.teacher.Forward(in, want...)
	if err != nil {
		return 0, nil, fmt.Errorf("teacher: %w", err)
	}
	if weights == nil {
		if weights, err = termWeights(t.terms, tv, 1); err != nil {
			return 0, nil, err
		}
		for k, w := range varianceWeights(tv, features, t.opt.FeatureWeight) {
			weights[k] = w
		}
	}
	got, tape, err := t.student.ForwardTrain(in, want...)
	if err != nil {
		return 0, nil, fmt.Errorf("student: %w", err)
	}
	loss, grads, err := headLoss(t.terms, got, tv, weights)
	if err != nil {
		return 0, nil, err
	}
	if len(features) > 0 {
		fl, fg, err := train.MSE(got, tv, pick(weights, features))
		if err != nil {
			return 0, nil, err
		}
		loss += fl
		for k, g := range fg {
			grads[k] = g
		}
	}
	t.student.ZeroGrad()
	if err := tape.Backward(grads); err != nil {
		return 0, nil, err
	}
	return loss, weights, nil
}

// varianceWeights gives each named tensor the weight total/(n·variance)
// of its values in tv, so that each contributes equally whatever its
// scale, and a student predicting the teacher's mean scores total.
func varianceWeights(tv map[string]*train.Tensor, names []string, total float64) map[string]float64 {
	w := map[string]float64{}
	for _, n := range names {
		v := variance(tv[n].Data)
		if v < 1e-12 {
			v = 1
		}
		w[n] = total / (float64(len(names)) * v)
	}
	return w
}

func variance(x []float32) float64 {
	if len(x) == 0 {
		return 0
	}
	var sum, sq float64
	for _, v := range x {
		sum += float64(v)
		sq += float64(v) * float64(v)
	}
	m := sum / float64(len(x))
	return max(sq/float64(len(x))-m*m, 0)
}

// pick is the part of weights for names.
func pick(weights map[string]float64, names []string) map[string]float64 {
	p := map[string]float64{}
	for _, n := range names {
		p[n] = weights[n]
	}
	return p
}
