package agent

import (
	"context"
	"image"
	"syscall"
	"testing"
	"time"

	"gocv.io/x/gocv"

	"github.com/edgedet/edgedet/agent/track"
	"github.com/edgedet/edgedet/camera"
	"github.com/edgedet/edgedet/internal/testenv"
)

// Frame clocks of the scene tests: fixed dates years apart, in the past
// and in the future, never today's, so the suite shows that nothing
// (tracking, zones, the spool's ageing) depends on the machine's date.
var (
	scenePast   = time.Date(2019, 3, 1, 12, 0, 0, 0, time.UTC)
	sceneFuture = time.Date(2035, 9, 1, 12, 0, 0, 0, time.UTC)
)

// frameInterval is the time between two frames of a scene run (10 fps).
const frameInterval = 100 * time.Millisecond

// sceneEpochs are the dates a time-sensitive scene test runs at.
var sceneEpochs = []time.Time{scenePast, sceneFuture}

// sceneRun feeds a synthetic scene's frames, 10 a second from t0, through
// a pipeline synchronously and records what happened.
type sceneRun struct {
	ran    []bool        // per frame: the detector ran
	cpu    time.Duration // process CPU time spent in the pipeline
	events []track.Event // every event queued
	found  []int         // per frame: detections of the sprite's label
	dogBox []image.Rectangle
}

func runScene(t testing.TB, p *pipeline, sc *testenv.SceneRenderer, t0 time.Time, frames int, label string) sceneRun {
	t.Helper()
	ctx := context.Background()
	st := newFrameState()
	mat := gocv.NewMat()
	defer mat.Close()
	var r sceneRun
	for i := range frames {
		sc.Frame(i, &mat)
		f := &camera.Frame{Mat: mat, Seq: uint64(i + 1), Time: t0.Add(time.Duration(i) * frameInterval)}
		cpu0 := cpuTime()
		it, err := p.prepareFrame(ctx, f)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		before := p.stats.inferences.Load()
		p.process(ctx, it, st)
		r.cpu += cpuTime() - cpu0
		r.ran = append(r.ran, p.stats.inferences.Load() > before)
		n := 0
		var box image.Rectangle
		if r.ran[i] {
			for _, d := range st.dets {
				if d.Label == label {
					n++
					box = image.Rect(int(d.Box.X1), int(d.Box.Y1), int(d.Box.X2), int(d.Box.Y2))
				}
			}
		}
		r.found = append(r.found, n)
		r.dogBox = append(r.dogBox, box)
		r.events = append(r.events, st.evs...)
	}
	return r
}

func (r sceneRun) runs(from, to int) int {
	n := 0
	for _, ran := range r.ran[from:to] {
		if ran {
			n++
		}
	}
	return n
}

func eventTypes(evs []track.Event, label string) (out []track.EventType) {
	for _, ev := range evs {
		if ev.After.Label == label && ev.Type != track.EventUpdate {
			out = append(out, ev.Type)
		}
	}
	return out
}

// dogScene: a still painting (nothing detectable) that a dog crosses from
// frame 40 to 70, stands still in until 110 and then leaves.
func dogScene(t testing.TB, w, h, spriteW int, from, to image.Point) *testenv.SceneRenderer {
	t.Helper()
	sc, err := testenv.NewScene(testenv.Scene{
		Background: testenv.Shared(t, "datasets", "samples", "scream.jpg"), W: w, H: h,
		Sprite: testenv.Shared(t, "datasets", "samples", "dog.jpg"), SpriteRect: image.Rect(132, 206, 325, 543), SpriteW: spriteW,
		From: from, To: to, Enter: 40, Stop: 70, Leave: 110,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sc.Close)
	return sc
}

// TestMotionGating: on a clip that is still for most of its length the
// detector runs only where the dog moves and, while it stands still, at
// the recheck rate; it finds the dog as the ungated run does, and the
// stopped dog keeps its event open until it has left.
func TestMotionGating(t *testing.T) {
	sc := dogScene(t, 1280, 720, 260, image.Pt(-200, 300), image.Pt(600, 330))
	const frames = 160
	t0 := scenePast // every time below is relative to it
	full, _ := testPipeline(t, CameraConfig{})
	ungated := runScene(t, full, sc, t0, frames, "dog")
	gp, _ := testPipeline(t, CameraConfig{Motion: MotionConfig{Enabled: true}})
	gated := runScene(t, gp, sc, t0, frames, "dog")

	if n := ungated.runs(0, frames); n != frames {
		t.Fatalf("ungated run skipped frames: %d of %d run", n, frames)
	}
	if n := gated.runs(1, 40); n != 0 {
		t.Errorf("the detector ran on %d still frames before the dog came", n)
	}
	if n := gated.runs(42, 70); n < 25 {
		t.Errorf("the detector ran on %d of the 28 frames the dog moved in", n)
	}
	// Standing still (70..110): only rechecks, about one a second.
	if n := gated.runs(72, 110); n < 3 || n > 8 {
		t.Errorf("the detector ran %d times in the 38 frames the dog stood still, want a recheck about every 10", n)
	}
	total := gated.runs(0, frames)
	t.Logf("detector runs: gated %d, ungated %d (%.1fx fewer)", total, frames, float64(frames)/float64(total))
	if total*3 > frames {
		t.Errorf("gated run used the detector %d times of %d", total, frames)
	}
	// Nothing the full-frame run found while the dog moved is missed.
	for i := 42; i < 70; i++ {
		if ungated.found[i] > 0 && gated.ran[i] && gated.found[i] == 0 {
			t.Errorf("frame %d: the ungated run found the dog, the gated run did not", i)
		}
	}
	// Same events: one dog, new while moving, ending only after it left.
	want := eventTypes(ungated.events, "dog")
	got := eventTypes(gated.events, "dog")
	if len(want) != 2 || len(got) != 2 || got[0] != track.EventNew || got[1] != track.EventEnd {
		t.Fatalf("dog events: ungated %v, gated %v; want new then end in both", want, got)
	}
	// Event times are frame times, relative to the scene's start: the dog
	// is first seen while moving (frames 40..70, 4..7 s) and its event
	// ends once it has stopped being seen, not while it still stands in
	// view (until frame 100 at least; it leaves at 110), and before the
	// scene ends.
	checked := 0
	for _, ev := range gated.events {
		if ev.After.Label != "dog" {
			continue
		}
		switch ev.Type {
		case track.EventNew:
			checked++
			if s := ev.After.Start.Sub(t0); s < 4*time.Second || s > 7*time.Second {
				t.Errorf("the dog's event started %v into the scene, want while it moved (4..7 s)", s)
			}
		case track.EventEnd:
			checked++
			if e := ev.After.End.Sub(t0); e < 10*time.Second || e > frames*frameInterval {
				t.Errorf("the dog's event ended %v into the scene, want after it stood in view (10 s) and before the scene ended (%v)", e, frames*frameInterval)
			}
		}
	}
	if checked != 2 {
		t.Errorf("checked the times of %d dog events, want new and end", checked)
	}
}

// TestRegionsFindSmallObjects: a small dog crossing a 1080p frame is lost
// when the whole frame is shrunk to the model's 416 pixels, and found when
// the detector runs on a model-size crop around its motion.
func TestRegionsFindSmallObjects(t *testing.T) {
	sc := dogScene(t, 1920, 1080, 120, image.Pt(300, 600), image.Pt(1200, 640))
	const frames = 75 // the dog moves in 40..70
	whole, _ := testPipeline(t, CameraConfig{Motion: MotionConfig{Enabled: true}})
	full := runScene(t, whole, sc, sceneFuture, frames, "dog")
	crops, _ := testPipeline(t, CameraConfig{Motion: MotionConfig{Enabled: true, Regions: true}})
	reg := runScene(t, crops, sc, sceneFuture, frames, "dog")
	count := func(r sceneRun) (n int) {
		for i := 42; i < 70; i++ {
			if r.found[i] > 0 {
				n++
			}
		}
		return n
	}
	nf, nr := count(full), count(reg)
	t.Logf("frames with the dog found (of 28): whole frame %d, regions %d", nf, nr)
	if nr < 20 || nf > nr/3 {
		t.Errorf("dog found in %d frames with regions and %d with the whole frame; want regions to find it in most, the whole frame in few", nr, nf)
	}
	// The boxes are in frame pixels, on the sprite.
	for i := 42; i < 70; i++ {
		if reg.found[i] == 0 {
			continue
		}
		want, _ := sc.SpriteBox(i)
		if !reg.dogBox[i].Overlaps(want) {
			t.Errorf("frame %d: dog found at %v, the sprite is at %v", i, reg.dogBox[i], want)
		}
	}
}

// cpuTime is the process's user+system CPU time (every thread: ONNX
// Runtime's too).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkMotionGating: a mostly static 1080p scene, 30 s at 10 fps in
// which a dog crosses for 3 s, through the pipeline ungated and gated.
// Reports detector runs and CPU time of both and their ratios.
func BenchmarkMotionGating(b *testing.B) {
	sc, err := testenv.NewScene(testenv.Scene{
		Background: testenv.Shared(b, "datasets", "samples", "scream.jpg"), W: 1920, H: 1080,
		Sprite: testenv.Shared(b, "datasets", "samples", "dog.jpg"), SpriteRect: image.Rect(132, 206, 325, 543), SpriteW: 300,
		From: image.Pt(-300, 500), To: image.Pt(1900, 540), Enter: 100, Stop: 130, Leave: 130,
	})
	if err != nil {
		b.Fatal(err)
	}
	defer sc.Close()
	const frames = 300
	var full, gated sceneRun
	for range b.N {
		fp, _ := testPipeline(b, CameraConfig{})
		full = runScene(b, fp, sc, sceneFuture, frames, "dog")
		gp, _ := testPipeline(b, CameraConfig{Motion: MotionConfig{Enabled: true}})
		gated = runScene(b, gp, sc, sceneFuture, frames, "dog")
	}
	nf, ng := full.runs(0, frames), gated.runs(0, frames)
	b.ReportMetric(float64(nf), "runs-ungated")
	b.ReportMetric(float64(ng), "runs-gated")
	b.ReportMetric(float64(nf)/float64(max(ng, 1)), "runs-ratio")
	b.ReportMetric(full.cpu.Seconds()/max(gated.cpu.Seconds(), 1e-9), "cpu-ratio")
	b.ReportMetric(float64(gated.cpu.Milliseconds())/frames, "gated-cpu-ms/frame")
	b.ReportMetric(float64(full.cpu.Milliseconds())/frames, "ungated-cpu-ms/frame")
	if a, g := eventTypes(full.events, "dog"), eventTypes(gated.events, "dog"); len(a) != len(g) {
		b.Errorf("dog events differ: ungated %v, gated %v", a, g)
	}
}
