package systemd

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edgedet/edgedet/agent"
)

// fakeSrc builds a source tree with the build/ layout install.sh expects.
func fakeSrc(t *testing.T) string {
	t.Helper()
	src := t.TempDir()
	for _, f := range []struct {
		path string
		data string
		mode fs.FileMode
	}{
		{"build/edgedet", "#!/bin/sh\necho edgedet\n", 0o700},
		{"build/lib/libonnxruntime.so.1", "fake ort", 0o600},
	} {
		p := filepath.Join(src, f.path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(f.data), f.mode); err != nil {
			t.Fatal(err)
		}
	}
	return src
}

// runInstall runs install.sh staged into destdir, on a machine that looks
// like no particular board (an empty EDGEDET_DETECT_ROOT).
func runInstall(t *testing.T, src, destdir string, args ...string) (string, error) {
	t.Helper()
	return runInstallOn(t, t.TempDir(), src, destdir, args...)
}

// runInstallOn is runInstall with --platform auto looking at board files
// under detectRoot.
func runInstallOn(t *testing.T, detectRoot, src, destdir string, args ...string) (string, error) {
	t.Helper()
	if _, err := exec.LookPath("bash"); err != nil {
		t.Fatalf("bash is required: %v", err)
	}
	cmd := exec.Command("bash", append([]string{"install.sh"}, args...)...)
	cmd.Env = append(os.Environ(), "DESTDIR="+destdir, "EDGEDET_INSTALL_NO_SYSTEM=1", "EDGEDET_SRC_DIR="+src, "EDGEDET_DETECT_ROOT="+detectRoot)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

func checkFile(t *testing.T, path string, mode fs.FileMode, contains ...string) string {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatalf("missing: %v", err)
	}
	if st.Mode().Perm() != mode {
		t.Errorf("%s: mode %v, want %v", path, st.Mode().Perm(), mode)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range contains {
		if !strings.Contains(string(b), c) {
			t.Errorf("%s does not contain %q", path, c)
		}
	}
	return string(b)
}

func TestInstallScript(t *testing.T) {
	src := fakeSrc(t)
	dest := t.TempDir()
	out, err := runInstall(t, src, dest)
	if err != nil {
		t.Fatalf("install.sh: %v\n%s", err, out)
	}
	checkFile(t, filepath.Join(dest, "usr/bin/edgedet"), 0o755, "echo edgedet")
	checkFile(t, filepath.Join(dest, "usr/lib/edgedet/libonnxruntime.so.1"), 0o644, "fake ort")
	conf := filepath.Join(dest, "etc/edgedet/agent.toml")
	checkFile(t, conf, 0o644, "\n[spool]\n", `dir = "/var/lib/edgedet/spool"`, "\n"+`state_dir = "/var/lib/edgedet/state"`+"\n")
	unit := checkFile(t, filepath.Join(dest, "etc/systemd/system/edgedet.service"), 0o644,
		"ExecStart=/usr/bin/edgedet run -c /etc/edgedet/agent.toml",
		"Environment=EDGEDET_ORT_LIB=/usr/lib/edgedet/libonnxruntime.so.1")
	orig, _ := os.ReadFile("edgedet.service")
	if unit != string(orig) {
		t.Error("with default prefix the installed unit should equal edgedet.service")
	}
	if _, err := os.Stat(conf + ".dist"); err == nil {
		t.Error("agent.toml.dist written on a fresh install")
	}
	if !strings.Contains(out, "platform: generic (detected") {
		t.Errorf("output does not say which platform was detected:\n%s", out)
	}
	if !strings.Contains(out, "systemctl enable --now edgedet") {
		t.Errorf("output lacks the enable hint:\n%s", out)
	}
	if !strings.Contains(out, "no model installed yet: put a YOLO ONNX model at /usr/share/edgedet/models/model.onnx") {
		t.Errorf("output does not say where the model goes:\n%s", out)
	}
	if st, err := os.Stat(filepath.Join(dest, "usr/share/edgedet/models")); err != nil || !st.IsDir() {
		t.Errorf("models directory not created: %v", err)
	}
	// Nothing outside the expected files (no leftover temp files).
	var files []string
	filepath.WalkDir(dest, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			r, _ := filepath.Rel(dest, p)
			files = append(files, r)
		}
		return nil
	})
	if len(files) != 4 {
		t.Errorf("installed files %q, want 4", files)
	}

	// Second run: the user's edited config survives; the new one goes to .dist.
	mine := []byte("# my config\n[spool]\ndir = \"/srv/spool\"\n")
	if err := os.WriteFile(conf, mine, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(conf, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err = runInstall(t, src, dest)
	if err != nil {
		t.Fatalf("second install.sh: %v\n%s", err, out)
	}
	if b, _ := os.ReadFile(conf); !bytes.Equal(b, mine) {
		t.Errorf("agent.toml overwritten:\n%s", b)
	}
	if st, _ := os.Stat(conf); st.Mode().Perm() != 0o600 {
		t.Errorf("agent.toml mode changed to %v", st.Mode().Perm())
	}
	checkFile(t, conf+".dist", 0o644, `dir = "/var/lib/edgedet/spool"`)
	if !strings.Contains(out, conf+".dist") {
		t.Errorf("output does not say where the sample went:\n%s", out)
	}
	checkFile(t, filepath.Join(dest, "usr/bin/edgedet"), 0o755)
}

func TestInstallScriptPrefixAndConfigDir(t *testing.T) {
	src := fakeSrc(t)
	dest := t.TempDir()
	out, err := runInstall(t, src, dest, "--prefix", "/usr/local", "--config-dir=/opt/edgedet/etc")
	if err != nil {
		t.Fatalf("install.sh: %v\n%s", err, out)
	}
	checkFile(t, filepath.Join(dest, "usr/local/bin/edgedet"), 0o755)
	checkFile(t, filepath.Join(dest, "usr/local/lib/edgedet/libonnxruntime.so.1"), 0o644)
	checkFile(t, filepath.Join(dest, "opt/edgedet/etc/agent.toml"), 0o644)
	checkFile(t, filepath.Join(dest, "etc/systemd/system/edgedet.service"), 0o644,
		"ExecStart=/usr/local/bin/edgedet run -c /opt/edgedet/etc/agent.toml",
		"Environment=EDGEDET_ORT_LIB=/usr/local/lib/edgedet/libonnxruntime.so.1")
}

func TestInstallScriptMissingArtefacts(t *testing.T) {
	for _, missing := range []string{"build/edgedet", "build/lib/libonnxruntime.so.1"} {
		src := fakeSrc(t)
		if err := os.Remove(filepath.Join(src, missing)); err != nil {
			t.Fatal(err)
		}
		dest := t.TempDir()
		out, err := runInstall(t, src, dest)
		if err == nil {
			t.Fatalf("without %s: install.sh succeeded\n%s", missing, out)
		}
		if !strings.Contains(out, missing) || !strings.Contains(out, "run make build first") {
			t.Errorf("without %s: unclear error:\n%s", missing, out)
		}
		if ents, _ := os.ReadDir(dest); len(ents) != 0 {
			t.Errorf("without %s: installed something anyway", missing)
		}
	}
	out, err := runInstall(t, fakeSrc(t), t.TempDir(), "--bogus")
	if err == nil || !strings.Contains(out, "unknown argument: --bogus") {
		t.Errorf("--bogus: err=%v\n%s", err, out)
	}
}

func TestInstallScriptPlatformDropIn(t *testing.T) {
	src := fakeSrc(t)
	dest := t.TempDir()
	dropIn := filepath.Join(dest, "etc/systemd/system/edgedet.service.d/platform.conf")
	want, err := os.ReadFile("dropins/jetson.conf")
	if err != nil {
		t.Fatal(err)
	}
	out, err := runInstall(t, src, dest, "--platform", "jetson")
	if err != nil {
		t.Fatalf("install.sh --platform jetson: %v\n%s", err, out)
	}
	if got := checkFile(t, dropIn, 0o644); got != string(want) {
		t.Errorf("platform.conf is not dropins/jetson.conf:\n%s", got)
	}
	// The user's own drop-in survives switching boards; ours is replaced.
	mine := filepath.Join(filepath.Dir(dropIn), "override.conf")
	if err := os.WriteFile(mine, []byte("[Service]\nNice=5\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := runInstall(t, src, dest, "--platform=rpi-csi"); err != nil {
		t.Fatalf("install.sh --platform=rpi-csi: %v\n%s", err, out)
	}
	want, _ = os.ReadFile("dropins/rpi-csi.conf")
	if got := checkFile(t, dropIn, 0o644); got != string(want) {
		t.Errorf("platform.conf is not dropins/rpi-csi.conf after switching:\n%s", got)
	}
	out, err = runInstall(t, src, dest, "--platform", "generic")
	if err != nil {
		t.Fatalf("install.sh --platform generic: %v\n%s", err, out)
	}
	if _, err := os.Stat(dropIn); err == nil {
		t.Error("platform.conf left behind on --platform generic")
	}
	checkFile(t, mine, 0o644, "Nice=5")

	out, err = runInstall(t, src, t.TempDir(), "--platform", "tpu")
	if err == nil || !strings.Contains(out, "unknown --platform: tpu") {
		t.Errorf("--platform tpu: err=%v\n%s", err, out)
	}
}

func TestInstallScriptDetectsPlatform(t *testing.T) {
	for _, c := range []struct {
		files map[string]string
		want  string
	}{
		{nil, "generic"},
		{map[string]string{"etc/nv_tegra_release": "# R35 (release), REVISION: 4.1\n"}, "jetson"},
		{map[string]string{"proc/device-tree/compatible": "nvidia,p3768-0000+p3767-0005\x00nvidia,tegra234\x00"}, "jetson"},
		{map[string]string{"proc/device-tree/model": "Raspberry Pi 5 Model B Rev 1.0\x00"}, "rpi-csi"},
		{map[string]string{"proc/device-tree/model": "Radxa ROCK 5B\x00"}, "generic"},
		{map[string]string{"dev/nvidiactl": ""}, "nvidia-gpu"},
	} {
		root := t.TempDir()
		for p, data := range c.files {
			if err := os.MkdirAll(filepath.Join(root, filepath.Dir(p)), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(root, p), []byte(data), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		dest := t.TempDir()
		out, err := runInstallOn(t, root, fakeSrc(t), dest)
		if err != nil {
			t.Fatalf("%v: install.sh: %v\n%s", c.files, err, out)
		}
		if !strings.Contains(out, "platform: "+c.want+" (detected") {
			t.Errorf("%v: want platform %s:\n%s", c.files, c.want, out)
		}
		_, err = os.Stat(filepath.Join(dest, "etc/systemd/system/edgedet.service.d/platform.conf"))
		if (c.want == "generic") != os.IsNotExist(err) {
			t.Errorf("%v: platform %s, platform.conf stat: %v", c.files, c.want, err)
		}
	}
}

// TestInstallScriptProductionConfig: the installed config is a valid agent
// config with absolute paths only: the model in /usr/share/edgedet/models,
// the library installed beside it, camera /dev/video0, spool and state in
// /var/lib/edgedet, an external broker on 127.0.0.1:1883, the embedded one
// off.
func TestInstallScriptProductionConfig(t *testing.T) {
	dest := t.TempDir()
	out, err := runInstall(t, fakeSrc(t), dest)
	if err != nil {
		t.Fatalf("install.sh: %v\n%s", err, out)
	}
	cfg := parseInstalled(t, filepath.Join(dest, "etc/edgedet/agent.toml"))
	for _, c := range []struct{ key, got, want string }{
		{"detector.model", cfg.Detector.Model, "/usr/share/edgedet/models/model.onnx"},
		{"detector.onnxruntime_library", cfg.Detector.ONNXRuntimeLibrary, "/usr/lib/edgedet/libonnxruntime.so.1"},
		{"camera[0].source", cfg.Cameras[0].Source, "/dev/video0"},
		{"camera[0].kind", cfg.Cameras[0].Kind, "v4l2"},
		{"spool.dir", cfg.Spool.Dir, "/var/lib/edgedet/spool"},
		{"state_dir", cfg.StateDir, "/var/lib/edgedet/state"},
		{"mqtt.broker", cfg.MQTT.Broker, "tcp://127.0.0.1:1883"},
		{"http.listen", cfg.HTTP.Listen, "127.0.0.1:9464"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.key, c.got, c.want)
		}
	}
	if cfg.MQTT.Embedded.Enabled || cfg.HomeAssistant.Enabled {
		t.Errorf("embedded broker (%v) or Home Assistant discovery (%v) on by default", cfg.MQTT.Embedded.Enabled, cfg.HomeAssistant.Enabled)
	}
	// --broker names another broker (Home Assistant's); --homeassistant
	// turns discovery on.
	dest = t.TempDir()
	if out, err := runInstall(t, fakeSrc(t), dest, "--broker", "tcp://homeassistant.local:1883", "--homeassistant"); err != nil {
		t.Fatalf("install.sh: %v\n%s", err, out)
	}
	cfg = parseInstalled(t, filepath.Join(dest, "etc/edgedet/agent.toml"))
	if cfg.MQTT.Broker != "tcp://homeassistant.local:1883" || !cfg.HomeAssistant.Enabled || strings.Join(cfg.HomeAssistant.Labels, ",") != "person" {
		t.Errorf("--broker --homeassistant: broker %q, discovery %+v", cfg.MQTT.Broker, cfg.HomeAssistant)
	}
	// --prefix moves the model and the library; the config follows.
	dest = t.TempDir()
	if out, err := runInstall(t, fakeSrc(t), dest, "--prefix", "/opt/edgedet", "--camera", "rtsp://cam.lan/s", "--embedded-broker=18830"); err != nil {
		t.Fatalf("install.sh: %v\n%s", err, out)
	}
	cfg = parseInstalled(t, filepath.Join(dest, "etc/edgedet/agent.toml"))
	if cfg.Detector.Model != "/opt/edgedet/share/edgedet/models/model.onnx" ||
		cfg.Detector.ONNXRuntimeLibrary != "/opt/edgedet/lib/edgedet/libonnxruntime.so.1" ||
		cfg.Cameras[0].Source != "rtsp://cam.lan/s" || !cfg.MQTT.Embedded.Enabled ||
		cfg.MQTT.Embedded.Listen != "127.0.0.1:18830" || cfg.MQTT.Broker != "tcp://127.0.0.1:18830" {
		t.Errorf("--prefix /opt/edgedet --camera --embedded-broker=18830: %+v %+v %+v", cfg.Detector, cfg.Cameras[0].Config, cfg.MQTT)
	}
}

// parseInstalled decodes and validates an installed config as the agent
// does (its paths are absolute, so the directory it is read from does not
// matter).
func parseInstalled(t *testing.T, path string) *agent.Config {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := agent.Parse(data, "/nonexistent")
	if err != nil {
		t.Fatalf("installed config does not load: %v\n%s", err, data)
	}
	return cfg
}

// TestInstallScriptModel: --model copies the model, its sidecar and the
// labels file the sidecar names into the models directory and the config
// names it; on an existing config the output says what to change.
func TestInstallScriptModel(t *testing.T) {
	dir := t.TempDir()
	for name, data := range map[string]string{
		"det.onnx":   "fake model",
		"det.toml":   "format = \"yolox\"\nlabels_file = \"det.names\"\n",
		"det.names":  "cat\ndog\n",
		"other.onnx": "another",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	src, dest := fakeSrc(t), t.TempDir()
	out, err := runInstall(t, src, dest, "--model", filepath.Join(dir, "det.onnx"))
	if err != nil {
		t.Fatalf("install.sh: %v\n%s", err, out)
	}
	models := filepath.Join(dest, "usr/share/edgedet/models")
	checkFile(t, filepath.Join(models, "det.onnx"), 0o644, "fake model")
	checkFile(t, filepath.Join(models, "det.toml"), 0o644, `labels_file = "det.names"`)
	checkFile(t, filepath.Join(models, "det.names"), 0o644, "dog")
	if cfg := parseInstalled(t, filepath.Join(dest, "etc/edgedet/agent.toml")); cfg.Detector.Model != "/usr/share/edgedet/models/det.onnx" {
		t.Errorf("detector.model = %q", cfg.Detector.Model)
	}
	if strings.Contains(out, "no model installed") {
		t.Errorf("asks for a model it installed:\n%s", out)
	}

	out, err = runInstall(t, src, dest, "--model", filepath.Join(dir, "other.onnx"))
	if err != nil {
		t.Fatalf("install.sh: %v\n%s", err, out)
	}
	checkFile(t, filepath.Join(models, "other.onnx"), 0o644, "another")
	if !strings.Contains(out, `to use the new model, set [detector] model = "/usr/share/edgedet/models/other.onnx" in /etc/edgedet/agent.toml`) {
		t.Errorf("kept config: output does not say how to use the new model:\n%s", out)
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--model", filepath.Join(dir, "none.onnx")}, "--model " + filepath.Join(dir, "none.onnx") + ": no such file"},
		{[]string{"--model", filepath.Join(dir, "det.names")}, "not an .onnx file"},
		{[]string{"--camera", "video0"}, "--camera must be absolute"},
		{[]string{"--embedded-broker=70000"}, "--embedded-broker=70000: not in 1..65535"},
		{[]string{"--http", "9464"}, "--http must be host:port"},
		{[]string{"--broker", "ha.lan:1883"}, "--broker must be a URL"},
		{[]string{"--broker", "tcp://ha.lan:1883", "--embedded-broker"}, "--broker and --embedded-broker exclude each other"},
	} {
		out, err := runInstall(t, src, t.TempDir(), c.args...)
		if err == nil || !strings.Contains(out, c.want) {
			t.Errorf("%v: err=%v, want %q:\n%s", c.args, err, c.want, out)
		}
	}
}
