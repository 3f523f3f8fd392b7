package metrics

import (
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Camera records one camera's per-frame observations. Its counters are read
// from the source given to AddCamera.
type Camera struct {
	name string
	src  func() CameraCounters

	// Children of the stage histogram and detection counter vectors,
	// looked up once so the hot path neither hashes labels nor allocates.
	pre, infer, post prometheus.Observer
	classes          []prometheus.Counter // indexed by class id
	unknown          prometheus.Counter

	mu   sync.Mutex // guards ring; held while calling src
	ring ring
}

// AddCamera registers a camera and returns the handle its pipeline records
// frames through. labels are the model's class names indexed by class id; an
// empty name is exported as the id itself. src is called on every sample and
// scrape, from other goroutines, so it must be safe for concurrent use (e.g.
// atomic loads) and must not call back into the Camera.
//
// Adding a camera under a name that is already registered replaces the
// earlier camera's source (a reloaded pipeline, say): both handles then
// record into the same histogram and detection series, and the fps gauges
// start again from fresh samples. Series are never removed.
func (m *Metrics) AddCamera(name string, labels []string, src func() CameraCounters) *Camera {
	name = labelValue(name)
	if src == nil {
		src = func() CameraCounters { return CameraCounters{} }
	}
	c := &Camera{
		name:    name,
		src:     src,
		pre:     m.stages.WithLabelValues(name, "preprocess"),
		infer:   m.stages.WithLabelValues(name, "inference"),
		post:    m.stages.WithLabelValues(name, "postprocess"),
		classes: make([]prometheus.Counter, len(labels)),
		unknown: m.detections.WithLabelValues(name, "unknown"),
		ring:    newRing(int(m.window/m.interval) + 2),
	}
	for id, l := range labels {
		l = labelValue(l)
		if l == "" {
			l = strconv.Itoa(id)
		}
		c.classes[id] = m.detections.WithLabelValues(name, l)
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	for i, old := range m.cameras {
		if old.name == name {
			m.cameras[i] = c
			return c
		}
	}
	m.cameras = append(m.cameras, c)
	return c
}

// ObserveStages records one processed frame's stage durations. Zero heap
// allocations, safe for concurrent use.
func (c *Camera) ObserveStages(pre, infer, post time.Duration) {
	c.pre.Observe(pre.Seconds())
	c.infer.Observe(infer.Seconds())
	c.post.Observe(post.Seconds())
}

// AddDetection counts one detection of class id; ids outside the labels given
// to AddCamera are counted under the label "unknown". Zero heap allocations,
// safe for concurrent use.
func (c *Camera) AddDetection(classID int) {
	if classID >= 0 && classID < len(c.classes) {
		c.classes[classID].Inc()
		return
	}
	c.unknown.Inc()
}

// sample appends one reading of the source to the rate ring.
func (c *Camera) sample(now func() time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cc := c.src()
	c.ring.push(reading{at: now(), captured: cc.Captured, processed: cc.Processed})
}

// scrape reads the source and returns it with the capture and processed
// rates over window, measured up to this very reading. The reading joins the
// ring only when the newest sample is at least interval old (Run not running
// or late), so scrapes do not crowd out Run's evenly spaced samples.
func (c *Camera) scrape(now func() time.Time, interval, window time.Duration) (cc CameraCounters, captureFPS, processedFPS float64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cc = c.src()
	cur := reading{at: now(), captured: cc.Captured, processed: cc.Processed}
	captureFPS, processedFPS = c.ring.rates(cur, window, interval/2)
	if last, ok := c.ring.last(); !ok || cur.at.Sub(last.at) >= interval {
		c.ring.push(cur)
	}
	return cc, captureFPS, processedFPS
}

// reading is one sample of a camera's frame counters.
type reading struct {
	at                  time.Time
	captured, processed uint64
}

// ring holds the most recent readings, oldest first.
type ring struct {
	buf   []reading
	start int // index of the oldest reading
	n     int // readings held
}

func newRing(size int) ring {
	return ring{buf: make([]reading, max(size, 2))}
}

func (r *ring) at(i int) reading { return r.buf[(r.start+i)%len(r.buf)] }

func (r *ring) push(s reading) {
	if r.n < len(r.buf) {
		r.buf[(r.start+r.n)%len(r.buf)] = s
		r.n++
		return
	}
	r.buf[r.start] = s // overwrite the oldest
	r.start = (r.start + 1) % len(r.buf)
}

func (r *ring) last() (reading, bool) {
	if r.n == 0 {
		return reading{}, false
	}
	return r.at(r.n - 1), true
}

// rates returns the per-second increase of both counters from the oldest
// reading no more than window before cur up to cur. It is 0 when there is
// no such reading or it is less than minSpan before cur, so a rate is never
// taken over a sliver of time. A counter that went down was reset (the
// source restarted from zero), so its new value counts as the increase for
// that step, as Prometheus' rate() does.
func (r *ring) rates(cur reading, window, minSpan time.Duration) (captured, processed float64) {
	i := 0
	for i < r.n && cur.at.Sub(r.at(i).at) > window {
		i++
	}
	if i == r.n {
		return 0, 0
	}
	base := r.at(i)
	span := cur.at.Sub(base.at)
	if span <= 0 || span < minSpan {
		return 0, 0
	}
	var dc, dp uint64
	prev := base
	for j := i + 1; j < r.n; j++ {
		s := r.at(j)
		dc += increase(prev.captured, s.captured)
		dp += increase(prev.processed, s.processed)
		prev = s
	}
	dc += increase(prev.captured, cur.captured)
	dp += increase(prev.processed, cur.processed)
	secs := span.Seconds()
	return float64(dc) / secs, float64(dp) / secs
}

func increase(from, to uint64) uint64 {
	if to < from {
		return to
	}
	return to - from
}
