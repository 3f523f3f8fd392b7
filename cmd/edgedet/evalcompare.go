package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"

	"github.com/edgedet/edgedet/detection"
	"github.com/edgedet/edgedet/eval"
)

// bootstrapResamples is how many resamples of the images the 95 %
// intervals of mAP differences are drawn from (eval --compare's default,
// bench --eval, prune and quantize --eval).
const bootstrapResamples = 1000

// comparison is evalCompare's result: each model's summary and the 95 %
// interval of its mAP difference from the first model's (nil for the
// first), on Images images.
type comparison struct {
	Summaries []eval.Summary
	Intervals []*eval.DeltaInterval
	Images    int
}

// evalCompare evaluates the models (a source and the models derived from
// it: prune --eval, quantize --eval) on a YOLO-labelled directory with
// eval's thresholds, reading their outputs as format (--format, empty: as
// the detector decides), and prints each one's mAP, its difference to the
// first and that difference's 95 % bootstrap interval.
func evalCompare(ctx context.Context, models []string, data string, format detection.Format, log *slog.Logger, stdout, stderr io.Writer) (*comparison, error) {
	var sums []eval.Summary
	var ds *eval.Dataset
	var dets []map[int][]eval.Detection
	for _, path := range models {
		det, err := evalDetector(path, format, log)
		if err != nil {
			return nil, err
		}
		if ds == nil {
			if ds, err = eval.LoadYOLODataset(data, det.Info().Labels); err != nil {
				det.Close()
				return nil, err
			}
		}
		r, err := evalModel(ctx, det, ds, stderr)
		det.Close()
		if err != nil {
			return nil, err
		}
		sums = append(sums, r.Summary)
		dets = append(dets, r.dets)
	}
	intervals := make([]*eval.DeltaInterval, len(models))
	for i := 1; i < len(models); i++ {
		var err error
		if intervals[i], err = eval.BootstrapDelta(ctx, ds, dets[0], dets[i], bootstrapResamples, 1); err != nil {
			return nil, fmt.Errorf("--eval %s: %w", models[i], err)
		}
	}
	printEvalCompare(stdout, models, sums, intervals, data, len(ds.Images))
	return &comparison{Summaries: sums, Intervals: intervals, Images: len(ds.Images)}, nil
}

// printEvalCompare writes each model's mAP and its difference to the first,
// as fractions like eval prints them (0.325, not 32.5).
func printEvalCompare(w io.Writer, models []string, sums []eval.Summary, intervals []*eval.DeltaInterval, data string, images int) {
	for i, sum := range sums {
		d := summaryDelta(sums[0], sum)
		iv := ""
		if i < len(intervals) && intervals[i] != nil {
			iv = fmt.Sprintf("   95 %% interval of the mAP@0.5:0.95 difference [%+.3f, %+.3f]", intervals[i].AP[0], intervals[i].AP[1])
		}
		fmt.Fprintf(w, "mAP@0.5:0.95 %-24s %.3f (%+.3f)   mAP@0.5 %.3f (%+.3f)   (%s, %s)%s\n",
			filepath.Base(models[i]), sum.AP, d.AP, sum.AP50, d.AP50, filepath.Base(data), plural(images, "image"), iv)
	}
}
