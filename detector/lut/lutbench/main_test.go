package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/edgedet/edgedet/detector/lut"
	"github.com/edgedet/edgedet/internal/testenv"
)

func TestRunRejectsBadFlags(t *testing.T) {
	for _, args := range [][]string{{"-threads", "0"}, {"-threads", "x"}, {"-nope"}} {
		var out, errOut bytes.Buffer
		if code := run(args, &out, &errOut); code != 2 {
			t.Errorf("%v: exit %d, want 2 (stderr %q)", args, code, errOut.String())
		}
	}
}

func TestRunRejectsBadModelSpec(t *testing.T) {
	lib := testenv.ORTLibrary(t)
	var out, errOut bytes.Buffer
	if code := run([]string{"-ort-lib", lib, "-int8", "no-equals-sign"}, &out, &errOut); code != 1 ||
		!strings.Contains(errOut.String(), "want name=path") {
		t.Fatalf("exit %d, stderr %q", code, errOut.String())
	}
}

// TestSummarise: per operator type, the sum over its nodes of each node's
// median time, so one preempted run does not count.
func TestSummarise(t *testing.T) {
	profile := `[
 {"cat":"Session","name":"model_run","dur":100},
 {"cat":"Node","name":"a_kernel_time","dur":10,"args":{"op_name":"Conv"}},
 {"cat":"Node","name":"a_kernel_time","dur":12,"args":{"op_name":"Conv"}},
 {"cat":"Node","name":"a_kernel_time","dur":9000,"args":{"op_name":"Conv"}},
 {"cat":"Node","name":"b_kernel_time","dur":1000,"args":{"op_name":"Lut"}},
 {"cat":"Node","name":"b_kernel_time","dur":1000,"args":{"op_name":"Lut"}},
 {"cat":"Node","name":"b_kernel_time","dur":1000,"args":{"op_name":"Lut"}},
 {"cat":"Node","name":"b_fence_before","dur":5000,"args":{"op_name":"Lut"}}
]`
	path := filepath.Join(t.TempDir(), "p.json")
	if err := os.WriteFile(path, []byte(profile), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := summarise(&out, "v", path); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); !strings.Contains(got, "kernels 1.01 ms: Lut 1.00, Conv 0.01") {
		t.Fatalf("summary %q", got)
	}
	if err := os.WriteFile(path, []byte(`[]`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := summarise(&out, "v", path); err == nil {
		t.Fatal("no error for a profile without nodes")
	}
	if err := os.WriteFile(path, []byte(`{"cat":`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := summarise(&out, "v", path); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("truncated profile: err %v, want one naming the file", err)
	}
	if err := summarise(&out, "v", path+".missing"); err == nil {
		t.Error("no error for a missing profile")
	}
}

// TestRunOnYOLOX runs the whole benchmark once, briefly, on the FP32 YOLOX
// nano, also given as the "INT8" model: it has no activation to rewrite, so
// every variant loads and runs, the rewrites are counted as 0, and the
// comparison, the timing table and the profiles cover each variant.
func TestRunOnYOLOX(t *testing.T) {
	if testing.Short() {
		t.Skip("loads and times a real model")
	}
	lib := testenv.ORTLibrary(t)
	model := testenv.Shared(t, "models", "yolox_nano_416.onnx")
	dog := testenv.Shared(t, "datasets", "samples", "dog.jpg")
	work := t.TempDir()
	common := []string{"-ort-lib", lib, "-fp32", model, "-int8", "same=" + model, "-work", work, "-lut-path", "scalar"}
	var out, errOut bytes.Buffer
	if code := run(append(common, "-image", dog, "-rounds", "2", "-iters", "1", "-threads", "1"), &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	got := out.String()
	for _, want := range []string{
		"lut kernel path scalar",
		"detections on " + dog,
		"rewrites=0",
		"c16 0.8", // the dog, as in detector's tests
		"1 thread(s), 2 rounds x 1 runs; ratio to fp32",
		"  fp32 ", "  same ", "  same+lut ", "  same+lut-post ",
		"1.00x [1.00..1.00]", // fp32 against itself
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	for _, f := range []string{"lutbench-same-pre-optimised.onnx", "lutbench-same-post-reoptimised.onnx"} {
		if _, err := os.Stat(filepath.Join(work, f)); err != nil {
			t.Errorf("optimised model not kept: %v", err)
		}
	}

	profDir := filepath.Join(t.TempDir(), "profiles")
	out.Reset()
	if code := run(append(common, "-profile", profDir), &out, &errOut); code != 0 {
		t.Fatalf("-profile: exit %d: %s", code, errOut.String())
	}
	for _, name := range []string{"fp32", "same", "same+lut", "same+lut-post"} {
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` +kernels [0-9.]+ ms: Conv `).MatchString(out.String()) {
			t.Errorf("-profile: no kernel summary of %s led by Conv:\n%s", name, out.String())
		}
	}
}

// TestRunReportsBadSetups: what cannot run is exit 1 with a message
// saying why.
func TestRunReportsBadSetups(t *testing.T) {
	lib := testenv.ORTLibrary(t)
	model := testenv.Shared(t, "models", "yolox_nano_416.onnx")
	missing := filepath.Join(t.TempDir(), "missing")
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"-ort-lib", ""}, "no ONNX Runtime library"},
		{[]string{"-ort-lib", lib, "-lut-path", "sse9"}, `-lut-path "sse9": unknown`},
		{[]string{"-ort-lib", lib, "-fp32", missing + ".onnx"}, "missing.onnx"},
		{[]string{"-ort-lib", lib, "-int8", "q=" + missing + ".onnx"}, "missing.onnx"},
		{[]string{"-ort-lib", lib, "-fp32", model, "-image", missing + ".jpg"}, "read image " + missing + ".jpg"},
		{[]string{"-ort-lib", missing + ".so"}, "load onnx runtime " + missing + ".so"},
	}
	for _, p := range lut.Paths {
		if !p.Supported() {
			cases = append(cases, struct {
				args []string
				want string
			}{[]string{"-ort-lib", lib, "-lut-path", p.String()}, "not supported on this CPU"})
		}
	}
	for _, tc := range cases {
		var out, errOut bytes.Buffer
		if code := run(tc.args, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 1 and %q", tc.args, code, errOut.String(), tc.want)
		}
	}
}
