package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gocv.io/x/gocv"

	"github.com/edgedet/edgedet/agent/report"
	"github.com/edgedet/edgedet/agent/topic"
	"github.com/edgedet/edgedet/agent/track"
	"github.com/edgedet/edgedet/camera"
	"github.com/edgedet/edgedet/detection"
	"github.com/edgedet/edgedet/internal/clock"
	"github.com/edgedet/edgedet/internal/testenv"
)

func openTestObject(id, label string, x float32, start time.Time) track.Object {
	box := detection.Box{X1: x, Y1: 20, X2: x + 100, Y2: 220}
	return track.Object{ID: id, Label: label, ClassID: 16, Score: 0.71, TopScore: 0.88, Box: box, Area: box.Area(),
		Start: start, LastSeen: start.Add(2 * time.Second), Hits: 14, FrameTime: start.Add(2 * time.Second)}
}

func mustOpenStore(t *testing.T, dir string, log *slog.Logger) (*openStore, map[string]openCamera) {
	t.Helper()
	s, prev, err := openOpenStore(dir, log)
	if err != nil {
		t.Fatal(err)
	}
	return s, prev
}

// TestOpenStoreRoundTrip: what one run records is what the next reads back,
// and the restart "end" events built from it carry the objects, their
// zones and reason restart.
func TestOpenStoreRoundTrip(t *testing.T) {
	dir := t.TempDir()
	s, prev := mustOpenStore(t, dir, testLog())
	if len(prev) != 0 {
		t.Fatalf("fresh state dir: previous run left %v", prev)
	}
	start := time.Date(2019, 4, 5, 6, 7, 8, 9e6, time.UTC)
	dog := openTestObject("1554444428009-000003", "dog", 10, start)
	car := openTestObject("1554444428009-000001", "car", 300, start)
	person := openTestObject("1554444429000-000007", "person", 50, start.Add(time.Second))
	zones := func(id string) (current, entered []string) {
		if id == dog.ID {
			return []string{"lawn"}, []string{"path", "lawn"}
		}
		return []string{}, []string{}
	}
	s.set("front", report.Meta{Model: "yolox_nano_416", Precision: "int8", Width: 1280, Height: 720, Zones: zones}, []track.Object{dog, car})
	s.set("back", report.Meta{Model: "yolox_nano_416", Precision: "int8", Width: 640, Height: 480}, []track.Object{person})
	s.set("side", report.Meta{}, nil) // never had any: nothing to write
	if s.writes != 2 {
		t.Errorf("%d writes for 2 changes, want 2", s.writes)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*.tmp*")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}

	_, prev = mustOpenStore(t, dir, testLog())
	if len(prev) != 2 || len(prev["front"].Objects) != 2 || len(prev["back"].Objects) != 1 {
		t.Fatalf("read back %+v, want front with 2 objects and back with 1", prev)
	}
	now := time.Date(2019, 4, 6, 0, 0, 0, 0, time.UTC)
	meta, evs := restartEnds("front", prev["front"], now)
	if meta.Camera != "front" || meta.Model != "yolox_nano_416" || meta.Precision != "int8" || meta.Width != 1280 || meta.Height != 720 {
		t.Errorf("meta %+v", meta)
	}
	if len(evs) != 2 || evs[0].After.ID != car.ID || evs[1].After.ID != dog.ID {
		t.Fatalf("restart ends %+v, want car then dog (ID order)", evs)
	}
	for i, want := range []track.Object{car, dog} {
		ev := evs[i]
		got := ev.After
		if ev.Type != track.EventEnd || ev.Reason != track.EndRestart {
			t.Errorf("%s: type %q reason %q, want end/restart", want.ID, ev.Type, ev.Reason)
		}
		if got.Label != want.Label || got.ClassID != want.ClassID || got.Box != want.Box || got.Score != want.Score ||
			got.TopScore != want.TopScore || got.Hits != want.Hits || !got.Start.Equal(want.Start) {
			t.Errorf("%s: after %+v, want %+v", want.ID, got, want)
		}
		if !got.End.Equal(want.LastSeen) || !got.FrameTime.Equal(now) {
			t.Errorf("%s: end %v frame time %v, want the last seen %v and now %v", want.ID, got.End, got.FrameTime, want.LastSeen, now)
		}
	}
	var payload struct {
		Type      string `json:"type"`
		EndReason string `json:"end_reason"`
		After     struct {
			Current []string `json:"current_zones"`
			Entered []string `json:"entered_zones"`
		} `json:"after"`
	}
	msg := report.EventMessage(topic.Tree{Prefix: "edgedet", Device: "t"}, meta, evs[1])
	if err := json.Unmarshal(msg.Payload, &payload); err != nil {
		t.Fatal(err)
	}
	if payload.Type != "end" || payload.EndReason != "restart" || strings.Join(payload.After.Current, ",") != "lawn" ||
		strings.Join(payload.After.Entered, ",") != "path,lawn" {
		t.Errorf("dog's restart end: %s", msg.Payload)
	}
	if bm, _ := restartEnds("back", prev["back"], now); bm.Zones != nil {
		t.Error("a camera without zones gets zone fields in its restart ends")
	}
}

// TestOpenStoreDamagedFile: a state file that is not one (garbage, cut
// short, another version, an object without id) is logged with its name,
// moved aside, and the store starts empty and keeps working.
func TestOpenStoreDamagedFile(t *testing.T) {
	for name, content := range map[string]string{
		"garbage":   "\x00\x17not json at all",
		"truncated": `{"version":1,"cameras":{"front":{"objects":[{"id":"17-000001","lab`,
		"version":   `{"version":9,"cameras":{}}`,
		"no id":     `{"version":1,"cameras":{"front":{"objects":[{"id":"","label":"dog"}]}}}`,
		"empty":     ``,
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, openObjectsFile)
			if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			var logged bytes.Buffer
			s, prev := mustOpenStore(t, dir, slog.New(slog.NewTextHandler(&logged, nil)))
			if len(prev) != 0 {
				t.Errorf("damaged file read as %+v", prev)
			}
			if !strings.Contains(logged.String(), "damaged state file") || !strings.Contains(logged.String(), path) {
				t.Errorf("log does not name the damaged file %s:\n%s", path, logged.String())
			}
			if got, err := os.ReadFile(path + ".damaged"); err != nil || string(got) != content {
				t.Errorf("damaged file not moved aside intact: %q, %v", got, err)
			}
			s.set("front", report.Meta{}, []track.Object{openTestObject("1-000001", "dog", 0, time.Unix(1, 0))})
			if _, prev := mustOpenStore(t, dir, testLog()); len(prev["front"].Objects) != 1 {
				t.Errorf("store after a damaged file: read back %+v", prev)
			}
		})
	}
}

// TestOpenStoreWritesOnChangeOnly: a pipeline rewrites the state file when
// an object is reported or ends, not on the frames in between; a clean
// stop leaves it empty.
func TestOpenStoreWritesOnChangeOnly(t *testing.T) {
	dir := t.TempDir()
	p, _ := testPipeline(t, CameraConfig{})
	s, _ := mustOpenStore(t, dir, testLog())
	p.open = s
	img := gocv.IMRead(testenv.Shared(t, "datasets", "samples", "dog.jpg"), gocv.IMReadColor)
	defer img.Close()
	ctx := context.Background()
	st := newFrameState()
	t0 := time.Date(2035, 2, 3, 4, 5, 6, 0, time.UTC)
	changes := 0
	for i := range 40 {
		j, err := p.det.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := j.Prepare(img); err != nil {
			t.Fatal(err)
		}
		p.process(ctx, prepared{job: j, frame: &camera.Frame{Mat: img, Seq: uint64(i + 1), Time: t0.Add(time.Duration(i) * 100 * time.Millisecond)}}, st)
		if opensOrEnds(st.evs) {
			changes++
		}
		if s.writes != changes {
			t.Fatalf("frame %d: %d state writes for %d changes of the open objects", i, s.writes, changes)
		}
	}
	if changes == 0 || changes > 5 {
		t.Fatalf("%d frames changed the open objects of a still image in 40 frames; want a few (dog, bicycle, car)", changes)
	}
	_, prev := mustOpenStore(t, dir, testLog())
	if n := len(prev["static"].Objects); n != len(p.tracker.Active()) || n == 0 {
		t.Errorf("state file lists %d objects, the tracker has %d open", n, len(p.tracker.Active()))
	}
	p.flushTracks(t0.Add(time.Minute))
	if _, prev := mustOpenStore(t, dir, testLog()); len(prev) != 0 {
		t.Errorf("after a clean stop the state file still lists %+v", prev)
	}
}

// TestRestoreOpenEndsLeftObjects: at start the agent publishes one "end"
// with reason restart for every object the last run left open, sets their
// labels' counts to 0 and empties the file, so a second start ends nothing.
func TestRestoreOpenEndsLeftObjects(t *testing.T) {
	broker := testenv.StartMosquitto(t)
	sub := testenv.Subscribe(t, broker.URL, "edgedet/t/#")
	dir := t.TempDir()
	s, _ := mustOpenStore(t, dir, testLog())
	start := time.Date(2035, 7, 8, 9, 10, 11, 0, time.UTC)
	left := []track.Object{openTestObject("2067484211000-000001", "dog", 0, start),
		openTestObject("2067484211000-000002", "person", 200, start)}
	s.set("static", report.Meta{Model: "m", Precision: "fp32", Width: 640, Height: 480}, left)

	p, _ := testPipeline(t, CameraConfig{})
	deliverTo(t, p, broker.URL)
	a := &Agent{cfg: &Config{StateDir: dir}, log: testLog(), clock: clock.NewFake(start.Add(time.Hour))}
	topics := topic.Tree{Prefix: "edgedet", Device: "t"}
	store, counts, err := a.restoreOpen(p.box, topics)
	if err != nil || store == nil || counts["static"] == nil {
		t.Fatalf("restoreOpen: store %v counts %v err %v", store, counts, err)
	}
	ended := map[string]string{}
	zero := map[string]bool{}
	deadline := time.After(10 * time.Second)
	for len(ended) < 2 || len(zero) < 2 {
		select {
		case m := <-sub:
			switch m.Topic {
			case "edgedet/t/static/events":
				var ev struct {
					Type      string `json:"type"`
					EndReason string `json:"end_reason"`
					After     struct {
						ID string `json:"id"`
					} `json:"after"`
				}
				if err := json.Unmarshal(m.Payload, &ev); err != nil {
					t.Fatal(err)
				}
				if _, dup := ended[ev.After.ID]; dup || ev.Type != "end" || ev.EndReason != "restart" {
					t.Fatalf("unexpected event %s (ended so far %v)", m.Payload, ended)
				}
				ended[ev.After.ID] = ev.EndReason
			case "edgedet/t/static/dog", "edgedet/t/static/person":
				if string(m.Payload) != "0" {
					t.Fatalf("%s = %q, want 0", m.Topic, m.Payload)
				}
				zero[m.Topic] = true
			}
		case <-deadline:
			t.Fatalf("restart ends %v and zero counts %v after 10s, want 2 of each", ended, zero)
		}
	}
	if _, prev := mustOpenStore(t, dir, testLog()); len(prev) != 0 {
		t.Errorf("state file after the restart ends: %+v, want empty", prev)
	}
}
