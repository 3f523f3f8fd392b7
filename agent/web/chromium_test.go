package web_test

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"gocv.io/x/gocv"

	"github.com/edgedet/edgedet/agent/web"
	"github.com/edgedet/edgedet/detection"
	"github.com/edgedet/edgedet/detector"
	"github.com/edgedet/edgedet/internal/clock"
)

// TestLiveViewInChromium loads the live page in a real headless Chromium
// and checks, on a screenshot of the camera's <img>, that the MJPEG stream
// shows the frame with detector.Draw's box around the dog the real detector
// found, and that the stats panel is filled from /api/cameras.
func TestLiveViewInChromium(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium not installed: apt-get install chromium (scripts/setup.sh installs it)")
	}
	img := dogFrame(t)
	dets, dog := detectDog(t, img)
	boxColour := drawColour(t, dog.ClassID)

	feed := web.NewFeed(10, 75)
	runPipeline(t, feed, img, dets)
	clk := clock.NewFake(time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC)) // health on a clock that does not move
	st := newStatus(started(clk, web.CameraStatus{Connected: true, Detect: true,
		CaptureFPS: 15, ProcessFPS: 7.5, InferenceMs: 38, Objects: []web.ObjectCount{{Label: "bicycle", Count: 1}, {Label: "dog", Count: 2}}}))
	st.Set(progressAt(clk))
	_, base := startServer(t, web.Options{LiveView: true, Clock: clk}, []web.CameraView{{Name: "front", Feed: feed, Status: st.Get}})

	// The whole browser session is bounded, so CI can never hang here.
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	actx, acancel := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(chromium),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
	)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx)
	defer bcancel()

	const sel = `img[data-camera="front"]`
	err = chromedp.Do(bctx,
		// Wide enough that the 768x576 frame is shown at its natural size.
		chromedp.EmulateViewport(1280, 1000),
		chromedp.Navigate(base+"/"),
		chromedp.Poll[chromedp.Void](`document.querySelector('`+sel+`').naturalWidth > 0`,
			chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(30*time.Second)),
		// The stats panel is filled by the page's JS from /api/cameras.
		chromedp.Poll[chromedp.Void](`document.querySelector('section[data-camera="front"] [data-field="objects"]').textContent === "1 bicycle, 2 dog"`,
			chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(10*time.Second)),
	)
	if err != nil {
		t.Fatalf("load live page in chromium: %v", err)
	}
	natural, err := chromedp.Run(bctx, chromedp.Evaluate[[2]int](`(() => { const i = document.querySelector('`+sel+`'); return [i.naturalWidth, i.naturalHeight]; })()`))
	if err != nil {
		t.Fatal(err)
	}
	if natural != [2]int{img.Cols(), img.Rows()} {
		t.Errorf("img natural size %v, want %dx%d", natural, img.Cols(), img.Rows())
	}
	shot, err := chromedp.Run(bctx, chromedp.Screenshot(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	bcancel()
	acancel()
	t.Logf("chromium: browser start, page load, stream and screenshot took %v", time.Since(start).Round(time.Millisecond))

	path := filepath.Join(t.TempDir(), "liveview.png")
	if err := os.WriteFile(path, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
	pic, err := png.Decode(bytes.NewReader(shot))
	if err != nil {
		t.Fatalf("decode screenshot: %v", err)
	}

	// Displayed image pixels per frame pixel (1 when shown at natural size).
	sx := float64(pic.Bounds().Dx()) / float64(img.Cols())
	sy := float64(pic.Bounds().Dy()) / float64(img.Rows())
	r := max(1, int(math.Ceil(max(sx, sy))))
	shown := func(p image.Point) float64 {
		return nearest(pic, int(math.Round(float64(p.X)*sx)), int(math.Round(float64(p.Y)*sy)), r, boxColour)
	}
	undrawn := frameImage(t, img)
	raw := func(p image.Point) float64 { return nearest(undrawn, p.X, p.Y, 1, boxColour) }

	// Points on the dog box's left, right and bottom edges, in frame pixels
	// where detector.Draw draws them (from the truncated corners), and the
	// same points moved 6 px outwards. The top edge carries the label and
	// is left out.
	x1, y1, x2, y2 := int(dog.Box.X1), int(dog.Box.Y1), int(dog.Box.X2), int(dog.Box.Y2)
	var edge, beside []image.Point
	for y := y1 + 10; y <= y2-10; y += 4 {
		edge = append(edge, image.Pt(x1, y), image.Pt(x2, y))
		beside = append(beside, image.Pt(x1-6, y), image.Pt(x2+6, y))
	}
	for x := x1 + 10; x <= x2-10; x += 4 {
		edge = append(edge, image.Pt(x, y2))
		beside = append(beside, image.Pt(x, y2+6))
	}

	// The box is a 1-px anti-aliased line and the stream is JPEG with 4:2:0
	// chroma, so on screen the line is the box colour blended with the
	// frame, not the exact colour. So compare each point with the undrawn
	// frame: on the edge every pixel must be much nearer the box colour
	// than the undrawn frame is there, and near it in absolute terms; 6 px
	// away the screenshot must look like the undrawn frame.
	const gain = 20 // RGB distance the drawn line must win over the undrawn frame
	drawn, dists := 0, make([]float64, 0, len(edge))
	for _, p := range edge {
		d := shown(p)
		dists = append(dists, d)
		if raw(p)-d >= gain {
			drawn++
		}
	}
	slices.Sort(dists)
	median := dists[len(dists)/2]
	tinted := 0
	for _, p := range beside {
		if raw(p)-shown(p) >= gain {
			tinted++
		}
	}
	t.Logf("dog %v, box colour %v: %d of %d edge points drawn (median distance %.0f, undrawn frame %.0f); %d of %d points 6 px outside changed",
		dog.Box, boxColour, drawn, len(edge), median, medianOf(edge, raw), tinted, len(beside))
	if drawn < len(edge)*95/100 {
		t.Errorf("only %d of %d points on the dog box's edge are nearer (by >= %d) the box colour %v in the screenshot %s than in the undrawn frame, want >= 95%%",
			drawn, len(edge), gain, boxColour, path)
	}
	if median > 75 {
		t.Errorf("dog box edge in the screenshot %s: median RGB distance to the box colour %v is %.0f, want <= 75", path, boxColour, median)
	}
	if tinted > len(beside)/10 {
		t.Errorf("%d of %d points 6 px outside the dog box moved towards the box colour in the screenshot %s: the box is not where the detector put it",
			tinted, len(beside), path)
	}
}

// nearest is the smallest RGB distance to want among the pixels of m
// within r of (x, y).
func nearest(m image.Image, x, y, r int, want color.RGBA) float64 {
	best := math.Inf(1)
	for yy := y - r; yy <= y+r; yy++ {
		for xx := x - r; xx <= x+r; xx++ {
			if image.Pt(xx, yy).In(m.Bounds()) {
				c := color.RGBAModel.Convert(m.At(xx, yy)).(color.RGBA)
				dr, dg, db := float64(c.R)-float64(want.R), float64(c.G)-float64(want.G), float64(c.B)-float64(want.B)
				best = min(best, math.Sqrt(dr*dr+dg*dg+db*db))
			}
		}
	}
	return best
}

func medianOf(points []image.Point, f func(image.Point) float64) float64 {
	v := make([]float64, len(points))
	for i, p := range points {
		v[i] = f(p)
	}
	slices.Sort(v)
	return v[len(v)/2]
}

// frameImage converts a BGR frame to a Go image.
func frameImage(t testing.TB, m gocv.Mat) image.Image {
	t.Helper()
	im, err := m.ToImage()
	if err != nil {
		t.Fatal(err)
	}
	return im
}

// drawColour is the colour detector.Draw gives a box of class id: the most
// common colour of a drawing on a black frame (the filled label background;
// the 1-px box lines are anti-aliased), leaving out black and the white text.
func drawColour(t testing.TB, classID int) color.RGBA {
	t.Helper()
	m := gocv.NewMatWithSize(120, 160, gocv.MatTypeCV8UC3)
	defer m.Close()
	detector.Draw(&m, []detection.Detection{{ClassID: classID, Label: "x", Score: 1, Box: detection.Box{X1: 20, Y1: 60, X2: 140, Y2: 110}}})
	count := map[color.RGBA]int{}
	for y := range m.Rows() {
		for x := range m.Cols() {
			v := m.GetVecbAt(y, x)
			c := color.RGBA{R: v[2], G: v[1], B: v[0], A: 255}
			if c != (color.RGBA{A: 255}) && c != (color.RGBA{255, 255, 255, 255}) {
				count[c]++
			}
		}
	}
	var best color.RGBA
	for c, n := range count {
		if n > count[best] {
			best = c
		}
	}
	if count[best] < 20 {
		t.Fatalf("detector.Draw drew no label background for class %d", classID)
	}
	return best
}
