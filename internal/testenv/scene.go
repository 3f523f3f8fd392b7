package testenv

import (
	"errors"
	"fmt"
	"image"

	"gocv.io/x/gocv"

	"github.com/edgedet/edgedet/internal/cvsafe"
)

// Scene is a synthetic camera view for motion tests and benchmarks: a still
// background with a sprite (a rectangle cut from another image) that appears
// at frame Enter, moves in a straight line from From to To until frame Stop,
// stands still until Leave and is gone from then on.
type Scene struct {
	Background string // image file, stretched to W×H
	W, H       int
	Sprite     string          // image file the sprite is cut from
	SpriteRect image.Rectangle // the cut, in Sprite's pixels
	SpriteW    int             // width the sprite is scaled to (aspect kept); 0 = as cut
	From, To   image.Point     // sprite top-left at Enter and at Stop
	Enter      int
	Stop       int
	Leave      int
}

// SceneRenderer draws a Scene's frames. Close frees its Mats.
type SceneRenderer struct {
	s          Scene
	bg, sprite gocv.Mat
}

// NewScene decodes the scene's images.
func NewScene(s Scene) (*SceneRenderer, error) {
	if s.W <= 0 || s.H <= 0 || s.Enter > s.Stop || s.Stop > s.Leave {
		return nil, fmt.Errorf("scene: size %dx%d, enter %d, stop %d, leave %d", s.W, s.H, s.Enter, s.Stop, s.Leave)
	}
	r := &SceneRenderer{s: s, bg: gocv.NewMat(), sprite: gocv.NewMat()}
	bg := gocv.IMRead(s.Background, gocv.IMReadColor)
	defer bg.Close()
	src := gocv.IMRead(s.Sprite, gocv.IMReadColor)
	defer src.Close()
	if bg.Empty() || src.Empty() {
		r.Close()
		return nil, fmt.Errorf("scene: cannot decode %q or %q", s.Background, s.Sprite)
	}
	if !s.SpriteRect.In(image.Rect(0, 0, src.Cols(), src.Rows())) || s.SpriteRect.Empty() {
		r.Close()
		return nil, fmt.Errorf("scene: sprite rect %v outside %q (%dx%d)", s.SpriteRect, s.Sprite, src.Cols(), src.Rows())
	}
	gocv.Resize(bg, &r.bg, image.Pt(s.W, s.H), 0, 0, gocv.InterpolationArea)
	cut := src.Region(s.SpriteRect)
	defer cut.Close()
	w, h := s.SpriteRect.Dx(), s.SpriteRect.Dy()
	if s.SpriteW > 0 {
		w, h = s.SpriteW, s.SpriteW*h/s.SpriteRect.Dx()
	}
	gocv.Resize(cut, &r.sprite, image.Pt(w, h), 0, 0, gocv.InterpolationArea)
	return r, nil
}

// pos is the sprite's unclipped top-left in frame i (false when it is not
// there).
func (r *SceneRenderer) pos(i int) (image.Point, bool) {
	s := r.s
	if i < s.Enter || i >= s.Leave {
		return image.Point{}, false
	}
	if i >= s.Stop || s.Stop == s.Enter {
		return s.To, true
	}
	t := float64(i-s.Enter) / float64(s.Stop-s.Enter)
	return image.Pt(s.From.X+int(t*float64(s.To.X-s.From.X)), s.From.Y+int(t*float64(s.To.Y-s.From.Y))), true
}

// SpriteBox is where the sprite is in frame i, clipped to the frame (false
// when it is not in view).
func (r *SceneRenderer) SpriteBox(i int) (image.Rectangle, bool) {
	p, ok := r.pos(i)
	if !ok {
		return image.Rectangle{}, false
	}
	b := image.Rect(p.X, p.Y, p.X+r.sprite.Cols(), p.Y+r.sprite.Rows()).Intersect(image.Rect(0, 0, r.s.W, r.s.H))
	return b, !b.Empty()
}

// Frame renders frame i into dst (BGR, W×H).
func (r *SceneRenderer) Frame(i int, dst *gocv.Mat) {
	r.bg.CopyTo(dst)
	b, ok := r.SpriteBox(i)
	if !ok {
		return
	}
	p, _ := r.pos(i)
	off := b.Min.Sub(p) // the part of the sprite inside the frame
	src := r.sprite.Region(image.Rect(off.X, off.Y, off.X+b.Dx(), off.Y+b.Dy()))
	defer src.Close()
	roi := dst.Region(b)
	defer roi.Close()
	src.CopyTo(&roi)
}

// Close frees the renderer's Mats.
func (r *SceneRenderer) Close() {
	r.bg.Close()
	r.sprite.Close()
}

// WriteScene writes frames frames of s as an MJPG .avi at fps.
func WriteScene(path string, s Scene, fps float64, frames int) error {
	if frames < 1 || !(fps > 0) {
		return errors.New("write scene: frames and fps must be positive")
	}
	r, err := NewScene(s)
	if err != nil {
		return err
	}
	defer r.Close()
	vw, err := cvsafe.OpenVideoWriter(path, "MJPG", fps, s.W, s.H, true)
	if err != nil {
		return fmt.Errorf("write scene: %w", err)
	}
	defer vw.Close()
	frame := gocv.NewMat()
	defer frame.Close()
	for i := range frames {
		r.Frame(i, &frame)
		if err := vw.Write(frame); err != nil {
			return fmt.Errorf("write scene %q: frame %d: %w", path, i, err)
		}
	}
	return nil
}
