package main

import (
	"encoding/json"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

func TestCLIPlatformText(t *testing.T) {
	out, errOut, code := runCLI(t, "platform")
	if code != 0 {
		t.Fatalf("exit %d: %s\n%s", code, errOut, out)
	}
	t.Logf("\n%s", out)
	for _, want := range []string{"CPUExecutionProvider", "--profile", "threads:", "/dev/video0"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if runtime.GOARCH == "amd64" && !strings.Contains(out, "x86_64") {
		t.Errorf("output lacks x86_64")
	}
}

func TestCLIPlatformJSON(t *testing.T) {
	out, errOut, code := runCLI(t, "platform", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s\n%s", code, errOut, out)
	}
	var r platformReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("platform --json: %v\n%s", err, out)
	}
	if r.Board.Kind == "" || r.Board.LogicalCPUs < 1 || r.Board.PhysicalCores < 1 || r.Plan.Threads != r.Board.PhysicalCores ||
		r.Plan.Profile == "" || r.Plan.CameraHint == "" || r.Library.Path == "" || r.Library.Error != "" {
		t.Errorf("platform --json: %+v", r)
	}
	if !slices.Contains(r.Library.Providers, "CPUExecutionProvider") {
		t.Errorf("library providers %v lack CPUExecutionProvider", r.Library.Providers)
	}
	if runtime.GOARCH == "amd64" {
		if r.Board.Kind != "x86_64" || r.Board.Arch != "x86_64" || r.Plan.Profile != "cpu" {
			t.Errorf("on amd64: board %+v plan %+v", r.Board, r.Plan)
		}
		var names []string
		for _, p := range r.Plan.Providers {
			names = append(names, p.Name)
			if p.Name == "cpu" != p.Available {
				t.Errorf("plan provider %+v: available wrong for the npm library", p)
			}
		}
		if !slices.Equal(names, []string{"openvino", "cpu"}) {
			t.Errorf("plan providers %v", names)
		}
	}
	// The raw JSON has the documented keys.
	var raw map[string]map[string]any
	if err := json.Unmarshal([]byte(out), &raw); err != nil {
		t.Fatal(err)
	}
	for sec, keys := range map[string][]string{
		"board":   {"kind", "arch", "cpu_flags", "physical_cores", "logical_cpus"},
		"library": {"path", "providers"},
		"plan":    {"providers", "profile", "threads", "camera_hint"},
	} {
		for _, k := range keys {
			if _, ok := raw[sec][k]; !ok {
				t.Errorf("JSON %s lacks %q", sec, k)
			}
		}
	}
}

func TestCLIPlatformBadLibrary(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope.so")
	out, errOut, code := runCLI(t, "platform", "--ort-lib", missing)
	if code != 1 || !strings.Contains(errOut, missing) || !strings.Contains(out, "board:") {
		t.Errorf("platform --ort-lib missing: exit %d\nstdout %s\nstderr %s", code, out, errOut)
	}
	_, _, code = runCLI(t, "platform", "extra")
	if code != 2 {
		t.Errorf("platform extra: exit %d, want 2", code)
	}
}
