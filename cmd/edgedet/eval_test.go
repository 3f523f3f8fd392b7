package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"hash/crc32"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/edgedet/edgedet/internal/testenv"
)

// evalData copies the first n coco128 images with their labels, and
// coco.names, into a temporary dataset directory.
func evalData(t *testing.T, n int) string {
	t.Helper()
	src := testenv.Shared(t, "datasets", "coco128", "train")
	dir := t.TempDir()
	imgs, err := filepath.Glob(filepath.Join(src, "*.jpg"))
	if err != nil || len(imgs) < n {
		t.Fatalf("coco128 has %d images: %v", len(imgs), err)
	}
	slices.Sort(imgs)
	cp := func(from, to string) {
		data, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(to, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, img := range imgs[:n] {
		cp(img, filepath.Join(dir, filepath.Base(img)))
		lbl := strings.TrimSuffix(img, ".jpg") + ".txt"
		cp(lbl, filepath.Join(dir, filepath.Base(lbl)))
	}
	cp(testenv.Shared(t, "datasets", "coco128", "coco.names"), filepath.Join(dir, "coco.names"))
	return dir
}

// statLine reads the value(s) of a summary line such as
// "AP @[ IoU=0.50      | area=   all | maxDets=100 ]   0.512   0.498  -0.014".
func statLine(t *testing.T, out, label string) []float64 {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		if !strings.HasPrefix(line, label) {
			continue
		}
		var vs []float64
		for _, f := range strings.Fields(line[len(label):]) {
			v, err := strconv.ParseFloat(f, 64)
			if err != nil {
				t.Fatalf("line %q: %v", line, err)
			}
			vs = append(vs, v)
		}
		return vs
	}
	t.Fatalf("no line %q in:\n%s", label, out)
	return nil
}

const (
	labelAP   = "AP @[ IoU=0.50:0.95 | area=   all | maxDets=100 ]"
	labelAP50 = "AP @[ IoU=0.50      | area=   all | maxDets=100 ]"
)

func TestCLIEval(t *testing.T) {
	data := evalData(t, 10)
	out := t.TempDir()
	plot, jsonDir := filepath.Join(out, "pr.png"), filepath.Join(out, "coco")
	stdout, stderr, code := runCLI(t, "eval", "--model", testenv.Shared(t, "models", "yolox_nano_416.onnx"),
		"--data", data, "--plot", plot, "--save-json", jsonDir)
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	ap, ap50 := statLine(t, stdout, labelAP), statLine(t, stdout, labelAP50)
	if len(ap50) != 1 || !(ap50[0] > 0 && ap50[0] <= 1) || !(ap[0] > 0 && ap[0] <= ap50[0]) {
		t.Errorf("mAP %v, mAP50 %v: want 0 < mAP <= mAP50 <= 1\n%s", ap, ap50, stdout)
	}
	for _, want := range []string{"yolox_nano_416", "10 images", "file size (MB)", "mean inference (ms)", " person ", "AR @[ IoU=0.50:0.95 | area= large | maxDets=100 ]",
		"wrote " + plot + "\n", "wrote " + filepath.Join(jsonDir, "instances.json") + "\n", "wrote " + filepath.Join(jsonDir, "predictions.json") + "\n"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
	// coco.names spells motorbike, the model motorcycle: one note, not an error.
	if strings.Count(stderr, "spelling only") != 1 || !regexp.MustCompile(`(?m)^10/10 images in \S+$`).MatchString(stderr) {
		t.Errorf("stderr: want one spelling note and the progress line:\n%s", stderr)
	}
	if strings.Contains(stderr, "\r") || !strings.HasSuffix(stderr, "\n") {
		t.Errorf("stderr is a pipe: want plain lines, no carriage return:\n%q", stderr)
	}
	f, err := os.Open(plot)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if cfg, err := png.DecodeConfig(f); err != nil || cfg.Width != 800 {
		t.Errorf("plot: %+v, %v", cfg, err)
	}
	for _, name := range []string{"instances.json", "predictions.json"} {
		var v any
		data, err := os.ReadFile(filepath.Join(jsonDir, name))
		if err != nil || json.Unmarshal(data, &v) != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestCLIEvalCompare(t *testing.T) {
	data := evalData(t, 10)
	a, b := testenv.Shared(t, "models", "yolox_nano_416.onnx"), testenv.Shared(t, "models", "yolo11n_int8dyn_320.onnx")
	stdout, stderr, code := runCLI(t, "eval", "--model", a, "--data", data, "--compare", b)
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	v := statLine(t, stdout, labelAP50)
	if len(v) != 3 || !(v[0] > 0 && v[0] <= 1 && v[1] > 0 && v[1] <= 1) || math.Abs(v[1]-v[0]-v[2]) > 0.0015 {
		t.Errorf("AP50 line %v: want both models in (0,1] and their delta (rounding to 3 places)", v)
	}
	for _, want := range []string{"yolox_nano_416", "yolo11n_int8dyn_320", "delta", "ΔAP50", "int8 320x320", "fp32 416x416", "deltas are B − A",
		"95 % interval of the deltas over 1000 resamples of the 10 images: mAP@.5:.95 "} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
	// Both models use COCO's spelling: the note is said once.
	if n := strings.Count(stderr, "spelling only"); n != 1 {
		t.Errorf("spelling note %d times:\n%s", n, stderr)
	}

	stdout, stderr, code = runCLI(t, "eval", "--model", a, "--data", data, "--compare", b, "--json", "--score", "0.05")
	if code != 0 {
		t.Fatalf("--json: exit %d\n%s", code, stderr)
	}
	var rep evalReport
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("--json output: %v\n%s", err, stdout)
	}
	if len(rep.Models) != 2 || rep.Delta == nil || rep.Images != 10 || rep.ScoreThreshold != 0.05 || rep.IoUThreshold != 0.65 {
		t.Fatalf("report %+v", rep)
	}
	m0, m1 := rep.Models[0], rep.Models[1]
	if d := m1.Summary.AP - m0.Summary.AP; math.Abs(rep.Delta.AP-d) > 1e-12 || m0.SizeBytes != 3713911 || m1.SizeBytes != 2923970 || m0.InferenceMS <= 0 {
		t.Errorf("models %+v / %+v, delta %+v", m0, m1, rep.Delta)
	}
	if iv := rep.DeltaInterval; iv == nil || iv.Resamples != 1000 || !(iv.AP[0] < iv.AP[1] && iv.AP50[0] < iv.AP50[1]) {
		t.Errorf("delta interval %+v: want 1000 resamples and intervals of some width", iv)
	}
	stdout, stderr, code = runCLI(t, "eval", "--model", a, "--data", data, "--compare", b, "--bootstrap", "0")
	if code != 0 || strings.Contains(stdout, "95 % interval") {
		t.Errorf("--bootstrap 0: exit %d, an interval printed:\n%s%s", code, stdout, stderr)
	}
}

// pngHeaderOnly is a PNG whose header is valid (Go reads its size) but
// whose image data is garbage (OpenCV cannot decode it).
func pngHeaderOnly(w, h uint32) []byte {
	var buf bytes.Buffer
	buf.WriteString("\x89PNG\r\n\x1a\n")
	chunk := func(typ string, data []byte) {
		binary.Write(&buf, binary.BigEndian, uint32(len(data)))
		buf.WriteString(typ)
		buf.Write(data)
		binary.Write(&buf, binary.BigEndian, crc32.ChecksumIEEE(append([]byte(typ), data...)))
	}
	ihdr := binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, w), h)
	chunk("IHDR", append(ihdr, 8, 2, 0, 0, 0)) // 8-bit RGB
	chunk("IDAT", []byte("this is not zlib data"))
	chunk("IEND", nil)
	return buf.Bytes()
}

func TestCLIEvalErrors(t *testing.T) {
	model := testenv.Shared(t, "models", "yolox_nano_416.onnx")
	tmp := t.TempDir()
	missing := filepath.Join(tmp, "no-such-dataset")
	noImages := filepath.Join(tmp, "empty")
	os.Mkdir(noImages, 0o755)
	os.WriteFile(filepath.Join(noImages, "readme.txt"), []byte("nothing"), 0o644)

	badImage := evalData(t, 2)
	os.WriteFile(filepath.Join(badImage, "zzz.png"), pngHeaderOnly(64, 48), 0o644)
	badLabel := evalData(t, 2)
	lbls, _ := filepath.Glob(filepath.Join(badLabel, "*.txt"))
	os.WriteFile(lbls[0], []byte("0 0.5 0.5 0.1 0.1\n0 0.5 0.5\n"), 0o644)
	names81 := filepath.Join(tmp, "81.names")
	os.WriteFile(names81, []byte(strings.Repeat("thing\n", 81)), 0o644)

	cases := []struct {
		args []string
		code int
		want []string
	}{
		{[]string{"--data", missing}, 1, []string{missing, "no such file"}},
		{[]string{"--data", noImages}, 1, []string{noImages, "no images"}},
		{[]string{"--data", badImage}, 1, []string{"zzz.png", "cannot decode"}},
		{[]string{"--data", badLabel}, 1, []string{filepath.Base(lbls[0]) + ":2:", "want 5 fields"}},
		{[]string{"--data", badImage, "--names", names81}, 1, []string{"81 classes", "81.names", "has 80"}},
		{[]string{"--data", noImages, "--compare", filepath.Join(tmp, "nope.onnx")}, 1, []string{"--compare", "nope.onnx"}},
		{[]string{}, 2, []string{"--data is required"}},
		{[]string{"--data", noImages, "extra.jpg"}, 2, []string{"unexpected arguments"}},
		{[]string{"--data", noImages, "--bootstrap", "1"}, 2, []string{"--bootstrap 1", "at least 2"}},
		{[]string{"--data", noImages, "--bootstrap", "-5"}, 2, []string{"--bootstrap -5"}},
	}
	for _, tc := range cases {
		_, stderr, code := runCLI(t, append([]string{"eval", "--model", model}, tc.args...)...)
		if code != tc.code {
			t.Errorf("%v: exit %d, want %d\n%s", tc.args, code, tc.code, stderr)
		}
		for _, w := range tc.want {
			if !strings.Contains(stderr, w) {
				t.Errorf("%v: stderr does not mention %q:\n%s", tc.args, w, stderr)
			}
		}
	}

	stdout, stderr, code := runCLI(t, "eval", "-h")
	if code != 0 || !regexp.MustCompile(`score threshold \(eval default 0\.001\)`).MatchString(stderr+stdout) ||
		!strings.Contains(stderr+stdout, "eval default 0.65") || !strings.Contains(stderr+stdout, "--max-det 100") {
		t.Errorf("eval -h (exit %d) does not state the evaluation defaults:\n%s%s", code, stdout, stderr)
	}
	if stdout, _, _ := runCLI(t, "help"); !strings.Contains(stdout, "edgedet eval --model M --data DIR") {
		t.Errorf("usage text lacks eval:\n%s", stdout)
	}
}
