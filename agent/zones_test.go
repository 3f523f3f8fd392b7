package agent

import (
	"context"
	"encoding/json"
	"image"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/edgedet/edgedet/agent/mqtt"
	"github.com/edgedet/edgedet/agent/outbox"
	"github.com/edgedet/edgedet/agent/zone"
	"github.com/edgedet/edgedet/internal/clock"
	"github.com/edgedet/edgedet/internal/testenv"
)

// deliverTo connects p's outbox to a real broker and runs it until the
// test ends.
func deliverTo(t *testing.T, p *pipeline, url string) {
	t.Helper()
	log := testLog()
	client, err := mqtt.NewClient(mqtt.Config{Broker: url, Device: "t"}.WithDefaults(), log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := client.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if err := client.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	box, err := outbox.New(outbox.Config{}.WithDefaults(), client, log)
	if err != nil {
		t.Fatal(err)
	}
	p.box = box
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- box.Run(runCtx) }()
	t.Cleanup(func() {
		stop()
		<-done
		client.Close(context.Background())
	})
}

// TestZonesInEventsAndCounts: the dog walks into the "lawn" zone (the right
// half of the frame, for dogs only) and stops there: its events name the
// zone once it has been inside for inertia frames, the zone's dog count
// goes to 1, and back to 0 when the object ends; the "path" zone, for
// people, never counts it. It runs with the frames and the pipeline's clock
// set years in the past and in the future: the events and counts travel
// through the spool, which must not drop them for their date.
func TestZonesInEventsAndCounts(t *testing.T) {
	for _, t0 := range sceneEpochs {
		t.Run(t0.Format("2006"), func(t *testing.T) { testZonesInEventsAndCounts(t, t0) })
	}
}

func testZonesInEventsAndCounts(t *testing.T, t0 time.Time) {
	broker := testenv.StartMosquitto(t)
	sub := testenv.Subscribe(t, broker.URL, "edgedet/t/static/#")
	lawn := zone.Config{Name: "lawn", Points: []zone.Point{{640, 0}, {1280, 0}, {1280, 720}, {640, 720}}, Objects: []string{"dog"}}
	path := zone.Config{Name: "path", Points: []zone.Point{{0, 0}, {1280, 0}, {1280, 720}, {0, 720}}, Objects: []string{"person"}}
	clk := clock.NewFake(t0)
	p, _ := testPipeline(t, CameraConfig{Zones: []zone.Config{lawn, path}}, withClock(clk))
	deliverTo(t, p, broker.URL)
	// The dog moves from x -200 to 600 (its bottom-centre ends at x ≈ 730,
	// inside the lawn), stands there and leaves at frame 110.
	sc := dogScene(t, 1280, 720, 260, image.Pt(-200, 300), image.Pt(600, 330))
	const frames = 150
	runScene(t, p, sc, t0, frames, "dog")
	clk.Advance(frames * 100 * time.Millisecond)
	p.flushTracks(clk.Now())

	var entered, current bool
	var prevAfter json.RawMessage // the dog's last "after"
	zoneChanges := 0
	counts := map[string]string{}
	deadline := time.After(10 * time.Second)
	for done := false; !done; {
		select {
		case m := <-sub:
			switch {
			case strings.HasSuffix(m.Topic, "/events"):
				var ev struct {
					Type  string `json:"type"`
					After struct {
						Label   string   `json:"label"`
						Current []string `json:"current_zones"`
						Entered []string `json:"entered_zones"`
					} `json:"after"`
				}
				var raw struct {
					Before, After json.RawMessage
				}
				if err := json.Unmarshal(m.Payload, &ev); err != nil {
					t.Fatalf("%s: %v", m.Payload, err)
				}
				if ev.After.Label != "dog" {
					continue
				}
				// before is the previous message's after, zones included:
				// a zone change shows once, as before → after.
				json.Unmarshal(m.Payload, &raw)
				if ev.Type != "new" && string(raw.Before) != string(prevAfter) {
					t.Errorf("%s: before is not the previous after:\nbefore %s\nprev   %s", ev.Type, raw.Before, prevAfter)
				}
				var before struct {
					Current []string `json:"current_zones"`
				}
				json.Unmarshal(raw.Before, &before)
				if ev.Type != "new" && strings.Join(before.Current, ",") != strings.Join(ev.After.Current, ",") {
					zoneChanges++
				}
				prevAfter = raw.After
				if ev.After.Current == nil || ev.After.Entered == nil {
					t.Errorf("event without zone fields: %s", m.Payload)
				}
				current = current || strings.Join(ev.After.Current, ",") == "lawn"
				entered = entered || strings.Join(ev.After.Entered, ",") == "lawn"
				if ev.Type == "end" && strings.Join(ev.After.Entered, ",") != "lawn" {
					t.Errorf("end event does not say the dog had entered the lawn: %s", m.Payload)
				}
			case strings.Contains(m.Topic, "/zone/"):
				counts[strings.TrimPrefix(m.Topic, "edgedet/t/static/zone/")] += string(m.Payload) + " "
			}
		case <-deadline:
			done = true
		}
		if entered && strings.HasSuffix(counts["lawn/dog"], "0 ") && strings.Contains(counts["lawn/dog"], "1") {
			done = true
		}
	}
	if !current || !entered {
		t.Errorf("no dog event with the lawn as current (%v) and entered (%v) zone", current, entered)
	}
	if zoneChanges == 0 {
		t.Error("no dog event whose before and after zones differ")
	}
	if got := counts["lawn/dog"]; !strings.HasPrefix(got, "1 ") || !strings.HasSuffix(got, "0 ") {
		t.Errorf("lawn/dog counts published %q, want 1, ..., 0", got)
	}
	late := testenv.Subscribe(t, broker.URL, "edgedet/t/static/zone/lawn/dog")
	select {
	case m := <-late:
		if !m.Retained || string(m.Payload) != "0" {
			t.Errorf("late subscriber got %q retained %v, want a retained 0", m.Payload, m.Retained)
		}
	case <-time.After(5 * time.Second):
		t.Error("no retained lawn/dog count")
	}
	if strings.Contains(counts["path/person"], "1") || counts["path/dog"] != "" {
		t.Errorf("the path zone counted the dog: %v", counts)
	}
}

func testLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// TestObjectMaskDropsDetections: detections whose bottom-centre lies in an
// object mask are dropped before tracking; elsewhere they pass.
func TestObjectMaskDropsDetections(t *testing.T) {
	sc := dogScene(t, 1280, 720, 260, image.Pt(-200, 300), image.Pt(600, 330))
	// The right half: the dog is found while it crosses the left half only.
	mask := [][]zone.Point{{{640, 0}, {1280, 0}, {1280, 720}, {640, 720}}}
	p, _ := testPipeline(t, CameraConfig{ObjectMasks: mask})
	r := runScene(t, p, sc, scenePast, 110, "dog")
	left, right := 0, 0
	for i := 40; i < 110; i++ {
		if r.found[i] == 0 {
			continue
		}
		if cx := (r.dogBox[i].Min.X + r.dogBox[i].Max.X) / 2; cx >= 640 {
			right++
		} else {
			left++
		}
	}
	if left == 0 || right != 0 {
		t.Errorf("dog kept in %d frames left of the mask and %d inside it; want some and none", left, right)
	}
}
