package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gocv.io/x/gocv"

	"github.com/edgedet/edgedet/detector"
	"github.com/edgedet/edgedet/eval"
	"github.com/edgedet/edgedet/internal/cvsafe"
	"github.com/edgedet/edgedet/internal/labels"
	"github.com/edgedet/edgedet/internal/progress"
)

// Evaluation defaults, as COCO practice (Ultralytics val): keep nearly every
// box so the whole precision–recall curve is measured.
const (
	evalScore  = 0.001
	evalIoU    = 0.65
	evalMaxDet = 100
)

const evalUsage = `Usage: edgedet eval --model M --data DIR [--names FILE] [--compare OTHER.onnx]
                   [--plot pr.png] [--save-json DIR] [--json] [model flags]

Scores a model on a YOLO-format dataset (images with <stem>.txt labels "class cx cy w h",
flat or Ultralytics images/ + labels/ layout) with the COCO metrics of pycocotools' COCOeval:
AP@[.50:.95], AP50, AP75, AP/AR by object size, AR@1/10/100 and per-class AP.

Evaluation defaults differ from detect's: --score 0.001, --iou 0.65, --max-det 100.
Class names: --names, else DIR/coco.names, else DIR/../coco.names, else the model's labels;
the dataset's class ids must index the model's classes. --compare evaluates a second model
on the same images (one model is loaded at a time) and prints both with deltas (second − first).
Model flags apply to both models.

Flags:
`

// evalModelReport is one model's part of `eval --json`.
type evalModelReport struct {
	Model       string             `json:"model"`
	Path        string             `json:"path"`
	Precision   string             `json:"precision"`
	Input       string             `json:"input"`
	SizeBytes   int64              `json:"size_bytes"`
	InferenceMS float64            `json:"mean_inference_ms"`
	Detections  int                `json:"detections"`
	Summary     eval.Summary       `json:"summary"`
	Classes     []eval.ClassResult `json:"classes"` // classes with ground truth

	result *eval.Result
	dets   map[int][]eval.Detection
}

type evalReport struct {
	Data           string            `json:"data"`
	Images         int               `json:"images"`
	Objects        int               `json:"objects"`
	Classes        int               `json:"classes"` // classes with ground truth
	EmptyImages    int               `json:"empty_images"`
	MissingLabels  int               `json:"missing_labels"`
	ScoreThreshold float32           `json:"score_threshold"`
	IoUThreshold   float32           `json:"iou_threshold"`
	MaxDetections  int               `json:"max_detections"`
	Models         []evalModelReport `json:"models"`
	// Delta is the second model's summary minus the first's (--compare);
	// -1 entries (undefined) stay -1.
	Delta *eval.Summary `json:"delta,omitempty"`
}

func cmdEval(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("eval", stderr)
	var mf modelFlags
	addModelFlags(fs, &mf)
	mf.cfg.ScoreThreshold, mf.cfg.IoUThreshold, mf.cfg.MaxDetections = evalScore, evalIoU, evalMaxDet
	fs.Lookup("score").Usage = fmt.Sprintf("score threshold (eval default %g)", evalScore)
	fs.Lookup("iou").Usage = fmt.Sprintf("NMS IoU threshold (eval default %g)", evalIoU)
	fs.Lookup("max-det").Usage = "maximum detections per image (COCO scores at most 100 per image and class)"
	data := fs.String("data", "", "dataset directory (required)")
	namesFile := fs.String("names", "", "class names file, one per line (default: DIR/coco.names, DIR/../coco.names, the model's labels)")
	compare := fs.String("compare", "", "second ONNX model to evaluate and compare with the first")
	plotPath := fs.String("plot", "", "write a precision-recall plot (PNG) at IoU 0.5 here")
	saveJSON := fs.String("save-json", "", "write COCO instances.json and predictions.json here (per model in DIR/<model>/ with --compare)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), evalUsage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return fmt.Errorf("%w: unexpected arguments %q (images come from --data)", errUsage, fs.Args())
	case mf.cfg.Model == "":
		return fmt.Errorf("%w: --model is required", errUsage)
	case *data == "":
		return fmt.Errorf("%w: --data is required", errUsage)
	}
	if *compare != "" {
		if _, err := os.Stat(*compare); err != nil { // fail before the first model runs
			return fmt.Errorf("--compare: %w", err)
		}
	}
	if st, err := os.Stat(*data); err != nil {
		return fmt.Errorf("dataset: %w", err)
	} else if !st.IsDir() {
		return fmt.Errorf("dataset %s: not a directory", *data)
	}

	// Names from a file load the dataset before any model: data errors come first.
	names, namesFrom, err := evalNames(*namesFile, *data)
	if err != nil {
		return err
	}
	var ds *eval.Dataset
	if names != nil {
		if ds, err = eval.LoadYOLODataset(*data, names); err != nil {
			return err
		}
	}

	rep := evalReport{Data: *data, ScoreThreshold: mf.cfg.ScoreThreshold, IoUThreshold: mf.cfg.IoUThreshold,
		MaxDetections: mf.cfg.MaxDetections}
	notes := map[string]bool{} // say each note once
	note := func(format string, args ...any) {
		if s := fmt.Sprintf(format, args...); !notes[s] {
			notes[s] = true
			fmt.Fprintln(stderr, "edgedet eval: "+s)
		}
	}
	models := []string{mf.cfg.Model}
	if *compare != "" {
		models = append(models, *compare)
	}
	for _, model := range models {
		m := mf
		m.cfg.Model = model
		det, closeAll, err := m.open(stderr)
		if err != nil {
			return err
		}
		// closeAll also destroys the ONNX Runtime environment: defer it, and
		// close only the model now, so the next model reuses the environment.
		defer closeAll()
		info := det.Info()
		if ds == nil {
			names, namesFrom = info.Labels, "the labels of model "+info.Name
			if ds, err = eval.LoadYOLODataset(*data, names); err != nil {
				return err
			}
		}
		if err := matchLabels(names, namesFrom, info, note); err != nil {
			return err
		}
		if len(rep.Models) == 0 {
			rep.Images, rep.Objects, rep.EmptyImages, rep.MissingLabels = len(ds.Images), ds.NumObjects(), ds.EmptyImages(), len(ds.MissingLabels)
			if n := len(ds.MissingLabels); n > 0 {
				note("%d of %d images have no label file and count as images without objects (e.g. %s)", n, len(ds.Images), ds.MissingLabels[0])
			}
		}
		mr, err := evalModel(ctx, det, ds, stderr)
		if err != nil {
			return err
		}
		if st, err := os.Stat(model); err == nil {
			mr.SizeBytes = st.Size()
		}
		rep.Models = append(rep.Models, *mr)
		if err := det.Close(); err != nil {
			return fmt.Errorf("close model %s: %w", info.Name, err)
		}
	}
	rep.Classes = len(rep.Models[0].Classes)
	if len(rep.Models) == 2 {
		d := summaryDelta(rep.Models[0].Summary, rep.Models[1].Summary)
		rep.Delta = &d
	}

	if *saveJSON != "" {
		for i, mr := range rep.Models {
			dir := *saveJSON
			if len(rep.Models) > 1 {
				name := mr.Model
				if i == 1 && name == rep.Models[0].Model {
					name += "-2"
				}
				dir = filepath.Join(dir, name)
			}
			if err := eval.SaveCOCOJSON(dir, ds, mr.dets); err != nil {
				return err
			}
		}
	}
	if *plotPath != "" {
		var curves []eval.Curve
		for _, mr := range rep.Models {
			curves = append(curves, mr.result.Curve(mr.Model))
		}
		if err := eval.PlotPR(*plotPath, curves...); err != nil {
			return err
		}
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	printEvalReport(stdout, &rep)
	return nil
}

// evalNames finds the class names: --names, else DIR/coco.names, else
// DIR/../coco.names. It returns nil names (no error) when there is no file:
// the model's labels are used then.
func evalNames(flagFile, data string) ([]string, string, error) {
	if flagFile != "" {
		names, err := labels.Load(flagFile)
		return names, flagFile, err
	}
	for _, p := range []string{filepath.Join(data, "coco.names"), filepath.Join(data, "..", "coco.names")} {
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			names, err := labels.Load(p)
			return names, filepath.Clean(p), err
		}
	}
	return nil, "", nil
}

// matchLabels checks that the dataset's class ids index the model's classes.
// Names that differ only in spelling (darknet motorbike vs COCO motorcycle)
// are matched by index with a note; other differences get a warning.
func matchLabels(names []string, from string, info detector.ModelInfo, note func(string, ...any)) error {
	if len(names) != len(info.Labels) {
		return fmt.Errorf("dataset has %d classes (names from %s) but model %s has %d; the dataset's class ids must index the model's classes (give the right --names or --labels)",
			len(names), from, info.Name, len(info.Labels))
	}
	var spelling, other []string
	for i, n := range names {
		l := info.Labels[i]
		switch {
		case n == l:
		case eval.CanonicalName(n) == eval.CanonicalName(l):
			spelling = append(spelling, n+"/"+l)
		default:
			other = append(other, fmt.Sprintf("%d: %s/%s", i, n, l))
		}
	}
	if len(spelling) > 0 {
		note("class names from %s differ from the model's labels in spelling only (%s); matching classes by index",
			from, strings.Join(spelling, ", "))
	}
	if len(other) > 0 {
		if len(other) > 5 {
			other = append(other[:5], "…")
		}
		note("warning: %d class names from %s differ from the model's labels (%s); matching classes by index anyway",
			len(other), from, strings.Join(other, ", "))
	}
	return nil
}

// evalModel runs det over every image of ds and scores the detections.
func evalModel(ctx context.Context, det *detector.Detector, ds *eval.Dataset, stderr io.Writer) (*evalModelReport, error) {
	info := det.Info()
	fmt.Fprintf(stderr, "edgedet eval: %s on %d images\n", info.Name, len(ds.Images))
	ev := eval.NewEvaluator(ds)
	bar := progress.New(stderr, len(ds.Images), "images")
	defer bar.Finish()
	var buf []detector.Detection
	var inference time.Duration
	for i, im := range ds.Images {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		// Labels are relative to the stored pixels: do not apply EXIF rotation.
		img, err := cvsafe.ReadImage(im.Path, gocv.IMReadColor|gocv.IMReadIgnoreOrientation)
		if err != nil {
			return nil, err
		}
		if img.Cols() != im.Width || img.Rows() != im.Height {
			w, h := img.Cols(), img.Rows()
			img.Close()
			return nil, fmt.Errorf("%s: OpenCV decodes %dx%d but the header says %dx%d", im.Path, w, h, im.Width, im.Height)
		}
		if i == 0 { // warm-up, untimed: the first run allocates
			if _, err := det.Detect(ctx, img, buf); err != nil {
				img.Close()
				return nil, fmt.Errorf("%s: %w", im.Path, err)
			}
		}
		res, err := det.Detect(ctx, img, buf)
		img.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", im.Path, err)
		}
		buf = res.Detections
		inference += res.Timings.Inference
		dets := make([]eval.Detection, len(res.Detections))
		for j, d := range res.Detections {
			b := d.Box
			dets[j] = eval.Detection{ClassID: d.ClassID, Score: float64(d.Score),
				Box: [4]float64{float64(b.X1), float64(b.Y1), float64(b.X2), float64(b.Y2)}}
		}
		if err := ev.Add(im.ID, dets); err != nil {
			return nil, fmt.Errorf("model %s: %w", info.Name, err)
		}
		bar.Add(1)
	}
	bar.Finish()
	res := ev.Evaluate()
	return &evalModelReport{
		Model: info.Name, Path: info.Path, Precision: info.Precision,
		Input:       fmt.Sprintf("%dx%d", info.Spec.InputWidth, info.Spec.InputHeight),
		InferenceMS: ms(inference) / float64(max(len(ds.Images), 1)),
		Detections:  res.Detections, Summary: res.Summary, Classes: res.WithGT(),
		result: res, dets: ev.Detections(),
	}, nil
}

// summaryDelta is b − a per stat; undefined (-1) in either stays -1.
func summaryDelta(a, b eval.Summary) eval.Summary {
	sa, sb := a.Stats(), b.Stats()
	var d [12]float64
	for i := range d {
		if sa[i] < 0 || sb[i] < 0 {
			d[i] = -1
		} else {
			d[i] = sb[i] - sa[i]
		}
	}
	return eval.Summary{AP: d[0], AP50: d[1], AP75: d[2], APSmall: d[3], APMedium: d[4], APLarge: d[5],
		AR1: d[6], AR10: d[7], AR100: d[8], ARSmall: d[9], ARMedium: d[10], ARLarge: d[11]}
}

// printEvalReport writes the text report: models, the twelve COCO numbers,
// per-class AP.
func printEvalReport(w io.Writer, r *evalReport) {
	fmt.Fprintf(w, "dataset %s: %d images (%d without objects), %d objects in %d classes\n",
		r.Data, r.Images, r.EmptyImages, r.Objects, r.Classes)
	fmt.Fprintf(w, "score >= %g, NMS IoU %g, at most %d detections per image; COCO 101-point AP\n\n",
		r.ScoreThreshold, r.IoUThreshold, r.MaxDetections)
	cmp := len(r.Models) == 2
	col := 10
	for _, m := range r.Models {
		col = max(col, len(m.Model)+2)
	}
	const label = 52
	row := func(name string, vals []string) {
		fmt.Fprintf(w, "%-*s", label, name)
		for _, v := range vals {
			fmt.Fprintf(w, "%*s", col, v)
		}
		fmt.Fprintln(w)
	}
	var hdr []string
	for _, m := range r.Models {
		hdr = append(hdr, m.Model)
	}
	if cmp {
		hdr = append(hdr, "delta")
	}
	row("", hdr)
	num := func(format string, get func(m evalModelReport) float64) []string {
		var v []string
		for _, m := range r.Models {
			v = append(v, fmt.Sprintf(format, get(m)))
		}
		if cmp {
			v = append(v, fmt.Sprintf("%+"+format[1:], get(r.Models[1])-get(r.Models[0])))
		}
		return v
	}
	var info []string
	for _, m := range r.Models {
		info = append(info, m.Precision+" "+m.Input)
	}
	row("precision, input", info)
	row("file size (MB)", num("%.2f", func(m evalModelReport) float64 { return float64(m.SizeBytes) / 1e6 }))
	row("mean inference (ms)", num("%.1f", func(m evalModelReport) float64 { return m.InferenceMS }))
	row("detections", num("%.0f", func(m evalModelReport) float64 { return float64(m.Detections) }))
	fmt.Fprintln(w)
	stat := func(v float64) string {
		if v < 0 {
			return "n/a"
		}
		return fmt.Sprintf("%.3f", v)
	}
	for i, lbl := range eval.SummaryLabels {
		var v []string
		for _, m := range r.Models {
			v = append(v, stat(m.Summary.Stats()[i]))
		}
		if cmp {
			if r.Models[0].Summary.Stats()[i] < 0 || r.Models[1].Summary.Stats()[i] < 0 {
				v = append(v, "n/a")
			} else {
				v = append(v, fmt.Sprintf("%+.3f", r.Delta.Stats()[i]))
			}
		}
		row(lbl, v)
	}

	// Per class: AP@[.50:.95] and AP@.50 for each model.
	fmt.Fprintln(w)
	fmt.Fprintf(w, "%4s %-16s %5s", "id", "class", "gt")
	heads := []string{"AP", "AP50"}
	if cmp {
		heads = []string{"AP A", "AP B", "ΔAP", "AP50 A", "AP50 B", "ΔAP50"}
	}
	for _, h := range heads {
		fmt.Fprintf(w, "%9s", h)
	}
	fmt.Fprintln(w)
	for ci, c := range r.Models[0].Classes {
		fmt.Fprintf(w, "%4d %-16s %5d", c.ClassID, c.Name, c.GT)
		if !cmp {
			fmt.Fprintf(w, "%9.3f%9.3f\n", c.AP, c.AP50)
			continue
		}
		o := r.Models[1].Classes[ci]
		fmt.Fprintf(w, "%9.3f%9.3f%+9.3f%9.3f%9.3f%+9.3f\n", c.AP, o.AP, o.AP-c.AP, c.AP50, o.AP50, o.AP50-c.AP50)
	}
	if cmp {
		fmt.Fprintf(w, "\nA = %s, B = %s; deltas are B − A\n", r.Models[0].Model, r.Models[1].Model)
	}
}
