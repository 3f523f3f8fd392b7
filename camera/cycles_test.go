package camera

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/edgedet/edgedet/internal/testenv"
)

// cycle runs one complete stream lifecycle of each source kind the tests can
// build (file to the end, looping file cancelled, images directory with a
// junk file, unreachable URL) and closes everything. Used by the leak tests.
func cycle(t *testing.T, clip, imgDir string) {
	t.Helper()
	consume := func(cfg Config, want error, stopAfter uint64) {
		t.Helper()
		s, err := NewStream(cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- s.Run(ctx) }()
		for {
			nctx, ncancel := context.WithTimeout(context.Background(), 5*time.Second)
			f, err := s.Next(nctx)
			ncancel()
			if err != nil {
				if !errors.Is(err, want) {
					t.Fatalf("%s: Next = %v, want %v", cfg.Name, err, want)
				}
				break
			}
			seq := f.Seq
			s.Release(f)
			if stopAfter > 0 && seq >= stopAfter {
				cancel()
			}
		}
		cancel()
		if err := <-done; err != nil && !errors.Is(err, ErrEndOfStream) {
			t.Fatalf("%s: Run = %v", cfg.Name, err)
		}
		<-s.captureDone
		s.Close()
	}
	consume(Config{Name: "file", Source: clip, Realtime: ptr(false)}, ErrEndOfStream, 0)
	consume(Config{Name: "loop", Source: clip, Loop: true, Realtime: ptr(false)}, ErrClosed, 30)
	consume(Config{Name: "images", Source: imgDir, Realtime: ptr(false)}, ErrEndOfStream, 0)

	s, err := NewStream(Config{Name: "url", Source: "rtsp://127.0.0.1:1/x",
		ReconnectMin: dur(10 * time.Millisecond), ReconnectMax: dur(10 * time.Millisecond)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	testenv.Eventually(t, 5*time.Second, "a reconnect", func() bool { return s.Stats().Reconnects >= 2 })
	cancel()
	<-done
	<-s.captureDone
	s.Close()
}

// TestNoFDLeak: repeated stream cycles leave the process's open file count
// where it was (after one warm-up cycle that loads codecs and plugins).
func TestNoFDLeak(t *testing.T) {
	clip := writeClip(t, 2, 10, 30)
	imgDir, _ := imagesDir(t)
	cycle(t, clip, imgDir)
	before := openFDs(t)
	for range 3 {
		cycle(t, clip, imgDir)
	}
	if after := openFDs(t); after != before {
		t.Fatalf("open file descriptors: %d before, %d after 3 cycles", before, after)
	}
}

func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatalf("count fds: %v", err)
	}
	return len(ents)
}
