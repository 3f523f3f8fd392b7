package agent

import (
	"context"
	"image"
	"testing"
	"time"

	"gocv.io/x/gocv"

	"github.com/edgedet/edgedet/camera"
)

// TestLiveObjectsFollowTheView: the live page counts the objects seen in
// the latest frame the detector ran on. When the dog walks out of the
// frame its track stays open (its "end" is max_age away), but the live
// list drops it at once; after the flush at shutdown the list is empty.
func TestLiveObjectsFollowTheView(t *testing.T) {
	sc := dogScene(t, 1280, 720, 260, image.Pt(-200, 300), image.Pt(600, 330))
	p, _ := testPipeline(t, CameraConfig{})
	ctx := context.Background()
	st := newFrameState()
	mat := gocv.NewMat()
	defer mat.Close()
	liveDogs := func() int {
		for _, o := range *p.objects.Load() {
			if o.Label == "dog" {
				return o.Count
			}
		}
		return 0
	}
	trackedDogs := func() int {
		n := 0
		for _, o := range p.tracker.Active() {
			if o.Label == "dog" {
				n++
			}
		}
		return n
	}
	var sawLive, goneWhileTracked bool
	t0 := scenePast
	var at time.Time
	for i := range 130 {
		sc.Frame(i, &mat)
		at = t0.Add(time.Duration(i) * frameInterval)
		it, err := p.prepareFrame(ctx, &camera.Frame{Mat: mat, Seq: uint64(i + 1), Time: at})
		if err != nil {
			t.Fatal(err)
		}
		p.process(ctx, it, st)
		seen := 0
		for _, d := range st.dets {
			if d.Label == "dog" {
				seen++
			}
		}
		live, tracked := liveDogs(), trackedDogs()
		if tracked > 0 && live != min(seen, tracked) {
			t.Fatalf("frame %d: %d dogs detected, %d tracked, live page counts %d", i, seen, tracked, live)
		}
		sawLive = sawLive || live > 0
		goneWhileTracked = goneWhileTracked || (tracked > 0 && seen == 0 && live == 0)
	}
	if !sawLive || !goneWhileTracked {
		t.Errorf("live dog counted %v; dropped while its track was still open %v: want both", sawLive, goneWhileTracked)
	}
	p.flushTracks(at.Add(time.Second))
	if got := *p.objects.Load(); len(got) != 0 {
		t.Errorf("after the flush the live page lists %v", got)
	}
}
