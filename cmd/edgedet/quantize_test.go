package main

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

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

func TestQuantizeCLI(t *testing.T) {
	model := yoloxPath(t)
	out := filepath.Join(t.TempDir(), "yolox_int8.onnx")
	stdout, stderr, code := runCLI(t, "quantize", "--model", model, "--calib", calibDir(t, 3), "--out", out, "--max-error", "-1", "--split-channels")
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	for _, want := range []string{"wrote " + out, "mse on 3 frames", "profile cpu", "opset: 11 -> 13", "split by channel range:"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout does not say %q:\n%s", want, stdout)
		}
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
	if strings.Contains(stdout, "output error vs FP32") {
		t.Errorf("--max-error -1 printed a sensitivity result:\n%s", stdout)
	}
	board, err := platforms.Detect(os.DirFS("/"))
	if err != nil {
		t.Fatal(err)
	}
	reduce := strconv.FormatBool(defaultReduceRange(board, quant.ProfileCPU))
	if noVNNI := board.Arch == "x86_64" && !hasVNNI(board); noVNNI != strings.Contains(stdout, "note: this CPU has no VNNI") {
		t.Errorf("CPU without VNNI %v, but the note about it printed %v:\n%s", noVNNI, !noVNNI, stdout)
	}
	md := quantMetadata(t, out)
	for k, want := range map[string]string{
		"edgedet.quant.method":             "mse",
		"edgedet.quant.profile":            "cpu",
		"edgedet.quant.calibration_images": "3",
		"edgedet.quant.source_sha256":      fileSHA256(t, model),
		"edgedet.quant.per_channel":        "true",
		"edgedet.quant.reduce_range":       reduce,
		"edgedet.quant.elementwise":        "false",
		"edgedet.quant.float_layers":       "",
		"edgedet.quant.float_weights":      "int8",
	} {
		if got, ok := md[k]; !ok || got != want {
			t.Errorf("metadata %s = %q (present %v), want %q", k, got, ok, want)
		}
	}
	if got := fileSHA256(t, model); got != md["edgedet.quant.source_sha256"] {
		t.Errorf("the input model changed")
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
		{"unknown exclude", []string{"--model", model, "--calib", good, "--out", out, "--max-error", "-1", "--exclude", "/no/such/Conv"}, 1, []string{`"/no/such/Conv"`}},
		{"missing model", []string{"--model", filepath.Join(tmp, "none.onnx"), "--calib", good, "--out", out}, 1, []string{"none.onnx"}},
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
