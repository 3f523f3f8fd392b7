package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"gocv.io/x/gocv"

	"github.com/edgedet/edgedet/agent"
	"github.com/edgedet/edgedet/agent/mqtt"
	"github.com/edgedet/edgedet/camera"
	"github.com/edgedet/edgedet/detector"
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

// e2eReport is what `edgedet bench --video` measured.
type e2eReport struct {
	Model     string  `json:"model"`
	Precision string  `json:"precision"`
	Video     string  `json:"video"`
	Cameras   int     `json:"cameras"`
	Threads   int     `json:"threads"`
	Sessions  int     `json:"sessions"`
	Realtime  bool    `json:"realtime"`
	Seconds   float64 `json:"seconds"`
	CPUs      int     `json:"cpus"`
	// CaptureFPS and ProcessedFPS are summed over the cameras.
	CaptureFPS   float64 `json:"capture_fps"`
	ProcessedFPS float64 `json:"processed_fps"`
	// BareFPS is the same model's inference alone, back to back on one
	// prepared frame, measured just before and just after the pipeline ran
	// (the mean of both, so a machine that slows down or speeds up during
	// the run does not skew the ratio).
	BareFPS float64 `json:"bare_inference_fps"`
	// Ratio is ProcessedFPS / BareFPS.
	Ratio float64 `json:"ratio"`
	// Busy is the share of the measured time the model was running
	// (processed frames × mean inference time / wall time, per session):
	// what the pipeline loses outside inference. Ratio below Busy is
	// inference itself running slower next to capture and preprocessing
	// (cores, caches and memory shared).
	Busy float64 `json:"model_busy"`
	// Mean stage times per processed frame over the window.
	PreprocessMs  float64 `json:"preprocess_ms"`
	InferenceMs   float64 `json:"inference_ms"`
	PostprocessMs float64 `json:"postprocess_ms"`
	// OverheadRatio is (preprocess + postprocess) / inference.
	OverheadRatio float64 `json:"overhead_ratio"`
	// CPUPercent is process CPU time over wall time (100 = one core busy).
	CPUPercent float64 `json:"cpu_percent"`
	PeakRSSMB  float64 `json:"peak_rss_mb"`
	RSSMB      float64 `json:"rss_mb"`
	// RSSAnonMB is the process's own memory (heap, ONNX Runtime's arena,
	// frames); RSSFileMB the resident pages of the binary and its shared
	// libraries (OpenCV's dependency tree, ONNX Runtime).
	RSSAnonMB float64 `json:"rss_anon_mb"`
	RSSFileMB float64 `json:"rss_file_mb"`
	GoHeapMB  float64 `json:"go_heap_mb"`
	// RSSAfterMinuteMB is the RSS one minute into the measured window (0
	// for shorter runs) and RSSGrowthMB the growth from then to the end:
	// the soak figure.
	RSSAfterMinuteMB float64 `json:"rss_after_minute_mb,omitempty"`
	RSSGrowthMB      float64 `json:"rss_growth_mb,omitempty"`
	// AllocsPerFrame is Go heap allocations of the whole process (MQTT
	// messages, the in-process broker unless --broker is given, timers)
	// per processed frame over the window.
	AllocsPerFrame float64 `json:"heap_allocs_per_frame"`
	// LoadS is the model load time; FirstFrameS the time from starting the
	// pipeline to the first frame through the model; FirstEventS the time
	// a start takes to the first event received over MQTT: loading ONNX
	// Runtime and the model, then the pipeline (the bare-inference
	// measurement in between is left out).
	LoadS       float64 `json:"model_load_s"`
	FirstFrameS float64 `json:"first_frame_s"`
	FirstEventS float64 `json:"first_event_s"`
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
		return r, fmt.Errorf("bench configuration: %w", err)
	}

	loadStart := time.Now()
	det, err := detector.New(cfg.DetectorConfig(), log)
	if err != nil {
		return r, err
	}
	defer det.Close()
	r.LoadS = time.Since(loadStart).Seconds()
	startup := time.Since(start) // ONNX Runtime and the model loaded
	info := det.Info()

	// A second client watches for the first event.
	subCfg := mqtt.Config{Broker: brokerURL, Device: "bench-watch"}.WithDefaults()
	sub, err := mqtt.NewClient(subCfg, log)
	if err != nil {
		return r, err
	}
	defer sub.Close(context.Background())
	if err := sub.Connect(ctx); err != nil {
		return r, err
	}
	var firstEvent atomic.Int64
	if err := sub.Subscribe(ctx, cfg.MQTT.Topics().EventsFilter(), 0, func(string, []byte) {
		firstEvent.CompareAndSwap(0, time.Now().UnixNano())
	}); err != nil {
		return r, err
	}

	bareBefore, err := bareInference(ctx, det, o.video, seconds(max(2, o.seconds/4)))
	if err != nil {
		return r, err
	}
	a, err := agent.New(&cfg, det, log)
	if err != nil {
		return r, err
	}
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
		return r, fmt.Errorf("pipeline stopped before its first frame: %w", err)
	case <-time.After(60 * time.Second):
		return r, errors.New("no frame went through the model within 60 s")
	}
	fmt.Fprintf(stderr, "bench: pipeline running; warming up %.0f s, then measuring %.0f s\n", o.warmup, o.seconds)
	if !sleepCtx(ctx, seconds(o.warmup)) {
		return r, ctx.Err()
	}
	if o.memProfile != "" {
		runtime.MemProfileRate = 1
	}
	before, ru0, ms0, t0 := a.Totals(), rusage(), memStats(), time.Now()
	window := seconds(o.seconds)
	if window > time.Minute {
		// Soak: note the RSS a minute in, then run to the end.
		if !sleepCtx(ctx, time.Minute) {
			return r, ctx.Err()
		}
		r.RSSAfterMinuteMB = procStatusMB("VmRSS")
		fmt.Fprintf(stderr, "bench: rss after the first minute %.1f MB\n", r.RSSAfterMinuteMB)
		window -= time.Minute
	}
	if !sleepCtx(ctx, window) {
		return r, ctx.Err()
	}
	after, ru1, ms1, t1 := a.Totals(), rusage(), memStats(), time.Now()
	r.PeakRSSMB, r.RSSMB = procStatusMB("VmHWM"), procStatusMB("VmRSS")
	r.RSSAnonMB, r.RSSFileMB = procStatusMB("RssAnon"), procStatusMB("RssFile")
	r.GoHeapMB = float64(ms1.HeapInuse) / (1 << 20)
	if r.RSSAfterMinuteMB > 0 {
		r.RSSGrowthMB = r.RSSMB - r.RSSAfterMinuteMB
	}
	if o.memProfile != "" {
		if err := writeHeapProfile(o.memProfile); err != nil {
			return r, err
		}
	}
	stop()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		return r, fmt.Errorf("pipeline: %w", err)
	}
	if ns := firstEvent.Load(); ns != 0 {
		r.FirstEventS = (startup + time.Unix(0, ns).Sub(runStart)).Seconds()
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
		return r, errors.New("no frame was processed in the measured window")
	}
	n := float64(processed)
	r.CaptureFPS, r.ProcessedFPS = float64(captured)/wall, n/wall
	r.PreprocessMs, r.InferenceMs, r.PostprocessMs = ms(pre)/n, ms(inf)/n, ms(post)/n
	r.OverheadRatio = (r.PreprocessMs + r.PostprocessMs) / r.InferenceMs
	r.CPUPercent = 100 * (ru1 - ru0).Seconds() / wall
	r.AllocsPerFrame = float64(ms1.Mallocs-ms0.Mallocs) / n

	bareAfter, err := bareInference(ctx, det, o.video, seconds(max(2, o.seconds/4)))
	if err != nil {
		return r, err
	}
	r.BareFPS = (bareBefore + bareAfter) / 2
	r.Ratio = r.ProcessedFPS / r.BareFPS
	r.Busy = r.ProcessedFPS * r.InferenceMs / 1000 / float64(max(1, o.sessions))
	r.Model, r.Precision, r.Video = info.Name, info.Precision, o.video
	r.Cameras, r.Threads, r.Sessions, r.Realtime = o.cameras, mf.cfg.Threads, max(1, o.sessions), o.realtime
	r.Seconds, r.CPUs = wall, runtime.NumCPU()
	return r, nil
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

func printE2E(w io.Writer, r e2eReport) {
	threads := "default"
	if r.Threads > 0 {
		threads = fmt.Sprint(r.Threads)
	}
	fmt.Fprintf(w, "end to end: %s (%s), %d camera(s) on %s (%s), %s threads x %d session(s), %.0f s measured, %d CPUs\n",
		r.Model, r.Precision, r.Cameras, r.Video, map[bool]string{true: "paced", false: "as fast as read"}[r.Realtime],
		threads, r.Sessions, r.Seconds, r.CPUs)
	fmt.Fprintf(w, "capture fps            %8.1f\n", r.CaptureFPS)
	fmt.Fprintf(w, "processed fps          %8.1f\n", r.ProcessedFPS)
	fmt.Fprintf(w, "bare inference fps     %8.1f\n", r.BareFPS)
	fmt.Fprintf(w, "processed / bare       %8.3f (the model was busy %.1f %% of the time)\n", r.Ratio, 100*r.Busy)
	fmt.Fprintf(w, "per frame ms           pre %.2f  inference %.2f  post %.2f  (pre+post)/inference %.1f%%\n",
		r.PreprocessMs, r.InferenceMs, r.PostprocessMs, 100*r.OverheadRatio)
	fmt.Fprintf(w, "cpu                    %8.0f%% (100%% = one core)\n", r.CPUPercent)
	fmt.Fprintf(w, "rss                    %8.1f MB now, %.1f MB peak (%.1f MB own memory, Go heap %.1f MB; %.1f MB binary and shared libraries)\n",
		r.RSSMB, r.PeakRSSMB, r.RSSAnonMB, r.GoHeapMB, r.RSSFileMB)
	if r.RSSAfterMinuteMB > 0 {
		fmt.Fprintf(w, "soak                   rss %.1f MB after the first minute, %.1f MB at the end: %+.1f MB\n",
			r.RSSAfterMinuteMB, r.RSSMB, r.RSSGrowthMB)
	}
	fmt.Fprintf(w, "heap allocs per frame  %8.2f (whole process)\n", r.AllocsPerFrame)
	fmt.Fprintf(w, "start                  model loaded in %.2f s; first frame %.2f s after the pipeline started; first event received %.2f s after the start\n",
		r.LoadS, r.FirstFrameS, r.FirstEventS)
}

func writeE2E(w io.Writer, r e2eReport, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	printE2E(w, r)
	return nil
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

// rusage is the process's user+system CPU time.
func rusage() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func memStats() runtime.MemStats {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m
}

// procStatusMB reads a "kB" field of /proc/self/status in MB (0 if absent).
func procStatusMB(field string) float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || name != field {
			continue
		}
		kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
		if err != nil {
			return 0
		}
		return kb / 1024
	}
	return 0
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
