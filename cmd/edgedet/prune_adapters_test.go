package main

import (
	"bytes"
	"context"
	"log/slog"
	"math"
	"testing"

	"github.com/edgedet/edgedet/detection"
	"github.com/edgedet/edgedet/onnx"
)

// TestEvalReadsTheSourcesFormat: yolox_nano_640_bubbliiiing has yolox's
// output shape but is yolox_levels, and has no sidecar here. Read by its
// shape it scores nothing; the comparison of prune and quantize --eval
// (evalCompare, with --format) and prune's scorer of in-memory candidates
// (the source's description in their metadata, as distill's checkpoints
// get it) must read it right.
func TestEvalReadsTheSourcesFormat(t *testing.T) {
	model := bubbliiiing640(t)
	data := evalData(t, 8)
	log := slog.New(slog.DiscardHandler)
	ctx := context.Background()

	for _, c := range []struct {
		format detection.Format
		good   bool
	}{{detection.FormatYOLOXLevels, true}, {"", false}} {
		var out bytes.Buffer
		res, err := evalCompare(ctx, []string{model}, data, c.format, log, &out, &out)
		if err != nil {
			t.Fatal(err)
		}
		sums := res.Summaries
		if got := sums[0].AP > 0.1; got != c.good {
			t.Errorf("evalCompare with format %q: mAP %.3f, want it read as a working detector: %v", c.format, sums[0].AP, c.good)
		}
	}

	spec, err := modelSpec(model, detection.FormatYOLOXLevels)
	if err != nil {
		t.Fatal(err)
	}
	desc, err := spec.EncodeMetadata()
	if err != nil {
		t.Fatal(err)
	}
	var aps []float64
	for _, meta := range []string{desc, ""} {
		m, err := onnx.LoadModel(model)
		if err != nil {
			t.Fatal(err)
		}
		s := &mapScorer{specMeta: meta, data: data, images: math.MaxInt, log: log}
		ap, err := s.Score(ctx, m)
		s.Close()
		if err != nil {
			t.Fatal(err)
		}
		aps = append(aps, ap)
	}
	if aps[0] < 0.1 || aps[1] > 0.01 {
		t.Errorf("mapScorer: mAP %.3f with the source's description, %.3f without; want > 0.1 and ≈ 0", aps[0], aps[1])
	}
}
