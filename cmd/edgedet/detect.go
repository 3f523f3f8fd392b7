package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"gocv.io/x/gocv"

	"github.com/edgedet/edgedet/detection"
	"github.com/edgedet/edgedet/detector"
	"github.com/edgedet/edgedet/internal/cvsafe"
)

// modelFlags are the detector flags shared by detect and bench.
type modelFlags struct {
	cfg       detector.Config
	models    []string // every --model given, in order (bench compares them)
	multi     bool     // the command accepts several --model
	ortLib    string
	logLevel  string
	allowList string
}

func addModelFlags(fs interface {
	StringVar(*string, string, string, string)
	IntVar(*int, string, int, string)
	BoolVar(*bool, string, bool, string)
	Func(string, string, func(string) error)
	BoolFunc(string, string, func(string) error)
}, m *modelFlags) {
	m.cfg = detector.DefaultConfig()
	fs.Func("model", "ONNX model file (required)", func(s string) error {
		m.models = append(m.models, s)
		m.cfg.Model = m.models[0]
		return nil
	})
	fs.IntVar(&m.cfg.Threads, "threads", 0, "ONNX Runtime intra-op threads (0 = default)")
	fs.StringVar(&m.cfg.GraphOptimization, "graph-opt", "all", "graph optimisation: disable, basic, extended, all")
	fs.BoolFunc("no-fuse", "run INT8 activations as ONNX Runtime's standard graph, not fused table lookups (fuse_activations = false)",
		func(s string) error {
			off, err := strconv.ParseBool(s)
			m.cfg.FuseActivations = !off
			return err
		})
	fs.BoolVar(&m.cfg.SpinWait, "spin-wait", false, "keep ONNX Runtime's threads spinning between runs (lower latency back to back, more idle CPU)")
	fs.Func("score", "score threshold (default 0.25)", func(s string) error { return parseF32(s, &m.cfg.ScoreThreshold) })
	fs.Func("iou", "NMS IoU threshold (default 0.45)", func(s string) error { return parseF32(s, &m.cfg.IoUThreshold) })
	fs.BoolVar(&m.cfg.ClassAgnostic, "agnostic", false, "class-agnostic NMS")
	fs.IntVar(&m.cfg.MaxDetections, "max-det", 100, "maximum detections per image")
	fs.Func("format", "output format: yolov8, yolov5, yolox, yolox_levels, end2end, fastestv2 (default: from the output shape; yolox_levels only when named)",
		func(s string) error { m.cfg.Format = detection.Format(s); return nil })
	fs.StringVar(&m.cfg.LabelsFile, "labels", "", "labels file, one name per line")
	fs.StringVar(&m.allowList, "only", "", "comma-separated labels to keep")
	fs.StringVar(&m.ortLib, "ort-lib", "", "ONNX Runtime library (default: search)")
	fs.StringVar(&m.logLevel, "log-level", "warn", "log level")
}

// open loads ONNX Runtime and the model; close undoes both.
func (m *modelFlags) open(stderr io.Writer) (*detector.Detector, func(), error) {
	if m.cfg.Model == "" {
		return nil, nil, fmt.Errorf("%w: --model is required", errUsage)
	}
	if len(m.models) > 1 && !m.multi {
		return nil, nil, fmt.Errorf("%w: --model given %d times; only bench compares models", errUsage, len(m.models))
	}
	if m.allowList != "" {
		m.cfg.AllowLabels = strings.Split(m.allowList, ",")
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(m.logLevel)); err != nil {
		return nil, nil, fmt.Errorf("%w: --log-level %q", errUsage, m.logLevel)
	}
	log := newLogger(stderr, level, "text")
	cleanup, err := initRuntime(m.ortLib)
	if err != nil {
		return nil, nil, err
	}
	det, err := detector.New(m.cfg, log)
	if err != nil {
		cleanup()
		return nil, nil, err
	}
	return det, func() { det.Close(); cleanup() }, nil
}

// imageResult is one image's line of `detect --json`.
type imageResult struct {
	Image      string          `json:"image"`
	Width      int             `json:"width"`
	Height     int             `json:"height"`
	Model      string          `json:"model"`
	Precision  string          `json:"precision"`
	Detections []jsonDetection `json:"detections"`
}

// jsonDetection is one detection of `detect --json`, rounded like the
// agent's MQTT detections: scores to 4 decimals, boxes to 0.1 px,
// normalised boxes to 4 decimals.
type jsonDetection struct {
	Label   string     `json:"label"`
	ClassID int        `json:"class_id"`
	Score   float64    `json:"score"`
	Box     [4]float64 `json:"box"`
	BoxNorm [4]float64 `json:"box_norm"`
}

// round rounds v to digits decimals; encoding/json then prints at most
// that many (it writes the shortest decimal that reads back as the same
// float64).
func round(v float32, digits int) float64 {
	p := math.Pow10(digits)
	return math.Round(float64(v)*p) / p
}

// newImageResult is the `detect --json` line of one image.
func newImageResult(path string, res detector.Result, info detector.ModelInfo) imageResult {
	r := imageResult{Image: path, Width: res.Width, Height: res.Height, Model: info.Name,
		Precision: info.Precision, Detections: make([]jsonDetection, 0, len(res.Detections))}
	w, h := float32(res.Width), float32(res.Height)
	for _, d := range res.Detections {
		b := d.Box
		r.Detections = append(r.Detections, jsonDetection{Label: d.Label, ClassID: d.ClassID, Score: round(d.Score, 4),
			Box:     [4]float64{round(b.X1, 1), round(b.Y1, 1), round(b.X2, 1), round(b.Y2, 1)},
			BoxNorm: [4]float64{round(b.X1/w, 4), round(b.Y1/h, 4), round(b.X2/w, 4), round(b.Y2/h, 4)}})
	}
	return r
}

func cmdDetect(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("detect", stderr)
	var mf modelFlags
	addModelFlags(fs, &mf)
	out := fs.String("out", "", "write the annotated image to this file (.jpg, .png, …); with several images, a directory (created if missing) that gets each under its own name")
	asJSON := fs.Bool("json", false, "print one JSON object per image")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	images := fs.Args()
	if len(images) == 0 {
		return fmt.Errorf("%w: no images given", errUsage)
	}
	dsts, err := outPaths(*out, images)
	if err != nil {
		return err
	}
	det, closeAll, err := mf.open(stderr)
	if err != nil {
		return err
	}
	defer closeAll()
	info := det.Info()
	enc := json.NewEncoder(stdout)
	var dets []detection.Detection
	failed := 0
	for i, path := range images {
		img, err := cvsafe.ReadImage(path, gocv.IMReadColor)
		if err != nil {
			fmt.Fprintf(stderr, "edgedet detect: %v\n", err)
			failed++
			continue
		}
		res, err := det.Detect(ctx, img, dets)
		if err != nil {
			img.Close()
			return fmt.Errorf("%s: %w", path, err)
		}
		dets = res.Detections
		if *asJSON {
			if err := enc.Encode(newImageResult(path, res, info)); err != nil {
				img.Close()
				return err
			}
		} else {
			fmt.Fprintf(stdout, "%s: %s (%.1f ms inference)\n", path, plural(len(dets), "object"), ms(res.Timings.Inference))
			for _, d := range dets {
				fmt.Fprintf(stdout, "  %-14s %.3f  [%.0f %.0f %.0f %.0f]\n", d.Label, d.Score, d.Box.X1, d.Box.Y1, d.Box.X2, d.Box.Y2)
			}
		}
		if dsts != nil {
			detector.Draw(&img, dets)
			if err := cvsafe.WriteImage(dsts[i], img); err != nil {
				img.Close()
				return fmt.Errorf("--out: %w", err)
			}
			// Said on stdout, or on stderr when stdout is JSON.
			if *asJSON {
				fmt.Fprintf(stderr, "edgedet detect: wrote %s\n", dsts[i])
			} else {
				fmt.Fprintf(stdout, "wrote %s\n", dsts[i])
			}
		}
		img.Close()
	}
	if failed > 0 {
		return fmt.Errorf("%d of %s could not be read", failed, plural(len(images), "image"))
	}
	return nil
}

// outPaths is where detect writes each image's annotated copy for --out
// (nil when out is ""), checked before any model is loaded. One image goes
// to out itself, or into out when it is an existing directory. Several
// images go into out as a directory (created if missing), each under its
// own base name: an out with an image extension that is not an existing
// directory is an error rather than a directory named like a file, and so
// are two inputs with the same base name. Every destination's extension
// must be one OpenCV can write.
func outPaths(out string, images []string) ([]string, error) {
	if out == "" {
		return nil, nil
	}
	st, statErr := os.Stat(out)
	isDir := statErr == nil && st.IsDir()
	if len(images) == 1 && !isDir {
		if err := cvsafe.CheckImageExt(out); err != nil {
			return nil, fmt.Errorf("%w: --out %w", errUsage, err)
		}
		if err := notAnInput(out, images); err != nil {
			return nil, err
		}
		return []string{out}, nil
	}
	if !isDir {
		if statErr == nil {
			return nil, fmt.Errorf("%w: --out %s: %d images need a directory, and %s is a file", errUsage, out, len(images), out)
		}
		if cvsafe.CheckImageExt(out) == nil {
			return nil, fmt.Errorf("%w: --out %s: %d images need a directory, not an image name (one image per --out file; a directory takes several)",
				errUsage, out, len(images))
		}
	}
	dsts := make([]string, len(images))
	seen := make(map[string]string, len(images))
	for i, img := range images {
		base := filepath.Base(img)
		if prev, dup := seen[base]; dup {
			return nil, fmt.Errorf("%w: --out %s: %s and %s would both be written as %s", errUsage, out, prev, img, base)
		}
		seen[base] = img
		dsts[i] = filepath.Join(out, base)
		if err := cvsafe.CheckImageExt(dsts[i]); err != nil {
			return nil, fmt.Errorf("%w: --out: %w", errUsage, err)
		}
		if err := notAnInput(dsts[i], images); err != nil {
			return nil, err
		}
	}
	if !isDir {
		if err := os.MkdirAll(out, 0o755); err != nil {
			return nil, fmt.Errorf("--out: create output directory: %w", err)
		}
	}
	return dsts, nil
}

// notAnInput refuses an --out destination that is one of the input images:
// detect never overwrites its input.
func notAnInput(dst string, images []string) error {
	so, err := os.Stat(dst)
	if err != nil {
		return nil // does not exist yet: cannot be an input that exists
	}
	for _, img := range images {
		if si, err := os.Stat(img); err == nil && os.SameFile(si, so) {
			return fmt.Errorf("%w: --out would overwrite the input image %s: choose another path", errUsage, img)
		}
	}
	return nil
}
