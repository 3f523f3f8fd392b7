package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/edgedet/edgedet/internal/testenv"
)

// The end-to-end tests run the real edgedet binary against a real Mosquitto,
// as a user would: a config file, a video clip, a subscriber.

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// coverDirEnv names the directory where the binary the end-to-end tests run
// writes its coverage counters (scripts/cover.sh sets it); when it is unset
// the binary is built without coverage, as fast as before.
const coverDirEnv = "EDGEDET_E2E_COVERDIR"

// buildArgs are the go build arguments for the binary under test.
func buildArgs(out string) []string {
	args := []string{"build", "-o", out}
	if os.Getenv(coverDirEnv) != "" {
		args = append(args, "-cover", "-coverpkg=github.com/edgedet/edgedet/...")
	}
	return append(args, ".")
}

// edgedetBinary builds the binary once per test run.
func edgedetBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "edgedet-e2e-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "edgedet")
		out, err := exec.Command("go", buildArgs(binPath)...).CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// TestMain removes the binary the tests built and fails the run when a
// goroutine a test started is still running afterwards. With coverage
// requested, every binary the tests start inherits GOCOVERDIR, so its
// counters join the unit tests' figures.
func TestMain(m *testing.M) {
	if dir := os.Getenv(coverDirEnv); dir != "" {
		os.Setenv("GOCOVERDIR", dir)
	}
	code := testenv.RunCheckingLeaks(m)
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// sampleClip writes an MJPG clip of dog, horses and person (10 frames each at 10 fps).
func sampleClip(t *testing.T) string {
	t.Helper()
	var imgs []string
	for _, n := range []string{"dog.jpg", "horses.jpg", "person.jpg"} {
		imgs = append(imgs, testenv.Shared(t, "datasets", "samples", n))
	}
	clip := filepath.Join(t.TempDir(), "clip.avi")
	if err := testenv.WriteClip(clip, imgs, 640, 480, 10, 10); err != nil {
		t.Fatal(err)
	}
	return clip
}

type agentProc struct {
	config string // the config file's path
	cmd    *exec.Cmd
	stderr *syncBuffer
	done   chan error
}

// startAgent writes config to a file and runs `edgedet run -c` on it.
func startAgent(t *testing.T, config string) *agentProc {
	t.Helper()
	bin := edgedetBinary(t)
	path := filepath.Join(t.TempDir(), "agent.toml")
	if err := os.WriteFile(path, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	p := &agentProc{config: path, cmd: exec.Command(bin, "run", "-c", path), stderr: &syncBuffer{}, done: make(chan error, 1)}
	p.cmd.Env = append(os.Environ(), "EDGEDET_ORT_LIB="+testenv.ORTLibrary(t))
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("agent log:\n%s", p.stderr.String())
		}
	})
	return p
}

// stop sends SIGTERM and fails the test unless the agent exits cleanly
// within the given time.
func (p *agentProc) stop(t *testing.T, within time.Duration) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		p.done <- err // for Cleanup
		if err != nil {
			t.Fatalf("agent exit after SIGTERM: %v", err)
		}
	case <-time.After(within):
		t.Fatalf("agent did not stop within %v of SIGTERM", within)
	}
}

func agentConfig(broker, model string, cameras string) string {
	return fmt.Sprintf(`
[log]
level = "debug"
publishes = true
stats_interval = "1s"

[detector]
model = %q
score_threshold = 0.3
threads = 1

[detections]
enabled = true

[mqtt]
broker = %q
device = "e2e"
keep_alive = "2s"
connect_timeout = "2s"

[http]
listen = "127.0.0.1:0"

%s`, model, broker, cameras)
}

func clipCamera(name, clip string) string {
	return fmt.Sprintf("[[camera]]\nname = %q\nsource = %q\nloop = true\ndetect_fps = 10\n\n", name, clip)
}

type detectionMsg struct {
	Timestamp  string  `json:"timestamp"`
	Camera     string  `json:"camera"`
	Frame      uint64  `json:"frame"`
	Model      string  `json:"model"`
	Precision  string  `json:"precision"`
	Width      int     `json:"width"`
	Height     int     `json:"height"`
	Inference  float64 `json:"inference_ms"`
	Detections []struct {
		Label   string     `json:"label"`
		ClassID int        `json:"class_id"`
		Score   float64    `json:"score"`
		Box     [4]float64 `json:"box"`
		BoxNorm [4]float64 `json:"box_norm"`
	} `json:"detections"`
}

// waitFor reads messages until match returns true or the deadline passes.
func waitFor(t *testing.T, ch <-chan testenv.Message, d time.Duration, what string, match func(testenv.Message) bool) {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case m := <-ch:
			if match(m) {
				return
			}
		case <-deadline:
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
	}
}

func TestRunPublishesDetectionsAndLastWill(t *testing.T) {
	clip := sampleClip(t)
	broker := testenv.StartMosquitto(t)
	model := testenv.Shared(t, "models", "yolox_nano_416.onnx")
	sub := testenv.Subscribe(t, broker.URL, "edgedet/e2e/#")
	agent := startAgent(t, agentConfig(broker.URL, model, clipCamera("porch", clip)))

	waitFor(t, sub, 30*time.Second, "retained online", func(m testenv.Message) bool {
		return m.Topic == "edgedet/e2e/available" && string(m.Payload) == "online"
	})
	seen := map[string]bool{}
	waitFor(t, sub, 60*time.Second, "dog, horse and person detections", func(m testenv.Message) bool {
		if m.Topic != "edgedet/e2e/porch/detections" {
			return false
		}
		var msg detectionMsg
		if err := json.Unmarshal(m.Payload, &msg); err != nil {
			t.Fatalf("detections payload is not JSON: %v: %s", err, m.Payload)
		}
		if msg.Camera != "porch" || msg.Model != "yolox_nano_416" || msg.Precision != "fp32" ||
			msg.Width != 640 || msg.Height != 480 || msg.Frame == 0 || msg.Inference <= 0 {
			t.Fatalf("bad message header: %s", m.Payload)
		}
		if _, err := time.Parse(time.RFC3339Nano, msg.Timestamp); err != nil {
			t.Fatalf("timestamp %q: %v", msg.Timestamp, err)
		}
		if len(msg.Detections) == 0 {
			t.Fatalf("empty frames must not be published by default: %s", m.Payload)
		}
		for _, d := range msg.Detections {
			if d.Score < 0.3 || d.Box[2] <= d.Box[0] || d.Box[3] <= d.Box[1] || d.BoxNorm[2] > 1 || d.BoxNorm[0] < 0 {
				t.Fatalf("bad detection %+v in %s", d, m.Payload)
			}
			seen[d.Label] = true
		}
		return seen["dog"] && seen["horse"] && seen["person"]
	})
	if !strings.Contains(agent.stderr.String(), "msg=published") {
		t.Error("agent did not log what it published")
	}

	// Kill the agent without a DISCONNECT: the broker publishes the Last Will.
	if err := agent.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, sub, 15*time.Second, "last will offline", func(m testenv.Message) bool {
		return m.Topic == "edgedet/e2e/available" && string(m.Payload) == "offline"
	})
	late := testenv.Subscribe(t, broker.URL, "edgedet/e2e/available")
	waitFor(t, late, 10*time.Second, "retained offline for a late subscriber", func(m testenv.Message) bool {
		return m.Retained && string(m.Payload) == "offline"
	})
}

func TestRunStopsCleanlyOnSIGTERM(t *testing.T) {
	clip := sampleClip(t)
	broker := testenv.StartMosquitto(t)
	sub := testenv.Subscribe(t, broker.URL, "edgedet/e2e/available")
	agent := startAgent(t, agentConfig(broker.URL, testenv.Shared(t, "models", "yolox_nano_416.onnx"), clipCamera("porch", clip)))
	waitFor(t, sub, 30*time.Second, "online", func(m testenv.Message) bool { return string(m.Payload) == "online" })
	agent.stop(t, 15*time.Second)
	waitFor(t, sub, 5*time.Second, "retained stopped", func(m testenv.Message) bool { return string(m.Payload) == "stopped" })
	if !strings.Contains(agent.stderr.String(), "agent stopped") {
		t.Errorf("no 'agent stopped' log line:\n%s", agent.stderr.String())
	}
}

// A broker that is down at start and a camera that cannot be opened must not
// stop the agent: it keeps retrying both, and the working camera reports as
// soon as the broker appears.
func TestRunSurvivesMissingBrokerAndCamera(t *testing.T) {
	clip := sampleClip(t)
	broker := testenv.StartMosquitto(t)
	broker.Stop(t)
	cams := clipCamera("porch", clip) +
		"[[camera]]\nname = \"gate\"\nsource = \"rtsp://127.0.0.1:9/nothing\"\nreconnect_min = \"200ms\"\nreconnect_max = \"500ms\"\n"
	agent := startAgent(t, agentConfig(broker.URL, testenv.Shared(t, "models", "yolox_nano_416.onnx"), cams))

	testenv.Eventually(t, 30*time.Second, "camera gate retrying", func() bool {
		return strings.Contains(agent.stderr.String(), "gate")
	})
	// The agent must keep running with no broker: it logs its stats every
	// second (stats_interval), so wait for two more "mqtt stats" lines
	// saying it is not connected, failing at once if it exits.
	seen := strings.Count(agent.stderr.String(), `msg="mqtt stats" connected=false`)
	testenv.Eventually(t, 30*time.Second, "two more stats intervals without a broker", func() bool {
		select {
		case err := <-agent.done:
			agent.done <- err
			t.Fatalf("agent exited without a broker: %v\n%s", err, agent.stderr.String())
		default:
		}
		return strings.Count(agent.stderr.String(), `msg="mqtt stats" connected=false`) >= seen+2
	})
	broker.Restart(t)
	sub := testenv.Subscribe(t, broker.URL, "edgedet/e2e/#")
	waitFor(t, sub, 60*time.Second, "online and detections after the broker appeared", func(m testenv.Message) bool {
		return m.Topic == "edgedet/e2e/porch/detections"
	})
}

func runCLI(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(edgedetBinary(t), args...)
	cmd.Env = append(os.Environ(), "EDGEDET_ORT_LIB="+testenv.ORTLibrary(t))
	return runCmd(t, cmd)
}

// runCmd runs cmd and returns its output and exit code; a failure to
// start it fails the test.
func runCmd(t *testing.T, cmd *exec.Cmd) (stdout, stderr string, code int) {
	t.Helper()
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return o.String(), e.String(), ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return o.String(), e.String(), 0
}

func TestCLIDetect(t *testing.T) {
	dog := testenv.Shared(t, "datasets", "samples", "dog.jpg")
	out, errOut, code := runCLI(t, "detect", "--model", testenv.Shared(t, "models", "yolo11n_int8dyn_320.onnx"), "--json", dog)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var r imageResult
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("detect --json output: %v\n%s", err, out)
	}
	labels := map[string]bool{}
	for _, d := range r.Detections {
		labels[d.Label] = true
	}
	if !labels["dog"] || !labels["bicycle"] || r.Precision != "int8" || r.Width != 768 {
		t.Errorf("detect --json: %+v", r)
	}
	annotated := filepath.Join(t.TempDir(), "out.png")
	out, errOut, code = runCLI(t, "detect", "--model", testenv.Shared(t, "models", "yolox_nano_416.onnx"), "--out", annotated, dog)
	if code != 0 || !strings.Contains(out, "dog") {
		t.Fatalf("detect text output (exit %d): %s %s", code, out, errOut)
	}
	if st, err := os.Stat(annotated); err != nil || st.Size() < 10000 {
		t.Fatalf("annotated image not written: %v", err)
	}
}

func TestCLIErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.toml")
	os.WriteFile(bad, []byte("[mqtt]\nbrokr = \"tcp://x:1883\"\n"), 0o644)
	csi := filepath.Join(dir, "csi.toml")
	os.WriteFile(csi, []byte(agentConfig("tcp://127.0.0.1:9", testenv.Shared(t, "models", "yolox_nano_416.onnx"),
		"[[camera]]\nname = \"front\"\nsource = \"csi\"\n")), 0o644)
	cases := []struct {
		args []string
		code int
		want []string
	}{
		{[]string{"run", "-c", bad}, 1, []string{"bad.toml", "line 2", `"mqtt.brokr"`}},
		{[]string{"run", "-c", csi}, 1, []string{`camera "front"`, "no CSI camera"}},
		{[]string{"run", "-c", filepath.Join(dir, "none.toml")}, 1, []string{"none.toml"}},
		{[]string{"detect", "--model", filepath.Join(dir, "nope.onnx"), "x.jpg"}, 1, []string{"nope.onnx"}},
		{[]string{"detect", "x.jpg"}, 2, []string{"--model is required"}},
		{[]string{"frobnicate"}, 2, []string{`unknown command "frobnicate"`}},
	}
	for _, tc := range cases {
		_, errOut, code := runCLI(t, tc.args...)
		if code != tc.code {
			t.Errorf("%v: exit %d, want %d (%s)", tc.args, code, tc.code, errOut)
		}
		for _, w := range tc.want {
			if !strings.Contains(errOut, w) {
				t.Errorf("%v: stderr %q does not mention %q", tc.args, errOut, w)
			}
		}
	}
	out, _, code := runCLI(t, "version")
	if code != 0 || !strings.Contains(out, "ONNX Runtime 1.24.1") || !strings.Contains(out, "OpenCV 4.6") {
		t.Errorf("version output: %s", out)
	}
	out, errOut, code := runCLI(t, "run", "--check", "-c", filepath.Join(testenv.RepoRoot(), "agent.toml"))
	if _, err := os.Stat(filepath.Join(testenv.RepoRoot(), "build", "sample.avi")); err == nil {
		// The sample's ports (1883, 9464) may be held on this machine (a
		// Mosquitto service, another test): that is the only failure
		// tolerated here, and it must be reported as such.
		portsOnly := code != 0 && strings.Contains(errOut, "address already in use")
		for _, line := range strings.Split(strings.TrimSpace(errOut), "\n")[1:] { // after "… cannot run: N problems:"
			if !strings.Contains(line, "address already in use") {
				portsOnly = false
			}
		}
		if (code != 0 && !portsOnly) || (code == 0 && (!strings.Contains(out, "is runnable") || !strings.Contains(out, "yolox_nano_416.onnx"))) {
			t.Errorf("run --check agent.toml: exit %d\n%s%s", code, out, errOut)
		}
	}
}

// syncBuffer collects log output (see testenv.Buffer).
type syncBuffer = testenv.Buffer
