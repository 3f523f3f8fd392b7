package web_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/edgedet/edgedet/agent/web"
)

// TestStatusJSONRedacts: a camera error quoting a URL with a password shows
// in /healthz and /api/cameras (last_error, and the reason of a stalled
// camera) with the password masked.
func TestStatusJSONRedacts(t *testing.T) {
	st := newStatus(web.CameraStatus{
		Started:   time.Now().Add(-time.Hour),
		LastError: `open url "rtsp://admin:campw@10.0.0.5/s?token=tokpw": capture did not open`,
	})
	feed := web.NewFeed(5, 75)
	t.Cleanup(func() { feed.Close() })
	_, base := startServer(t, web.Options{StallAfter: time.Second, LiveView: true},
		[]web.CameraView{{Name: "door", Status: st.Get, Feed: feed}})
	for _, path := range []string{"/healthz", "/api/cameras"} {
		code, body := get(t, base+path)
		if code != http.StatusOK && code != http.StatusServiceUnavailable {
			t.Fatalf("%s: %d %s", path, code, body)
		}
		if strings.Contains(body, "campw") || strings.Contains(body, "tokpw") {
			t.Errorf("%s shows a password: %s", path, body)
		}
		if !strings.Contains(body, "rtsp://admin:xxxxx@10.0.0.5/s?token=xxxxx") {
			t.Errorf("%s lacks the redacted error: %s", path, body)
		}
	}
}
