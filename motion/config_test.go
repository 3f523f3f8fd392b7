package motion

import (
	"math"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

func TestWithDefaults(t *testing.T) {
	got := Config{}.WithDefaults()
	want := Config{Threshold: 30, FrameHeight: 100, LearningRate: 0.05, LightningThreshold: 0.8}
	if got.Threshold != want.Threshold || got.FrameHeight != want.FrameHeight || got.MinArea != 0 ||
		got.LearningRate != want.LearningRate || got.LightningThreshold != want.LightningThreshold {
		t.Fatalf("Config{}.WithDefaults() = %+v, want %+v", got, want)
	}
	if err := got.Validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
	// Set fields, valid or not, are kept for Validate.
	set := Config{Threshold: 300, MinArea: 5, FrameHeight: 10, LearningRate: 2, LightningThreshold: 0.5}
	if got := set.WithDefaults(); got.Threshold != 300 || got.MinArea != 5 || got.FrameHeight != 10 ||
		got.LearningRate != 2 || got.LightningThreshold != 0.5 {
		t.Fatalf("WithDefaults changed set fields: %+v", got)
	}
}

func TestValidate(t *testing.T) {
	base := Config{}.WithDefaults()
	cases := []struct {
		name string
		edit func(*Config)
		want []string // substrings, each must appear
	}{
		{"threshold 0", func(c *Config) { c.Threshold = 0 }, []string{"motion.threshold: 0 not in 1..255"}},
		{"threshold 256", func(c *Config) { c.Threshold = 256 }, []string{"motion.threshold: 256 not in 1..255"}},
		{"min_area", func(c *Config) { c.MinArea = -1 }, []string{"motion.min_area: -1 must be >= 0"}},
		{"frame_height low", func(c *Config) { c.FrameHeight = 19 }, []string{"motion.frame_height: 19 not in 20..2160"}},
		{"frame_height high", func(c *Config) { c.FrameHeight = 4000 }, []string{"motion.frame_height: 4000 not in 20..2160"}},
		{"learning_rate 0", func(c *Config) { c.LearningRate = 0 }, []string{"motion.learning_rate: 0 is not a number in (0, 1]"}},
		{"learning_rate NaN", func(c *Config) { c.LearningRate = math.NaN() }, []string{"motion.learning_rate: NaN is not a number in (0, 1]"}},
		{"lightning_threshold", func(c *Config) { c.LightningThreshold = 1.5 }, []string{"motion.lightning_threshold: 1.5 is not a number in (0, 1]"}},
		{"mask 2 points", func(c *Config) {
			c.Masks = [][]Point{{{0, 0}, {10, 0}, {10, 10}}, {{0, 0}, {5, 5}}}
		}, []string{"motion.mask[1]: 2 points, a polygon needs at least 3"}},
		{"mask negative", func(c *Config) {
			c.Masks = [][]Point{{{0, 0}, {10, -3}, {10, 10}}}
		}, []string{"motion.mask[0][1]: [10, -3] not in 0..32767"}},
		{"several", func(c *Config) { c.Threshold = -5; c.FrameHeight = 1; c.Masks = [][]Point{nil} }, []string{
			"motion.threshold: -5", "motion.frame_height: 1", "motion.mask[0]: 0 points",
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := base
			c.edit(&cfg)
			err := cfg.Validate()
			if err == nil {
				t.Fatalf("Validate() = nil, want an error mentioning %q", c.want)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %q, want it to contain %q", err, w)
				}
			}
			if _, nerr := NewDetector(cfg); nerr == nil || !strings.Contains(nerr.Error(), c.want[0]) {
				t.Errorf("NewDetector() error = %v, want it to contain %q", nerr, c.want[0])
			}
		})
	}
}

// TestConfigTOML: the documented TOML form decodes, masks included, and a
// malformed point is an error that names the key and line.
func TestConfigTOML(t *testing.T) {
	const doc = `
threshold = 25
min_area = 400
frame_height = 120
learning_rate = 0.05
lightning_threshold = 0.7
mask = [
  [[0, 0], [200, 0], [200, 50], [0, 50]],
  [[300, 300], [400, 300], [350, 380]],
]
`
	var c Config
	md, err := toml.Decode(doc, &c)
	if err != nil {
		t.Fatal(err)
	}
	if u := md.Undecoded(); len(u) != 0 {
		t.Fatalf("undecoded keys %v", u)
	}
	if c.Threshold != 25 || c.MinArea != 400 || c.FrameHeight != 120 || c.LearningRate != 0.05 || c.LightningThreshold != 0.7 {
		t.Fatalf("decoded %+v", c)
	}
	if len(c.Masks) != 2 || len(c.Masks[0]) != 4 || c.Masks[0][1] != (Point{200, 0}) || c.Masks[1][2] != (Point{350, 380}) {
		t.Fatalf("decoded masks %v", c.Masks)
	}
	if err := c.WithDefaults().Validate(); err != nil {
		t.Fatal(err)
	}

	var bad Config
	_, err = toml.Decode("\nmask = [[[0, 0, 1], [5, 5], [9, 0]]]\n", &bad)
	if err == nil || !strings.Contains(err.Error(), "line 2") || !strings.Contains(err.Error(), "mask") {
		t.Fatalf("3-element point: err = %v, want a decode error naming mask and line 2", err)
	}
}

// TestNewDetectorCopiesMasks: the Detector does not share the caller's
// mask slices.
func TestNewDetectorCopiesMasks(t *testing.T) {
	cfg := Config{Masks: [][]Point{{{0, 0}, {10, 0}, {10, 10}}}}.WithDefaults()
	d := newDetector(t, cfg)
	cfg.Masks[0][1] = Point{99, 99}
	if d.cfg.Masks[0][1] != (Point{10, 0}) {
		t.Fatalf("detector mask changed with the caller's slice: %v", d.cfg.Masks)
	}
}
