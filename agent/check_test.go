package agent

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/edgedet/edgedet/detection"
	"github.com/edgedet/edgedet/detector"
	"github.com/edgedet/edgedet/internal/testenv"
)

// writeConfig writes text as agent.toml in dir and loads it.
func writeConfig(t *testing.T, dir, text string) *Config {
	t.Helper()
	path := filepath.Join(dir, "agent.toml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// holdPort listens on a free loopback port until the test ends.
func holdPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l.Addr().String()
}

func dirEntries(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// TestCheckPasses: a runnable config (model, labels, an images camera given
// relative to the file, a spool directory still to be created, an existing
// state directory, an HTTP port) passes every check; the model's resolved
// description is reported, ONNX Runtime is unloaded again and the check
// leaves no file behind.
func TestCheckPasses(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "imgs"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(testenv.Shared(t, "datasets", "samples", "dog.jpg"), filepath.Join(dir, "imgs", "dog.jpg")); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "state")
	if err := os.Mkdir(state, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, dir, fmt.Sprintf(`
state_dir = "state"
[detector]
model = %q
labels_file = %q
onnxruntime_library = %q
[mqtt]
broker = "tcp://127.0.0.1:1"
[spool]
dir = "spool"
[http]
listen = "127.0.0.1:0"
[[camera]]
name = "porch"
source = "imgs"
`, testenv.Shared(t, "models", "yolox_nano_416.onnx"), testenv.Shared(t, "models", "coco.names"), testenv.ORTLibrary(t)))
	rep, err := Check(t.Context(), cfg, nil)
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	m := rep.Model
	if m == nil {
		t.Fatal("no model description")
	}
	if m.Format != detection.FormatYOLOX || m.Spec.InputWidth != 416 || m.Spec.InputHeight != 416 ||
		m.Spec.ChannelOrder != "bgr" || m.Spec.Scale != 1 || m.Spec.Resize != detection.ResizeLetterboxTopLeft ||
		len(m.Labels) != 80 || m.Labels[16] != "dog" || m.Precision != "fp32" || m.Provider != "cpu" {
		t.Errorf("model description: %+v", *m)
	}
	if rep.Runtime != testenv.ORTLibrary(t) {
		t.Errorf("runtime %q", rep.Runtime)
	}
	if detector.RuntimeLoaded() {
		t.Error("ONNX Runtime still loaded after Check")
	}
	for _, want := range []string{
		`detector.labels_file = "` + testenv.Shared(t, "models", "coco.names") + `": readable`,
		`detector.model = "` + testenv.Shared(t, "models", "yolox_nano_416.onnx") + `": loads (provider cpu)`,
		`camera[0].source = "` + filepath.Join(dir, "imgs") + `": images exists`,
		`spool.dir = "` + filepath.Join(dir, "spool") + `": does not exist yet; will be created (` + dir + ` is writable)`,
		`state_dir = "` + state + `": writable`,
		`http.listen = "127.0.0.1:0": any free port`,
	} {
		if !slices.Contains(rep.Passed, want) {
			t.Errorf("passed checks lack %q:\n%s", want, strings.Join(rep.Passed, "\n"))
		}
	}
	if got := dirEntries(t, dir); !slices.Equal(got, []string{"agent.toml", "imgs", "state"}) {
		t.Errorf("check left %q in the config directory", got)
	}
	if got := dirEntries(t, state); len(got) != 0 {
		t.Errorf("check left %q in the state directory", got)
	}
}

// TestCheckReportsEveryProblem: each check that fails is reported, all of
// them at once, naming the key, the resolved path or address and the
// reason.
func TestCheckReportsEveryProblem(t *testing.T) {
	dir := t.TempDir()
	httpAddr, brokerAddr := holdPort(t), holdPort(t)
	if err := os.WriteFile(filepath.Join(dir, "file"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, dir, fmt.Sprintf(`
state_dir = "file/state"
[detector]
model = "missing.onnx"
labels_file = "missing.names"
[mqtt]
[mqtt.embedded]
enabled = true
listen = %q
[spool]
dir = "file/spool"
[http]
listen = %q
[[camera]]
name = "front"
source = %q
kind = "v4l2"
[[camera]]
name = "back"
source = "rtsp://user:secret@10.0.0.9/s"
`, brokerAddr, httpAddr, filepath.Join(dir, "dev", "video0")))
	// Set after Load, which would refuse them: Check sees them missing
	// at run time (deleted, unmounted) just the same.
	cfg.MQTT.TLS.CAFile = filepath.Join(dir, "ca.pem")
	cfg.MQTT.PasswordFile = filepath.Join(dir, "pw")
	rep, err := Check(t.Context(), cfg, nil)
	if err == nil {
		t.Fatal("Check passed")
	}
	want := []CheckProblem{
		{"detector.labels_file", filepath.Join(dir, "missing.names"), "no such file"},
		{"detector.model", filepath.Join(dir, "missing.onnx"), "no such file"},
		{"camera[0].source", filepath.Join(dir, "dev", "video0"), `no such device (camera "front"`},
		{"mqtt.tls.ca_file", filepath.Join(dir, "ca.pem"), "no such file"},
		{"mqtt.password_file", filepath.Join(dir, "pw"), "no such file"},
		{"spool.dir", filepath.Join(dir, "file", "spool"), filepath.Join(dir, "file") + " is not a directory"},
		{"state_dir", filepath.Join(dir, "file", "state"), filepath.Join(dir, "file") + " is not a directory"},
		{"http.listen", httpAddr, "cannot listen: address already in use"},
		{"mqtt.embedded.listen", brokerAddr, "cannot listen: address already in use"},
	}
	if len(rep.Problems) != len(want) {
		t.Errorf("%d problems, want %d:\n%v", len(rep.Problems), len(want), err)
	}
	for i, w := range want {
		if i >= len(rep.Problems) {
			break
		}
		p := rep.Problems[i]
		if p.Key != w.Key || p.Value != w.Value || !strings.HasPrefix(p.Reason, w.Reason) {
			t.Errorf("problem %d: %+v, want %+v", i, p, w)
		}
		if !strings.Contains(err.Error(), p.Error()) {
			t.Errorf("error lacks %q", p.Error())
		}
	}
	if !slices.Contains(rep.Passed, `camera[1].source = "rtsp://user:xxxxx@10.0.0.9/s": a URL (not opened: run connects and retries)`) {
		t.Errorf("URL camera not reported (or its password shown):\n%s", strings.Join(rep.Passed, "\n"))
	}
	if strings.Contains(err.Error(), "secret") {
		t.Errorf("password in the error: %v", err)
	}
}

// TestCheckModelDoesNotLoad: a model file ONNX Runtime rejects and an ONNX
// Runtime library that is not there are reported under their keys.
func TestCheckModelDoesNotLoad(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.onnx")
	if err := os.WriteFile(bad, []byte("not a model"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, dir, fmt.Sprintf(`
[detector]
model = "bad.onnx"
onnxruntime_library = %q
[mqtt]
broker = "tcp://127.0.0.1:1"
[http]
listen = ""
[[camera]]
name = "c"
source = "rtsp://10.0.0.9/s"
`, testenv.ORTLibrary(t)))
	rep, err := Check(t.Context(), cfg, nil)
	if err == nil || len(rep.Problems) != 1 {
		t.Fatalf("want one problem, got %v", err)
	}
	if p := rep.Problems[0]; p.Key != "detector.model" || p.Value != bad || !strings.HasPrefix(p.Reason, "does not load: ") {
		t.Errorf("problem %+v", p)
	}
	if rep.Model != nil {
		t.Error("a model description for a model that did not load")
	}

	cfg.Detector.ONNXRuntimeLibrary = filepath.Join(dir, "libonnxruntime.so.1")
	rep, _ = Check(t.Context(), cfg, nil)
	if len(rep.Problems) != 1 || rep.Problems[0].Key != "detector.onnxruntime_library" ||
		rep.Problems[0].Value != cfg.Detector.ONNXRuntimeLibrary || !strings.Contains(rep.Problems[0].Reason, "no such file") {
		t.Errorf("missing library: %v", rep.Err())
	}
}

// TestCheckDevices: a V4L2 source is checked by its device node, given as a
// path or an index; under a root (a staged install) any file stands for it.
func TestCheckDevices(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "dev"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "dev", "video0"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	r := &CheckReport{}
	r.checkCamera(0, CameraConfig{}.withSource("cam", "0", ""), root)
	r.checkCamera(1, CameraConfig{}.withSource("cam", filepath.Join(root, "dev", "video0"), "v4l2"), root)
	if len(r.Problems) != 0 || len(r.Passed) != 2 || !strings.Contains(r.Passed[0], filepath.Join(root, "dev", "video0")) {
		t.Errorf("staged devices: passed %q, problems %v", r.Passed, r.Err())
	}
	// Without a root a regular file is not a camera.
	r = &CheckReport{}
	r.checkCamera(0, CameraConfig{}.withSource("cam", filepath.Join(root, "dev", "video0"), "v4l2"), "")
	if len(r.Problems) != 1 || r.Problems[0].Reason != "is not a character device" {
		t.Errorf("regular file as a device: %v", r.Err())
	}
	r = &CheckReport{}
	r.checkCamera(0, CameraConfig{}.withSource("cam", "/dev/null", "v4l2"), "")
	if len(r.Problems) != 0 {
		t.Errorf("/dev/null (a character device): %v", r.Err())
	}
}

func (c CameraConfig) withSource(name, src, kind string) CameraConfig {
	c.Name, c.Source, c.Kind = name, src, kind
	return c.WithDefaults()
}

// TestLoadRootResolvesUnderRoot: with a root, the file's absolute paths are
// looked up under it (a V4L2 device keeps its kind), relative ones beside
// the file as always.
func TestLoadRootResolvesUnderRoot(t *testing.T) {
	root := t.TempDir()
	etc := filepath.Join(root, "etc", "edgedet")
	if err := os.MkdirAll(etc, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(etc, "agent.toml")
	if err := os.WriteFile(path, []byte(`
state_dir = "/var/lib/edgedet/state"
[detector]
model = "/usr/share/edgedet/models/m.onnx"
labels_file = "m.names"
onnxruntime_library = "/usr/lib/edgedet/libonnxruntime.so.1"
[mqtt]
broker = "tcp://127.0.0.1:1883"
[spool]
dir = "/var/lib/edgedet/spool"
[[camera]]
name = "c"
source = "/dev/video0"
`), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadRoot(path, root)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ got, want string }{
		{cfg.StateDir, root + "/var/lib/edgedet/state"},
		{cfg.Spool.Dir, root + "/var/lib/edgedet/spool"},
		{cfg.Detector.Model, root + "/usr/share/edgedet/models/m.onnx"},
		{cfg.Detector.LabelsFile, etc + "/m.names"},
		{cfg.Detector.ONNXRuntimeLibrary, root + "/usr/lib/edgedet/libonnxruntime.so.1"},
		{cfg.Cameras[0].Source, root + "/dev/video0"},
		{cfg.Cameras[0].Kind, "v4l2"},
		{cfg.Root, root},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
	cfg, err = Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Detector.Model != "/usr/share/edgedet/models/m.onnx" || cfg.Cameras[0].Source != "/dev/video0" || cfg.Root != "" {
		t.Errorf("Load without root: %q %q %q", cfg.Detector.Model, cfg.Cameras[0].Source, cfg.Root)
	}
}

// TestLoadRelativePathIsAbsolute: a config named relative to the working
// directory resolves its relative paths to absolute ones, so run and
// --check name the file that is really opened.
func TestLoadRelativePathIsAbsolute(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "agent.toml"), []byte(`
[detector]
model = "../models/m.onnx"
[mqtt]
broker = "tcp://127.0.0.1:1883"
[[camera]]
name = "c"
source = "/dev/video0"
`), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	cfg, err := Load("agent.toml")
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(filepath.Dir(dir), "models", "m.onnx"); cfg.Detector.Model != want {
		t.Errorf("model %q, want %q", cfg.Detector.Model, want)
	}
}
