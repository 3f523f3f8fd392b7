package agent

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/edgedet/edgedet/camera"
	"github.com/edgedet/edgedet/detector"
	"github.com/edgedet/edgedet/platforms"
)

// CheckProblem is one reason a config cannot run: the TOML key, the
// resolved path or value it has, and why.
type CheckProblem struct {
	Key    string // "detector.model", "camera[0].source", "http.listen"
	Value  string // the resolved path or value (secrets masked)
	Reason string
}

func (p CheckProblem) Error() string {
	return fmt.Sprintf("%s = %q: %s", p.Key, p.Value, p.Reason)
}

// CheckReport is what Check found.
type CheckReport struct {
	// Runtime is the ONNX Runtime library that was loaded ("" if none).
	Runtime string
	// Model is the loaded model's resolved description (nil when it did
	// not load): what preprocessing and decoding the agent will use.
	Model *detector.ModelInfo
	// Passed has one line per check that passed, in check order.
	Passed []string
	// Problems are the checks that failed, in check order.
	Problems []CheckProblem
}

// Err joins the problems (nil when there are none).
func (r *CheckReport) Err() error {
	errs := make([]error, len(r.Problems))
	for i, p := range r.Problems {
		errs[i] = p
	}
	return errors.Join(errs...)
}

func (r *CheckReport) fail(key, value, format string, args ...any) {
	r.Problems = append(r.Problems, CheckProblem{Key: key, Value: camera.RedactURL(value), Reason: fmt.Sprintf(format, args...)})
}

func (r *CheckReport) pass(key, value, format string, args ...any) {
	r.Passed = append(r.Passed, fmt.Sprintf("%s = %q: %s", key, camera.RedactURL(value), fmt.Sprintf(format, args...)))
}

// Check proves that cfg (as Load returns it, with the board's plan applied)
// can run here, doing what Run does first without keeping anything: it
// loads ONNX Runtime (unless it is already loaded) and the model in one
// session, and reports its resolved description; checks that the labels
// file, camera devices and files, TLS and password files are readable, that
// the spool and state directories are writable (creating and removing a
// temporary file; a directory that does not exist yet is not created), and
// that the HTTP and embedded-broker addresses are free (listening and
// closing at once). It reports every problem, not only the first; the
// error is CheckReport.Err. Camera URLs, GStreamer pipelines and the
// external broker are not contacted: Run retries them.
func Check(ctx context.Context, cfg *Config, log *slog.Logger) (*CheckReport, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &CheckReport{}
	r.checkModel(cfg, log)
	for i, cam := range cfg.Cameras {
		r.checkCamera(i, cam, cfg.Root)
	}
	r.checkFiles(cfg)
	r.checkDir("spool.dir", cfg.Spool.Dir, "the disk spool")
	r.checkDir("state_dir", cfg.StateDir, "the agent's state")
	r.checkListen(ctx, cfg)
	if !cfg.MQTT.Embedded.Enabled {
		r.pass("mqtt.broker", cfg.MQTT.Broker, "not contacted (run connects, and retries while it is down)")
	}
	return r, r.Err()
}

// checkModel loads ONNX Runtime and the model as Run does (one session).
func (r *CheckReport) checkModel(cfg *Config, log *slog.Logger) {
	dc := cfg.DetectorConfig()
	dc.Sessions, dc.Slots = 1, 1
	if dc.LabelsFile != "" {
		if err := readable(dc.LabelsFile); err != nil {
			r.fail("detector.labels_file", dc.LabelsFile, "%v", err)
			dc.LabelsFile = "" // still check the model
		} else {
			r.pass("detector.labels_file", dc.LabelsFile, "readable")
		}
	}
	if err := readable(dc.Model); err != nil {
		r.fail("detector.model", dc.Model, "%v", err)
		return
	}
	if !detector.RuntimeLoaded() {
		lib, err := platforms.FindONNXRuntime(dc.ONNXRuntimeLibrary)
		if err == nil {
			err = detector.InitRuntime(lib)
		}
		if err != nil {
			r.fail("detector.onnxruntime_library", dc.ONNXRuntimeLibrary, "%v", err)
			return
		}
		defer func() { _ = detector.DestroyRuntime() }()
		r.Runtime = lib
	} else {
		r.Runtime = detector.RuntimeLibrary()
	}
	det, err := detector.New(dc, log)
	if err != nil {
		r.fail("detector.model", dc.Model, "does not load: %v", err)
		return
	}
	info := det.Info()
	if err := det.Close(); err != nil {
		r.fail("detector.model", dc.Model, "closing the session: %v", err)
	}
	r.Model = &info
	r.pass("detector.model", dc.Model, "loads (provider %s)", info.Provider)
}

// checkCamera checks that camera i's device or file exists; URLs and
// pipelines are only named.
func (r *CheckReport) checkCamera(i int, cam CameraConfig, root string) {
	key := fmt.Sprintf("camera[%d].source", i)
	src := cam.Source
	switch kind := cam.WithDefaults().Kind; kind {
	case camera.KindV4L2:
		dev := src
		if allDigits(src) {
			dev = filepath.Join(root, "/dev/video"+src)
		}
		st, err := os.Stat(dev)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			r.fail(key, dev, "no such device (camera %q: is it plugged in? `v4l2-ctl --list-devices` lists them)", cam.Name)
			return
		case err != nil:
			r.fail(key, dev, "%v", err)
			return
		case st.IsDir():
			r.fail(key, dev, "is a directory, not a device")
			return
		case root == "" && st.Mode()&fs.ModeCharDevice == 0:
			r.fail(key, dev, "is not a character device")
			return
		}
		if err := syscall.Access(dev, 0x4|0x2); err != nil { // R_OK|W_OK, as V4L2 opens it
			r.fail(key, dev, "not readable and writable by this user: %v (the service user is in group video)", err)
			return
		}
		r.pass(key, dev, "device exists")
	case camera.KindFile, camera.KindImages:
		check := readable
		if kind == camera.KindImages {
			check = readableDir
		}
		if err := check(src); err != nil {
			r.fail(key, src, "%v", err)
			return
		}
		r.pass(key, src, "%s exists", kind)
	case camera.KindURL:
		r.pass(key, src, "a URL (not opened: run connects and retries)")
	case camera.KindGStreamer:
		r.pass(key, src, "a GStreamer pipeline (not started)")
	case camera.KindCSI:
		board, err := platforms.Detect(os.DirFS("/"))
		if err == nil {
			_, err = platforms.CSIPipeline(board, cam.Width, cam.Height, cam.FPS)
		}
		if err != nil {
			r.fail(key, src, "%v", err)
			return
		}
		r.pass(key, src, "the board's CSI camera")
	default:
		r.fail(key, src, "unknown kind %q", kind)
	}
}

// checkFiles checks that the TLS and password files are readable.
func (r *CheckReport) checkFiles(cfg *Config) {
	files := []struct{ key, path string }{
		{"mqtt.tls.ca_file", cfg.MQTT.TLS.CAFile},
		{"mqtt.tls.cert_file", cfg.MQTT.TLS.CertFile},
		{"mqtt.tls.key_file", cfg.MQTT.TLS.KeyFile},
		{"mqtt.password_file", cfg.MQTT.PasswordFile},
	}
	for i, u := range cfg.MQTT.Embedded.Users {
		files = append(files, struct{ key, path string }{fmt.Sprintf("mqtt.embedded.users[%d].password_file", i), u.PasswordFile})
	}
	for _, f := range files {
		if f.path == "" {
			continue
		}
		if err := readable(f.path); err != nil {
			r.fail(f.key, f.path, "%v", err)
			continue
		}
		r.pass(f.key, f.path, "readable")
	}
}

// checkDir checks that dir can hold files: it creates and removes a
// temporary file in it or, when it does not exist yet, in the nearest
// existing parent (Run creates the rest). Nothing is left behind.
func (r *CheckReport) checkDir(key, dir, what string) {
	if dir == "" {
		return
	}
	at := dir
	for {
		st, err := os.Stat(at)
		if err == nil {
			if !st.IsDir() {
				r.fail(key, dir, "%s is not a directory", at)
				return
			}
			break
		}
		if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR) {
			r.fail(key, dir, "%v", err)
			return
		}
		parent := filepath.Dir(at)
		if parent == at {
			r.fail(key, dir, "no existing parent directory")
			return
		}
		at = parent
	}
	f, err := os.CreateTemp(at, ".edgedet-check-*")
	if err != nil {
		r.fail(key, dir, "not writable for %s: %v", what, err)
		return
	}
	name := f.Name()
	f.Close()
	if err := os.Remove(name); err != nil {
		r.fail(key, dir, "removing the test file: %v", err)
		return
	}
	if at != dir {
		r.pass(key, dir, "does not exist yet; will be created (%s is writable)", at)
		return
	}
	r.pass(key, dir, "writable")
}

// checkListen checks that the HTTP and embedded-broker addresses are free
// by listening on them and closing at once.
func (r *CheckReport) checkListen(ctx context.Context, cfg *Config) {
	type addr struct{ key, addr string }
	var addrs []addr
	if cfg.HTTP.Listen != "" {
		addrs = append(addrs, addr{"http.listen", cfg.HTTP.Listen})
	}
	if cfg.MQTT.Embedded.Enabled {
		addrs = append(addrs, addr{"mqtt.embedded.listen", cfg.MQTT.Embedded.Listen})
	}
	if len(addrs) == 2 && addrs[0].addr == addrs[1].addr && !anyPort(addrs[0].addr) {
		r.fail(addrs[1].key, addrs[1].addr, "the same address as %s", addrs[0].key)
		addrs = addrs[:1]
	}
	var lc net.ListenConfig
	for _, a := range addrs {
		if anyPort(a.addr) {
			r.pass(a.key, a.addr, "any free port")
			continue
		}
		l, err := lc.Listen(ctx, "tcp", a.addr)
		if err != nil {
			reason := err.Error()
			if errors.Is(err, syscall.EADDRINUSE) {
				reason = "address already in use (another edgedet, or a broker such as Mosquitto?): choose another port"
			}
			r.fail(a.key, a.addr, "cannot listen: %s", reason)
			continue
		}
		l.Close()
		r.pass(a.key, a.addr, "free")
	}
}

// anyPort reports whether addr asks for any free port (":0").
func anyPort(addr string) bool {
	_, port, err := net.SplitHostPort(addr)
	return err == nil && port == "0"
}

// readable opens path for reading and closes it; a directory is an error.
func readable(path string) error {
	st, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return errors.New("no such file")
	case err != nil:
		return err
	case st.IsDir():
		return errors.New("is a directory, not a file")
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("not readable: %w", errors.Unwrap(err))
	}
	return f.Close()
}

// readableDir is readable for a directory or a file.
func readableDir(path string) error {
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		f, err := os.Open(path)
		if err != nil {
			return fmt.Errorf("not readable: %w", errors.Unwrap(err))
		}
		return f.Close()
	}
	return readable(path)
}

func allDigits(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}
