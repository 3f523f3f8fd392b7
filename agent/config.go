// Package agent is the edgedet daemon: configuration, the per-camera
// pipeline (capture → preprocess → infer → decode/NMS → publish), MQTT
// reporting and lifecycle.
package agent

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/edgedet/edgedet/agent/mqtt"
	"github.com/edgedet/edgedet/agent/outbox"
	"github.com/edgedet/edgedet/agent/report"
	"github.com/edgedet/edgedet/agent/track"
	"github.com/edgedet/edgedet/agent/zone"
	"github.com/edgedet/edgedet/camera"
	"github.com/edgedet/edgedet/detector"
	"github.com/edgedet/edgedet/internal/cfgtypes"
	"github.com/edgedet/edgedet/internal/readlimit"
	"github.com/edgedet/edgedet/motion"
)

// Config is the whole agent configuration, as read from agent.toml.
type Config struct {
	Log        LogConfig             `toml:"log"`
	Detector   detector.Config       `toml:"detector"`
	MQTT       mqtt.Config           `toml:"mqtt"`
	Detections DetectionsConfig      `toml:"detections"`
	Events     EventsConfig          `toml:"events"`
	Snapshots  report.SnapshotConfig `toml:"snapshots"`
	Stats      StatsConfig           `toml:"stats"`
	Spool      outbox.Config         `toml:"spool"`
	// HomeAssistant publishes MQTT discovery configs for the cameras'
	// controls, motion, counts, occupancy and snapshots (report.Discovery).
	HomeAssistant report.DiscoveryConfig `toml:"homeassistant"`
	// HTTP serves /healthz, Prometheus /metrics and the live view.
	HTTP    HTTPConfig     `toml:"http"`
	Cameras []CameraConfig `toml:"camera"`

	// StateDir holds what the agent keeps across restarts besides the
	// spool: the objects it had open (so an unclean stop still ends them)
	// and the embedded broker's retained messages. "" keeps no state.
	StateDir string `toml:"state_dir"`

	// Path is the file the config was loaded from ("" when built in code).
	Path string `toml:"-"`
	// Root is the directory the file's absolute paths were looked up under
	// (LoadRoot: a staged install checked before it is moved to /); ""
	// for a config that runs here.
	Root string `toml:"-"`
}

// DetectorConfig is the detector section with its job slots sized for the
// cameras: every camera can have a frame preprocessed and waiting while
// each session runs another.
func (c *Config) DetectorConfig() detector.Config {
	d := c.Detector
	d.Slots = len(c.Cameras) + max(1, d.Sessions)
	return d
}

// LogConfig configures logging.
type LogConfig struct {
	// Level is debug, info, warn or error.
	Level string `toml:"level"`
	// Format is text or json.
	Format string `toml:"format"`
	// Publishes logs a line for every message published.
	Publishes bool `toml:"publishes"`
	// StatsInterval is how often per-camera statistics are logged (0 = never).
	StatsInterval cfgtypes.Duration `toml:"stats_interval"`
}

// DetectionsConfig configures the per-frame detections topic.
type DetectionsConfig struct {
	// Enabled publishes <prefix>/<device>/<camera>/detections per processed frame.
	Enabled bool `toml:"enabled"`
	// PublishEmpty also publishes frames in which nothing was detected.
	PublishEmpty bool `toml:"publish_empty"`
	// Retain sets the MQTT retain flag on detection messages.
	Retain bool `toml:"retain"`
}

// EventsConfig configures object tracking and the events, counts and
// snapshots topics.
type EventsConfig struct {
	// Enabled publishes <prefix>/<device>/<camera>/events and the per-label
	// counts <prefix>/<device>/<camera>/<label>.
	Enabled bool `toml:"enabled"`
	// MinHits, MaxAge, IoUMatch and MoveThreshold tune the tracker (see
	// agent/track): frames before an object is reported, time unseen
	// before it ends, association overlap, and the box move worth an update.
	MinHits       int               `toml:"min_hits"`
	MaxAge        cfgtypes.Duration `toml:"max_age"`
	IoUMatch      float32           `toml:"iou_match"`
	MoveThreshold float32           `toml:"move_threshold"`
}

// Tracker returns the tracker configuration.
func (e EventsConfig) Tracker() track.Config {
	return track.Config{MinHits: e.MinHits, MaxAge: e.MaxAge.D(), IoUMatch: e.IoUMatch, MoveThreshold: e.MoveThreshold}.WithDefaults()
}

// StatsConfig configures <prefix>/<device>/stats.
type StatsConfig struct {
	// Interval between stats messages (0 = none).
	Interval cfgtypes.Duration `toml:"interval"`
}

// CameraConfig is one [[camera]] entry: where its frames come from (the
// camera.Config keys) and what the pipeline does with them.
type CameraConfig struct {
	camera.Config
	// Motion gates the detector on motion ([camera.motion]).
	Motion MotionConfig `toml:"motion"`
	// Zones are named areas ([[camera.zone]]); events say which zones an
	// object is in and has entered, and each zone has per-label counts.
	Zones []zone.Config `toml:"zone"`
	// ObjectMasks are polygons, in frame pixels, where detections are
	// dropped (their box's bottom-centre is inside): a parked-car row, a
	// poster of a person.
	ObjectMasks [][]zone.Point `toml:"object_mask"`
}

// MotionConfig is a camera's [camera.motion] table: Frigate's idea of
// running the detector only where something moved.
type MotionConfig struct {
	// Enabled runs the detector only on frames with motion, and, while
	// objects are tracked, at least every Recheck.
	Enabled bool `toml:"enabled"`
	// Regions runs the detector on square crops, at least the model's
	// input size, around the motion and the tracked objects instead of on
	// the whole frame: small distant objects keep their pixels.
	Regions bool `toml:"regions"`
	// Recheck is how often tracked objects that stopped moving are looked
	// at again (default 1s), so a parked car keeps its event open; it must
	// be shorter than events.max_age.
	Recheck cfgtypes.Duration `toml:"recheck"`
	// OffDelay is how long the camera's motion topic stays "ON" after the
	// last frame with motion before it turns "OFF" (default 30s, as
	// Frigate's motion.mqtt_off_delay), so it does not flap every frame.
	OffDelay cfgtypes.Duration `toml:"off_delay"`
	// The motion detector's tuning: threshold, min_area, frame_height,
	// learning_rate, lightning_threshold, and mask (polygons where motion
	// is ignored: timestamps, trees).
	motion.Config
}

// Defaults of MotionConfig.
const (
	DefaultRecheck        = time.Second
	DefaultMotionOffDelay = 30 * time.Second
	// MaxMotionOffDelay bounds off_delay: a typo must not hold "ON" for days.
	MaxMotionOffDelay = time.Hour
)

// WithDefaults fills the camera's, its motion's and its zones' defaults.
func (c CameraConfig) WithDefaults() CameraConfig {
	c.Config = c.Config.WithDefaults()
	c.Motion.Config = c.Motion.Config.WithDefaults()
	if c.Motion.Recheck == 0 {
		c.Motion.Recheck = cfgtypes.Duration(DefaultRecheck)
	}
	if c.Motion.OffDelay == 0 {
		c.Motion.OffDelay = cfgtypes.Duration(DefaultMotionOffDelay)
	}
	zones := make([]zone.Config, len(c.Zones))
	for i, z := range c.Zones {
		if z.Camera == "" {
			z.Camera = c.Name
		}
		zones[i] = z.WithDefaults()
	}
	c.Zones = zones
	return c
}

// validate checks the pipeline keys of camera i (the source is checked by
// camera.Config.Validate).
func (c CameraConfig) validate(i int, events EventsConfig) []error {
	var errs []error
	prefix := fmt.Sprintf("camera[%d].", i)
	if c.Motion.Enabled || c.Motion.Regions {
		if err := c.Motion.Config.Validate(); err != nil {
			errs = append(errs, prefixErrors(prefix, err)) // its messages start with "motion."
		}
		if c.Motion.Recheck <= 0 {
			errs = append(errs, fmt.Errorf("%smotion.recheck: %v must be > 0", prefix, c.Motion.Recheck))
		} else if events.Enabled && c.Motion.Recheck.D() >= events.Tracker().MaxAge {
			errs = append(errs, fmt.Errorf("%smotion.recheck: %v must be shorter than events.max_age (%v), or still objects end",
				prefix, c.Motion.Recheck, events.Tracker().MaxAge))
		}
	}
	if d := c.Motion.OffDelay.D(); c.Motion.Enabled && (d <= 0 || d > MaxMotionOffDelay) {
		errs = append(errs, fmt.Errorf("%smotion.off_delay: %v not in (0s, %v]", prefix, c.Motion.OffDelay, MaxMotionOffDelay))
	}
	if c.Motion.Regions && !c.Motion.Enabled {
		errs = append(errs, fmt.Errorf("%smotion.regions: needs motion.enabled = true", prefix))
	}
	if len(c.Zones) > 0 {
		if !events.Enabled {
			errs = append(errs, fmt.Errorf("%szone: zones need [events] enabled (they follow tracked objects)", prefix))
		}
		zs := make([]zone.Config, len(c.Zones))
		for j, z := range c.Zones {
			if z.Camera == "" {
				z.Camera = c.Name
			}
			zs[j] = z
		}
		if err := zone.ValidateAll(zs, []string{c.Name}); err != nil {
			errs = append(errs, prefixErrors(prefix, err))
		}
	}
	if _, err := zone.NewMask(c.ObjectMasks); err != nil {
		errs = append(errs, fmt.Errorf("%sobject_mask: %w", prefix, err))
	}
	return errs
}

// HTTPConfig configures the agent's HTTP server.
type HTTPConfig struct {
	// Listen is the address to serve on ("" = no HTTP server). Keep it on
	// loopback unless a firewall or reverse proxy guards it: the live view
	// shows the camera images.
	Listen string `toml:"listen"`
	// Metrics serves Prometheus metrics at /metrics.
	Metrics bool `toml:"metrics"`
	// LiveView serves / (a page listing the cameras) and one MJPEG stream
	// of the processed frames, boxes drawn, per camera. Frames are only
	// encoded while someone watches.
	LiveView bool `toml:"live_view"`
	// LiveFPS caps the frames per second each live stream sends.
	LiveFPS float64 `toml:"live_fps"`
	// LiveQuality is the live view's JPEG quality (1-100).
	LiveQuality int `toml:"live_quality"`
	// StallAfter makes /healthz fail for a camera that has processed no
	// frame for this long.
	StallAfter cfgtypes.Duration `toml:"stall_after"`
}

// Validate checks the HTTP section.
func (h HTTPConfig) Validate() error {
	var errs []error
	if h.Listen != "" {
		if _, _, err := net.SplitHostPort(h.Listen); err != nil {
			errs = append(errs, fmt.Errorf("http.listen: %q is not host:port: %w", h.Listen, err))
		}
	}
	if err := cfgtypes.Float64("http.live_fps", h.LiveFPS, cfgtypes.Range{Lo: 0, Hi: 60, LoOpen: true}); err != nil {
		errs = append(errs, err)
	}
	if h.LiveQuality < 1 || h.LiveQuality > 100 {
		errs = append(errs, fmt.Errorf("http.live_quality: %d not in 1..100", h.LiveQuality))
	}
	if h.StallAfter.D() < time.Second {
		errs = append(errs, fmt.Errorf("http.stall_after: %v must be at least 1s", h.StallAfter))
	}
	return errors.Join(errs...)
}

// Default returns the configuration used for every key a file leaves out.
func Default() Config {
	det := detector.DefaultConfig()
	det.Providers = nil // none pinned: the board's plan (see platforms.PlanFor)
	return Config{
		Log:        LogConfig{Level: "info", Format: "text", StatsInterval: cfgtypes.Duration(60e9)},
		Detector:   det,
		MQTT:       mqtt.DefaultConfig(),
		Detections: DetectionsConfig{Enabled: false},
		Events: EventsConfig{Enabled: true, MinHits: track.DefaultMinHits, MaxAge: cfgtypes.Duration(track.DefaultMaxAge),
			IoUMatch: track.DefaultIoUMatch, MoveThreshold: track.DefaultMoveThreshold},
		Snapshots:     report.SnapshotConfig{}.WithDefaults(),
		Stats:         StatsConfig{Interval: cfgtypes.Duration(60e9)},
		Spool:         outbox.Config{}.WithDefaults(),
		HomeAssistant: report.DiscoveryConfig{}.WithDefaults(),
		HTTP: HTTPConfig{Listen: "127.0.0.1:9464", Metrics: true, LiveView: false, LiveFPS: 5, LiveQuality: 75,
			StallAfter: cfgtypes.Duration(30e9)},
	}
}

// MaxConfigSize bounds the config file Load reads (a config is a few KB; a
// path such as /dev/zero must not be read until memory runs out).
const MaxConfigSize = 4 << 20

// Load reads, strictly decodes and validates the config file at path.
// Unknown keys and type mismatches are errors naming the key and line;
// relative paths in the file are taken relative to the file's directory,
// made absolute (so a relative -c gives the same paths from any working
// directory, and errors name the file that is really opened).
func Load(path string) (*Config, error) { return LoadRoot(path, "") }

// LoadRoot is Load for a config installed under root, a staging tree that
// will become / (install.sh with DESTDIR): every absolute path in the file
// (model, labels, ONNX Runtime library, camera devices and files, TLS and
// password files, spool and state directories) is looked up under root, so
// Check proves the staged tree runnable. Relative paths are relative to the
// file's directory, which is already inside root. root "" is Load.
func LoadRoot(path, root string) (*Config, error) {
	data, err := readlimit.ReadFile(path, MaxConfigSize)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	dir, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	if root != "" {
		if root, err = filepath.Abs(root); err != nil {
			return nil, fmt.Errorf("config %s: root: %w", path, err)
		}
	}
	cfg, err := parse(data, dir, root)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	cfg.Path = path
	cfg.Root = root
	return cfg, nil
}

// Parse decodes TOML config text over Default, resolving relative paths
// against baseDir, and validates the result.
func Parse(data []byte, baseDir string) (*Config, error) { return parse(data, baseDir, "") }

// parse is Parse with absolute paths looked up under root (see LoadRoot).
func parse(data []byte, baseDir, root string) (*Config, error) {
	cfg := Default()
	md, err := toml.NewDecoder(bytes.NewReader(data)).Decode(&cfg)
	if err != nil {
		return nil, decodeError(data, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		var errs []error
		for _, k := range und {
			if line := keyLine(data, k); line > 0 {
				errs = append(errs, fmt.Errorf("line %d: unknown key %q", line, k.String()))
			} else {
				errs = append(errs, fmt.Errorf("unknown key %q", k.String()))
			}
		}
		return nil, errors.Join(errs...)
	}
	if !md.IsDefined("mqtt", "client_id") {
		cfg.MQTT.ClientID = "" // derive it from the device the file names
	}
	if !md.IsDefined("mqtt", "topic_prefix") {
		cfg.MQTT.TopicPrefix = "" // its default depends on mqtt.compat
	}
	cfg.resolvePaths(baseDir, root)
	cfg.MQTT = cfg.MQTT.WithDefaults()
	for i := range cfg.Cameras {
		cfg.Cameras[i] = cfg.Cameras[i].WithDefaults()
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &cfg, nil
}

// resolvePaths makes file paths in the config relative to baseDir, and
// absolute ones relative to root when it is set.
func (c *Config) resolvePaths(baseDir, root string) {
	abs := func(p string) string {
		switch {
		case p == "":
			return p
		case !filepath.IsAbs(p):
			return filepath.Join(baseDir, p)
		case root != "":
			return filepath.Join(root, p)
		}
		return p
	}
	c.Detector.Model = abs(c.Detector.Model)
	c.Detector.LabelsFile = abs(c.Detector.LabelsFile)
	c.Detector.ONNXRuntimeLibrary = abs(c.Detector.ONNXRuntimeLibrary)
	c.MQTT.PasswordFile = abs(c.MQTT.PasswordFile)
	c.MQTT.TLS.CAFile = abs(c.MQTT.TLS.CAFile)
	c.MQTT.TLS.CertFile = abs(c.MQTT.TLS.CertFile)
	c.MQTT.TLS.KeyFile = abs(c.MQTT.TLS.KeyFile)
	for i := range c.MQTT.Embedded.Users {
		c.MQTT.Embedded.Users[i].PasswordFile = abs(c.MQTT.Embedded.Users[i].PasswordFile)
	}
	c.Spool.Dir = abs(c.Spool.Dir)
	c.StateDir = abs(c.StateDir)
	for i := range c.Cameras {
		cam := &c.Cameras[i]
		switch {
		case isLocalPath(cam.Source):
			cam.Source = abs(cam.Source)
		case root != "" && camera.DetectKind(cam.Source) == camera.KindV4L2 && filepath.IsAbs(cam.Source):
			// /dev/video0 under root no longer looks like a device:
			// keep its kind.
			if cam.Kind == "" {
				cam.Kind = camera.KindV4L2
			}
			cam.Source = abs(cam.Source)
		}
	}
}

// isLocalPath reports whether a camera source names a file or directory
// (not a device, URL, GStreamer pipeline or CSI camera).
func isLocalPath(src string) bool {
	switch camera.DetectKind(src) {
	case camera.KindFile, camera.KindImages:
		return src != ""
	}
	return false
}

var validName = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// Validate checks every section and reports all problems at once, each
// naming its key and value.
func (c *Config) Validate() error {
	var errs []error
	switch strings.ToLower(c.Log.Level) {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log.level: %q is not one of debug, info, warn, error", c.Log.Level))
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		errs = append(errs, fmt.Errorf("log.format: %q is not text or json", c.Log.Format))
	}
	if c.Log.StatsInterval < 0 {
		errs = append(errs, fmt.Errorf("log.stats_interval: %v must be >= 0", c.Log.StatsInterval))
	}
	if err := c.Detector.Validate(); err != nil {
		errs = append(errs, prefixErrors("detector.", err))
	}
	if err := c.MQTT.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Events.Tracker().Validate(); err != nil {
		errs = append(errs, prefixErrors("events.", err))
	}
	if err := c.Snapshots.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.Stats.Interval < 0 {
		errs = append(errs, fmt.Errorf("stats.interval: %v must be >= 0", c.Stats.Interval))
	}
	if err := c.Spool.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.HomeAssistant.Enabled {
		if err := c.HomeAssistant.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := c.HTTP.Validate(); err != nil {
		errs = append(errs, err)
	}
	if len(c.Cameras) == 0 {
		errs = append(errs, errors.New("camera: no [[camera]] configured"))
	}
	seen := map[string]bool{}
	for i, cam := range c.Cameras {
		if !validName.MatchString(cam.Name) {
			errs = append(errs, fmt.Errorf("camera[%d].name: %q must be letters, digits, '_' or '-' (it is an MQTT topic level)", i, cam.Name))
		} else if seen[cam.Name] {
			errs = append(errs, fmt.Errorf("camera[%d].name: %q is used twice", i, cam.Name))
		}
		seen[cam.Name] = true
		if err := cam.Validate(); err != nil {
			errs = append(errs, err)
		}
		errs = append(errs, cam.validate(i, c.Events)...)
	}
	errs = append(errs, c.validateFrigate()...)
	return errors.Join(errs...)
}

// prefixErrors puts prefix before each line of a joined error.
func prefixErrors(prefix string, err error) error {
	lines := strings.Split(err.Error(), "\n")
	for i, l := range lines {
		lines[i] = prefix + l
	}
	return errors.New(strings.Join(lines, "\n"))
}

// LogLevel returns the configured slog level.
func (c *Config) LogLevel() slog.Level {
	var l slog.Level
	_ = l.UnmarshalText([]byte(c.Log.Level))
	return l
}

// tomlKeyErr matches the errors the TOML decoder makes without a
// ParseError: `toml: line 3 (last key "detector.threads"): …`.
var (
	tomlKeyErr   = regexp.MustCompile(`^toml: (?:line (\d+) )?\(last key "([^"]*)"\): (.*)$`)
	tomlTypeErr  = regexp.MustCompile(`^incompatible types: TOML value has type (.+); destination has type (.+)$`)
	tomlTableErr = regexp.MustCompile(`^type mismatch for .*: expected table but found (.+)$`)
)

// decodeError rewrites a TOML decoding error as "line N: key: message",
// naming the key whenever the decoder knows it, with type mismatches in
// words: `line 12: detector.score_threshold: expected a number, got a string`.
func decodeError(data []byte, err error) error {
	var perr toml.ParseError
	if errors.As(err, &perr) {
		line := perr.Position.Line
		// A syntax error's LastKey is the last key read, which may be on an
		// earlier line: name it only when it is the key on the error's line.
		if perr.LastKey != "" && lineDefines(data, line, perr.LastKey) {
			return fmt.Errorf("line %d: %s: %s", line, perr.LastKey, perr.Message)
		}
		return fmt.Errorf("line %d: %s", line, perr.Message)
	}
	m := tomlKeyErr.FindStringSubmatch(err.Error())
	if m == nil {
		return err
	}
	msg := m[3]
	if t := tomlTypeErr.FindStringSubmatch(msg); t != nil {
		msg = fmt.Sprintf("expected %s, got %s", tomlTypeName(t[2]), tomlTypeName(t[1]))
	} else if t := tomlTableErr.FindStringSubmatch(msg); t != nil {
		msg = fmt.Sprintf("expected a table, got %s", tomlTypeName(t[1]))
	}
	if m[1] == "" {
		return fmt.Errorf("%s: %s", m[2], msg)
	}
	return fmt.Errorf("line %s: %s: %s", m[1], m[2], msg)
}

// tomlTypeName names a type from the decoder's messages (a Go type of a
// TOML value, or a destination kind) as a reader of the file would.
func tomlTypeName(t string) string {
	switch {
	case t == "string", strings.HasPrefix(t, "primitive"):
		return "a string"
	case t == "int64", t == "integer":
		return "an integer"
	case t == "float64", t == "float":
		return "a number"
	case t == "bool", t == "boolean":
		return "true or false"
	case strings.HasPrefix(t, "[]"), t == "slice":
		return "an array"
	case strings.HasPrefix(t, "map"):
		return "a table"
	case strings.HasPrefix(t, "time."), strings.HasPrefix(t, "toml.Local"):
		return "a date/time"
	}
	return t
}

// lineDefines reports whether line n of data assigns key's last part
// (`score_threshold = …`, quoted or not).
func lineDefines(data []byte, n int, key string) bool {
	lines := bytes.Split(data, []byte("\n"))
	if n < 1 || n > len(lines) {
		return false
	}
	k, _, ok := strings.Cut(strings.TrimSpace(string(lines[n-1])), "=")
	if !ok {
		return false
	}
	last := key
	if i := strings.LastIndexByte(key, '.'); i >= 0 {
		last = key[i+1:]
	}
	k = strings.Trim(strings.TrimSpace(k), `"'`)
	return k == last || strings.HasSuffix(k, "."+last)
}

// keyLine finds the line that defines key in TOML text, following [table]
// and [[array]] headers; 0 when it cannot tell.
func keyLine(data []byte, key toml.Key) int {
	want := key.String()
	var table string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		if line[0] == '[' {
			name := strings.Trim(strings.SplitN(line, "#", 2)[0], "[] \t")
			table = name
			if name == want {
				return n
			}
			continue
		}
		eq := strings.IndexByte(line, '=')
		if eq < 0 {
			continue
		}
		k := strings.Trim(strings.TrimSpace(line[:eq]), `"'`)
		full := k
		if table != "" {
			full = table + "." + k
		}
		if full == want {
			return n
		}
	}
	return 0
}
