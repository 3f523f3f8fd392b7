package agent

import (
	"context"
	"encoding/json"
	"os"
	"sync/atomic"
	"time"

	"github.com/edgedet/edgedet/agent/mqtt"
	"github.com/edgedet/edgedet/agent/outbox"
	"github.com/edgedet/edgedet/agent/publish"
	"github.com/edgedet/edgedet/detector"
)

// StatsReport is the payload of <prefix>/<device>/stats.
type StatsReport struct {
	Time      string                 `json:"timestamp"`
	UptimeS   float64                `json:"uptime_s"`
	Model     string                 `json:"model"`
	Precision string                 `json:"precision"`
	Provider  string                 `json:"execution_provider"`
	Cameras   map[string]CameraStats `json:"cameras"`
	MQTT      MQTTStats              `json:"mqtt"`
}

// CameraStats are one camera's rates over the last interval and totals.
type CameraStats struct {
	CameraFPS    float64 `json:"camera_fps"`    // frames read from the source
	ProcessFPS   float64 `json:"process_fps"`   // frames run through the detector
	SkippedFPS   float64 `json:"skipped_fps"`   // frames not processed (rate limit, newer frame, detection off, no motion)
	InferenceMs  float64 `json:"inference_ms"`  // mean over the interval
	PreprocessMs float64 `json:"preprocess_ms"` // mean over the interval
	PostMs       float64 `json:"postprocess_ms"`
	Connected    bool    `json:"connected"`
	Reconnects   uint64  `json:"reconnects"`
	Detect       bool    `json:"detect"`
	Threshold    float32 `json:"threshold"`
}

// MQTTStats are the connection and spool counters.
type MQTTStats struct {
	Connected    bool   `json:"connected"`
	Published    uint64 `json:"published"`
	Spooled      int    `json:"spooled"`
	SpoolDropped uint64 `json:"spool_dropped"`
}

// pipelineStats are a pipeline's running totals since it started, written
// by its goroutines and read by the stats, metrics, status and Totals.
type pipelineStats struct {
	processed     atomic.Uint64 // frames the detector ran on
	skippedOff    atomic.Uint64 // frames not processed because detection is off
	gated         atomic.Uint64 // frames not processed because nothing moved
	inferences    atomic.Uint64 // detector runs (with regions, one per crop)
	published     atomic.Uint64 // detections messages sent
	publishFailed atomic.Uint64
	// Stage times summed over the processed frames (ns).
	inferNanos, preNanos, postNanos atomic.Int64
	// The size of the last frame processed.
	lastWidth, lastHeight atomic.Int64
	// The last frame processed or skipped because detection is off, on
	// the wall clock (unix ns, shown; 0: none yet) and on clock.Mono (ns,
	// what health is judged from).
	lastProgressWall, lastProgressMono atomic.Int64
}

// progressed records that a frame went through at mono (clock.Mono) and
// wall.
func (s *pipelineStats) progressed(mono time.Duration, wall time.Time) {
	s.lastProgressMono.Store(int64(mono))
	s.lastProgressWall.Store(wall.UnixNano())
}

// ran records a frame the detector processed.
func (s *pipelineStats) ran(res detector.Result) {
	s.processed.Add(1)
	t := res.Timings
	s.inferNanos.Add(int64(t.Inference))
	s.preNanos.Add(int64(t.Preprocess))
	s.postNanos.Add(int64(t.Postprocess))
	s.lastWidth.Store(int64(res.Width))
	s.lastHeight.Store(int64(res.Height))
}

// skipped counts the frames not processed: gated or detection off.
func (s *pipelineStats) skipped() uint64 { return s.skippedOff.Load() + s.gated.Load() }

func (s *pipelineStats) avgInferenceMs() float64 {
	n := s.processed.Load()
	if n == 0 {
		return 0
	}
	return float64(s.inferNanos.Load()) / float64(n) / 1e6
}

// statsState remembers the previous totals to turn them into rates.
type statsState struct {
	at                                time.Duration // clock.Mono
	captured, processed, skipped, off uint64
	infer, pre, post                  int64
}

// since is the rates of CameraStats from old to cur: per second, and the
// stage times per processed frame (0 without time or frames between them).
func (cur statsState) since(old statsState) CameraStats {
	var cs CameraStats
	secs := (cur.at - old.at).Seconds()
	n := float64(cur.processed - old.processed)
	if secs > 0 {
		cs.CameraFPS = float64(cur.captured-old.captured) / secs
		cs.ProcessFPS = n / secs
		cs.SkippedFPS = float64(cur.skipped-old.skipped+cur.off-old.off) / secs
	}
	if n > 0 {
		cs.InferenceMs = float64(cur.infer-old.infer) / n / 1e6
		cs.PreprocessMs = float64(cur.pre-old.pre) / n / 1e6
		cs.PostMs = float64(cur.post-old.post) / n / 1e6
	}
	return cs
}

// publishStats sends a StatsReport every interval (lossy: straight to the
// client, not spooled).
func (a *Agent) publishStats(ctx context.Context, every time.Duration, client *mqtt.Client, box *outbox.Outbox) {
	t := time.NewTicker(every)
	defer t.Stop()
	prev := make([]statsState, len(a.pipes))
	for i, p := range a.pipes {
		prev[i] = p.totals(a.clock.Mono())
	}
	topic := a.cfg.MQTT.Topics().Stats()
	info := a.det.Info()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now, wall := a.clock.Mono(), a.clock.Now()
		r := StatsReport{Time: wall.UTC().Format("2006-01-02T15:04:05.000Z07:00"), UptimeS: (now - a.start).Seconds(),
			Model: info.Name, Precision: info.Precision, Provider: info.Provider, Cameras: map[string]CameraStats{}}
		for i, p := range a.pipes {
			s := p.stream.Stats()
			cur := p.totals(now)
			cs := cur.since(prev[i])
			cs.Connected, cs.Reconnects, cs.Detect, cs.Threshold = s.Connected, s.Reconnects, p.ctrl.Detect(), p.ctrl.Threshold()
			r.Cameras[p.name] = cs
			prev[i] = cur
		}
		ms, bs := client.Stats(), box.Stats()
		r.MQTT = MQTTStats{Connected: ms.Connected, Published: ms.Published, Spooled: bs.Len, SpoolDropped: bs.Lost()}
		var stats any = r
		if a.cfg.MQTT.Compat == mqtt.CompatFrigate {
			stats = toFrigateStats(r, a.Version, os.Getpid(), wall)
		}
		payload, err := json.Marshal(stats)
		if err != nil {
			a.log.Warn("encode stats", "err", err)
			continue
		}
		_ = client.PublishMessage(ctx, publish.Message{Topic: topic, Payload: payload, QoS: 0, Time: wall})
	}
}

// logStats logs per-camera and MQTT counters every interval.
func (a *Agent) logStats(ctx context.Context, every time.Duration, client *mqtt.Client, box *outbox.Outbox) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, p := range a.pipes {
			s := p.stream.Stats()
			a.log.Info("camera stats", "camera", p.name, "connected", s.Connected,
				"captured", s.Captured, "processed", p.stats.processed.Load(), "dropped", s.Dropped,
				"skipped", s.Skipped, "reconnects", s.Reconnects,
				"published", p.stats.published.Load(), "publish_failed", p.stats.publishFailed.Load(),
				"inference_ms_avg", p.stats.avgInferenceMs())
		}
		ms, bs := client.Stats(), box.Stats()
		a.log.Info("mqtt stats", "connected", ms.Connected, "published", ms.Published, "dropped", ms.Dropped,
			"failed", ms.Failed, "spooled", bs.Len, "spool_dropped", bs.Lost())
	}
}
