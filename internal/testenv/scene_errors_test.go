package testenv

import (
	"image"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSceneErrors: a bad size or frame order, an undecodable image, a sprite
// cut outside its image, bad frame counts and an unwritable output each
// give an error naming the problem.
func TestSceneErrors(t *testing.T) {
	dog := Shared(t, "datasets", "samples", "dog.jpg")
	ok := Scene{Background: dog, W: 64, H: 48, Sprite: dog, SpriteRect: image.Rect(0, 0, 20, 20), Enter: 1, Stop: 2, Leave: 3}
	junk := filepath.Join(t.TempDir(), "junk.jpg")
	if err := os.WriteFile(junk, []byte("not a jpeg"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		edit func(*Scene)
		want string
	}{
		{"zero width", func(s *Scene) { s.W = 0 }, "size 0x48"},
		{"stop before enter", func(s *Scene) { s.Stop = 0 }, "enter 1, stop 0"},
		{"leave before stop", func(s *Scene) { s.Leave = 1 }, "stop 2, leave 1"},
		{"undecodable background", func(s *Scene) { s.Background = junk }, junk},
		{"missing sprite", func(s *Scene) { s.Sprite = junk + ".absent" }, "junk.jpg.absent"},
		{"sprite rect outside", func(s *Scene) { s.SpriteRect = image.Rect(-1, 0, 20, 20) }, "sprite rect"},
		{"empty sprite rect", func(s *Scene) { s.SpriteRect = image.Rect(5, 5, 5, 9) }, "sprite rect"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := ok
			c.edit(&s)
			r, err := NewScene(s)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("NewScene: %v, want an error mentioning %q", err, c.want)
			}
			if r != nil {
				t.Errorf("NewScene returned a renderer with its error")
				r.Close()
			}
			out := filepath.Join(t.TempDir(), "s.avi")
			if err := WriteScene(out, s, 10, 3); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("WriteScene: %v, want an error mentioning %q", err, c.want)
			}
		})
	}
	out := filepath.Join(t.TempDir(), "s.avi")
	for _, c := range []struct {
		fps    float64
		frames int
	}{{10, 0}, {0, 3}, {-1, 3}} {
		if err := WriteScene(out, ok, c.fps, c.frames); err == nil || !strings.Contains(err.Error(), "frames and fps must be positive") {
			t.Errorf("WriteScene fps %v frames %d: %v", c.fps, c.frames, err)
		}
	}
	noDir := filepath.Join(t.TempDir(), "absent", "s.avi")
	if err := WriteScene(noDir, ok, 10, 3); err == nil || !strings.Contains(err.Error(), "write scene") {
		t.Errorf("WriteScene into a missing directory: %v", err)
	}
}

// TestWriteClipUnwritablePath: a parent that is a file cannot be created.
func TestWriteClipUnwritablePath(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(file, "clip.avi")
	if err := WriteClip(out, samples(t)[:1], 32, 32, 5, 1); err == nil || !strings.Contains(err.Error(), out) {
		t.Errorf("WriteClip under a file: %v, want an error naming %s", err, out)
	}
}
