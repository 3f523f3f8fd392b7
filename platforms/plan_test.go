package platforms

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestPlanFor(t *testing.T) {
	cases := []struct {
		dir       string
		providers []string
		profile   string
		threads   int
		camera    string
	}{
		{"jetson-orin-nano", []string{"tensorrt", "cuda", "cpu"}, "tensorrt", 6, "nvarguscamerasrc"},
		{"rpi4", []string{"xnnpack", "acl", "cpu"}, "arm", 4, "libcamerasrc"},
		{"rpi5", []string{"xnnpack", "acl", "cpu"}, "arm", 4, "libcamerasrc"},
		{"arm64-generic", []string{"xnnpack", "acl", "cpu"}, "arm", 8, "/dev/video0"},
		{"x86-avx2", []string{"openvino", "cpu"}, "cpu", 2, "/dev/video0"},
		{"x86-avx512vnni", []string{"openvino", "cpu"}, "cpu", 2, "/dev/video0"},
		{"empty", []string{"cpu"}, "cpu", 0, "/dev/video0"},
	}
	for _, c := range cases {
		t.Run(c.dir, func(t *testing.T) {
			b, err := Detect(os.DirFS(filepath.Join("testdata", c.dir)))
			if err != nil {
				t.Fatal(err)
			}
			p := PlanFor(b)
			if !reflect.DeepEqual(p.Providers, c.providers) || p.Profile != c.profile || p.Threads != c.threads ||
				!strings.Contains(p.CameraHint, c.camera) || !strings.Contains(p.CameraHint, "V4L2") {
				t.Errorf("PlanFor(%s) = %+v", c.dir, p)
			}
			for _, s := range p.Providers {
				if ORTProviderName(s) == "" {
					t.Errorf("provider %q has no ONNX Runtime name", s)
				}
				if s == "webgpu" || s == "armnn" {
					t.Errorf("plan names %q", s)
				}
			}
		})
	}
}

func TestPlanUsable(t *testing.T) {
	x64 := []string{"TensorrtExecutionProvider", "CUDAExecutionProvider", "WebGpuExecutionProvider", "CPUExecutionProvider"}
	cases := []struct {
		kind  string
		avail []string
		want  []string
	}{
		{KindJetson, x64, []string{"tensorrt", "cuda", "cpu"}},
		{KindJetson, []string{"CPUExecutionProvider"}, []string{"cpu"}},
		{KindRaspberryPi, []string{"CPUExecutionProvider"}, []string{"cpu"}},
		{KindARM64, []string{"XnnpackExecutionProvider", "CPUExecutionProvider"}, []string{"xnnpack", "cpu"}},
		{KindX86_64, x64, []string{"cpu"}},
		{KindX86_64, []string{"OpenVINOExecutionProvider", "CPUExecutionProvider"}, []string{"openvino", "cpu"}},
		{KindX86_64, nil, []string{"cpu"}},
	}
	for _, c := range cases {
		got := PlanFor(Board{Kind: c.kind}).Usable(c.avail)
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s with %v: Usable = %v, want %v", c.kind, c.avail, got, c.want)
		}
	}
}
