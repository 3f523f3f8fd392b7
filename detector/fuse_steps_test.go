package detector

import (
	"strings"
	"testing"
)

// TestFuseStepErrors: on a model that fuses, a model file gone before the
// rewrite fails prepareFused with a "read model" error, and bytes that are
// not a model fail fusedSession; neither returns a result.
func TestFuseStepErrors(t *testing.T) {
	d, _ := loadShared(t, "yolov8n_int8qdq_320.onnx", func(c *Config) { c.Sessions, c.Slots = 1, 1 })
	if d.Info().FusedActivations == 0 {
		t.Fatal("not fused")
	}
	path := d.info.Path
	d.info.Path = path + ".missing"
	n, err := d.prepareFused()
	d.info.Path = path
	if err == nil || !strings.Contains(err.Error(), "read model") || !strings.Contains(err.Error(), path+".missing") {
		t.Errorf("prepareFused with the model gone = %d, %v; want a read model error naming it", n, err)
	}
	s, err := d.fusedSession([]byte("not a model"))
	if err == nil || !strings.Contains(err.Error(), "create session from the fused model") {
		if s != nil {
			s.Destroy()
		}
		t.Errorf("fusedSession on bytes that are no model = %v, %v; want an error", s, err)
	}
}
