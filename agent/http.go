package agent

import (
	"context"
	"fmt"
	"sync"

	"github.com/edgedet/edgedet/agent/metrics"
	"github.com/edgedet/edgedet/agent/mqtt"
	"github.com/edgedet/edgedet/agent/outbox"
	"github.com/edgedet/edgedet/agent/web"
)

// serveHTTP starts the HTTP server and what feeds it (live feeds,
// metrics) in wg until ctx is done. It returns the feeds, also on error.
func (a *Agent) serveHTTP(ctx context.Context, wg *sync.WaitGroup, env *runEnv) ([]*web.Feed, error) {
	srv, feeds, err := a.startHTTP(env.client, env.box)
	if err != nil {
		return feeds, err
	}
	for _, f := range feeds {
		wg.Add(1)
		go func() { defer wg.Done(); f.Run(ctx) }()
	}
	if a.metrics != nil {
		wg.Add(1)
		go func() { defer wg.Done(); a.metrics.Run(ctx) }()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := srv.Run(ctx); err != nil {
			a.log.Error("http server", "err", err)
		}
	}()
	return feeds, nil
}

// closeFeeds closes the live feeds.
func (a *Agent) closeFeeds(feeds []*web.Feed) {
	for _, f := range feeds {
		if cerr := f.Close(); cerr != nil {
			a.log.Warn("close live feed", "err", cerr)
		}
	}
}

// startHTTP builds the metrics (if on) and the live feeds (if on), binds
// the HTTP server and returns it, not yet serving, with the feeds to run.
func (a *Agent) startHTTP(client *mqtt.Client, box *outbox.Outbox) (*web.Server, []*web.Feed, error) {
	hc := a.cfg.HTTP
	info := a.det.Info()
	opts := web.Options{Listen: hc.Listen, LiveView: hc.LiveView, StallAfter: hc.StallAfter.D(), Log: a.log, Clock: a.clock}
	if hc.Metrics {
		m := metrics.New(metrics.Options{Version: a.Version, Model: info.Name, Precision: info.Precision, Provider: info.Provider})
		for _, p := range a.pipes {
			p.metrics = m.AddCamera(p.name, info.Labels, p.counters)
		}
		m.SetMQTT(func() metrics.MQTTCounters {
			ms, bs := client.Stats(), box.Stats()
			return metrics.MQTTCounters{Connected: ms.Connected, Published: ms.Published, Failed: ms.Failed,
				Dropped: ms.Dropped, QueueDepth: bs.Len, SpoolBytes: bs.Bytes, SpoolDropped: bs.Lost()}
		})
		opts.Metrics = m.Handler()
		a.metrics = m
	}
	var feeds []*web.Feed
	views := make([]web.CameraView, 0, len(a.pipes))
	for _, p := range a.pipes {
		v := web.CameraView{Name: p.name, Status: p.status}
		if hc.LiveView {
			f := web.NewFeed(hc.LiveFPS, hc.LiveQuality)
			f.SetZones(p.overlay.Zones)
			feeds = append(feeds, f)
			p.feed, v.Feed = f, f
		}
		views = append(views, v)
	}
	srv, err := web.NewServer(opts, views)
	if err == nil {
		err = srv.Start()
	}
	if err != nil {
		return nil, feeds, fmt.Errorf("http: %w", err)
	}
	addr := srv.Addr()
	a.httpAddr.Store(&addr)
	a.log.Info("http server listening", "addr", addr, "metrics", hc.Metrics, "live_view", hc.LiveView)
	return srv, feeds, nil
}

// counters reads the camera's totals for the metrics.
func (p *pipeline) counters() metrics.CameraCounters {
	s := p.stream.Stats()
	return metrics.CameraCounters{Captured: s.Captured, Processed: p.stats.processed.Load(), Dropped: s.Dropped,
		Skipped: s.Skipped + p.stats.skipped(), Reconnects: s.Reconnects, Connected: s.Connected}
}
