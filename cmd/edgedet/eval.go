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

	"github.com/edgedet/edgedet/detection"
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
on the same images (one model is loaded at a time) and prints both with deltas (second − first)
and the 95 % interval of the mAP deltas over bootstrap resamples of the images (--bootstrap N;
an interval that contains 0 says these images cannot tell the two models apart).
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
	// DeltaInterval is how sure Delta is: its 95 % interval over
	// bootstrap resamples of the images (--bootstrap).
	DeltaInterval *eval.DeltaInterval `json:"delta_interval,omitempty"`
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
	bootstrap := fs.Int("bootstrap", bootstrapResamples, "with --compare, resample the images this many times for a 95 % interval of the mAP differences (0 = none)")
	plotPath := fs.String("plot", "", "write a precision-recall plot (PNG) at IoU 0.5 here")
	saveJSON := fs.String("save-json", "", "write COCO instances.json and predictions.json here (per model in DIR/<model>/ with --compare)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), evalUsage)
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := checkEvalArgs(fs.Args(), mf.cfg.Model, *data, *compare); err != nil {
		return err
	}
	if *bootstrap < 0 || *bootstrap == 1 {
		return fmt.Errorf("%w: --bootstrap %d: want 0 (none) or at least 2 resamples", errUsage, *bootstrap)
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
	models := []string{mf.cfg.Model}
	if *compare != "" {
		models = append(models, *compare)
	}
	e := evalRun{mf: mf, data: *data, names: names, namesFrom: namesFrom, ds: ds, rep: &rep, notes: map[string]bool{}, stderr: stderr}
	defer e.closeAll()
	for _, model := range models {
		if err := e.model(ctx, model); err != nil {
			return err
		}
	}
	rep.Classes = len(rep.Models[0].Classes)
	if len(rep.Models) == 2 {
		d := summaryDelta(rep.Models[0].Summary, rep.Models[1].Summary)
		rep.Delta = &d
		if *bootstrap > 0 {
			if rep.DeltaInterval, err = eval.BootstrapDelta(ctx, e.ds, rep.Models[0].dets, rep.Models[1].dets, *bootstrap, 1); err != nil {
				return err
			}
		}
	}
	wrote, err := writeEvalFiles(&rep, e.ds, *saveJSON, *plotPath)
	if err != nil {
		return err
	}
	if *asJSON {
		// stdout is the JSON report: the files written are said on stderr.
		for _, p := range wrote {
			fmt.Fprintf(stderr, "edgedet eval: wrote %s\n", p)
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	printEvalReport(stdout, &rep)
	if len(wrote) > 0 {
		fmt.Fprintln(stdout)
	}
	for _, p := range wrote {
		fmt.Fprintf(stdout, "wrote %s\n", p)
	}
	return nil
}

// checkEvalArgs checks eval's arguments before any model loads.
func checkEvalArgs(rest []string, model, data, compare string) error {
	switch {
	case len(rest) > 0:
		return fmt.Errorf("%w: unexpected arguments %q (images come from --data)", errUsage, rest)
	case model == "":
		return fmt.Errorf("%w: --model is required", errUsage)
	case data == "":
		return fmt.Errorf("%w: --data is required", errUsage)
	}
	if compare != "" {
		if _, err := os.Stat(compare); err != nil { // fail before the first model runs
			return fmt.Errorf("--compare: %w", err)
		}
	}
	if st, err := os.Stat(data); err != nil {
		return fmt.Errorf("dataset: %w", err)
	} else if !st.IsDir() {
		return fmt.Errorf("dataset %s: not a directory", data)
	}
	return nil
}

// evalRun evaluates eval's models one after the other on one dataset.
type evalRun struct {
	mf        modelFlags
	data      string
	names     []string
	namesFrom string
	ds        *eval.Dataset // loaded with the first model's labels when no names file
	rep       *evalReport
	notes     map[string]bool // say each note once
	closers   []func()
	stderr    io.Writer
}

func (e *evalRun) note(format string, args ...any) {
	if s := fmt.Sprintf(format, args...); !e.notes[s] {
		e.notes[s] = true
		fmt.Fprintln(e.stderr, "edgedet eval: "+s)
	}
}

// closeAll destroys the ONNX Runtime environment (after the last model).
func (e *evalRun) closeAll() {
	for i := len(e.closers) - 1; i >= 0; i-- {
		e.closers[i]()
	}
}

// model loads one model, evaluates it and adds it to the report.
func (e *evalRun) model(ctx context.Context, model string) error {
	m := e.mf
	m.cfg.Model = model
	det, closeAll, err := m.open(e.stderr)
	if err != nil {
		return err
	}
	// closeAll also destroys the ONNX Runtime environment: keep it for the
	// end, and close only the model now, so the next model reuses the
	// environment.
	e.closers = append(e.closers, closeAll)
	info := det.Info()
	if e.ds == nil {
		e.names, e.namesFrom = info.Labels, "the labels of model "+info.Name
		if e.ds, err = eval.LoadYOLODataset(e.data, e.names); err != nil {
			return err
		}
	}
	if err := matchLabels(e.names, e.namesFrom, info, e.note); err != nil {
		return err
	}
	ds, rep := e.ds, e.rep
	if len(rep.Models) == 0 {
		rep.Images, rep.Objects, rep.EmptyImages, rep.MissingLabels = len(ds.Images), ds.NumObjects(), ds.EmptyImages(), len(ds.MissingLabels)
		if n := len(ds.MissingLabels); n > 0 {
			e.note("%d of %s without a label file count as images without objects (e.g. %s)", n, plural(len(ds.Images), "image"), ds.MissingLabels[0])
		}
	}
	mr, err := evalModel(ctx, det, ds, e.stderr)
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
	return nil
}

// writeEvalFiles writes --save-json and --plot and returns the paths it
// wrote.
func writeEvalFiles(rep *evalReport, ds *eval.Dataset, saveJSON, plotPath string) ([]string, error) {
	var wrote []string
	if saveJSON != "" {
		for i, mr := range rep.Models {
			dir := saveJSON
			if len(rep.Models) > 1 {
				name := mr.Model
				if i == 1 && name == rep.Models[0].Model {
					name += "-2"
				}
				dir = filepath.Join(dir, name)
			}
			if err := eval.SaveCOCOJSON(dir, ds, mr.dets); err != nil {
				return nil, err
			}
			wrote = append(wrote, filepath.Join(dir, "instances.json"), filepath.Join(dir, "predictions.json"))
		}
	}
	if plotPath == "" {
		return wrote, nil
	}
	var curves []eval.Curve
	for _, mr := range rep.Models {
		curves = append(curves, mr.result.Curve(mr.Model))
	}
	if err := eval.PlotPR(plotPath, curves...); err != nil {
		return nil, err
	}
	return append(wrote, plotPath), nil
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
		return fmt.Errorf("dataset has %s (names from %s) but model %s has %d; the dataset's class ids must index the model's classes (give the right --names or --labels)",
			plural(len(names), "class"), from, info.Name, len(info.Labels))
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
	if n := len(other); n > 0 {
		if n > 5 {
			other = append(other[:5], "…")
		}
		note("warning: class names from %s differ from the model's labels for %s (%s); matching classes by index anyway",
			from, plural(n, "class"), strings.Join(other, ", "))
	}
	return nil
}

// evalModel runs det over every image of ds and scores the detections.
func evalModel(ctx context.Context, det *detector.Detector, ds *eval.Dataset, stderr io.Writer) (*evalModelReport, error) {
	info := det.Info()
	fmt.Fprintf(stderr, "edgedet eval: %s on %s\n", info.Name, plural(len(ds.Images), "image"))
	ev := eval.NewEvaluator(ds)
	bar := progress.New(stderr, "", len(ds.Images), "images")
	defer bar.Finish()
	var buf []detection.Detection
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
