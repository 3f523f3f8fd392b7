package platforms

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"
)

func TestDetectFixtures(t *testing.T) {
	cases := []struct {
		dir  string
		want Board
	}{
		{"rpi4", Board{Kind: "raspberrypi", Model: "Raspberry Pi 4 Model B Rev 1.4", Family: "4", Arch: "arm64",
			CPUFlags: []string{"asimd"}, PhysicalCores: 4, LogicalCPUs: 4}},
		{"rpi4-no-devicetree", Board{Kind: "raspberrypi", Model: "Raspberry Pi 4 Model B Rev 1.4", Family: "4", Arch: "arm64",
			CPUFlags: []string{"asimd"}, PhysicalCores: 4, LogicalCPUs: 4}},
		{"rpi5", Board{Kind: "raspberrypi", Model: "Raspberry Pi 5 Model B Rev 1.0", Family: "5", Arch: "arm64",
			CPUFlags: []string{"asimd", "asimdhp", "asimddp"}, PhysicalCores: 4, LogicalCPUs: 4}},
		{"jetson-orin-nano", Board{Kind: "jetson", Model: "NVIDIA Jetson Orin Nano Developer Kit", Family: "orin", L4T: "R36.3.0",
			Arch: "arm64", CPUFlags: []string{"asimd", "asimdhp", "asimddp"}, PhysicalCores: 6, LogicalCPUs: 6}},
		{"jetson-nano-tegra-only", Board{Kind: "jetson", Family: "nano", L4T: "R32.7.1", Arch: "arm64", CPUFlags: []string{}}},
		{"arm64-generic", Board{Kind: "arm64", Model: "Rockchip RK3588 EVB1 LP4 V10 Board", Arch: "arm64",
			CPUFlags: []string{"asimd", "asimdhp", "asimddp"}, PhysicalCores: 8, LogicalCPUs: 8}},
		{"x86-avx2", Board{Kind: "x86_64", Model: "AMD EPYC", Arch: "x86_64",
			CPUFlags: []string{"avx", "avx2", "fma", "f16c"}, PhysicalCores: 2, LogicalCPUs: 2}},
		{"x86-avx512vnni", Board{Kind: "x86_64", Model: "Intel(R) Xeon(R) Platinum 8259CL CPU @ 2.50GHz", Arch: "x86_64",
			CPUFlags: []string{"avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512_vnni"}, PhysicalCores: 2, LogicalCPUs: 4}},
		{"x86-zen4", Board{Kind: "x86_64", Model: "AMD EPYC", Arch: "x86_64",
			CPUFlags: []string{"avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vbmi", "avx512_vnni"}, PhysicalCores: 2, LogicalCPUs: 2}},
		{"empty", Board{Kind: "unknown", CPUFlags: []string{}}},
	}
	for _, c := range cases {
		t.Run(c.dir, func(t *testing.T) {
			got, err := Detect(os.DirFS(filepath.Join("testdata", c.dir)))
			if err != nil {
				t.Fatalf("Detect: %v", err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("Detect(%s)\n got  %+v\n want %+v", c.dir, got, c.want)
			}
		})
	}
}

func TestDetectOddDeviceTree(t *testing.T) {
	cases := []struct {
		name, model, kind, family, wantModel string
	}{
		{"nul padded", "Raspberry Pi 3 Model B Plus Rev 1.3\x00\x00", "raspberrypi", "3", "Raspberry Pi 3 Model B Plus Rev 1.3"},
		{"newline", "Raspberry Pi Compute Module 4 Rev 1.0\n", "raspberrypi", "4", "Raspberry Pi Compute Module 4 Rev 1.0"},
		{"zero 2", "Raspberry Pi Zero 2 W Rev 1.0\x00", "raspberrypi", "3", "Raspberry Pi Zero 2 W Rev 1.0"},
		{"unknown pi", "Raspberry Pi Model Z\x00", "raspberrypi", "", "Raspberry Pi Model Z"},
		{"xavier", "NVIDIA Jetson Xavier NX Developer Kit\x00", "jetson", "xavier", "NVIDIA Jetson Xavier NX Developer Kit"},
		{"jetson nano", "NVIDIA Jetson Nano Developer Kit\x00", "jetson", "nano", "NVIDIA Jetson Nano Developer Kit"},
		{"agx orin", "Jetson AGX Orin\x00", "jetson", "orin", "Jetson AGX Orin"},
		// An unknown model with no cpuinfo: nothing says what it is.
		{"unknown model", "Acme Widget 9000\x00", "unknown", "", "Acme Widget 9000"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b, err := Detect(fstest.MapFS{DeviceTreeModelPath: {Data: []byte(c.model)}})
			if err != nil {
				t.Fatal(err)
			}
			if b.Kind != c.kind || b.Family != c.family || b.Model != c.wantModel {
				t.Errorf("Detect(%q) = %+v, want kind %q family %q model %q", c.model, b, c.kind, c.family, c.wantModel)
			}
		})
	}
}

func TestDetect32BitARM(t *testing.T) {
	cpuinfo := "processor\t: 0\nmodel name\t: ARMv7 Processor rev 4 (v7l)\nFeatures\t: half thumb fastmult vfp edsp neon vfpv3 tls vfpv4 idiva idivt vfpd32 lpae evtstrm crc32\nCPU architecture: 7\n\n" +
		"processor\t: 1\nmodel name\t: ARMv7 Processor rev 4 (v7l)\nFeatures\t: half thumb fastmult vfp edsp neon vfpv3 tls vfpv4 idiva idivt vfpd32 lpae evtstrm crc32\nCPU architecture: 7\n\n"
	b, err := Detect(fstest.MapFS{
		DeviceTreeModelPath: {Data: []byte("Raspberry Pi 3 Model B Rev 1.2\x00")},
		CPUInfoPath:         {Data: []byte(cpuinfo)},
	})
	if err != nil {
		t.Fatal(err)
	}
	if b.Kind != "raspberrypi" || b.Arch != "arm" || !b.HasFlag("neon") || b.HasFlag("asimd") || b.LogicalCPUs != 2 || b.PhysicalCores != 2 {
		t.Errorf("32-bit Pi 3: %+v", b)
	}
	if p := PlanFor(b); p.Profile != "arm" {
		t.Errorf("32-bit Pi 3 plan: %+v", p)
	}
}

// A file that exists but cannot be read is an error naming it, not a skip.
func TestDetectUnreadable(t *testing.T) {
	fsys := errFS{fstest.MapFS{}, CPUInfoPath, fs.ErrPermission}
	_, err := Detect(fsys)
	if !errors.Is(err, fs.ErrPermission) {
		t.Fatalf("Detect with unreadable cpuinfo: %v", err)
	}
	if got := err.Error(); !strings.Contains(got, "/proc/cpuinfo") {
		t.Errorf("error %q does not name /proc/cpuinfo", got)
	}
}

type errFS struct {
	fstest.MapFS
	name string
	err  error
}

func (f errFS) Open(name string) (fs.File, error) {
	if name == f.name {
		return nil, &fs.PathError{Op: "open", Path: name, Err: f.err}
	}
	return f.MapFS.Open(name)
}

func (f errFS) ReadFile(name string) ([]byte, error) {
	if name == f.name {
		return nil, &fs.PathError{Op: "open", Path: name, Err: f.err}
	}
	return f.MapFS.ReadFile(name)
}
