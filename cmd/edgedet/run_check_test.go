package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/edgedet/edgedet/internal/testenv"
)

// TestRunCheckRedacts: `run --check` prints the resolved config without the
// passwords in the broker URL, in camera URLs (user info and query) and in
// a GStreamer pipeline.
func TestRunCheckRedacts(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "agent.toml")
	if err := os.WriteFile(cfg, []byte(`
[detector]
model = "`+testenv.Shared(t, "models", "yolox_nano_416.onnx")+`"

[http]
listen = ""

[mqtt]
broker = "tcp://bob:brokerpw@127.0.0.1:1883"
device = "box1"

[[camera]]
name = "door"
source = "rtsp://admin:campw@10.0.0.5:554/s"

[[camera]]
name = "gate"
source = "http://10.0.0.6/video.cgi?user=admin&pwd=querypw"

[[camera]]
name = "yard"
source = "rtspsrc location=rtsp://10.0.0.7/s user-id=admin user-pw=gstpw ! decodebin ! videoconvert ! appsink"
`), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := runCLI(t, "run", "--check", "-c", cfg)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, secret := range []string{"brokerpw", "campw", "querypw", "gstpw"} {
		if strings.Contains(out, secret) {
			t.Errorf("run --check shows %q:\n%s", secret, out)
		}
	}
	for _, want := range []string{"tcp://bob:xxxxx@127.0.0.1:1883", "rtsp://admin:xxxxx@10.0.0.5:554/s", "pwd=xxxxx", "user-pw=xxxxx"} {
		if !strings.Contains(out, want) {
			t.Errorf("run --check lacks %q:\n%s", want, out)
		}
	}
}

// TestRunCheckPrintsResolvedModel: `run --check` loads the model and prints
// what it will use (an Ultralytics export: RGB, 1/255, centred letterbox),
// in its summary and in the resolved configuration, instead of the unset
// keys (format = "", scale = 0.0).
func TestRunCheckPrintsResolvedModel(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "agent.toml")
	if err := os.WriteFile(cfg, []byte(`
[detector]
model = "`+testenv.Shared(t, "models", "yolo11n_int8dyn_320.onnx")+`"
[mqtt]
broker = "tcp://127.0.0.1:1"
[http]
listen = "127.0.0.1:0"
[[camera]]
name = "c"
source = "rtsp://10.0.0.5/s"
`), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := runCLI(t, "run", "--check", "-c", cfg)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{
		"# model: yolo11n_int8dyn_320, yolov8, input 320x320, channels rgb, scale 0.003921569, mean [0 0 0], std [1 1 1], resize letterbox (pad 114), 80 labels, int8, provider cpu",
		`# ok    mqtt.broker = "tcp://127.0.0.1:1": not contacted`,
		"is runnable; resolved configuration:",
		`format = "yolov8"`, "input_width = 320", `channel_order = "rgb"`, "scale = 0.003921569", `resize = "letterbox"`, `precision = "int8"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("run --check output lacks %q:\n%s", want, out)
		}
	}
	for _, unset := range []string{`format = ""\n`, "scale = 0.0\n"} {
		if strings.Contains(out, unset) {
			t.Errorf("run --check prints %s:\n%s", unset, out)
		}
	}
}

// TestRunCheckFails: every problem is on stderr at once, naming the key,
// the resolved path or address and the reason, and the exit status is 1.
func TestRunCheckFails(t *testing.T) {
	dir := t.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	cfg := filepath.Join(dir, "agent.toml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`
state_dir = "state"
[detector]
model = "models/missing.onnx"
[mqtt]
broker = "tcp://127.0.0.1:1"
[http]
listen = %q
[[camera]]
name = "c"
source = %q
kind = "v4l2"
`, l.Addr().String(), filepath.Join(dir, "dev", "video0"))), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := runCLI(t, "run", "--check", "-c", cfg)
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	for _, want := range []string{
		cfg + " cannot run: 3 problems:",
		`detector.model = "` + filepath.Join(dir, "models", "missing.onnx") + `": no such file`,
		`camera[0].source = "` + filepath.Join(dir, "dev", "video0") + `": no such device`,
		`http.listen = "` + l.Addr().String() + `": cannot listen: address already in use`,
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
	if strings.Contains(out, "is runnable") || !strings.Contains(out, "cannot run") {
		t.Errorf("stdout:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(dir, "state")); err == nil {
		t.Error("--check created the state directory")
	}
	if _, errOut, code := runCLI(t, "run", "--root", dir, "-c", cfg); code != 2 || !strings.Contains(errOut, "--root only applies with --check") {
		t.Errorf("--root without --check: exit %d: %s", code, errOut)
	}
}

// installSrc is a source tree for install.sh holding the binary under test
// and the real ONNX Runtime library.
func installSrc(t *testing.T) string {
	t.Helper()
	src := t.TempDir()
	if err := os.MkdirAll(filepath.Join(src, "build", "lib"), 0o755); err != nil {
		t.Fatal(err)
	}
	in, err := os.Open(edgedetBinary(t))
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(filepath.Join(src, "build", "edgedet"), os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(testenv.ORTLibrary(t), filepath.Join(src, "build", "lib", "libonnxruntime.so.1")); err != nil {
		t.Fatal(err)
	}
	return src
}

// install runs platforms/systemd/install.sh staged into stage.
func install(t *testing.T, src, stage string, args ...string) string {
	t.Helper()
	cmd := exec.Command("bash", append([]string{filepath.Join(testenv.RepoRoot(), "platforms", "systemd", "install.sh")}, args...)...)
	cmd.Env = append(os.Environ(), "DESTDIR="+stage, "EDGEDET_INSTALL_NO_SYSTEM=1", "EDGEDET_SRC_DIR="+src, "EDGEDET_DETECT_ROOT="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("install.sh %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// checkStaged runs the staged binary's `run --check --root stage` on the
// staged config.
func checkStaged(t *testing.T, stage string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(filepath.Join(stage, "usr", "bin", "edgedet"), "run", "--check", "--root", stage,
		"-c", filepath.Join(stage, "etc", "edgedet", "agent.toml"))
	return runCmd(t, cmd)
}

// TestInstallThenCheck: install.sh --model into a staging root writes a
// production config that `run --check --root` proves runnable with the
// staged binary, library and model (the target's camera stands in as
// stage/dev/video0), and that fails naming the model file once it is
// removed.
func TestInstallThenCheck(t *testing.T) {
	src, stage := installSrc(t), t.TempDir()
	model := testenv.Shared(t, "models", "yolox_nano_416.onnx")
	out := install(t, src, stage, "--model", model, "--http", freeAddr(t))
	if !strings.Contains(out, "check: "+stage+"/usr/bin/edgedet run --check --root "+stage+" -c "+stage+"/etc/edgedet/agent.toml") {
		t.Errorf("install.sh does not say how to check:\n%s", out)
	}
	if err := os.MkdirAll(filepath.Join(stage, "dev"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(stage, "dev", "video0"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code := checkStaged(t, stage)
	if code != 0 {
		t.Fatalf("run --check on the staged install: exit %d\n%s%s", code, stdout, stderr)
	}
	for _, want := range []string{
		"# onnx runtime: " + stage + "/usr/lib/edgedet/libonnxruntime.so.1",
		"# model: yolox_nano_416, yolox, input 416x416, channels bgr, scale 1,",
		`# ok    camera[0].source = "` + stage + `/dev/video0": device exists`,
		`# ok    spool.dir = "` + stage + `/var/lib/edgedet/spool": does not exist yet`,
		`# ok    mqtt.broker = "tcp://127.0.0.1:1883": not contacted`,
		"is runnable",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("run --check output lacks %q:\n%s", want, stdout)
		}
	}

	staged := filepath.Join(stage, "usr", "share", "edgedet", "models", "yolox_nano_416.onnx")
	if err := os.Remove(staged); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code = checkStaged(t, stage)
	if code != 1 || !strings.Contains(stderr, "cannot run: 1 problem:\n"+`detector.model = "`+staged+`": no such file`) {
		t.Errorf("without the model: exit %d\n%s%s", code, stdout, stderr)
	}
}

// TestInstallEmbeddedBroker: --embedded-broker writes the embedded broker
// on a port nothing listens on (1883 is held here, as a local Mosquitto
// would), with the state directory that keeps its retained messages, and
// the check proves that port free.
func TestInstallEmbeddedBroker(t *testing.T) {
	if l, err := net.Listen("tcp", "127.0.0.1:1883"); err == nil {
		defer l.Close()
	} // else something else holds it already
	src, stage := installSrc(t), t.TempDir()
	install(t, src, stage, "--embedded-broker", "--camera", "rtsp://10.0.0.5/s", "--http", "")
	conf, err := os.ReadFile(filepath.Join(stage, "etc", "edgedet", "agent.toml"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\[mqtt\.embedded\]\n(?:#.*\n)*enabled = true\nlisten = "127\.0\.0\.1:(\d+)"$`).FindSubmatch(conf)
	if m == nil || string(m[1]) == "1883" || strings.Contains(string(conf), "\nbroker = ") ||
		!strings.Contains(string(conf), "\nstate_dir = \"/var/lib/edgedet/state\"\n") {
		t.Fatalf("config:\n%s", conf)
	}
	// No model was given: the check names the file to put there.
	stdout, stderr, code := checkStaged(t, stage)
	want := `detector.model = "` + stage + `/usr/share/edgedet/models/model.onnx": no such file`
	if code != 1 || !strings.Contains(stderr, want) || strings.Contains(stderr, "mqtt.embedded.listen") {
		t.Errorf("exit %d, want only %q:\n%s%s", code, want, stdout, stderr)
	}
	if !strings.Contains(stdout, `# ok    mqtt.embedded.listen = "127.0.0.1:`+string(m[1])+`": free`) {
		t.Errorf("embedded broker port not checked:\n%s", stdout)
	}
}
