package agent

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgedet/edgedet/internal/readlimit"
	"github.com/edgedet/edgedet/internal/testenv"
)

// minimal is a valid config with one camera reading an existing directory.
func minimal(t *testing.T) (string, string) {
	t.Helper()
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "frames"), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir, `
[detector]
model = "m.onnx"

[mqtt]
broker = "tcp://127.0.0.1:1883"
device = "box1"

[[camera]]
name = "front"
source = "frames"
`
}

func TestParseResolvesAndDefaults(t *testing.T) {
	dir, text := minimal(t)
	cfg, err := Parse([]byte(text), dir)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Detector.Model != filepath.Join(dir, "m.onnx") {
		t.Errorf("model path not resolved against the config dir: %s", cfg.Detector.Model)
	}
	if cfg.Cameras[0].Source != filepath.Join(dir, "frames") {
		t.Errorf("camera source not resolved: %s", cfg.Cameras[0].Source)
	}
	if cfg.Detector.ScoreThreshold != 0.25 || cfg.Detector.IoUThreshold != 0.45 || cfg.MQTT.QoS != 1 {
		t.Errorf("defaults not applied: score %v iou %v qos %v", cfg.Detector.ScoreThreshold, cfg.Detector.IoUThreshold, cfg.MQTT.QoS)
	}
	if cfg.MQTT.ClientID != "edgedet-box1" {
		t.Errorf("client id should follow the configured device: %q", cfg.MQTT.ClientID)
	}
	if got := cfg.MQTT.Topics().Detections("front"); got != "edgedet/box1/front/detections" {
		t.Errorf("topic %q", got)
	}
	if cfg.Detections.Enabled || cfg.Detections.PublishEmpty {
		t.Errorf("detections defaults (off since events exist): %+v", cfg.Detections)
	}
	if !cfg.Events.Enabled || cfg.Events.Tracker().MinHits != 3 || cfg.Stats.Interval.D() != time.Minute || cfg.Spool.Dir != "" {
		t.Errorf("events/stats/spool defaults: %+v %+v %+v", cfg.Events, cfg.Stats, cfg.Spool)
	}
}

func TestParseExplicitZeroes(t *testing.T) {
	dir, text := minimal(t)
	text = strings.Replace(text, "[mqtt]\n", "[mqtt]\nqos = 0\n", 1)
	text = strings.Replace(text, "[detector]\n", "[detector]\nscore_threshold = 0.0\nthreads = 2\n", 1)
	cfg, err := Parse([]byte(text), dir)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MQTT.QoS != 0 || cfg.Detector.ScoreThreshold != 0 || cfg.Detector.Threads != 2 {
		t.Errorf("explicit values lost: qos %d score %v threads %d", cfg.MQTT.QoS, cfg.Detector.ScoreThreshold, cfg.Detector.Threads)
	}
}

func TestParseSpecKeysInDetectorTable(t *testing.T) {
	dir, text := minimal(t)
	text = strings.Replace(text, "[detector]\n", "[detector]\nformat = \"yolox\"\nchannel_order = \"rgb\"\npad_value = 0\nmean = [1.0, 2.0, 3.0]\n", 1)
	cfg, err := Parse([]byte(text), dir)
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.Detector.Spec
	if s.Format != "yolox" || s.ChannelOrder != "rgb" || s.PadValue == nil || *s.PadValue != 0 || len(s.Mean) != 3 || s.Mean[2] != 3 {
		t.Errorf("model description keys not decoded: %+v", s)
	}
}

func TestParseErrorsNameKeyAndLine(t *testing.T) {
	dir, text := minimal(t)
	cases := []struct {
		name, edit string
		want       []string
	}{
		{"unknown key", strings.Replace(text, "device = \"box1\"", "device = \"box1\"\nbrokr = \"x\"", 1),
			[]string{`unknown key "mqtt.brokr"`, "line 8"}},
		{"unknown table", text + "\n[vault]\nsize = 1\n",
			[]string{`"vault"`, "line 13"}},
		{"bad spool value", text + "\n[spool]\nmax_messages = -5\n",
			[]string{"spool.max_messages", "-5"}},
		{"bad events value", text + "\n[events]\nmin_hits = -1\n",
			[]string{"events.min_hits", "-1"}},
		{"unknown camera key", text + "fsp = 3\n",
			[]string{`"camera.fsp"`, "line 12"}},
		{"wrong type", strings.Replace(text, "model = \"m.onnx\"", "model = \"m.onnx\"\nthreads = \"four\"", 1),
			[]string{"line 4", "threads"}},
		{"bad value", strings.Replace(text, "[mqtt]\n", "[mqtt]\nqos = 3\n", 1),
			[]string{"qos", "3"}},
		{"bad duration", text + "reconnect_min = \"soon\"\n",
			[]string{"line 12", "soon"}},
		{"no camera", text[:strings.Index(text, "[[camera]]")],
			[]string{"no [[camera]]"}},
		{"duplicate camera", text + "[[camera]]\nname = \"front\"\nsource = \"frames\"\n",
			[]string{`camera[1].name: "front" is used twice`}},
		{"camera name not a topic level", strings.Replace(text, `name = "front"`, `name = "front/door"`, 1),
			[]string{`camera[0].name: "front/door"`}},
		{"detector value", strings.Replace(text, "model = \"m.onnx\"", "model = \"m.onnx\"\niou_threshold = 1.5", 1),
			[]string{"detector.iou_threshold: 1.5"}},
		{"log level", text + "\n[log]\nlevel = \"loud\"\n",
			[]string{`log.level: "loud"`}},
		{"http listen", text + "\n[http]\nlisten = \"9464\"\n",
			[]string{`http.listen: "9464"`}},
		{"http live view values", text + "\n[http]\nlive_fps = 0\nlive_quality = 101\nstall_after = \"100ms\"\n",
			[]string{"http.live_fps: 0", "http.live_quality: 101", "http.stall_after: 100ms"}},
		{"motion values", text + "[camera.motion]\nenabled = true\nthreshold = 300\nrecheck = \"5s\"\n",
			[]string{"camera[0].motion.threshold: 300", "camera[0].motion.recheck: 5s must be shorter than events.max_age"}},
		{"regions without motion", text + "[camera.motion]\nregions = true\n",
			[]string{"camera[0].motion.regions: needs motion.enabled"}},
		{"zone with two points", text + "[[camera.zone]]\nname = \"drive\"\npoints = [[0,0],[10,0]]\n",
			[]string{"camera[0].zone[0].points", "2 points"}},
		{"object mask", text + "object_mask = [[[0,0],[10,0]]]\n",
			[]string{"camera[0].object_mask"}},
		{"detector sessions", strings.Replace(text, "model = \"m.onnx\"", "model = \"m.onnx\"\nsessions = 40", 1),
			[]string{"detector.sessions: 40"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.edit), dir)
			if err == nil {
				t.Fatalf("want error for:\n%s", tc.edit)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestLoadNamesFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "absent.toml"))
	if err == nil || !strings.Contains(err.Error(), "absent.toml") {
		t.Fatalf("want error naming the file, got %v", err)
	}
	dir, text := minimal(t)
	path := filepath.Join(dir, "agent.toml")
	os.WriteFile(path, []byte(text+"bogus = 1\n"), 0o644)
	_, err = Load(path)
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "bogus") {
		t.Fatalf("want error naming file and key, got %v", err)
	}
}

// TestSampleConfig keeps the shipped agent.toml valid.
func TestSampleConfig(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "agent.toml"))
	if err != nil {
		t.Fatal(err)
	}
	// The sample's clip is built by setup; check everything but its existence.
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "build"), 0o755)
	os.WriteFile(filepath.Join(dir, "build", "sample.avi"), []byte("x"), 0o644)
	cfg, err := Parse(data, dir)
	if err != nil {
		t.Fatalf("agent.toml: %v", err)
	}
	if !cfg.MQTT.Embedded.Enabled || cfg.MQTT.Broker != "tcp://127.0.0.1:1883" {
		t.Errorf("sample must use the embedded broker: %+v", cfg.MQTT.Embedded)
	}
	if !strings.HasSuffix(cfg.Detector.Model, "yolox_nano_416.onnx") {
		t.Errorf("sample model %s", cfg.Detector.Model)
	}
}

func TestDetectorConfigSizesSlotsForCameras(t *testing.T) {
	cfg := Default()
	cfg.Cameras = make([]CameraConfig, 3)
	if got := cfg.DetectorConfig().Slots; got != 4 {
		t.Errorf("3 cameras, 1 session: %d slots, want 4", got)
	}
	cfg.Detector.Sessions = 2
	if got := cfg.DetectorConfig().Slots; got != 5 {
		t.Errorf("3 cameras, 2 sessions: %d slots, want 5", got)
	}
	if cfg.Detector.Slots != 0 {
		t.Error("DetectorConfig changed the config itself")
	}
}

func TestParseDetectorRuntimeKeys(t *testing.T) {
	dir, text := minimal(t)
	if cfg, err := Parse([]byte(text), dir); err != nil || cfg.Detector.SpinWait || cfg.Detector.Sessions != 0 {
		t.Fatalf("defaults: spin_wait %v, sessions %d, err %v; want off, 0 (one session)", cfg.Detector.SpinWait, cfg.Detector.Sessions, err)
	}
	text = strings.Replace(text, "model = \"m.onnx\"", "model = \"m.onnx\"\nspin_wait = true\nsessions = 2", 1)
	cfg, err := Parse([]byte(text), dir)
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Detector.SpinWait || cfg.Detector.Sessions != 2 || cfg.DetectorConfig().Slots != 3 {
		t.Errorf("spin_wait %v, sessions %d, slots %d", cfg.Detector.SpinWait, cfg.Detector.Sessions, cfg.DetectorConfig().Slots)
	}
}

func TestParseCameraMotionZonesMasks(t *testing.T) {
	dir, text := minimal(t)
	text += `object_mask = [[[0,400],[100,400],[100,480]]]
[camera.motion]
enabled = true
regions = true
threshold = 25
mask = [[[0,0],[200,0],[200,30],[0,30]]]
[[camera.zone]]
name = "drive"
points = [[0,300],[640,300],[640,480],[0,480]]
objects = ["car"]
`
	cfg, err := Parse([]byte(text), dir)
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.Cameras[0]
	if !c.Motion.Enabled || !c.Motion.Regions || c.Motion.Threshold != 25 || len(c.Motion.Masks) != 1 ||
		c.Motion.Recheck.D() != DefaultRecheck || c.Motion.FrameHeight == 0 {
		t.Errorf("motion %+v", c.Motion)
	}
	if len(c.Zones) != 1 || c.Zones[0].Camera != "front" || c.Zones[0].Inertia == 0 || len(c.ObjectMasks) != 1 {
		t.Errorf("zones %+v, masks %v", c.Zones, c.ObjectMasks)
	}
}

func TestLoadBoundsTheFileItReads(t *testing.T) {
	// /dev/zero never ends: an unbounded read would exhaust memory.
	_, err := Load("/dev/zero")
	if err == nil || !strings.Contains(err.Error(), "/dev/zero") || !errors.Is(err, readlimit.ErrTooLarge) {
		t.Fatalf("Load(/dev/zero) = %v, want an ErrTooLarge naming the file", err)
	}
	big := filepath.Join(t.TempDir(), "big.toml")
	if err := os.WriteFile(big, bytes.Repeat([]byte("# padding\n"), MaxConfigSize/10+1), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(big); !errors.Is(err, readlimit.ErrTooLarge) || !strings.Contains(err.Error(), big) {
		t.Fatalf("Load(%d-byte file) = %v, want an ErrTooLarge naming it", MaxConfigSize+10, err)
	}
}

// TestParseCompatFrigate: compat = "frigate" without topic_prefix gets
// Frigate's prefix (an explicit one is kept), and the Frigate layout's
// constraints on camera and zone names are errors naming the key.
func TestParseCompatFrigate(t *testing.T) {
	dir, text := minimal(t)
	frigate := strings.Replace(text, "[mqtt]\n", "[mqtt]\ncompat = \"frigate\"\n", 1)
	cfg, err := Parse([]byte(frigate), dir)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MQTT.TopicPrefix != "frigate" || cfg.MQTT.Topics().Count("front", "dog") != "frigate/front/dog" {
		t.Errorf("prefix %q, count topic %q", cfg.MQTT.TopicPrefix, cfg.MQTT.Topics().Count("front", "dog"))
	}
	explicit := strings.Replace(frigate, "[mqtt]\n", "[mqtt]\ntopic_prefix = \"nvr\"\n", 1)
	if cfg, err := Parse([]byte(explicit), dir); err != nil || cfg.MQTT.TopicPrefix != "nvr" {
		t.Errorf("explicit prefix: %v, %v", cfg, err)
	}
	if cfg, err := Parse([]byte(text), dir); err != nil || cfg.MQTT.TopicPrefix != "edgedet" {
		t.Errorf("native default prefix: %v, %v", cfg, err)
	}

	bad := strings.Replace(text, "[mqtt]\n", "[mqtt]\ncompat = \"frigatte\"\n", 1)
	if _, err := Parse([]byte(bad), dir); err == nil || !strings.Contains(err.Error(), `mqtt.compat: "frigatte"`) {
		t.Errorf("bad compat: %v", err)
	}

	zones := frigate + `
[[camera.zone]]
name = "front"
points = [[0, 0], [10, 0], [10, 10]]

[[camera.zone]]
name = "yard"
points = [[0, 0], [10, 0], [10, 10]]

[[camera]]
name = "events"
source = "frames"

[[camera.zone]]
name = "yard"
points = [[0, 0], [10, 0], [10, 10]]

[[camera.zone]]
name = "stats"
points = [[0, 0], [10, 0], [10, 10]]
`
	_, err = Parse([]byte(zones), dir)
	for _, want := range []string{
		`camera[0].zone[0].name: "front" is also a camera name`,
		`camera[1].name: "events" is a topic of Frigate's own`,
		`camera[1].zone[0].name: "yard" is already camera[0].zone[1].name`,
		`camera[1].zone[1].name: "stats" is a topic of Frigate's own`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not contain %q", err, want)
		}
	}
	// The same zones are fine in edgedet's own layout.
	native := strings.Replace(zones, "compat = \"frigate\"\n", "", 1)
	native = strings.Replace(native, `name = "events"`, `name = "back"`, 1)
	if _, err := Parse([]byte(native), dir); err != nil {
		t.Errorf("native layout: %v", err)
	}
}

func TestParseMotionOffDelay(t *testing.T) {
	dir, text := minimal(t)
	cfg, err := Parse([]byte(text+"[camera.motion]\nenabled = true\n"), dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Cameras[0].Motion.OffDelay.D(); got != DefaultMotionOffDelay {
		t.Errorf("off_delay default %v, want %v", got, DefaultMotionOffDelay)
	}
	_, err = Parse([]byte(text+"[camera.motion]\nenabled = true\noff_delay = \"2h\"\n"), dir)
	if err == nil || !strings.Contains(err.Error(), "camera[0].motion.off_delay: 2h0m0s not in (0s, 1h0m0s]") {
		t.Errorf("off_delay 2h: %v", err)
	}
}
