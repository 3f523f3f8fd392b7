package agent

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"gocv.io/x/gocv"

	"github.com/edgedet/edgedet/agent/control"
	"github.com/edgedet/edgedet/agent/metrics"
	"github.com/edgedet/edgedet/agent/mqtt"
	"github.com/edgedet/edgedet/agent/outbox"
	"github.com/edgedet/edgedet/agent/report"
	"github.com/edgedet/edgedet/agent/topic"
	"github.com/edgedet/edgedet/agent/track"
	"github.com/edgedet/edgedet/agent/web"
	"github.com/edgedet/edgedet/camera"
	"github.com/edgedet/edgedet/detector"
	"github.com/edgedet/edgedet/internal/clock"
	"github.com/edgedet/edgedet/internal/testenv"
)

// pipelineOption changes a test pipeline before it is configured.
type pipelineOption func(*pipeline)

// withClock gives the pipeline clk instead of the system clock.
func withClock(clk clock.Clock) pipelineOption { return func(p *pipeline) { p.clock = clk } }

// withTopics gives the pipeline the topic tree tr (e.g. Frigate's).
func withTopics(tr topic.Tree) pipelineOption {
	return func(p *pipeline) { p.topics, p.counts = tr, report.NewCounts(tr, p.name) }
}

// testPipeline builds a camera pipeline around real parts (detector,
// tracker, outbox, metrics, live feed); its stream is never run: tests
// hand it frames themselves.
func testPipeline(t testing.TB, cc CameraConfig, opts ...pipelineOption) (*pipeline, *metrics.Metrics) {
	t.Helper()
	if err := detector.InitRuntime(testenv.ORTLibrary(t)); err != nil {
		t.Fatal(err)
	}
	dc := detector.DefaultConfig()
	dc.Model, dc.Threads = testenv.Shared(t, "models", "yolox_nano_416.onnx"), 1
	det, err := detector.New(dc, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { det.Close() })
	return testPipelineWith(t, cc, onnxDetector{det}, opts...)
}

// testPipelineWith is testPipeline around det.
func testPipelineWith(t testing.TB, cc CameraConfig, det Detector, opts ...pipelineOption) (*pipeline, *metrics.Metrics) {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	stream, err := camera.NewStream(camera.Config{Name: "static", Source: "0"}, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stream.Close() })
	// The outbox is never run: nothing reaches the (never connected) client.
	client, err := mqtt.NewClient(mqtt.Config{Broker: "tcp://127.0.0.1:1", Device: "t"}.WithDefaults(), log)
	if err != nil {
		t.Fatal(err)
	}
	box, err := outbox.New(outbox.Config{}.WithDefaults(), client, log)
	if err != nil {
		t.Fatal(err)
	}
	tracker, err := track.New(track.Config{}.WithDefaults())
	if err != nil {
		t.Fatal(err)
	}
	topics := topic.Tree{Prefix: "edgedet", Device: "t"}
	info := det.Info()
	m := metrics.New(metrics.Options{Model: info.Name})
	feed := web.NewFeed(5, 75)
	t.Cleanup(func() { feed.Close() })
	p := &pipeline{name: "static", stream: stream, det: det, direct: client, box: box,
		ctrl: control.NewCamera("static", 0.3), tracker: tracker, clock: clock.System, counts: report.NewCounts(topics, "static"),
		topics: topics, events: true, snapshots: report.SnapshotConfig{}.WithDefaults(), feed: feed,
		model: info.Name, prec: info.Precision, log: log}
	p.metrics = m.AddCamera("static", info.Labels, p.counters)
	for _, o := range opts {
		o(p)
	}
	cc.Name = "static"
	if err := p.configure(cc.WithDefaults(), p.topics, info.Spec); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.gate.close() })
	return p, m
}

// TestFrameAllocatesNothing: once the objects of a static scene are
// tracked, a frame — preprocessing, inference, decoding, NMS, metrics,
// live-view check, tracking — makes no Go heap allocation.
func TestFrameAllocatesNothing(t *testing.T) {
	t.Run("native", func(t *testing.T) { testFrameAllocatesNothing(t) })
	t.Run("frigate", func(t *testing.T) {
		testFrameAllocatesNothing(t, withTopics(topic.Tree{Prefix: "frigate", Device: "t", Frigate: true}))
	})
}

func testFrameAllocatesNothing(t *testing.T, opts ...pipelineOption) {
	p, _ := testPipeline(t, CameraConfig{}, opts...)
	img := gocv.IMRead(testenv.Shared(t, "datasets", "samples", "dog.jpg"), gocv.IMReadColor)
	defer img.Close()
	ctx := context.Background()
	st := newFrameState()
	frame := &camera.Frame{Mat: img} // not the stream's: Release ignores it
	step := func() {
		j, err := p.det.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := j.Prepare(img); err != nil {
			t.Fatal(err)
		}
		frame.Seq++
		// 10 frames a second from scenePast, whatever the machine's speed.
		frame.Time = scenePast.Add(time.Duration(frame.Seq) * 100 * time.Millisecond)
		p.process(ctx, prepared{job: j, frame: frame}, st)
	}
	for range 10 { // the tracker confirms dog, bicycle and car
		step()
	}
	if got := p.box.Stats().Len; got < 3 {
		t.Fatalf("%d messages queued after 10 frames of dog.jpg; want events for dog, bicycle and car", got)
	}
	allocs := testing.AllocsPerRun(10, step)
	if allocs != 0 {
		t.Errorf("a steady-state frame allocates %g times, want 0", allocs)
	}
	if n := p.stats.processed.Load(); n < 20 {
		t.Errorf("processed %d frames, want 21", n)
	}
}

// TestGatedFrameAllocatesNothing: with motion gating and so the motion
// topic on, in Frigate mode, a frame of a still scene — motion detection,
// gating, the motion state — makes no Go heap allocation.
func TestGatedFrameAllocatesNothing(t *testing.T) {
	p, _ := testPipeline(t, CameraConfig{Motion: MotionConfig{Enabled: true}},
		withTopics(topic.Tree{Prefix: "frigate", Device: "t", Frigate: true}))
	if p.motion == nil {
		t.Fatal("no motion state with motion gating on")
	}
	img := gocv.IMRead(testenv.Shared(t, "datasets", "samples", "dog.jpg"), gocv.IMReadColor)
	defer img.Close()
	ctx := context.Background()
	st := newFrameState()
	frame := &camera.Frame{Mat: img}
	step := func() {
		frame.Seq++
		frame.Time = scenePast.Add(time.Duration(frame.Seq) * 100 * time.Millisecond)
		it, err := p.prepareFrame(ctx, frame)
		if err != nil {
			t.Fatal(err)
		}
		if !it.motionRan {
			t.Fatal("the motion detector did not run")
		}
		p.process(ctx, it, st)
	}
	for range 10 {
		step()
	}
	allocs := testing.AllocsPerRun(10, step)
	if allocs != 0 {
		t.Errorf("a gated frame allocates %g times, want 0", allocs)
	}
	if n := p.stats.gated.Load(); n < 19 {
		t.Errorf("%d frames gated, want the still frames (at least 19)", n)
	}
}
