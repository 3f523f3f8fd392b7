package agent

import (
	"bytes"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

// TestRedacted: the printable copy masks the MQTT password, passwords in
// the broker URL and in camera URLs (user info, query, GStreamer
// properties), keeps everything else, and leaves the config untouched.
func TestRedacted(t *testing.T) {
	dir, text := minimal(t)
	text = strings.Replace(text, `broker = "tcp://127.0.0.1:1883"`,
		`broker = "tcp://bob:brokerpw@127.0.0.1:1883"`, 1)
	other := strings.Replace(text, `broker = "tcp://bob:brokerpw@127.0.0.1:1883"`,
		`broker = "tcp://127.0.0.1:1883"
username = "bob"
password = "inlinepw"`, 1)
	text += `
[[camera]]
name = "door"
source = "rtsp://admin:campw@10.0.0.5:554/s"

[[camera]]
name = "gate"
source = "http://10.0.0.6/video.cgi?user=admin&password=querypw"

[[camera]]
name = "yard"
source = "rtspsrc location=rtsp://10.0.0.7/s user-id=admin user-pw=gstpw ! decodebin ! videoconvert ! appsink"
`
	cfg, err := Parse([]byte(text), dir)
	if err != nil {
		t.Fatal(err)
	}
	cfg2, err := Parse([]byte(other), dir)
	if err != nil {
		t.Fatal(err)
	}
	cfg.MQTT.Username, cfg.MQTT.Password = cfg2.MQTT.Username, cfg2.MQTT.Password // both kinds in one printout
	orig := cfg.Cameras[1].Source
	r := cfg.Redacted()
	var buf bytes.Buffer
	if err := toml.NewEncoder(&buf).Encode(r); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, secret := range []string{"brokerpw", "inlinepw", "campw", "querypw", "gstpw"} {
		if strings.Contains(out, secret) {
			t.Errorf("printed config shows %q:\n%s", secret, out)
		}
	}
	for _, want := range []string{
		`broker = "tcp://bob:xxxxx@127.0.0.1:1883"`, `password = "xxxxx"`,
		`source = "rtsp://admin:xxxxx@10.0.0.5:554/s"`,
		`source = "http://10.0.0.6/video.cgi?user=admin&password=xxxxx"`,
		`user-id=admin user-pw=xxxxx ! decodebin`,
		`model = "` + dir + `/m.onnx"`, `device = "box1"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("printed config lacks %q:\n%s", want, out)
		}
	}
	if cfg.Cameras[1].Source != orig || cfg.MQTT.Password != "inlinepw" || !strings.Contains(cfg.MQTT.Broker, "brokerpw") {
		t.Errorf("Redacted modified the config: %+v", cfg.MQTT)
	}
	if r.Detector.ScoreThreshold != cfg.Detector.ScoreThreshold || len(r.Cameras) != 4 {
		t.Errorf("Redacted lost values: %+v", r.Detector)
	}
}
