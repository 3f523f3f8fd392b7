package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/edgedet/edgedet/detection"
	"github.com/edgedet/edgedet/detector"
	"github.com/edgedet/edgedet/eval"
	"github.com/edgedet/edgedet/onnx"
	"github.com/edgedet/edgedet/onnx/onnxpb"
)

// mapScorer is prune's sensitivity Scorer: COCO mAP@0.5:0.95 of a model on
// the first images images of the YOLO-labelled directory data (distill's
// checkpoints use its whole Summary). specMeta, the source model's
// encoded description, is stored in each scored model's metadata, so that
// a candidate written to a temporary file loads like its source (whose
// format or preprocessing may come from a sidecar or --format).
type mapScorer struct {
	specMeta string
	data     string
	images   int
	log      *slog.Logger
	dir      string
	ds       *eval.Dataset
	used     int // images scored on
}

func (s *mapScorer) Score(ctx context.Context, m *onnxpb.ModelProto) (float64, error) {
	sum, err := s.Summary(ctx, m)
	return sum.AP, err
}

// Summary is the COCO summary of m on the first images images of data.
func (s *mapScorer) Summary(ctx context.Context, m *onnxpb.ModelProto) (eval.Summary, error) {
	if s.dir == "" {
		dir, err := os.MkdirTemp("", "edgedet-prune-")
		if err != nil {
			return eval.Summary{}, err
		}
		s.dir = dir
	}
	if s.specMeta != "" {
		onnx.SetMetadata(m, detection.MetadataSpecKey, s.specMeta)
	}
	path := filepath.Join(s.dir, "candidate.onnx")
	if err := onnx.SaveModel(path, m); err != nil {
		return eval.Summary{}, err
	}
	det, err := evalDetector(path, "", s.log)
	if err != nil {
		return eval.Summary{}, err
	}
	defer det.Close()
	if s.ds == nil {
		ds, err := eval.LoadYOLODataset(s.data, det.Info().Labels)
		if err != nil {
			return eval.Summary{}, err
		}
		ds.Images = ds.Images[:min(s.images, len(ds.Images))]
		s.ds, s.used = ds, len(ds.Images)
	}
	r, err := evalModel(ctx, det, s.ds, io.Discard)
	if err != nil {
		return eval.Summary{}, err
	}
	return r.Summary, nil
}

// Close removes the temporary directory.
func (s *mapScorer) Close() error {
	if s.dir == "" {
		return nil
	}
	return os.RemoveAll(s.dir)
}

// evalDetector opens path with eval's thresholds, reading its output as
// format (empty: as the detector decides).
func evalDetector(path string, format detection.Format, log *slog.Logger) (*detector.Detector, error) {
	cfg := detector.DefaultConfig()
	cfg.Model, cfg.ScoreThreshold, cfg.IoUThreshold, cfg.MaxDetections = path, evalScore, evalIoU, evalMaxDet
	cfg.Format = format
	return detector.New(cfg, log)
}
