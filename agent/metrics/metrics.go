// Package metrics exposes edgedet's Prometheus metrics: per-camera frame
// counters and frame rates, per-stage latency histograms, detection counts,
// MQTT and spool figures, build information and the standard process and Go
// runtime collectors, all on a registry of its own.
//
// Running totals that already live elsewhere (camera and MQTT counters) are
// not copied into Prometheus counters; they are read from callbacks at scrape
// time and exported as constant metrics, the way node_exporter does. Only the
// per-frame observations (stage durations, detections) are recorded here, on
// the hot path, without allocating.
package metrics

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

const (
	namespace = "edgedet"

	// defaultRateWindow is the span the fps gauges average over when
	// Options.RateWindow is not set.
	defaultRateWindow = 10 * time.Second

	// sampleInterval is how often Run samples the camera counters.
	sampleInterval = time.Second
)

// stageBuckets are the upper bounds, in seconds, of the stage duration
// histogram: 100 µs to 2 s in 1-2.5-5 steps, which covers a fast
// preprocessing step on a desktop CPU as well as a slow model on a small
// board, with readable "le" values.
var stageBuckets = []float64{
	0.0001, 0.00025, 0.0005,
	0.001, 0.0025, 0.005,
	0.01, 0.025, 0.05,
	0.1, 0.25, 0.5,
	1, 2,
}

// Options describe the process for edgedet_info.
type Options struct {
	Version, Model, Precision, Provider string
	// RateWindow is the span capture/processed fps gauges average over
	// (default 10s).
	RateWindow time.Duration
	// Logger receives errors met while serving /metrics. Nil discards them.
	Logger *slog.Logger
}

// CameraCounters are a camera's running totals, read on scrape/sample.
type CameraCounters struct {
	Captured, Processed, Dropped, Skipped, Reconnects uint64
	Connected                                         bool
}

// MQTTCounters are the MQTT connection and spool figures, read on scrape.
type MQTTCounters struct {
	Connected                  bool
	Published, Failed, Dropped uint64 // client counters (Dropped = refused while disconnected)
	QueueDepth                 int    // messages waiting in the spool/outbox to be delivered
	SpoolBytes                 int64
	SpoolDropped               uint64 // dropped for size/age limits
}

// Metrics owns edgedet's Prometheus registry. Create it with New, add
// cameras with AddCamera, serve Handler and keep Run going so the fps gauges
// have samples to average over. All methods are safe for concurrent use.
type Metrics struct {
	reg     *prometheus.Registry
	handler http.Handler
	log     *slog.Logger

	window   time.Duration    // span the fps gauges average over
	interval time.Duration    // how often Run samples the cameras
	now      func() time.Time // clock; tests replace it

	stages     *prometheus.HistogramVec
	detections *prometheus.CounterVec
	descs      descs

	mu      sync.Mutex // guards cameras and mqtt; never held while calling a source
	cameras []*Camera  // in the order they were added
	mqtt    func() MQTTCounters
}

// New returns Metrics with its own registry, holding the process and Go
// runtime collectors, edgedet_info, the stage histograms, the detection
// counters and the collector that reads camera and MQTT sources at scrape.
func New(opts Options) *Metrics {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	window := opts.RateWindow
	if window <= 0 {
		window = defaultRateWindow
	}
	m := &Metrics{
		reg:      prometheus.NewRegistry(),
		log:      log.With("component", "metrics"),
		window:   window,
		interval: sampleInterval,
		now:      time.Now,
		stages: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace,
			Name:      "stage_duration_seconds",
			Help:      "Time one frame spent in a detection stage (preprocess, inference or postprocess), in seconds.",
			Buckets:   stageBuckets,
		}, []string{"camera", "stage"}),
		detections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace,
			Name:      "detections_total",
			Help:      "Objects the detector reported, by camera and class label (a count of detections).",
		}, []string{"camera", "label"}),
		descs: newDescs(window),
	}
	info := prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: namespace,
		Name:      "info",
		Help:      "Version, model, precision and execution provider of this edgedet process; the value is always 1.",
		ConstLabels: prometheus.Labels{
			"version":   labelValue(opts.Version),
			"model":     labelValue(opts.Model),
			"precision": labelValue(opts.Precision),
			"provider":  labelValue(opts.Provider),
		},
	})
	info.Set(1)
	m.reg.MustRegister(
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewGoCollector(),
		info,
		m.stages,
		m.detections,
		(*collector)(m),
	)
	m.handler = promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog:      errorLog{m.log},
		ErrorHandling: promhttp.ContinueOnError,
		Registry:      m.reg, // adds promhttp_metric_handler_errors_total
	})
	return m
}

// Registry returns the registry the metrics live in, for callers that want
// to add their own collectors or gather directly.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus exposition formats.
func (m *Metrics) Handler() http.Handler { return m.handler }

// SetMQTT makes scrapes read the MQTT and spool figures from src. The MQTT
// series are exported only once it has been called; nil removes them again.
// src is called from the scraping goroutine and must be safe for concurrent
// use.
func (m *Metrics) SetMQTT(src func() MQTTCounters) {
	m.mu.Lock()
	m.mqtt = src
	m.mu.Unlock()
}

// Run samples every camera's counters once a second, so the fps gauges are
// rates over RateWindow, until ctx is done.
func (m *Metrics) Run(ctx context.Context) {
	t := time.NewTicker(m.interval)
	defer t.Stop()
	m.sample()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			m.sample()
		}
	}
}

// sample records one reading of every camera's counters.
func (m *Metrics) sample() {
	for _, c := range m.snapshotCameras() {
		c.sample(m.now)
	}
}

func (m *Metrics) snapshotCameras() []*Camera {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]*Camera(nil), m.cameras...)
}

// labelValue makes s usable as a label value: client_golang panics on
// invalid UTF-8.
func labelValue(s string) string {
	return strings.ToValidUTF8(s, "\uFFFD")
}

// errorLog hands promhttp's error messages to slog.
type errorLog struct{ log *slog.Logger }

func (l errorLog) Println(v ...any) {
	l.log.Error("serve metrics", "detail", strings.TrimSuffix(fmt.Sprintln(v...), "\n"))
}
