package camera

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"gocv.io/x/gocv"

	"github.com/edgedet/edgedet/internal/testenv"
)

// checkFrame fails unless f is a BGR frame of w×h.
func checkFrame(t testing.TB, f *Frame, w, h int) {
	t.Helper()
	if f.Mat.Empty() || f.Mat.Cols() != w || f.Mat.Rows() != h || f.Mat.Type() != gocv.MatTypeCV8UC3 {
		t.Fatalf("frame seq %d: %dx%d type %d, want %dx%d CV_8UC3", f.Seq, f.Mat.Cols(), f.Mat.Rows(), f.Mat.Type(), w, h)
	}
	if f.Time.IsZero() {
		t.Fatalf("frame seq %d has no capture time", f.Seq)
	}
}

func TestFileDeliversFramesThenEnds(t *testing.T) {
	t.Parallel()
	clip := writeClip(t, 3, 5, 50) // 15 frames, 0.3 s
	log, logs := testLogger(t)
	r := start(t, Config{Name: "file", Source: clip}, log)

	var last uint64
	n := 0
	for {
		f, err := r.next(t, 3*time.Second)
		if errors.Is(err, ErrEndOfStream) {
			break
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		checkFrame(t, f, 160, 120)
		if f.Seq <= last {
			t.Fatalf("seq %d after %d: not increasing", f.Seq, last)
		}
		last = f.Seq
		n++
		r.s.Release(f)
	}
	if err := r.wait(t, 3*time.Second); !errors.Is(err, ErrEndOfStream) {
		t.Fatalf("Run = %v, want ErrEndOfStream", err)
	}
	if _, err := r.next(t, time.Second); !errors.Is(err, ErrEndOfStream) {
		t.Fatalf("Next after end = %v, want ErrEndOfStream", err)
	}
	st := r.s.Stats()
	if st.Captured != 15 || last != 15 {
		t.Errorf("captured %d, last seq %d; want 15 and 15 (the last frame is always handed over)", st.Captured, last)
	}
	if uint64(n) != st.Delivered || st.Delivered+st.Dropped != st.Captured || st.Skipped != 0 {
		t.Errorf("counters don't add up: got %d frames, stats %+v", n, st)
	}
	if st.Width != 160 || st.Height != 120 || st.SourceFPS != 50 || st.Reconnects != 0 || st.LastError != "" {
		t.Errorf("stats %+v", st)
	}
	if logs.Count("camera streaming", "component=camera", "camera=file") != 1 {
		t.Errorf("want one 'camera streaming' line with the child logger's attributes, logs:\n%s", logs)
	}
}

func TestSlowConsumerGetsNewestFrame(t *testing.T) {
	t.Parallel()
	clip := writeClip(t, 4, 10, 20) // 40 frames at 20 fps, 2 s
	r := start(t, Config{Name: "slow", Source: clip}, nil)

	frames := map[*Frame]bool{}
	mats := map[any]bool{}
	var last uint64
	gaps := 0
	for {
		before := r.s.Stats().Captured
		f, err := r.next(t, 3*time.Second)
		if errors.Is(err, ErrEndOfStream) {
			break
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		checkFrame(t, f, 160, 120)
		// Newest: the slot holds the latest published frame; at most the one
		// being published right now is newer.
		if before > 0 && f.Seq+1 < before {
			t.Fatalf("got seq %d although %d frames were already captured: stale frame", f.Seq, before)
		}
		if f.Seq > last+1 {
			gaps++
		}
		last = f.Seq
		frames[f] = true
		mats[f.Mat.Ptr()] = true
		// A slow detector: hold the frame until capture has moved three
		// frames on (or the clip has ended), however loaded the machine.
		until := min(f.Seq+3, 40)
		testenv.Eventually(t, 10*time.Second, fmt.Sprintf("frame %d captured while holding %d", until, f.Seq),
			func() bool { return r.s.Stats().Captured >= until })
		r.s.Release(f)
	}
	st := r.s.Stats()
	if st.Dropped == 0 || gaps == 0 {
		t.Errorf("want dropped frames and seq gaps with a slow consumer: gaps %d, stats %+v", gaps, st)
	}
	if st.Captured != 40 || last != 40 {
		t.Errorf("captured %d, last seq %d; want 40, 40", st.Captured, last)
	}
	if st.Delivered+st.Dropped != st.Captured {
		t.Errorf("delivered+dropped != captured: %+v", st)
	}
	// Bounded memory: the consumer only ever sees the pool's frames and Mats.
	if len(frames) > poolSize || len(mats) > poolSize {
		t.Errorf("consumer saw %d distinct frames and %d distinct Mats, want <= %d", len(frames), len(mats), poolSize)
	}
	<-r.s.captureDone // Run returned ErrEndOfStream, so capture is over
	r.s.mu.Lock()
	free := len(r.s.free)
	r.s.mu.Unlock()
	if free != poolSize {
		t.Errorf("after the run %d frames are back in the pool, want %d", free, poolSize)
	}
}

// TestDetectFPSSkipsFrames: with detect_fps set, frames captured sooner
// than 1/detect_fps after the schedule are skipped, the schedule advances
// by one interval per published frame and restarts after the source fell
// behind. The source stamps capture times 25 ms apart (40 fps) instead of
// reading the clock, and realtime = false makes the stream wait for the
// consumer, so the outcome is exact on any machine.
func TestDetectFPSSkipsFrames(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	var stamps []time.Time
	for i := range 80 { // 2 s at 40 fps
		stamps = append(stamps, t0.Add(time.Duration(i)*25*time.Millisecond))
	}
	// Then a 1 s gap (the source stalled) and 10 frames 25 ms apart.
	for i := range 10 {
		stamps = append(stamps, t0.Add(3*time.Second+time.Duration(i)*25*time.Millisecond))
	}
	path := filepath.Join(t.TempDir(), "stamped.avi")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	src := &stampedSource{times: stamps}
	s, err := NewStreamWithOpener(Config{Name: "limited", Source: path, DetectFPS: 5, Realtime: ptr(false)},
		func(context.Context, Config, *slog.Logger) (Source, error) { return src, nil }, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var got []time.Duration
	var seqs []uint64
	for {
		nctx, ncancel := context.WithTimeout(ctx, 10*time.Second)
		f, err := s.Next(nctx)
		ncancel()
		if errors.Is(err, ErrEndOfStream) {
			break
		}
		if err != nil {
			t.Fatalf("Next: %v (stats %+v)", err, s.Stats())
		}
		got = append(got, f.Time.Sub(t0))
		seqs = append(seqs, f.Seq)
		s.Release(f)
	}
	if err := <-done; !errors.Is(err, ErrEndOfStream) {
		t.Fatalf("Run = %v, want ErrEndOfStream", err)
	}
	// One frame per 200 ms of stamps from 0 to 1.8 s (frames 1, 9, 17, ...);
	// after the gap the schedule restarts at 3 s (frame 81) instead of
	// bursting to catch up, and the next is due at 3.2 s (frame 89).
	var want []time.Duration
	var wantSeq []uint64
	for i := range 10 {
		want = append(want, time.Duration(i)*200*time.Millisecond)
		wantSeq = append(wantSeq, uint64(8*i+1))
	}
	want = append(want, 3*time.Second, 3200*time.Millisecond)
	wantSeq = append(wantSeq, 81, 89)
	if fmt.Sprint(got) != fmt.Sprint(want) || fmt.Sprint(seqs) != fmt.Sprint(wantSeq) {
		t.Errorf("published capture times %v (seq %v), want %v (seq %v)", got, seqs, want, wantSeq)
	}
	st := s.Stats()
	if st.Captured != 90 || st.Delivered != uint64(len(want)) || st.Dropped != 0 || st.Skipped != 90-uint64(len(want)) {
		t.Errorf("stats %+v: want 90 captured, %d delivered, none dropped, the rest skipped", st, len(want))
	}
}

// stampedSource is a file-like Source whose frames carry the capture
// times in times (a 2×2 black image each), then ends.
type stampedSource struct {
	times []time.Time
	next  int
}

func (s *stampedSource) Read(_ context.Context, f *Frame) error {
	if s.next == len(s.times) {
		return ErrEndOfStream
	}
	m := gocv.NewMatWithSize(2, 2, gocv.MatTypeCV8UC3)
	m.CopyTo(&f.Mat)
	m.Close()
	f.Time = s.times[s.next]
	s.next++
	return nil
}

func (s *stampedSource) Close() error { return nil }

// TestUnavailableSourcesStayUp: a source that cannot open keeps the stream
// retrying with backoff, warns once per failure streak, and Run returns
// promptly on cancel.
func TestUnavailableSourcesStayUp(t *testing.T) {
	t.Parallel()
	junk := filepath.Join(t.TempDir(), "junk.avi")
	if err := os.WriteFile(junk, []byte("definitely not a video container"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, source string
		before       func(t *testing.T, path string) // after NewStream, before Run
		wantErr      string
	}{
		{"url", "rtsp://127.0.0.1:1/x", nil, `open url "rtsp://127.0.0.1:1/x": capture did not open`},
		{"credentials", "rtsp://viewer:s3cret@127.0.0.1:1/x", nil, `open url "rtsp://viewer:xxxxx@127.0.0.1:1/x"`},
		{"password parameter", "http://127.0.0.1:1/video.cgi?user=viewer&password=s3cret", nil,
			`open url "http://127.0.0.1:1/video.cgi?user=viewer&password=xxxxx"`},
		{"device", "/dev/video99", nil, `open v4l2 "/dev/video99": device not present`},
		{"device index", "99", nil, `open v4l2 "99": capture did not open`},
		{"junk file", junk, nil, `open file "` + junk + `": capture did not open`},
		{"deleted file", "", func(t *testing.T, path string) {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
		}, "capture did not open"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			src := c.source
			if src == "" {
				src = writeClip(t, 1, 2, 10)
			}
			log, logs := testLogger(t)
			s, err := NewStream(Config{
				Name: c.name, Source: src,
				ReconnectMin: dur(20 * time.Millisecond), ReconnectMax: dur(80 * time.Millisecond),
			}, log)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if c.before != nil {
				c.before(t, src)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- s.Run(ctx) }()

			testenv.Eventually(t, 10*time.Second, "3 reconnect attempts", func() bool { return s.Stats().Reconnects >= 3 })
			st := s.Stats()
			if st.Connected || !strings.Contains(st.LastError, c.wantErr) {
				t.Errorf("stats %+v, want disconnected with LastError containing %q", st, c.wantErr)
			}
			if n := logs.Count("level=WARN"); n != 1 {
				t.Errorf("want exactly one warning per failure streak, got %d:\n%s", n, logs)
			}
			if logs.Count("camera reconnect failed", "level=DEBUG") == 0 {
				t.Errorf("retries should log at debug:\n%s", logs)
			}
			if strings.Contains(logs.String(), "s3cret") || strings.Contains(st.LastError, "s3cret") {
				t.Errorf("credentials leaked into logs or stats:\n%s", logs)
			}

			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run = %v, want nil after cancel", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Run did not return within 10 s of cancel")
			}
			// Promptly: the capture goroutine saw the cancel itself (in its
			// backoff wait) rather than being abandoned after stopGrace.
			if n := logs.Count("abandoning"); n != 0 {
				t.Errorf("Run abandoned the capture goroutine instead of stopping it:\n%s", logs)
			}
			if _, err := s.Next(context.Background()); !errors.Is(err, ErrClosed) {
				t.Errorf("Next after Run stopped = %v, want ErrClosed", err)
			}
		})
	}
}

// TestRunAbandonsBlockedOpen: a server that accepts and never answers blocks
// FFmpeg's open for ~30 s; Run must still return after stopGrace (2 s), and
// the abandoned goroutine cleans up once the open fails.
//
// Not parallel: OpenCV's FFmpeg backend serialises opens process-wide, so
// while this open is stalled every other file or URL open waits too.
func TestRunAbandonsBlockedOpen(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var (
		mu    sync.Mutex
		conns []net.Conn
	)
	requested := make(chan struct{}, 1)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			go func() { // read the request, never answer
				br := bufio.NewReader(c)
				for {
					line, err := br.ReadString('\n')
					if err != nil {
						return
					}
					if line == "\r\n" { // the end of the request header
						signal(requested)
						break
					}
				}
				_, _ = io.Copy(io.Discard, br)
			}()
		}
	}()
	hangUp := func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	}
	defer hangUp()

	log, logs := testLogger(t)
	url := fmt.Sprintf("http://127.0.0.1:%d/stream.mjpg", ln.Addr().(*net.TCPAddr).Port)
	s, err := NewStream(Config{Name: "stalled", Source: url}, log)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	// Once the whole request is in, FFmpeg's open waits for an answer
	// that never comes.
	select {
	case <-requested:
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("FFmpeg never sent its request to the loopback server")
	}
	cancel()
	// Run returns after stopGrace (2 s), long before the open gives up
	// (~30 s); the warning below shows it abandoned the call.
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v, want nil", err)
		}
	case <-time.After(stopGrace + 10*time.Second):
		t.Fatalf("Run did not return within %v of cancel while OpenCV was blocked", stopGrace+10*time.Second)
	}
	if logs.Count("level=WARN", "abandoning") != 1 {
		t.Errorf("want a warning about the abandoned native call:\n%s", logs)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Unblock FFmpeg: the abandoned goroutine returns, closes its capture
	// and its frame (the pool is closed, so its Mat is closed too).
	hangUp()
	select {
	case <-s.captureDone:
	case <-time.After(40 * time.Second):
		t.Fatal("abandoned capture goroutine never returned")
	}
}

// TestPoolIsBounded: the consumer can hold at most the whole pool; capture
// then waits instead of allocating, and resumes after a Release.
func TestPoolIsBounded(t *testing.T) {
	t.Parallel()
	clip := writeClip(t, 1, 10, 100)
	r := start(t, Config{Name: "pool", Source: clip, Loop: true}, nil)
	var held []*Frame
	for range poolSize {
		f, err := r.next(t, 3*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, f)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if f, err := r.s.Next(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("with the whole pool held, Next = %v, %v; want a timeout", f, err)
	}
	captured := r.s.Stats().Captured
	r.s.Release(held[0])
	r.s.Release(held[0]) // double release is ignored
	r.s.Release(nil)
	f, err := r.next(t, 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if f.Seq <= captured-1 {
		t.Errorf("after release got seq %d, captured before was %d", f.Seq, captured)
	}
	for _, h := range append(held[1:], f) {
		r.s.Release(h)
	}
	r.s.mu.Lock()
	n := len(r.s.free)
	if r.s.slot != nil {
		n++
	}
	r.s.mu.Unlock()
	if n < poolSize-1 || n > poolSize {
		t.Errorf("%d frames free or in the slot after releasing all, want %d or %d", n, poolSize-1, poolSize)
	}
}

func TestLifecycleMisuse(t *testing.T) {
	t.Parallel()
	clip := writeClip(t, 1, 2, 10)
	s, err := NewStream(Config{Name: "x", Source: clip}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
	if err := s.Run(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("Run after Close = %v, want ErrClosed", err)
	}
	if _, err := s.Next(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("Next after Close = %v, want ErrClosed", err)
	}
	if err := s.Run(context.Background()); !errors.Is(err, ErrRunning) {
		t.Errorf("second Run = %v, want ErrRunning", err)
	}

	if _, err := NewStream(Config{Name: "bad", Source: "0", DetectFPS: -1}, nil); err == nil || !strings.Contains(err.Error(), "detect_fps") {
		t.Errorf("NewStream must validate: %v", err)
	}

	// Next honours its context while nothing arrives.
	s2, err := NewStream(Config{Name: "idle", Source: clip}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := s2.Next(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Next on an idle stream = %v, want DeadlineExceeded", err)
	}
}

// TestReleaseAfterClose: a frame the consumer still holds when the stream is
// closed is freed on Release.
func TestReleaseAfterClose(t *testing.T) {
	t.Parallel()
	clip := writeClip(t, 1, 5, 100)
	r := start(t, Config{Name: "late", Source: clip, Loop: true}, nil)
	f, err := r.next(t, 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	r.cancel()
	r.wait(t, 3*time.Second)
	<-r.s.captureDone
	r.s.Close()
	if f.Mat.Empty() {
		t.Fatal("Close freed a frame the consumer still holds")
	}
	r.s.Release(f)
	if f.state != frameClosed {
		t.Fatalf("frame state %d after release on a closed stream, want closed", f.state)
	}
}

// TestLiveSourceEndReconnects: a live source that ends (an MJPG clip served
// over HTTP on loopback, read through FFmpeg as kind url) is reopened after
// the backoff; frames keep coming, Seq keeps increasing, and each failure
// streak warns once.
func TestLiveSourceEndReconnects(t *testing.T) {
	t.Parallel()
	clip := writeClip(t, 1, 8, 25)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeFile(w, r, clip)
	}))
	defer srv.Close()

	log, logs := testLogger(t)
	r := start(t, Config{
		Name: "http", Source: srv.URL + "/clip.avi",
		ReconnectMin: dur(30 * time.Millisecond), ReconnectMax: dur(100 * time.Millisecond),
	}, log)
	if got := r.s.Config().Kind; got != KindURL {
		t.Fatalf("kind %q, want url", got)
	}
	var last uint64
	for last <= 20 { // the clip has 8 frames: at least two reconnects
		f, err := r.next(t, 5*time.Second)
		if err != nil {
			t.Fatalf("Next: %v (stats %+v)", err, r.s.Stats())
		}
		checkFrame(t, f, 160, 120)
		if f.Seq <= last {
			t.Fatalf("seq %d after %d", f.Seq, last)
		}
		last = f.Seq
		r.s.Release(f)
	}
	st := r.s.Stats()
	if st.Reconnects < 2 || !strings.Contains(st.LastError, "frame read failed") {
		t.Errorf("stats %+v: want >= 2 reconnects after the stream ended", st)
	}
	warns := logs.Count("level=WARN", "camera source failed")
	if warns < 2 || uint64(warns) > st.Reconnects+1 {
		t.Errorf("%d warnings for %d reconnects: want one per failure streak", warns, st.Reconnects)
	}
	if logs.Count("camera recovered") == 0 {
		t.Errorf("no 'camera recovered' after a reconnect:\n%s", logs)
	}
}

// TestUnpacedFileDropsNothing: a file read with realtime = false waits for a
// slow consumer instead of replacing frames, and a pipelined consumer may
// hold two frames at once without stalling capture.
func TestUnpacedFileDropsNothing(t *testing.T) {
	clip := writeClip(t, 3, 10, 25) // 30 frames
	r := start(t, Config{Name: "batch", Source: clip, Realtime: ptr(false)}, nil)
	var held *Frame
	var want uint64 = 1
	for {
		f, err := r.next(t, 10*time.Second)
		if errors.Is(err, ErrEndOfStream) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if f.Seq != want {
			t.Fatalf("got frame %d, want %d: an unpaced file must deliver every frame", f.Seq, want)
		}
		want++
		// Pacing on purpose, not waiting for anything: a consumer slower
		// than decoding makes capture wait for it. The check (no frame
		// lost) holds at any speed.
		time.Sleep(5 * time.Millisecond)
		r.s.Release(held) // the previous frame, held while this one was taken
		held = f
	}
	r.s.Release(held)
	st := r.s.Stats()
	if want != 31 || st.Dropped != 0 || st.Delivered != 30 {
		t.Errorf("delivered up to %d, stats %+v; want 30 frames, none dropped", want-1, st)
	}
}
