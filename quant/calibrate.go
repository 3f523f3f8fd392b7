package quant

import (
	"context"
	"fmt"

	"github.com/edgedet/edgedet/onnx/ortrun"
)

// calibrate runs the calibration inputs through the prepared model and sets
// the activation ranges, the Conv inputs' channel means (for bias
// correction) and, with GPTQ, the layers' Hessians.
func (z *quantizer) calibrate(ctx context.Context) error {
	// Every activation a plan may quantize, exposed as outputs.
	tensors := z.p.tensorsToCalibrate()
	stats := make([]*TensorStats, len(tensors))
	for i := range stats {
		stats[i] = NewTensorStats()
	}
	means := channelMeans{}
	hessians := z.gptqHessians() // by input tensor
	if err := z.collectStatistics(ctx, tensors, stats, means, hessians); err != nil {
		return err
	}
	z.ranges = z.activationRanges(tensors, stats)
	z.inputMeans = means.means()
	if z.opt.GPTQ {
		z.byNode = map[string]*hessian{}
		for _, list := range hessians {
			for _, h := range list {
				z.byNode[h.node] = h.h
			}
		}
	}
	return nil
}

// gptqHessians returns, by input tensor, an empty Hessian for every
// candidate GPTQ can handle; none without GPTQ.
func (z *quantizer) gptqHessians() map[string][]namedHessian {
	p := z.p
	hessians := map[string][]namedHessian{}
	if !z.opt.GPTQ {
		return hessians
	}
	for _, n := range p.candidates {
		w := p.g.Initializer(n.GetInput()[1])
		if w == nil {
			continue
		}
		if geo, ok := geometryOf(n, w.GetDims()); ok && geo.patch() <= maxGPTQPatch {
			hessians[n.GetInput()[0]] = append(hessians[n.GetInput()[0]], namedHessian{n.GetName(), newHessian(geo)})
		}
	}
	return hessians
}

// collectStatistics runs every calibration input with tensors exposed as
// outputs, adding their values to stats, the Conv inputs to means and the
// first hessianFrames inputs to hessians.
func (z *quantizer) collectStatistics(ctx context.Context, tensors []string, stats []*TensorStats, means channelMeans, hessians map[string][]namedHessian) error {
	r, err := ortrun.NewRunner(z.fp, z.inName, z.inShape, tensors, z.opt.Threads)
	if err != nil {
		return fmt.Errorf("calibration model: %w", err)
	}
	defer r.Close()
	convInputs := z.p.convInputs()
	for i := 0; i < z.inputs.Len(); i++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := z.inputs.Input(ctx, i, r.Input()); err != nil {
			return fmt.Errorf("calibration input %d: %w", i, err)
		}
		err := r.Run(func(k int, name string, shape []int64, v []float32) error {
			if err := stats[k].Add(v); err != nil {
				return fmt.Errorf("tensor %q: %w", name, err)
			}
			if convInputs[name] {
				means.add(name, shape, v)
			}
			if i < hessianFrames {
				for _, h := range hessians[name] {
					h.h.add(shape, v)
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("calibration input %d: %w", i, err)
		}
		z.progress("calibrate", i+1, z.inputs.Len())
	}
	return nil
}

// convInputs is the set of tensors the candidate Convs read, whose channel
// means bias correction needs.
func (p *prepared) convInputs() map[string]bool {
	in := map[string]bool{}
	for _, n := range p.candidates {
		if n.GetOpType() == "Conv" {
			in[n.GetInput()[0]] = true
		}
	}
	return in
}

// activationRanges turns the statistics of tensors into ranges with the
// calibration method; MaxPool and Resize outputs share their input's range.
func (z *quantizer) activationRanges(tensors []string, stats []*TensorStats) map[string][2]float32 {
	opt := z.opt
	ranges := map[string][2]float32{}
	for i, t := range tensors {
		var lo, hi float32
		if opt.Method == MethodMSE {
			lo, hi = stats[i].MSERange(opt.Profile, z.p.activationOf(t))
		} else {
			lo, hi = stats[i].Range(opt.Method, opt.Percentile)
		}
		ranges[t] = [2]float32{lo, hi}
	}
	for _, n := range z.p.elementwise {
		if sharesInputParams[n.GetOpType()] {
			for _, out := range n.GetOutput() {
				if out != "" {
					ranges[out] = ranges[n.GetInput()[0]]
				}
			}
		}
	}
	return ranges
}

// channelMeans accumulates the mean of every channel (axis 1) of NCHW
// tensors, by tensor name.
type channelMeans map[string]*channelSum

type channelSum struct {
	sum []float64
	n   float64
}

func (c channelMeans) add(name string, shape []int64, v []float32) {
	if len(shape) != 4 || shape[1] <= 0 {
		return
	}
	ch := int(shape[1])
	plane := int(shape[2] * shape[3])
	if plane <= 0 || len(v) != int(shape[0])*ch*plane {
		return
	}
	s := c[name]
	if s == nil {
		s = &channelSum{sum: make([]float64, ch)}
		c[name] = s
	}
	if len(s.sum) != ch {
		return
	}
	for b := range int(shape[0]) {
		for k := range ch {
			var t float64
			for _, x := range v[(b*ch+k)*plane : (b*ch+k+1)*plane] {
				t += float64(x)
			}
			s.sum[k] += t
		}
		s.n += float64(plane)
	}
}

func (c channelMeans) means() map[string][]float32 {
	out := make(map[string][]float32, len(c))
	for name, s := range c {
		m := make([]float32, len(s.sum))
		for k, v := range s.sum {
			m[k] = float32(v / s.n)
		}
		out[name] = m
	}
	return out
}
