package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"runtime/pprof"
	"sync/atomic"
	"time"

	"gocv.io/x/gocv"

	"github.com/edgedet/edgedet/agent"
	"github.com/edgedet/edgedet/agent/mqtt"
	"github.com/edgedet/edgedet/camera"
	"github.com/edgedet/edgedet/detector"
	"github.com/edgedet/edgedet/internal/procstat"
)

// e2eOptions are the end-to-end bench's settings.
type e2eOptions struct {
	video    string
	seconds  float64
	warmup   float64
	cameras  int
	sessions int
	realtime bool
	// broker, if set, is the MQTT broker to publish to; otherwise the bench
	// starts one in-process on a loopback port (its own allocations then
	// count in AllocsPerFrame).
	broker string
	// memProfile, if set, receives a heap profile of every allocation made
	// during the measured window (go tool pprof -sample_index=alloc_objects).
	memProfile string
}

// benchEndToEnd runs the agent's real pipeline (camera, detector, tracker,
// MQTT through a loopback broker) on a looping video and measures it.
func benchEndToEnd(ctx context.Context, mf *modelFlags, o e2eOptions, stderr io.Writer) (e2eReport, error) {
	var r e2eReport
	start := time.Now()
	daemonGC() // as edgedet run
	if st, err := os.Stat(o.video); err != nil {
		return r, fmt.Errorf("--video: %w", err)
	} else if st.IsDir() {
		return r, fmt.Errorf("--video %s is a directory; give a video file", o.video)
	}
	log := newLogger(stderr, slog.LevelWarn, "text")
	cleanup, err := initRuntime(mf.ortLib)
	if err != nil {
		return r, err
	}
	defer cleanup()
	brokerURL := o.broker
	if brokerURL == "" {
		b, err := mqtt.StartBroker("127.0.0.1:0", log)
		if err != nil {
			return r, err
		}
		defer b.Close()
		brokerURL = b.URL()
	}
	cfg, err := e2eConfig(mf, o, brokerURL)
	if err != nil {
		return r, err
	}
	loadStart := time.Now()
	det, err := detector.New(cfg.DetectorConfig(), log)
	if err != nil {
		return r, err
	}
	defer det.Close()
	r.LoadS = time.Since(loadStart).Seconds()
	startup := time.Since(start) // ONNX Runtime and the model loaded

	sub, firstEvent, err := watchFirstEvent(ctx, brokerURL, cfg, log)
	if err != nil {
		return r, err
	}
	defer sub.Close(context.Background())
	bareBefore, err := bareInference(ctx, det, o.video, seconds(max(2, o.seconds/4)))
	if err != nil {
		return r, err
	}
	a, err := agent.New(&cfg, det, log)
	if err != nil {
		return r, err
	}
	runStart, err := runE2E(ctx, a, o, &r, stderr)
	if err != nil {
		return r, err
	}
	if ns := firstEvent.Load(); ns != 0 {
		r.FirstEventS = (startup + time.Unix(0, ns).Sub(runStart)).Seconds()
	}
	bareAfter, err := bareInference(ctx, det, o.video, seconds(max(2, o.seconds/4)))
	if err != nil {
		return r, err
	}
	r.BareFPS = (bareBefore + bareAfter) / 2
	r.Ratio = r.ProcessedFPS / r.BareFPS
	r.Busy = r.ProcessedFPS * r.InferenceMs / 1000 / float64(max(1, o.sessions))
	info := det.Info()
	r.Model, r.Precision, r.Video = info.Name, info.Precision, o.video
	r.Cameras, r.Threads, r.Sessions, r.Realtime = o.cameras, mf.cfg.Threads, max(1, o.sessions), o.realtime
	r.CPUs = runtime.NumCPU()
	return r, nil
}

// e2eConfig is the agent config of the bench: o.cameras cameras on the
// looping video, publishing to brokerURL, no HTTP, no stats.
func e2eConfig(mf *modelFlags, o e2eOptions, brokerURL string) (agent.Config, error) {
	cfg := agent.Default()
	cfg.Detector = mf.cfg
	cfg.Detector.Sessions = o.sessions
	cfg.MQTT.Broker, cfg.MQTT.Device = brokerURL, "bench"
	cfg.MQTT = cfg.MQTT.WithDefaults()
	cfg.Log.StatsInterval, cfg.Stats.Interval = 0, 0
	cfg.HTTP.Listen = ""
	for i := range o.cameras {
		rt := o.realtime
		cfg.Cameras = append(cfg.Cameras, agent.CameraConfig{Config: camera.Config{Name: fmt.Sprintf("cam%d", i+1),
			Source: o.video, Loop: true, Realtime: &rt}}.WithDefaults())
	}
	if err := cfg.Validate(); err != nil {
		return cfg, fmt.Errorf("bench configuration: %w", err)
	}
	return cfg, nil
}

// watchFirstEvent connects a second client that notes when the first event
// arrives (Unix ns, 0 until then).
func watchFirstEvent(ctx context.Context, brokerURL string, cfg agent.Config, log *slog.Logger) (*mqtt.Client, *atomic.Int64, error) {
	sub, err := mqtt.NewClient(mqtt.Config{Broker: brokerURL, Device: "bench-watch"}.WithDefaults(), log)
	if err != nil {
		return nil, nil, err
	}
	if err := sub.Connect(ctx); err != nil {
		sub.Close(context.Background())
		return nil, nil, fmt.Errorf("mqtt connect %s: %w", brokerURL, err)
	}
	var first atomic.Int64
	if err := sub.Subscribe(ctx, cfg.MQTT.Topics().EventsFilter(), 0, func(string, []byte) {
		first.CompareAndSwap(0, time.Now().UnixNano())
	}); err != nil {
		sub.Close(context.Background())
		return nil, nil, err
	}
	return sub, &first, nil
}

// runE2E runs the pipeline: waits for its first frame, warms up, measures
// the window into r and stops it. It returns when the pipeline started.
func runE2E(ctx context.Context, a *agent.Agent, o e2eOptions, r *e2eReport, stderr io.Writer) (time.Time, error) {
	ready := make(chan time.Time, 1)
	a.OnReady = func() { ready <- time.Now() }
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	runStart := time.Now()
	done := make(chan error, 1)
	go func() { done <- a.Run(runCtx) }()
	select {
	case t := <-ready:
		r.FirstFrameS = t.Sub(runStart).Seconds()
	case err := <-done:
		return runStart, fmt.Errorf("pipeline stopped before its first frame: %w", err)
	case <-time.After(60 * time.Second):
		stop()
		<-done
		return runStart, errors.New("no frame went through the model within 60 s")
	}
	err := measureE2E(ctx, a, o, r, stderr)
	stop()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		return runStart, fmt.Errorf("pipeline: %w", err)
	}
	return runStart, err
}

// measureE2E warms up, then measures the window: frame rates, stage times,
// CPU, memory and allocations.
func measureE2E(ctx context.Context, a *agent.Agent, o e2eOptions, r *e2eReport, stderr io.Writer) error {
	fmt.Fprintf(stderr, "bench: pipeline running; warming up %.0f s, then measuring %.0f s\n", o.warmup, o.seconds)
	if !sleepCtx(ctx, seconds(o.warmup)) {
		return ctx.Err()
	}
	if o.memProfile != "" {
		runtime.MemProfileRate = 1
	}
	before, ru0, ms0, t0 := a.Totals(), procstat.CPUTime(), memStats(), time.Now()
	window := seconds(o.seconds)
	if window > time.Minute {
		// Soak: note the RSS a minute in, then run to the end.
		if !sleepCtx(ctx, time.Minute) {
			return ctx.Err()
		}
		r.RSSAfterMinuteMB = procstat.StatusMB("VmRSS")
		fmt.Fprintf(stderr, "bench: rss after the first minute %.1f MB\n", r.RSSAfterMinuteMB)
		window -= time.Minute
	}
	if !sleepCtx(ctx, window) {
		return ctx.Err()
	}
	after, ru1, ms1, t1 := a.Totals(), procstat.CPUTime(), memStats(), time.Now()
	r.PeakRSSMB, r.RSSMB = procstat.StatusMB("VmHWM"), procstat.StatusMB("VmRSS")
	r.RSSAnonMB, r.RSSFileMB = procstat.StatusMB("RssAnon"), procstat.StatusMB("RssFile")
	r.GoHeapMB = float64(ms1.HeapInuse) / (1 << 20)
	if r.RSSAfterMinuteMB > 0 {
		r.RSSGrowthMB = r.RSSMB - r.RSSAfterMinuteMB
	}
	if o.memProfile != "" {
		if err := writeHeapProfile(o.memProfile); err != nil {
			return err
		}
	}
	wall := t1.Sub(t0).Seconds()
	var captured, processed uint64
	var pre, inf, post time.Duration
	for i := range after {
		captured += after[i].Captured - before[i].Captured
		processed += after[i].Processed - before[i].Processed
		pre += after[i].Preprocess - before[i].Preprocess
		inf += after[i].Inference - before[i].Inference
		post += after[i].Postprocess - before[i].Postprocess
	}
	if processed == 0 {
		return errors.New("no frame was processed in the measured window")
	}
	n := float64(processed)
	r.Seconds = wall
	r.CaptureFPS, r.ProcessedFPS = float64(captured)/wall, n/wall
	r.PreprocessMs, r.InferenceMs, r.PostprocessMs = ms(pre)/n, ms(inf)/n, ms(post)/n
	r.OverheadRatio = (r.PreprocessMs + r.PostprocessMs) / r.InferenceMs
	r.CPUPercent = 100 * (ru1 - ru0).Seconds() / wall
	r.AllocsPerFrame = float64(ms1.Mallocs-ms0.Mallocs) / n
	return nil
}

// bareInference runs the model back to back on the video's first frame for
// d and returns the runs per second.
func bareInference(ctx context.Context, det *detector.Detector, video string, d time.Duration) (float64, error) {
	vc, err := gocv.VideoCaptureFileWithAPI(video, gocv.VideoCaptureFFmpeg) // not CAP_ANY: see camera.openVideoCapture
	if err != nil {
		return 0, fmt.Errorf("open %s: %w", video, err)
	}
	defer vc.Close()
	img := gocv.NewMat()
	defer img.Close()
	if !vc.Read(&img) || img.Empty() {
		return 0, fmt.Errorf("%s: cannot read a frame", video)
	}
	j, err := det.Acquire(ctx)
	if err != nil {
		return 0, err
	}
	defer det.Release(j)
	if err := j.Prepare(img); err != nil {
		return 0, err
	}
	var busy time.Duration
	runs := 0
	for busy < d || runs < 10 {
		t := time.Now()
		if err := j.Infer(ctx); err != nil {
			return 0, err
		}
		busy += time.Since(t)
		runs++
	}
	return float64(runs) / busy.Seconds(), nil
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func memStats() runtime.MemStats {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m
}

func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("--memprofile: %w", err)
	}
	runtime.GC() // the profile reports allocations as of the last GC
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		f.Close()
		return fmt.Errorf("--memprofile %s: %w", path, err)
	}
	return f.Close()
}
