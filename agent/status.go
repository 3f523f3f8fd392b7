package agent

import (
	"context"
	"math"
	"sync/atomic"
	"time"

	"github.com/edgedet/edgedet/agent/web"
)

// rateEvery is how often the live rates of each camera are refreshed.
const rateEvery = 2 * time.Second

// liveRates are a camera's rates over the last rateEvery, for the live
// page and /api/cameras (float64 bits in atomics: written by sampleRates,
// read by HTTP handlers).
type liveRates struct {
	capture, process, inferMs atomic.Uint64
}

func storeFloat(a *atomic.Uint64, v float64) { a.Store(math.Float64bits(v)) }
func loadFloat(a *atomic.Uint64) float64     { return math.Float64frombits(a.Load()) }

// sampleRates refreshes every pipeline's liveRates until ctx is done.
func (a *Agent) sampleRates(ctx context.Context) {
	t := time.NewTicker(rateEvery)
	defer t.Stop()
	prev := make([]statsState, len(a.pipes))
	for i, p := range a.pipes {
		prev[i] = p.totals(a.clock.Mono())
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			now := a.clock.Mono()
			for i, p := range a.pipes {
				cur := p.totals(now)
				old := prev[i]
				cs := cur.since(old)
				if cur.at > old.at {
					storeFloat(&p.rates.capture, cs.CameraFPS)
					storeFloat(&p.rates.process, cs.ProcessFPS)
				}
				if cur.processed > old.processed {
					storeFloat(&p.rates.inferMs, cs.InferenceMs)
				}
				prev[i] = cur
			}
		}
	}
}

// totals reads the pipeline's running totals at now (clock.Mono).
func (p *pipeline) totals(now time.Duration) statsState {
	s := p.stream.Stats()
	n := &p.stats
	return statsState{at: now, captured: s.Captured, processed: n.processed.Load(), skipped: s.Skipped + s.Dropped,
		off: n.skipped(), infer: n.inferNanos.Load(), pre: n.preNanos.Load(), post: n.postNanos.Load()}
}

// status is the camera's state for /healthz and the live page.
func (p *pipeline) status() web.CameraStatus {
	s := p.stream.Stats()
	st := web.CameraStatus{
		Connected:   s.Connected,
		LastError:   s.LastError,
		Started:     p.started,
		StartedMono: p.startedMono,
		CaptureFPS:  loadFloat(&p.rates.capture),
		ProcessFPS:  loadFloat(&p.rates.process),
		InferenceMs: loadFloat(&p.rates.inferMs),
		Detect:      p.ctrl.Detect(),
	}
	if ns := p.stats.lastProgressWall.Load(); ns != 0 {
		st.LastProgress = time.Unix(0, ns)
		st.LastProgressMono = time.Duration(p.stats.lastProgressMono.Load())
	}
	if o := p.objects.Load(); o != nil {
		st.Objects = *o
	}
	return st
}

// CameraTotals are one camera's running totals since Run started.
type CameraTotals struct {
	Name                               string
	Captured, Processed                uint64
	Dropped, Skipped                   uint64 // replaced before the detector took them; not delivered (detect_fps, detection off)
	Preprocess, Inference, Postprocess time.Duration
}

// Totals returns every camera's totals (none before Run built the
// pipelines or after it returned).
func (a *Agent) Totals() []CameraTotals {
	a.pipesMu.RLock()
	defer a.pipesMu.RUnlock()
	out := make([]CameraTotals, 0, len(a.pipes))
	for _, p := range a.pipes {
		s := p.stream.Stats()
		n := &p.stats
		out = append(out, CameraTotals{Name: p.name, Captured: s.Captured, Processed: n.processed.Load(),
			Dropped: s.Dropped, Skipped: s.Skipped + n.skipped(),
			Preprocess: time.Duration(n.preNanos.Load()), Inference: time.Duration(n.inferNanos.Load()),
			Postprocess: time.Duration(n.postNanos.Load())})
	}
	return out
}
