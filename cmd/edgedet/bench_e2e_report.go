package main

import (
	"encoding/json"
	"fmt"
	"io"
)

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

func printE2E(w io.Writer, r e2eReport) {
	fmt.Fprintf(w, "end to end: %s (%s), %s on %s (%s), %s x %s, %.0f s measured, %s\n",
		r.Model, r.Precision, plural(r.Cameras, "camera"), r.Video, map[bool]string{true: "paced", false: "as fast as read"}[r.Realtime],
		threadsText(r.Threads), plural(r.Sessions, "session"), r.Seconds, plural(r.CPUs, "CPU"))
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
