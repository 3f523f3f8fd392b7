package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
}
