package detector

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edgedet/edgedet/detector/lut"
)

// TestFusedSessionsRunTheLookup: the sessions really run the fused graph:
// the ORT profile (profile_prefix), written at Close, shows lookup nodes
// executing.
func TestFusedSessionsRunTheLookup(t *testing.T) {
	prefix := filepath.Join(t.TempDir(), "prof")
	d, _ := loadShared(t, "yolov8n_int8qdq_320.onnx", func(c *Config) { c.ProfilePrefix = prefix })
	if d.Info().FusedActivations == 0 {
		t.Fatal("not fused")
	}
	detectDog(t, d)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(prefix + "_*.json")
	if err != nil || len(files) != 1 {
		t.Fatalf("profiles written: %v, %v; want one", files, err)
	}
	b, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range []string{lut.OpUint8, lut.OpInt8} {
		if strings.Contains(string(b), `"op_name" : "`+op+`"`) || strings.Contains(string(b), `"op_name":"`+op+`"`) {
			return
		}
	}
	t.Errorf("the profile %s shows no %s or %s node running", files[0], lut.OpUint8, lut.OpInt8)
}
