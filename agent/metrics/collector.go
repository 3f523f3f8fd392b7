package metrics

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// descs describe the series the collector builds at scrape time.
type descs struct {
	captured, processed, dropped, skipped, reconnects, connected *prometheus.Desc
	captureFPS, processedFPS                                     *prometheus.Desc

	mqttConnected, mqttPublished, mqttFailed, mqttDropped *prometheus.Desc
	mqttQueueDepth, spoolBytes, spoolDropped              *prometheus.Desc
}

func newDescs(window fmt.Stringer) descs {
	cam := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(namespace, "camera", name), help, []string{"camera"}, nil)
	}
	fq := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(namespace, "", name), help, nil, nil)
	}
	return descs{
		captured:   cam("frames_captured_total", "Frames read from the camera (a count of frames)."),
		processed:  cam("frames_processed_total", "Frames run through the detector: preprocess, inference and postprocess (a count of frames)."),
		dropped:    cam("frames_dropped_total", "Frames discarded because a newer frame replaced them before the detector took them (a count of frames)."),
		skipped:    cam("frames_skipped_total", "Frames read but deliberately not run through the detector: the configured detection rate, detection switched off, or no motion (a count of frames)."),
		reconnects: cam("reconnects_total", "Times the camera source was reopened after it failed (a count of reconnects)."),
		connected:  cam("connected", "Whether the camera source is open and delivering frames: 1 if so, 0 if not."),
		captureFPS: cam("capture_fps",
			fmt.Sprintf("Frames read from the camera per second, averaged over the last %v (frames per second).", window)),
		processedFPS: cam("processed_fps",
			fmt.Sprintf("Frames run through the detector per second, averaged over the last %v (frames per second).", window)),

		mqttConnected:  fq("mqtt_connected", "Whether the MQTT client is connected to the broker: 1 if so, 0 if not."),
		mqttPublished:  fq("mqtt_published_total", "Messages the MQTT client published to the broker (a count of messages)."),
		mqttFailed:     fq("mqtt_failed_total", "Messages the MQTT client failed to publish: invalid topic, timeout, cancelled or refused (a count of messages)."),
		mqttDropped:    fq("mqtt_dropped_total", "Messages the MQTT client refused because it was not connected to the broker (a count of messages)."),
		mqttQueueDepth: fq("mqtt_queue_depth", "Messages waiting in the spool or outbox to be delivered (a count of messages)."),
		spoolBytes:     fq("spool_bytes", "Size of the messages held in the spool, in bytes."),
		spoolDropped:   fq("spool_dropped_total", "Messages the spool discarded undelivered: it was full, they were held longer than max_age, or their record was damaged on disk."),
	}
}

func (d *descs) all() []*prometheus.Desc {
	return []*prometheus.Desc{
		d.captured, d.processed, d.dropped, d.skipped, d.reconnects, d.connected,
		d.captureFPS, d.processedFPS,
		d.mqttConnected, d.mqttPublished, d.mqttFailed, d.mqttDropped,
		d.mqttQueueDepth, d.spoolBytes, d.spoolDropped,
	}
}

// collector reads the camera and MQTT sources at scrape time and exports
// them as constant metrics.
type collector Metrics

var _ prometheus.Collector = (*collector)(nil)

// Describe implements prometheus.Collector.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs.all() {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	m := (*Metrics)(c)
	d := &m.descs
	for _, cam := range m.snapshotCameras() {
		cc, captureFPS, processedFPS := cam.scrape(m.now, m.interval, m.window)
		counter := func(desc *prometheus.Desc, v uint64) {
			ch <- prometheus.MustNewConstMetric(desc, prometheus.CounterValue, float64(v), cam.name)
		}
		gauge := func(desc *prometheus.Desc, v float64) {
			ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, v, cam.name)
		}
		counter(d.captured, cc.Captured)
		counter(d.processed, cc.Processed)
		counter(d.dropped, cc.Dropped)
		counter(d.skipped, cc.Skipped)
		counter(d.reconnects, cc.Reconnects)
		gauge(d.connected, boolValue(cc.Connected))
		gauge(d.captureFPS, captureFPS)
		gauge(d.processedFPS, processedFPS)
	}

	m.mu.Lock()
	src := m.mqtt
	m.mu.Unlock()
	if src == nil {
		return
	}
	mc := src()
	ch <- prometheus.MustNewConstMetric(d.mqttConnected, prometheus.GaugeValue, boolValue(mc.Connected))
	ch <- prometheus.MustNewConstMetric(d.mqttPublished, prometheus.CounterValue, float64(mc.Published))
	ch <- prometheus.MustNewConstMetric(d.mqttFailed, prometheus.CounterValue, float64(mc.Failed))
	ch <- prometheus.MustNewConstMetric(d.mqttDropped, prometheus.CounterValue, float64(mc.Dropped))
	ch <- prometheus.MustNewConstMetric(d.mqttQueueDepth, prometheus.GaugeValue, float64(mc.QueueDepth))
	ch <- prometheus.MustNewConstMetric(d.spoolBytes, prometheus.GaugeValue, float64(mc.SpoolBytes))
	ch <- prometheus.MustNewConstMetric(d.spoolDropped, prometheus.CounterValue, float64(mc.SpoolDropped))
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
