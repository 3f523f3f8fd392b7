package latency_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/edgedet/edgedet/internal/latency"
	"github.com/edgedet/edgedet/onnx/onnxpb"
	"google.golang.org/protobuf/proto"
)

// scriptTimer returns its durations in turn (the last one repeated) and
// records the order of calls in a shared log.
type scriptTimer struct {
	name   string
	times  []time.Duration
	calls  int
	failAt int // 1-based call that fails (0: never)
	log    *strings.Builder
	closed bool
}

func (s *scriptTimer) Time(context.Context) (time.Duration, error) {
	s.calls++
	s.log.WriteString(s.name)
	if s.calls == s.failAt {
		return 0, errors.New("session lost")
	}
	return s.times[min(s.calls, len(s.times))-1], nil
}

func (s *scriptTimer) Close() error { s.closed = true; return nil }

// TestPaired: both models warm up 5 runs, then alternate 5 rounds of
// 20 runs; the medians ignore the warm-up and the outliers.
func TestPaired(t *testing.T) {
	var log strings.Builder
	// a: warm-up 5 slow runs, then 1 ms with a few outliers.
	at := []time.Duration{9e9, 9e9, 9e9, 9e9, 9e9}
	bt := []time.Duration{9e9, 9e9, 9e9, 9e9, 9e9}
	for i := range 100 {
		at = append(at, time.Millisecond+time.Duration(i%3)*time.Microsecond)
		bt = append(bt, 2*time.Millisecond)
	}
	at[50], bt[60] = time.Hour, time.Nanosecond
	a := &scriptTimer{name: "a", times: at, log: &log}
	b := &scriptTimer{name: "b", times: bt, log: &log}
	la, lb, err := latency.Paired(context.Background(), a, b)
	if err != nil {
		t.Fatal(err)
	}
	if la != time.Millisecond+time.Microsecond || lb != 2*time.Millisecond {
		t.Errorf("medians %v, %v; want 1.001ms, 2ms", la, lb)
	}
	want := strings.Repeat("a", 5) + strings.Repeat("b", 5) + strings.Repeat(strings.Repeat("a", 20)+strings.Repeat("b", 20), 5)
	if log.String() != want {
		t.Errorf("call order %q, want %q", log.String(), want)
	}

	log.Reset()
	a = &scriptTimer{name: "a", times: at, log: &log}
	b = &scriptTimer{name: "b", times: bt, log: &log, failAt: 7}
	if _, _, err := latency.Paired(context.Background(), a, b); err == nil || !strings.Contains(err.Error(), "session lost") {
		t.Errorf("a failing timer: %v", err)
	}
	if a.calls != 25 {
		t.Errorf("timing went on after the failure: a ran %d times", a.calls)
	}
}

// TestPairedModels: the timers are opened in order and closed; a model
// that cannot be opened is named; without an opener there is an error.
func TestPairedModels(t *testing.T) {
	var log strings.Builder
	var opened []*scriptTimer
	open := func(_ context.Context, m *onnxpb.ModelProto) (latency.Timer, error) {
		if m.GetDocString() == "broken" {
			return nil, errors.New("bad graph")
		}
		st := &scriptTimer{name: m.GetDocString(), times: []time.Duration{time.Duration(len(opened)+1) * time.Millisecond}, log: &log}
		opened = append(opened, st)
		return st, nil
	}
	a := &onnxpb.ModelProto{DocString: proto.String("a")}
	b := &onnxpb.ModelProto{DocString: proto.String("b")}
	la, lb, err := latency.PairedModels(context.Background(), open, a, b, "first", "second")
	if err != nil || la != time.Millisecond || lb != 2*time.Millisecond {
		t.Errorf("PairedModels = %v, %v, %v; want 1ms, 2ms, nil", la, lb, err)
	}
	for _, st := range opened {
		if !st.closed {
			t.Errorf("timer %s not closed", st.name)
		}
	}
	broken := &onnxpb.ModelProto{DocString: proto.String("broken")}
	if _, _, err := latency.PairedModels(context.Background(), open, a, broken, "first", "second"); err == nil || !strings.Contains(err.Error(), "latency of the second: bad graph") {
		t.Errorf("broken second model: %v", err)
	}
	if _, _, err := latency.PairedModels(context.Background(), nil, a, b, "first", "second"); err == nil {
		t.Error("no opener: no error")
	}
}
