package metrics

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// fakeSource is a camera whose counters the test sets.
type fakeSource struct {
	mu sync.Mutex
	c  CameraCounters
}

func (s *fakeSource) get() CameraCounters {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.c
}

func (s *fakeSource) set(captured, processed uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.c.Captured, s.c.Processed = captured, processed
}

// fakeClock is a clock that moves only when told to.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type families map[string]*dto.MetricFamily

// scrape GETs url and parses the text exposition. It returns errors rather
// than failing so that it can run outside the test goroutine.
func scrape(url string) (families, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("get %s: status %s", url, resp.Status)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		return nil, fmt.Errorf("get %s: content type %q, want text/plain", url, ct)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("parse exposition: %w", err)
	}
	return fams, nil
}

func mustScrape(t testing.TB, url string) families {
	t.Helper()
	fams, err := scrape(url)
	if err != nil {
		t.Fatal(err)
	}
	return fams
}

// gather collects m's registry directly, without HTTP.
func gather(t testing.TB, m *Metrics) families {
	t.Helper()
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	fams := families{}
	for _, mf := range mfs {
		fams[mf.GetName()] = mf
	}
	return fams
}

// metric returns the one series of family name whose labels include the
// given name/value pairs.
func (f families) metric(t testing.TB, name string, labels ...string) *dto.Metric {
	t.Helper()
	mf, ok := f[name]
	if !ok {
		t.Fatalf("family %s missing", name)
	}
	var found []*dto.Metric
	for _, m := range mf.GetMetric() {
		if hasLabels(m, labels) {
			found = append(found, m)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%s%v: %d matching series, want 1", name, labels, len(found))
	}
	return found[0]
}

// value returns the value of a counter, gauge or untyped series.
func (f families) value(t testing.TB, name string, labels ...string) float64 {
	t.Helper()
	m := f.metric(t, name, labels...)
	switch {
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	case m.Untyped != nil:
		return m.GetUntyped().GetValue()
	}
	t.Fatalf("%s%v is not a counter or gauge", name, labels)
	return 0
}

func (f families) names(prefix string) []string {
	var out []string
	for name := range f {
		if strings.HasPrefix(name, prefix) {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

func hasLabels(m *dto.Metric, pairs []string) bool {
	have := map[string]string{}
	for _, lp := range m.GetLabel() {
		have[lp.GetName()] = lp.GetValue()
	}
	for i := 0; i+1 < len(pairs); i += 2 {
		if v, ok := have[pairs[i]]; !ok || v != pairs[i+1] {
			return false
		}
	}
	return true
}

// bucket returns the cumulative count of the histogram bucket with upper
// bound le.
func bucket(t testing.TB, m *dto.Metric, le float64) uint64 {
	t.Helper()
	for _, b := range m.GetHistogram().GetBucket() {
		if b.GetUpperBound() == le {
			return b.GetCumulativeCount()
		}
	}
	t.Fatalf("no bucket le=%v", le)
	return 0
}

// eventually polls fn until it returns true or d passes.
func eventually(t testing.TB, d time.Duration, fn func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !fn() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v", d)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
