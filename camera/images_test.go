package camera

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgedet/edgedet/internal/testenv"
)

// imagesDir builds a directory of three sample images, a junk .jpg and a
// non-image file, named so they sort 01, 02 (junk), 03, 04.
func imagesDir(t testing.TB) (dir, junk string) {
	t.Helper()
	dir = t.TempDir()
	imgs := sampleImages(t, 3) // dog 768x576, eagle 773x512, giraffe 500x500
	for i, name := range []string{"01.jpg", "03.JPG", "04.jpeg"} {
		b, err := os.ReadFile(imgs[i])
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	junk = filepath.Join(dir, "02.jpg")
	if err := os.WriteFile(junk, []byte("this is not a jpeg"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "readme.txt"), []byte("ignored"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, junk
}

func TestImagesDirectory(t *testing.T) {
	t.Parallel()
	dir, junk := imagesDir(t)
	sizes := [][2]int{{768, 576}, {773, 512}, {500, 500}}

	t.Run("once", func(t *testing.T) {
		t.Parallel()
		log, logs := testLogger(t)
		// Unpaced, so the stream waits for this consumer and delivers
		// every image in order; paced at 50 fps, a consumer slowed by a
		// loaded machine would legitimately miss one (newest frame wins).
		r := start(t, Config{Name: "imgs", Source: dir, FPS: 50, Realtime: ptr(false)}, log)
		for i, sz := range sizes {
			f, err := r.next(t, 3*time.Second)
			if err != nil {
				t.Fatalf("image %d: %v", i, err)
			}
			checkFrame(t, f, sz[0], sz[1])
			r.s.Release(f)
		}
		if _, err := r.next(t, 3*time.Second); !errors.Is(err, ErrEndOfStream) {
			t.Fatalf("after the last image: %v, want ErrEndOfStream", err)
		}
		if err := r.wait(t, 3*time.Second); !errors.Is(err, ErrEndOfStream) {
			t.Fatalf("Run = %v, want ErrEndOfStream", err)
		}
		if n := logs.Count("level=WARN", "unreadable image skipped", junk); n != 1 {
			t.Errorf("want one warning naming %s, got %d; logs:\n%s", junk, n, logs)
		}
		if st := r.s.Stats(); st.Captured != 3 || st.SourceFPS != 50 || st.Reconnects != 0 {
			t.Errorf("stats %+v", st)
		}
	})

	t.Run("loop", func(t *testing.T) {
		t.Parallel()
		log, logs := testLogger(t)
		r := start(t, Config{Name: "imgs", Source: dir, FPS: 100, Loop: true}, log)
		for i := range 8 {
			f, err := r.next(t, 3*time.Second)
			if err != nil {
				t.Fatalf("frame %d: %v", i, err)
			}
			r.s.Release(f)
		}
		if n := logs.Count("unreadable image skipped", junk); n != 1 {
			t.Errorf("the junk image is reported once, not every pass: %d warnings", n)
		}
	})

	t.Run("single file", func(t *testing.T) {
		t.Parallel()
		img := sampleImages(t, 1)[0]
		r := start(t, Config{Name: "one", Source: img}, nil)
		f, err := r.next(t, 3*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		checkFrame(t, f, 768, 576)
		r.s.Release(f)
		if _, err := r.next(t, 3*time.Second); !errors.Is(err, ErrEndOfStream) {
			t.Fatalf("single image: %v, want ErrEndOfStream", err)
		}
		if r.s.Config().Kind != KindImages {
			t.Errorf("kind %q, want images", r.s.Config().Kind)
		}
	})

	t.Run("empty directory", func(t *testing.T) {
		t.Parallel()
		empty := t.TempDir()
		r := start(t, Config{Name: "empty", Source: empty, ReconnectMin: dur(20 * time.Millisecond), ReconnectMax: dur(50 * time.Millisecond)}, nil)
		testenv.Eventually(t, 3*time.Second, "an error naming the empty directory", func() bool {
			st := r.s.Stats()
			return strings.Contains(st.LastError, empty) && strings.Contains(st.LastError, "no image files") && st.Reconnects > 0
		})
	})
}
