package detector_test

import (
	"strings"
	"testing"

	"github.com/edgedet/edgedet/detector"
)

// TestUnknownLabelsInFilters: allow_labels and min_scores must name labels
// of the model; New says which one does not, and names the model.
func TestUnknownLabelsInFilters(t *testing.T) {
	initORT(t)
	for _, tc := range []struct {
		name string
		set  func(*detector.Config)
		want string
	}{
		{"allow_labels", func(c *detector.Config) { c.AllowLabels = []string{"dog", "unicorn"} }, `allow_labels: "unicorn" is not a label`},
		{"min_scores", func(c *detector.Config) { c.MinScores = map[string]float32{"unicorn": 0.5} }, `min_scores: "unicorn" is not a label`},
	} {
		cfg := yoloxConfig(t)
		tc.set(&cfg)
		d, err := detector.New(cfg, quietLog())
		if err == nil {
			d.Close()
			t.Errorf("%s: loaded, want an error", tc.name)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), cfg.Model) {
			t.Errorf("%s: error %q, want %q and the model path", tc.name, err, tc.want)
		}
	}
}
