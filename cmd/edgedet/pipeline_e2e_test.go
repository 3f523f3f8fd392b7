package main

import (
	"bytes"
	"fmt"
	"image"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"gocv.io/x/gocv"

	"github.com/edgedet/edgedet/internal/testenv"
)

var httpAddrRe = regexp.MustCompile(`msg="http server listening" addr=(\S+)`)

// agentHTTP waits for the agent to log its HTTP address and returns its base URL.
func agentHTTP(t *testing.T, a *agentProc) string {
	t.Helper()
	var base string
	testenv.Eventually(t, 30*time.Second, "http server address in the log", func() bool {
		m := httpAddrRe.FindStringSubmatch(a.stderr.String())
		if m != nil {
			base = "http://" + m[1]
		}
		return m != nil
	})
	return base
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode, string(body)
}

// scrape reads /metrics into families by name.
func scrape(t *testing.T, base string) map[string]*familyValues {
	t.Helper()
	code, body := httpGet(t, base+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: HTTP %d: %s", code, body)
	}
	dec := expfmt.NewDecoder(strings.NewReader(body), expfmt.NewFormat(expfmt.TypeTextPlain))
	v, err := expfmt.ExtractSamples(&expfmt.DecodeOptions{Timestamp: model.Now()}, decodeAll(t, dec)...)
	if err != nil {
		t.Fatalf("/metrics: %v", err)
	}
	out := map[string]*familyValues{}
	for _, s := range v {
		name := string(s.Metric[model.MetricNameLabel])
		f := out[name]
		if f == nil {
			f = &familyValues{}
			out[name] = f
		}
		f.samples = append(f.samples, s)
	}
	return out
}

func decodeAll(t *testing.T, dec expfmt.Decoder) []*dto.MetricFamily {
	t.Helper()
	var fams []*dto.MetricFamily
	for {
		f := new(dto.MetricFamily)
		if err := dec.Decode(f); err == io.EOF {
			return fams
		} else if err != nil {
			t.Fatalf("/metrics is not Prometheus text: %v", err)
		}
		fams = append(fams, f)
	}
}

type familyValues struct{ samples model.Vector }

// value returns the sample whose labels include all of want (name=value
// pairs), or fails.
func (f *familyValues) value(t *testing.T, name string, want ...string) float64 {
	t.Helper()
	if f == nil {
		t.Fatalf("metric %s missing", name)
	}
next:
	for _, s := range f.samples {
		for i := 0; i+1 < len(want); i += 2 {
			if string(s.Metric[model.LabelName(want[i])]) != want[i+1] {
				continue next
			}
		}
		return float64(s.Value)
	}
	t.Fatalf("metric %s has no sample with labels %v", name, want)
	return 0
}

// TestTwoCamerasShareOneModel: two cameras paced at 30 fps each ask for
// more than one session can run; both publish, neither starves, and the
// metrics endpoint shows plausible per-camera series while /healthz is ok.
func TestTwoCamerasShareOneModel(t *testing.T) {
	dir := t.TempDir()
	var imgs []string
	for _, n := range []string{"dog.jpg", "horses.jpg", "person.jpg"} {
		imgs = append(imgs, testenv.Shared(t, "datasets", "samples", n))
	}
	porch, yard := filepath.Join(dir, "porch.avi"), filepath.Join(dir, "yard.avi")
	if err := testenv.WriteClip(porch, imgs, 640, 480, 30, 30); err != nil {
		t.Fatal(err)
	}
	if err := testenv.WriteClip(yard, []string{imgs[2], imgs[0]}, 640, 480, 30, 30); err != nil {
		t.Fatal(err)
	}
	broker := testenv.StartMosquitto(t)
	sub := testenv.Subscribe(t, broker.URL, "edgedet/e2e/+/detections")
	cams := fmt.Sprintf("[[camera]]\nname = \"porch\"\nsource = %q\nloop = true\n\n[[camera]]\nname = \"yard\"\nsource = %q\nloop = true\n", porch, yard)
	cfg := strings.Replace(agentConfig(broker.URL, testenv.Shared(t, "models", "yolox_nano_416.onnx"), cams),
		"[http]\n", "[http]\nlive_view = true\n", 1)
	a := startAgent(t, cfg)
	base := agentHTTP(t, a)

	seen := map[string]int{}
	waitFor(t, sub, 60*time.Second, "detections from both cameras", func(m testenv.Message) bool {
		seen[strings.Split(m.Topic, "/")[2]]++
		return seen["porch"] > 0 && seen["yard"] > 0
	})
	// Progress, not a rate in a wall-clock window: wait until the busier
	// camera has had 20 more frames processed, however long the machine
	// takes, then check the other one kept up.
	before := time.Now()
	start := scrape(t, base)
	delta := func(fams map[string]*familyValues, name, cam string) float64 {
		return fams[name].value(t, name, "camera", cam) - start[name].value(t, name, "camera", cam)
	}
	var fams map[string]*familyValues
	processed := map[string]float64{}
	deadline := time.Now().Add(120 * time.Second)
	tick := time.NewTicker(250 * time.Millisecond) // a scrape costs the agent CPU: not every 10 ms
	defer tick.Stop()
	for {
		fams = scrape(t, base)
		for _, cam := range []string{"porch", "yard"} {
			processed[cam] = delta(fams, "edgedet_camera_frames_processed_total", cam)
		}
		if max(processed["porch"], processed["yard"]) >= 20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("frames processed after 120 s: porch %.0f, yard %.0f; want 20", processed["porch"], processed["yard"])
		}
		<-tick.C
	}
	elapsed := time.Since(before) // covers both scrapes: an upper bound on the window

	for _, cam := range []string{"porch", "yard"} {
		// The clips play at 30 fps: capture keeps up with processing (less
		// the 4 frames a stream can hold when the window opens) and is
		// never faster than 30 a second (plus the frame the pacer may read
		// at once when it restarts its schedule). Load only makes the
		// count smaller.
		captured := delta(fams, "edgedet_camera_frames_captured_total", cam)
		if maxCaptured := 30*elapsed.Seconds() + 2; captured+4 < processed[cam] || captured > maxCaptured {
			t.Errorf("%s captured %.0f frames in %v, want at least the %.0f processed and at most %.0f (30 fps)",
				cam, captured, elapsed, processed[cam], maxCaptured)
		}
		if c := fams["edgedet_camera_capture_fps"].value(t, "capture fps", "camera", cam); c <= 0 {
			t.Errorf("%s capture fps %.1f, want > 0", cam, c)
		}
		if p := fams["edgedet_camera_processed_fps"].value(t, "processed fps", "camera", cam); p <= 0 {
			t.Errorf("%s processed fps %.1f, want > 0", cam, p)
		}
		if fams["edgedet_camera_connected"].value(t, "connected", "camera", cam) != 1 {
			t.Errorf("%s not connected", cam)
		}
		n := fams["edgedet_stage_duration_seconds_count"].value(t, "stage count", "camera", cam, "stage", "inference")
		sum := fams["edgedet_stage_duration_seconds_sum"].value(t, "stage sum", "camera", cam, "stage", "inference")
		if n == 0 || sum/n < 0.001 || sum/n > 2 {
			t.Errorf("%s inference histogram: %g frames, mean %g s", cam, n, sum/n)
		}
		for _, stage := range []string{"preprocess", "postprocess"} {
			if fams["edgedet_stage_duration_seconds_count"].value(t, "stage count", "camera", cam, "stage", stage) != n {
				t.Errorf("%s %s histogram count differs from inference's", cam, stage)
			}
		}
	}
	lo, hi := min(processed["porch"], processed["yard"]), max(processed["porch"], processed["yard"])
	t.Logf("frames processed in %v: porch %.0f, yard %.0f", elapsed.Round(time.Millisecond), processed["porch"], processed["yard"])
	if lo < 0.6*hi {
		t.Errorf("unfair share: porch %.0f, yard %.0f frames", processed["porch"], processed["yard"])
	}
	if fams["edgedet_detections_total"].value(t, "detections", "camera", "porch", "label", "dog") == 0 ||
		fams["edgedet_detections_total"].value(t, "detections", "camera", "yard", "label", "person") == 0 {
		t.Error("no dog on porch or no person in the yard counted")
	}
	if fams["edgedet_mqtt_connected"].value(t, "mqtt connected") != 1 ||
		fams["edgedet_mqtt_published_total"].value(t, "mqtt published") == 0 {
		t.Error("mqtt series say not connected or nothing published")
	}
	fams["edgedet_mqtt_queue_depth"].value(t, "queue depth")
	fams["edgedet_spool_bytes"].value(t, "spool bytes")
	if rss := fams["process_resident_memory_bytes"].value(t, "rss"); rss < 20e6 || rss > 2e9 {
		t.Errorf("process_resident_memory_bytes = %g", rss)
	}
	if info := fams["edgedet_info"].value(t, "info", "model", "yolox_nano_416", "precision", "fp32"); info != 1 {
		t.Errorf("edgedet_info = %g", info)
	}
	if code, body := httpGet(t, base+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz: HTTP %d: %s", code, body)
	}
	// The live view serves each camera's processed frame.
	for _, cam := range []string{"porch", "yard"} {
		code, body := httpGet(t, base+"/cameras/"+cam+"/latest.jpg")
		if code != http.StatusOK {
			t.Fatalf("latest.jpg of %s: HTTP %d: %s", cam, code, body)
		}
		img, err := gocv.IMDecode([]byte(body), gocv.IMReadColor)
		if err != nil || img.Cols() != 640 || img.Rows() != 480 {
			t.Errorf("latest.jpg of %s: %v, %dx%d", cam, err, img.Cols(), img.Rows())
		}
		img.Close()
	}
	if code, body := httpGet(t, base+"/"); code != http.StatusOK || !strings.Contains(body, "yard") {
		t.Errorf("live page: HTTP %d", code)
	}
}

// mjpegServer serves an MJPEG stream of img at 10 fps; after stallAfter
// parts it stops sending but keeps the connection open, like a camera that
// froze.
func mjpegServer(t *testing.T, img string, stallAfter int) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	m := gocv.IMRead(img, gocv.IMReadColor)
	defer m.Close()
	small := gocv.NewMat()
	defer small.Close()
	gocv.Resize(m, &small, image.Pt(320, 240), 0, 0, gocv.InterpolationArea)
	buf, err := gocv.IMEncode(gocv.JPEGFileExt, small)
	if err != nil {
		t.Fatal(err)
	}
	jpeg := bytes.Clone(buf.GetBytes())
	buf.Close()
	var sent atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "multipart/x-mixed-replace; boundary=frame")
		for {
			if sent.Load() >= int64(stallAfter) {
				<-r.Context().Done() // frozen: nothing more, connection kept
				return
			}
			fmt.Fprintf(w, "--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n", len(jpeg))
			w.Write(jpeg)
			io.WriteString(w, "\r\n")
			w.(http.Flusher).Flush()
			sent.Add(1)
			select {
			case <-r.Context().Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}))
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
	})
	return srv, &sent
}

// TestHealthzFailsWhenCameraStalls: a camera whose stream freezes makes
// /healthz fail and name it, while the other camera keeps running.
func TestHealthzFailsWhenCameraStalls(t *testing.T) {
	clip := sampleClip(t)
	cam, sent := mjpegServer(t, testenv.Shared(t, "datasets", "samples", "dog.jpg"), 30)
	broker := testenv.StartMosquitto(t)
	cams := clipCamera("porch", clip) + fmt.Sprintf("[[camera]]\nname = \"gate\"\nsource = %q\n", cam.URL+"/stream.mjpg")
	cfg := strings.Replace(agentConfig(broker.URL, testenv.Shared(t, "models", "yolox_nano_416.onnx"), cams),
		"[http]\n", "[http]\nstall_after = \"2s\"\n", 1)
	a := startAgent(t, cfg)
	base := agentHTTP(t, a)
	testenv.Eventually(t, 60*time.Second, "/healthz ok while both cameras stream", func() bool {
		code, _ := httpGet(t, base+"/healthz")
		return code == http.StatusOK
	})
	if sent.Load() >= 30 {
		t.Fatal("the gate stream froze before /healthz was first ok; the test cannot tell a stall apart")
	}
	var body string
	testenv.Eventually(t, 60*time.Second, "/healthz failing after the gate camera froze", func() bool {
		var code int
		code, body = httpGet(t, base+"/healthz")
		return code == http.StatusServiceUnavailable
	})
	if !strings.Contains(body, `gate`) || strings.Contains(body, `camera \"porch\"`) {
		t.Errorf("/healthz body should name the stalled gate camera only: %s", body)
	}
	if _, err := os.Stat(a.config); err != nil {
		t.Fatal(err)
	}
}

// TestMotionGatedZonesEndToEnd: a camera with motion gating and a zone, run
// by the binary on a mostly still clip: the dog's events name the zone, and
// the detector ran on far fewer frames than were captured.
func TestMotionGatedZonesEndToEnd(t *testing.T) {
	clip := filepath.Join(t.TempDir(), "yard.avi")
	err := testenv.WriteScene(clip, testenv.Scene{
		Background: testenv.Shared(t, "datasets", "samples", "scream.jpg"), W: 1280, H: 720,
		Sprite: testenv.Shared(t, "datasets", "samples", "dog.jpg"), SpriteRect: image.Rect(132, 206, 325, 543), SpriteW: 260,
		From: image.Pt(-200, 300), To: image.Pt(700, 330), Enter: 30, Stop: 60, Leave: 80,
	}, 20, 300) // 15 s at 20 fps, the dog in view for 2.5 s
	if err != nil {
		t.Fatal(err)
	}
	broker := testenv.StartMosquitto(t)
	sub := testenv.Subscribe(t, broker.URL, "edgedet/e2e/yard/#")
	cams := fmt.Sprintf(`[[camera]]
name = "yard"
source = %q
loop = true
[camera.motion]
enabled = true
[[camera.zone]]
name = "lawn"
points = [[640,0],[1280,0],[1280,720],[640,720]]
inertia = 2
`, clip)
	a := startAgent(t, agentConfig(broker.URL, testenv.Shared(t, "models", "yolox_nano_416.onnx"), cams))
	base := agentHTTP(t, a)
	waitFor(t, sub, 60*time.Second, "a dog event that entered the lawn", func(m testenv.Message) bool {
		return strings.HasSuffix(m.Topic, "/events") && strings.Contains(string(m.Payload), `"label":"dog"`) &&
			strings.Contains(string(m.Payload), `"entered_zones":["lawn"]`)
	})
	waitFor(t, sub, 30*time.Second, "the lawn's retained dog count", func(m testenv.Message) bool {
		return m.Topic == "edgedet/e2e/yard/zone/lawn/dog" && string(m.Payload) == "1"
	})
	var captured, processed float64
	testenv.Eventually(t, 30*time.Second, "the whole clip captured", func() bool {
		fams := scrape(t, base)
		captured = fams["edgedet_camera_frames_captured_total"].value(t, "captured", "camera", "yard")
		processed = fams["edgedet_camera_frames_processed_total"].value(t, "processed", "camera", "yard")
		return captured >= 300
	})
	t.Logf("captured %.0f frames, the detector ran on %.0f", captured, processed)
	if processed == 0 || processed*2 > captured {
		t.Errorf("motion gating: detector ran on %.0f of %.0f frames of a mostly still clip", processed, captured)
	}
}
