package detector_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/edgedet/edgedet/detector"
	"github.com/edgedet/edgedet/internal/readlimit"
)

// TestDefaultConfig: the defaults DefaultConfig documents.
func TestDefaultConfig(t *testing.T) {
	c := detector.DefaultConfig()
	if !slices.Equal(c.Providers, []string{detector.ProviderCPU}) || !c.ProviderFallback || !c.FuseActivations ||
		c.GraphOptimization != "all" || c.ScoreThreshold != 0.25 || c.IoUThreshold != 0.45 || c.MaxDetections != 100 ||
		c.ClassAgnostic || c.Sessions != 0 || c.Threads != 0 {
		t.Errorf("DefaultConfig() = %+v", c)
	}
}

// TestConfigValidateBounds: each numeric field is accepted at the end of its
// range and refused one step past it, with an error naming the key and the
// value.
func TestConfigValidateBounds(t *testing.T) {
	for _, tc := range []struct {
		name    string
		set     func(*detector.Config)
		wantErr string // "" = valid
	}{
		{"threads 0", func(c *detector.Config) { c.Threads = 0 }, ""},
		{"threads -1", func(c *detector.Config) { c.Threads = -1 }, "threads: -1 must be >= 0"},
		{"sessions 0", func(c *detector.Config) { c.Sessions = 0 }, ""},
		{"sessions 16", func(c *detector.Config) { c.Sessions = 16 }, ""},
		{"sessions 17", func(c *detector.Config) { c.Sessions = 17 }, "sessions: 17 not in 0..16"},
		{"sessions -1", func(c *detector.Config) { c.Sessions = -1 }, "sessions: -1 not in 0..16"},
		{"slots 0", func(c *detector.Config) { c.Slots = 0 }, ""},
		{"slots -1", func(c *detector.Config) { c.Slots = -1 }, "slots: -1 must be >= 0"},
		{"max_detections 0", func(c *detector.Config) { c.MaxDetections = 0 }, ""},
		{"max_detections -1", func(c *detector.Config) { c.MaxDetections = -1 }, "max_detections: -1 must be >= 0"},
		{"min_area 0", func(c *detector.Config) { c.MinArea = 0 }, ""},
		{"min_area -1", func(c *detector.Config) { c.MinArea = -1 }, "min_area"},
		{"score 1", func(c *detector.Config) { c.ScoreThreshold = 1 }, ""},
		{"iou 1", func(c *detector.Config) { c.IoUThreshold = 1 }, ""},
		{"min_scores", func(c *detector.Config) { c.MinScores = map[string]float32{"dog": 0.5, "cat": 1.5} }, "min_scores.cat"},
		{"no model", func(c *detector.Config) { c.Model = "" }, "model: not set"},
		{"graph disable", func(c *detector.Config) { c.GraphOptimization = "disable" }, ""},
		{"graph basic", func(c *detector.Config) { c.GraphOptimization = "basic" }, ""},
		{"graph extended", func(c *detector.Config) { c.GraphOptimization = "extended" }, ""},
		{"graph empty", func(c *detector.Config) { c.GraphOptimization = "" }, ""},
		{"spec", func(c *detector.Config) { c.ChannelOrder = "grb" }, `channel_order: "grb"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := detector.DefaultConfig()
			c.Model = "m.onnx"
			tc.set(&c)
			err := c.Validate()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("Validate: %v, want no error", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("Validate: %v, want an error containing %q", err, tc.wantErr)
			}
		})
	}
}

// TestModelOverMaxModelSize: MaxModelSize is 2 GiB, the protobuf limit, and
// a larger model file is refused from its size, unread (a sparse file, so
// the test writes nothing).
func TestModelOverMaxModelSize(t *testing.T) {
	if detector.MaxModelSize != 1<<31 {
		t.Fatalf("MaxModelSize = %d, want 2 GiB", detector.MaxModelSize)
	}
	initORT(t)
	path := filepath.Join(t.TempDir(), "huge.onnx")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(detector.MaxModelSize + 1); err != nil {
		f.Close()
		t.Skipf("cannot make a sparse file here: %v", err)
	}
	f.Close()
	cfg := detector.DefaultConfig()
	cfg.Model = path
	if _, err := detector.Describe(cfg); !errors.Is(err, readlimit.ErrTooLarge) || !strings.Contains(err.Error(), path) {
		t.Errorf("Describe(%d-byte model) = %v, want an error naming the file and wrapping ErrTooLarge", detector.MaxModelSize+1, err)
	}
}
