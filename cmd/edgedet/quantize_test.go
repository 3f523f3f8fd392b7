package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/edgedet/edgedet/detection"
	"github.com/edgedet/edgedet/internal/testenv"
	"github.com/edgedet/edgedet/onnx"
	"github.com/edgedet/edgedet/platforms"
	"github.com/edgedet/edgedet/quant"
)

// calibDir returns a fresh directory holding copies of the first n coco128
// training images.
func calibDir(t testing.TB, n int) string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(testenv.Shared(t, "datasets", "coco128", "train"), "*.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	if len(files) < n {
		t.Fatalf("coco128 has %d images, want %d", len(files), n)
	}
	dir := t.TempDir()
	for _, f := range files[:n] {
		copyFile(t, f, filepath.Join(dir, filepath.Base(f)))
	}
	return dir
}

func copyFile(t testing.TB, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

func fileSHA256(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func yoloxPath(t testing.TB) string {
	t.Helper()
	return testenv.Shared(t, "models", "yolox_nano_416.onnx")
}

// quantMetadata loads a written model and returns its metadata.
func quantMetadata(t testing.TB, path string) map[string]string {
	t.Helper()
	m, err := onnx.LoadModel(path)
	if err != nil {
		t.Fatal(err)
	}
	if ops := onnx.QuantOps(m); !slices.Contains(ops, "QuantizeLinear") {
		t.Errorf("%s: QuantOps %v, want QuantizeLinear", path, ops)
	}
	return onnx.Metadata(m)
}

// The defaults: element-wise ops INT8, the entry region float with its
// weights in float32, the latency measured against FP32 on this CPU.
func TestQuantizeCLI(t *testing.T) {
	model := yoloxPath(t)
	out := filepath.Join(t.TempDir(), "yolox_int8.onnx")
	report := filepath.Join(t.TempDir(), "report.json")
	stdout, stderr, code := runCLI(t, "quantize", "--model", model, "--calib", calibDir(t, 3), "--out", out, "--report", report, "--eval", evalData(t, 4))
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	for _, want := range []string{"wrote " + out, "mse on 3 frames", "profile cpu", "opset: 11 -> 13", "element-wise ops INT8",
		"output error: 1 - AP of the INT8 detections against FP32's", "float: /backbone/backbone/stem/conv/conv/Conv entry region: the first"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout does not say %q:\n%s", want, stdout)
		}
	}
	if strings.Contains(stdout, "split by channel range") {
		t.Errorf("channel splitting is off by default:\n%s", stdout)
	}
	entry := regexp.MustCompile(`entry region: first (\d+) layers? float \(output error by float prefix length: 0:[0-9.e-]+ 1:`).FindStringSubmatch(stdout)
	if entry == nil {
		t.Fatalf("stdout does not give the entry region and its curve:\n%s", stdout)
	}
	board, err := platforms.Detect(os.DirFS("/"))
	if err != nil {
		t.Fatal(err)
	}
	cpu, _ := latencyCase(board)
	lat := regexp.MustCompile(`latency on this CPU \(` + regexp.QuoteMeta(cpu) + `\): INT8 ([0-9.]+) ms, FP32 ([0-9.]+) ms median inference = ([0-9.]+)x FP32 \(paired runs on the first calibration frame, ONNX Runtime's default threads, (\d+) activations fused\)`).FindStringSubmatch(stdout)
	if lat == nil {
		t.Fatalf("stdout does not give the measured latency for %q:\n%s", cpu, stdout)
	}
	if fused, _ := strconv.Atoi(lat[4]); fused == 0 {
		t.Errorf("no activation fused in the default INT8 model:\n%s", stdout)
	}
	var rep quant.Report
	b, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Latency == nil || rep.Latency.Ratio <= 0 || rep.Latency.CPU != cpu || strconv.Itoa(rep.EntryLayers) != entry[1] || !rep.CustomMetric {
		t.Errorf("report: latency %+v, entry layers %d (stdout %s), custom metric %v", rep.Latency, rep.EntryLayers, entry[1], rep.CustomMetric)
	}
	// --eval: both models scored on the 4 images, the INT8 line with the
	// interval of its difference, the figures in the report.
	acc := rep.Accuracy
	if acc == nil || acc.Images != 4 || acc.FP32MAP <= 0 || acc.INT8MAP <= 0 || acc.Interval[0] > acc.Interval[1] {
		t.Fatalf("report accuracy %+v: want both models scored on 4 images and an interval", acc)
	}
	for _, want := range []string{
		fmt.Sprintf("mAP@0.5:0.95 %-24s %.3f (+0.000)", filepath.Base(model), acc.FP32MAP),
		fmt.Sprintf("mAP@0.5:0.95 %-24s %.3f (%+.3f)", filepath.Base(out), acc.INT8MAP, acc.INT8MAP-acc.FP32MAP),
		fmt.Sprintf("95 %% interval of the mAP@0.5:0.95 difference [%+.3f, %+.3f]", acc.Interval[0], acc.Interval[1]),
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout does not say %q:\n%s", want, stdout)
		}
	}
	// The detector timer is wired in: the INT8 model was timed against
	// FP32 before it was written (and kept, or replaced by weights only).
	if rep.ComputeRatio <= 0 || rep.WeightsOnly != (rep.ComputeRatio > quant.MaxINT8ComputeRatio) {
		t.Errorf("report: compute ratio %g, weights only %v; want a measured ratio, weights only exactly above quant.MaxINT8ComputeRatio", rep.ComputeRatio, rep.WeightsOnly)
	}
	// Near-best entry regions with even crossings are timed on this CPU
	// (how many there are depends on the frames), and the chosen one is
	// among them.
	if tm := rep.EntryTimings; len(tm) > 1 {
		if want := fmt.Sprintf("entry regions timed on this CPU (inference vs the %d-layer region): %d:1.00x ", tm[0].Layers, tm[0].Layers); !strings.Contains(stdout, want) {
			t.Errorf("stdout does not say %q:\n%s", want, stdout)
		}
		if !slices.ContainsFunc(tm, func(e quant.EntryTiming) bool { return e.Layers == rep.EntryLayers }) {
			t.Errorf("entry region of %d layers chosen, not among those timed: %+v", rep.EntryLayers, tm)
		}
	}
	md := quantMetadata(t, out)
	for k, want := range map[string]string{
		"edgedet.quant.method":             "mse",
		"edgedet.quant.profile":            "cpu",
		"edgedet.quant.calibration_images": "3",
		"edgedet.quant.source_sha256":      fileSHA256(t, model),
		"edgedet.quant.per_channel":        "true",
		"edgedet.quant.reduce_range":       strconv.FormatBool(defaultReduceRange(board, quant.ProfileCPU)),
		"edgedet.quant.elementwise":        "true",
	} {
		if got, ok := md[k]; !ok || got != want {
			t.Errorf("metadata %s = %q (present %v), want %q", k, got, ok, want)
		}
	}
	// The source's description travels with the model.
	if desc, ok, err := detection.SpecFromEdgedetMetadata(md); err != nil || !ok || desc.Format != detection.FormatYOLOX || desc.InputWidth != 416 || desc.ChannelOrder != "bgr" || desc.Precision != "" {
		t.Errorf("metadata %s = %q: %+v, %v; want the FP32 model's description without its precision", detection.MetadataSpecKey, md[detection.MetadataSpecKey], desc, err)
	}
	if floats := md["edgedet.quant.float_layers"]; !strings.HasPrefix(floats, "/backbone/backbone/stem/conv/conv/Conv") {
		t.Errorf("metadata float_layers %q, want the entry region from the stem", floats)
	}
	if got := fileSHA256(t, model); got != md["edgedet.quant.source_sha256"] {
		t.Errorf("the input model changed")
	}
}

// Every layer INT8, split by channel range, without the latency check.
func TestQuantizeCLIAllINT8(t *testing.T) {
	out := filepath.Join(t.TempDir(), "yolox_int8.onnx")
	stdout, stderr, code := runCLI(t, "quantize", "--model", yoloxPath(t), "--calib", calibDir(t, 3), "--out", out,
		"--entry-float=false", "--split-channels", "--latency=false")
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "split by channel range:") {
		t.Errorf("stdout does not list the splits:\n%s", stdout)
	}
	// The stem and other convs are split by channel range: more than 113
	// compute layers, all quantized.
	allQuantized := false
	if m := regexp.MustCompile(`quantized (\d+) of (\d+) compute layers`).FindStringSubmatch(stdout); m != nil {
		n, _ := strconv.Atoi(m[1])
		allQuantized = m[1] == m[2] && n > 113
	}
	if !allQuantized {
		t.Errorf("stdout does not say all of more than 113 compute layers are quantized:\n%s", stdout)
	}
	for _, not := range []string{"output error", "entry region", "latency on this CPU"} {
		if strings.Contains(stdout, not) {
			t.Errorf("--entry-float=false --latency=false printed %q:\n%s", not, stdout)
		}
	}
	if md := quantMetadata(t, out); md["edgedet.quant.float_layers"] != "" {
		t.Errorf("metadata float_layers %q, want none", md["edgedet.quant.float_layers"])
	}
}

// A .jpg that does not decode is skipped with a warning naming it; the
// good image calibrates.
func TestQuantizeCLISkipsJunkImage(t *testing.T) {
	dir := calibDir(t, 1)
	if err := os.WriteFile(filepath.Join(dir, "junk.jpg"), []byte("not a jpeg at all"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "int8.onnx")
	stdout, stderr, code := runCLI(t, "quantize", "--model", yoloxPath(t), "--calib", dir, "--out", out, "--max-error", "-1",
		"--method", "minmax", "--profile", "arm")
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	if !strings.Contains(stderr, "junk.jpg") || !strings.Contains(stderr, "WARN") {
		t.Errorf("stderr does not warn about junk.jpg:\n%s", stderr)
	}
	md := quantMetadata(t, out)
	if md["edgedet.quant.calibration_images"] != "1" || md["edgedet.quant.method"] != "minmax" || md["edgedet.quant.profile"] != "arm" {
		t.Errorf("metadata %v, want 1 image, minmax, arm", md)
	}
	if _, ok := md["edgedet.quant.percentile"]; ok {
		t.Errorf("minmax model records a percentile: %v", md)
	}
	if md["edgedet.quant.reduce_range"] != "false" {
		t.Errorf("reduce_range = %q, want false (the default only for --profile cpu)", md["edgedet.quant.reduce_range"])
	}
}

func TestQuantizeCLIErrors(t *testing.T) {
	// A private copy of the model: a broken overwrite check must not
	// destroy the shared one.
	tmp := t.TempDir()
	model := filepath.Join(tmp, "yolox.onnx")
	copyFile(t, yoloxPath(t), model)
	sum := fileSHA256(t, model)
	link := filepath.Join(tmp, "link.onnx")
	if err := os.Symlink(model, link); err != nil {
		t.Fatal(err)
	}
	good := calibDir(t, 1)
	noImages := t.TempDir()
	if err := os.WriteFile(filepath.Join(noImages, "notes.txt"), []byte("no pictures here"), 0o644); err != nil {
		t.Fatal(err)
	}
	onlyJunk := t.TempDir()
	if err := os.WriteFile(filepath.Join(onlyJunk, "bad.png"), []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(tmp, "out.onnx")

	for _, c := range []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"out is the model", []string{"--model", model, "--calib", good, "--out", model}, 1, []string{"never overwritten"}},
		{"out is the model, other spelling", []string{"--model", model, "--calib", good, "--out", tmp + "/./sub/../yolox.onnx"}, 1, []string{"never overwritten"}},
		{"out links to the model", []string{"--model", model, "--calib", good, "--out", link}, 1, []string{"never overwritten"}},
		{"calib dir without images", []string{"--model", model, "--calib", noImages, "--out", out}, 1, []string{noImages, "no images"}},
		{"calib dir with only junk", []string{"--model", model, "--calib", onlyJunk, "--out", out}, 1, []string{onlyJunk, "bad.png"}},
		{"already quantized", []string{"--model", testenv.Shared(t, "models", "yolov8n_int8qdq_320.onnx"), "--calib", good, "--out", out}, 1, []string{"already quantized", "QuantizeLinear"}},
		{"missing --calib", []string{"--model", model, "--out", out}, 2, []string{"--calib"}},
		{"missing --out", []string{"--model", model, "--calib", good}, 2, []string{"--out"}},
		{"bad method", []string{"--model", model, "--calib", good, "--out", out, "--method", "kl"}, 2, []string{`"kl"`}},
		{"bad profile", []string{"--model", model, "--calib", good, "--out", out, "--profile", "gpu"}, 2, []string{`"gpu"`}},
		{"bad float weights", []string{"--model", model, "--calib", good, "--out", out, "--float-weights", "int4"}, 2, []string{"--float-weights", `"int4"`}},
		{"bad if-slower", []string{"--model", model, "--calib", good, "--out", out, "--if-slower", "fp32"}, 2, []string{"--if-slower", `"fp32"`}},
		{"unknown exclude", []string{"--model", model, "--calib", good, "--out", out, "--max-error", "-1", "--exclude", "/no/such/Conv"}, 1, []string{`"/no/such/Conv"`}},
		{"missing model", []string{"--model", filepath.Join(tmp, "none.onnx"), "--calib", good, "--out", out}, 1, []string{"none.onnx"}},
		{"unknown format", []string{"--model", model, "--calib", good, "--out", out, "--format", "yolo9"}, 1, []string{`format: "yolo9" is not one of`}},
		{"missing eval dir", []string{"--model", model, "--calib", good, "--out", out, "--eval", filepath.Join(tmp, "no-labels")}, 1, []string{"--eval", "no-labels"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			stdout, stderr, code := runCLI(t, append([]string{"quantize"}, c.args...)...)
			if code != c.code {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, c.code, stdout, stderr)
			}
			for _, w := range c.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr does not mention %q:\n%s", w, stderr)
				}
			}
			if strings.Contains(stdout, "wrote") {
				t.Errorf("stdout says a model was written:\n%s", stdout)
			}
		})
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("a failed run left %s behind (stat: %v)", out, err)
	}
	if got := fileSHA256(t, model); got != sum {
		t.Error("the input model was modified")
	}
}

// TestQuantizeCLICameraCalibration calibrates on frames captured from a
// camera of the agent config (here a video file camera).
func TestQuantizeCLICameraCalibration(t *testing.T) {
	clip := sampleClip(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "agent.toml")
	text := "[detector]\nmodel = " + strconv.Quote(yoloxPath(t)) + "\n\n[mqtt]\nbroker = \"tcp://127.0.0.1:1883\"\ndevice = \"t\"\n\n" +
		"[[camera]]\nname = \"porch\"\nsource = " + strconv.Quote(clip) + "\nrealtime = false\n"
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "int8.onnx")
	stdout, stderr, code := runCLI(t, "quantize", "--model", yoloxPath(t), "--calib", "porch", "-c", cfg, "--frames", "4",
		"--max-error", "-1", "--out", out)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	if md := quantMetadata(t, out); md["edgedet.quant.calibration_images"] != "4" {
		t.Errorf("calibration_images = %q, want 4 (frames from the camera)", md["edgedet.quant.calibration_images"])
	}
	_, stderr, code = runCLI(t, "quantize", "--model", yoloxPath(t), "--calib", "garage", "-c", cfg, "--out", filepath.Join(dir, "x.onnx"))
	if code != 1 || !strings.Contains(stderr, `"garage"`) || !strings.Contains(stderr, "porch") {
		t.Errorf("unknown camera: exit %d, stderr %q; want an error naming it and the cameras there are", code, stderr)
	}
}

// --reduce-range defaults to 7-bit weights for the cpu profile, except on
// an x86 CPU with VNNI; other profiles never reduce.
func TestDefaultReduceRange(t *testing.T) {
	x86 := func(flags ...string) platforms.Board {
		return platforms.Board{Kind: "x86_64", Arch: "x86_64", CPUFlags: flags}
	}
	for _, c := range []struct {
		name    string
		board   platforms.Board
		profile quant.Profile
		want    bool
	}{
		{"x86 AVX2", x86("avx", "avx2", "fma"), quant.ProfileCPU, true},
		{"x86 AVX-512 VNNI", x86("avx2", "avx512f", "avx512_vnni"), quant.ProfileCPU, false},
		{"x86 AVX-VNNI", x86("avx2", "avx_vnni"), quant.ProfileCPU, false},
		{"arm64, cpu profile", platforms.Board{Kind: "raspberrypi", Arch: "arm64", CPUFlags: []string{"asimd", "asimddp"}}, quant.ProfileCPU, true},
		{"unknown CPU", platforms.Board{Kind: "unknown"}, quant.ProfileCPU, true},
		{"arm profile", x86("avx2"), quant.ProfileARM, false},
		{"tensorrt profile", x86("avx2"), quant.ProfileTensorRT, false},
	} {
		if got := defaultReduceRange(c.board, c.profile); got != c.want {
			t.Errorf("%s: defaultReduceRange = %v, want %v", c.name, got, c.want)
		}
	}
}

// The latency line names what was measured; a weights-only model gets no
// INT8 warning, an INT8 model that is slower does.
func TestPrintQuantLatency(t *testing.T) {
	l := &quant.LatencyReport{FP32Ms: 5, INT8Ms: 5.1, Ratio: 1.02, Threads: 1, CPU: "x86-64 with VNNI", Expected: 0.6}
	var b strings.Builder
	printQuantLatency(&b, l, false)
	if got := b.String(); !strings.Contains(got, "INT8 5.10 ms, FP32 5.00 ms median inference = 1.02x FP32") || !strings.Contains(got, "warning: the INT8 model is not faster") {
		t.Errorf("INT8, slower:\n%s", got)
	}
	b.Reset()
	printQuantLatency(&b, l, true)
	if got := b.String(); !strings.Contains(got, "weights-only 5.10 ms, FP32 5.00 ms") || strings.Contains(got, "warning") || !strings.Contains(got, "computes in float") {
		t.Errorf("weights-only:\n%s", got)
	}
}

// TestQuantizeStageBarsPiped checks what `edgedet quantize 2>log` leaves in
// the log: one plain line per stage, in stage order, including a stage
// that stopped before its total (the bisecting search does), and no
// carriage returns.
func TestQuantizeStageBarsPiped(t *testing.T) {
	var buf strings.Builder
	progressFn, finish := stageBars(&buf)
	for i := range 3 {
		progressFn("calibrate", i+1, 3)
	}
	progressFn("sensitivity", 1, 2)
	progressFn("sensitivity", 2, 2)
	progressFn("search", 4, 8)
	progressFn("search", 2, 8)
	finish()
	finish() // idempotent
	out := buf.String()
	re := regexp.MustCompile(`^calibrate: 3/3 steps in \S+\nsensitivity: 2/2 steps in \S+\nsearch: 2/8 steps in \S+\n$`)
	if strings.Contains(out, "\r") || !re.MatchString(out) {
		t.Errorf("stage lines:\n%q\nwant one plain line per stage, in order, ending in a newline", out)
	}
}

// A blind detection metric (a misread output format) ends the report with
// a warning that names the way out.
func TestPrintQuantReportMetricBlind(t *testing.T) {
	for _, blind := range []bool{true, false} {
		var b strings.Builder
		printQuantReport(&b, "in.onnx", "out.onnx", &quant.Report{CustomMetric: true, MetricBlind: blind, ErrorAll: 0.999, EntryErrors: []float64{0.999, 0.991, 0.995}})
		got := b.String()
		warned := strings.Contains(got, "warning: the INT8 detections agree with almost none") && strings.Contains(got, "(best output error 0.991)") && strings.Contains(got, "--format")
		if warned != blind {
			t.Errorf("blind %v: report warns %v:\n%s", blind, warned, got)
		}
	}
	// A report without the entry curve (as a hand-made JSON report may be)
	// still prints, without the figure.
	var b strings.Builder
	printQuantReport(&b, "in.onnx", "out.onnx", &quant.Report{CustomMetric: true, MetricBlind: true})
	if got := b.String(); !strings.Contains(got, "warning: the INT8 detections agree with almost none of FP32's whatever stays float: ") {
		t.Errorf("blind without an entry curve:\n%s", got)
	}
}
