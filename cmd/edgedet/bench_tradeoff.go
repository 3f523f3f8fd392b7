package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/edgedet/edgedet/eval"
)

// benchAccuracy is a model's COCO accuracy on bench --eval's dataset.
type benchAccuracy struct {
	Data   string  `json:"data"`
	Images int     `json:"images"`
	MAP    float64 `json:"map"`   // mAP@[.50:.95]
	MAP50  float64 `json:"map50"` // mAP@.50
	// DeltaInterval is the 95 % interval of this model's mAP minus the
	// first model's over bootstrap resamples of the images (nil for the
	// first model).
	DeltaInterval *eval.DeltaInterval `json:"delta_interval,omitempty"`
}

// checkBenchEval checks --eval and --plot before any model is timed.
func checkBenchEval(data, plot string) error {
	if data == "" {
		if plot != "" {
			return fmt.Errorf("%w: --plot needs --eval (the plot places each model by its mAP)", errUsage)
		}
		return nil
	}
	st, err := os.Stat(data)
	if err != nil {
		return fmt.Errorf("--eval: %w", err)
	}
	if !st.IsDir() {
		return fmt.Errorf("--eval %s: not a directory", data)
	}
	return nil
}

// evaluateModels scores every model of mf on the YOLO-labelled directory
// data with eval's thresholds (the other model flags apply as given), in
// mf.models order.
func evaluateModels(ctx context.Context, mf modelFlags, data string, stderr io.Writer) ([]benchAccuracy, error) {
	mf.cfg.ScoreThreshold, mf.cfg.IoUThreshold, mf.cfg.MaxDetections = evalScore, evalIoU, evalMaxDet
	names, namesFrom, err := evalNames("", data)
	if err != nil {
		return nil, fmt.Errorf("--eval: %w", err)
	}
	e := evalRun{mf: mf, data: data, names: names, namesFrom: namesFrom, rep: &evalReport{Data: data},
		notes: map[string]bool{}, stderr: stderr}
	defer e.closeAll()
	if names != nil {
		if e.ds, err = eval.LoadYOLODataset(data, names); err != nil {
			return nil, fmt.Errorf("--eval: %w", err)
		}
	}
	for _, model := range mf.models {
		if err := e.model(ctx, model); err != nil {
			return nil, fmt.Errorf("--eval %s: %w", model, err)
		}
	}
	acc := make([]benchAccuracy, len(e.rep.Models))
	for i, m := range e.rep.Models {
		acc[i] = benchAccuracy{Data: data, Images: e.rep.Images, MAP: m.Summary.AP, MAP50: m.Summary.AP50}
		if i > 0 {
			if acc[i].DeltaInterval, err = eval.BootstrapDelta(ctx, e.ds, e.rep.Models[0].dets, m.dets, bootstrapResamples, 1); err != nil {
				return nil, fmt.Errorf("--eval %s: %w", m.Path, err)
			}
		}
	}
	return acc, nil
}

// tradeoffRow is one model's speed and accuracy, as bench --eval prints
// and plots them.
type tradeoffRow struct {
	Model       string
	InferenceMS float64 // p50 (median of the rounds' p50s with --rounds)
	Ratio       float64 // to the first model's, same run
	Acc         benchAccuracy
}

// printTradeoff prints the models' speed next to their accuracy, with the
// differences from the first model and their 95 % intervals.
func printTradeoff(w io.Writer, rows []tradeoffRow) {
	if len(rows) == 0 {
		return
	}
	base := rows[0]
	fmt.Fprintf(w, "\nspeed and accuracy (inference p50; mAP on %s, %s; the interval of ΔmAP is 95 %% over %d resamples of the images):\n",
		base.Acc.Data, plural(base.Acc.Images, "image"), bootstrapResamples)
	fmt.Fprintf(w, "%-28s %10s %8s %10s %8s %10s %17s\n", "model", "p50 ms", "ratio", "mAP", "mAP50", "ΔmAP", "interval")
	for _, r := range rows {
		iv := "-"
		if d := r.Acc.DeltaInterval; d != nil {
			iv = fmt.Sprintf("[%+.3f,%+.3f]", d.AP[0], d.AP[1])
		}
		fmt.Fprintf(w, "%-28s %10.2f %7.2fx %10.3f %8.3f %+10.3f %17s\n", r.Model, r.InferenceMS, r.Ratio,
			r.Acc.MAP, r.Acc.MAP50, r.Acc.MAP-base.Acc.MAP, iv)
	}
}

// writeTradeoffPlot writes the mAP-against-latency PNG of bench --plot
// (nothing when path is empty) and says so on stderr.
func writeTradeoffPlot(path string, rows []tradeoffRow, stderr io.Writer) error {
	if path == "" {
		return nil
	}
	points := make([]eval.TradeoffPoint, len(rows))
	for i, r := range rows {
		points[i] = eval.TradeoffPoint{Name: r.Model, LatencyMs: r.InferenceMS, MAP: r.Acc.MAP}
	}
	if err := eval.PlotTradeoff(path, "mAP@.5:.95 vs inference latency (edgedet bench)", points...); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "edgedet bench: wrote %s\n", path)
	return nil
}
