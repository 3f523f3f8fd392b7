package agent

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/BurntSushi/toml"
)

// FuzzParse feeds config files to Parse. An accepted config must validate,
// and printing it as TOML (what run --check shows) and parsing that must
// give the same config.
func FuzzParse(f *testing.F) {
	if example, err := os.ReadFile("../agent.toml"); err == nil {
		f.Add(example)
	} else {
		f.Fatal(err)
	}
	f.Add([]byte("[detector]\nmodel = \"m.onnx\"\n[mqtt]\nbroker = \"tcp://127.0.0.1:1883\"\ndevice = \"box1\"\n[[camera]]\nname = \"front\"\nsource = \"frames\"\n"))
	f.Add([]byte("[detector]\nmodel = \"m.onnx\"\nscore_threshold = nan\niou_threshold = inf\n[detector.min_scores]\nperson = -0.0\n[[camera]]\nname = \"a b\"\nsource = \"/dev/video0\"\ndetect_fps = inf\n"))
	f.Add([]byte("[mqtt]\nbroker = \"ssl://user:secret@broker:8883\"\nqos = 3\nkeep_alive = \"-5s\"\n[spool]\nmax_bytes = 9223372036854775807\n"))
	f.Add([]byte("[[camera]]\nname = \"x\"\nsource = \"rtsp://u:p@cam/stream\"\n[camera.zones.door]\npolygon = [[0, 0], [1, 0], [1, 1]]\n"))
	f.Add([]byte("colour = 1\n[log]\nlevel = 3\n"))
	f.Add([]byte("[detector]\nmodel = \"m.onnx\"\n[mqtt]\nbroker = \"tcp://127.0.0.1:1883\"\ndevice = \"box1\"\ncompat = \"frigate\"\n[[camera]]\nname = \"front\"\nsource = \"frames\"\n[camera.motion]\nenabled = true\noff_delay = \"5s\"\n[[camera.zone]]\nname = \"yard\"\npoints = [[0, 0], [10, 0], [10, 10]]\n"))
	base := f.TempDir()
	// The sources the seeds name: a frames directory and agent.toml's clip.
	if err := os.MkdirAll(filepath.Join(base, "frames"), 0o755); err != nil {
		f.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(base, "build"), 0o755); err != nil {
		f.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(base, "build", "sample.avi"), nil, 0o644); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(data, base)
		if err != nil {
			if cfg != nil {
				t.Fatalf("config and error %v", err)
			}
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("accepted config does not validate: %v", err)
		}
		var buf bytes.Buffer
		if err := toml.NewEncoder(&buf).Encode(cfg); err != nil {
			t.Fatalf("print: %v", err)
		}
		again, err := Parse(buf.Bytes(), base)
		if err != nil {
			t.Fatalf("printed config does not parse: %v\n%s", err, buf.Bytes())
		}
		if !reflect.DeepEqual(again, cfg) {
			t.Fatalf("print and parse changed the config:\n%+v\n%+v\n%s", cfg, again, buf.Bytes())
		}
	})
}
