package camera

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"time"

	"gocv.io/x/gocv"

	"github.com/edgedet/edgedet/internal/cvsafe"
)

var (
	_ Source = (*imagesSource)(nil)
	_ FPSer  = (*imagesSource)(nil)
)

// imagesSource decodes a sorted list of image files, or one image file.
type imagesSource struct {
	path     string
	dir      bool
	loop     bool
	fps      float64
	pace     pacer
	log      *slog.Logger
	files    []string
	next     int
	readPass int // images decoded in the current pass over files
	warned   map[string]bool
}

func openImages(cfg Config, log *slog.Logger) (*imagesSource, error) {
	st, err := os.Stat(cfg.Source)
	if err != nil {
		return nil, fmt.Errorf("open images: %w", err)
	}
	s := &imagesSource{
		path:   cfg.Source,
		dir:    st.IsDir(),
		loop:   cfg.Loop,
		fps:    cfg.FPS,
		log:    log,
		warned: map[string]bool{},
	}
	if s.fps <= 0 {
		s.fps = DefaultImagesFPS
	}
	if cfg.IsRealtime() {
		s.pace.period = time.Duration(float64(time.Second) / s.fps)
	}
	if err := s.list(); err != nil {
		return nil, err
	}
	return s, nil
}

// list (re)reads the directory, so a looping source picks up new images.
func (s *imagesSource) list() error {
	if !s.dir {
		s.files = []string{s.path}
		return nil
	}
	ents, err := os.ReadDir(s.path)
	if err != nil {
		return fmt.Errorf("open images %q: %w", s.path, err)
	}
	s.files = s.files[:0]
	for _, e := range ents {
		if e.Type().IsRegular() || e.Type()&os.ModeSymlink != 0 {
			if IsImageFile(e.Name()) {
				s.files = append(s.files, filepath.Join(s.path, e.Name()))
			}
		}
	}
	slices.Sort(s.files)
	if len(s.files) == 0 {
		return fmt.Errorf("open images %q: directory has no image files (%s)", s.path, extList())
	}
	return nil
}

func (s *imagesSource) FPS() float64 { return s.fps }

func (s *imagesSource) Read(ctx context.Context, f *Frame) error {
	if s.files == nil {
		return ErrClosed
	}
	if err := s.pace.wait(ctx); err != nil {
		return err
	}
	for {
		if s.next >= len(s.files) {
			if s.readPass == 0 {
				return fmt.Errorf("read images %q: none of %d files decodes: %w", s.path, len(s.files), ErrReadFailed)
			}
			if !s.loop {
				return ErrEndOfStream
			}
			if err := s.list(); err != nil {
				return err
			}
			s.next, s.readPass = 0, 0
		}
		name := s.files[s.next]
		s.next++
		img, err := cvsafe.ReadImage(name, gocv.IMReadColor)
		if err != nil {
			if !s.warned[name] {
				s.warned[name] = true
				s.log.Warn("unreadable image skipped", "file", name, "err", err)
			}
			continue
		}
		img.CopyTo(&f.Mat)
		img.Close()
		s.readPass++
		f.Time = time.Now()
		return nil
	}
}

func (s *imagesSource) Close() error {
	if s == nil {
		return nil
	}
	s.files = nil
	return nil
}
