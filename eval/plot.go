package eval

import (
	"errors"
	"fmt"
	"os"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// Curve is one model's precision–recall curve, for PlotPR.
type Curve struct {
	Name      string
	Recall    []float64
	Precision []float64
	// AP50 is shown in the legend (mAP@0.5).
	AP50 float64
	// Classes is how many classes were averaged.
	Classes int
}

// Curve returns the mean precision–recall curve at IoU 0.5 over the
// classes with ground truth (MeanPR50), labelled name.
func (r *Result) Curve(name string) Curve {
	return Curve{Name: name, Recall: RecallThresholds(), Precision: r.MeanPR50(),
		AP50: r.Summary.AP50, Classes: len(r.WithGT())}
}

// PlotWidth and PlotHeight are the size in pixels of PlotPR's image.
const (
	PlotWidth  = 800
	PlotHeight = 600
	plotDPI    = 96
)

// PlotPR draws the curves (one line per model, legend "name  mAP@0.5 x")
// on recall 0..1 × precision 0..1 and writes a PNG to path.
func PlotPR(path string, curves ...Curve) (err error) {
	if len(curves) == 0 {
		return errors.New("plot precision-recall: no curves")
	}
	p := plot.New()
	p.Title.Text = "Precision–recall at IoU 0.5"
	switch n := curves[0].Classes; {
	case n == 1:
		p.Title.Text += " (1 class, COCO 101-point)"
	case n > 1:
		p.Title.Text += fmt.Sprintf(" (mean over %d classes, COCO 101-point)", n)
	}
	p.Title.Padding = vg.Points(6)
	p.X.Label.Text = "recall"
	p.Y.Label.Text = "precision"
	p.X.Min, p.X.Max = 0, 1
	p.Y.Min, p.Y.Max = 0, 1.02
	p.X.Tick.Marker = tenths{}
	p.Y.Tick.Marker = tenths{}
	p.Add(plotter.NewGrid())
	// Bottom left lies under any useful curve.
	p.Legend.Left = true
	p.Legend.XOffs, p.Legend.YOffs = vg.Points(12), vg.Points(12)
	p.Legend.TextStyle.Font.Size = vg.Points(11)
	for i, c := range curves {
		if c.Precision == nil {
			return fmt.Errorf("plot precision-recall: curve %q is empty (no class has ground truth)", c.Name)
		}
		if len(c.Recall) != len(c.Precision) {
			return fmt.Errorf("plot precision-recall: curve %q has %d recall and %d precision points", c.Name, len(c.Recall), len(c.Precision))
		}
		xy := make(plotter.XYs, len(c.Recall))
		for j := range xy {
			xy[j].X, xy[j].Y = c.Recall[j], c.Precision[j]
		}
		line, err := plotter.NewLine(xy)
		if err != nil {
			return fmt.Errorf("plot precision-recall %q: %w", c.Name, err)
		}
		line.Color = plotutil.Color(i)
		line.Width = vg.Points(2)
		line.Dashes = plotutil.Dashes(i)
		p.Add(line)
		p.Legend.Add(fmt.Sprintf("%s  mAP@0.5 %.3f", c.Name, c.AP50), line)
	}
	return savePlot(p, path, "plot precision-recall")
}

// savePlot draws p at PlotWidth × PlotHeight and writes it to path; errors
// start with what.
func savePlot(p *plot.Plot, path, what string) (err error) {
	px := func(n int) vg.Length { return vg.Length(n) * vg.Inch / plotDPI }
	img := vgimg.NewWith(vgimg.UseWH(px(PlotWidth), px(PlotHeight)), vgimg.UseDPI(plotDPI))
	p.Draw(draw.Crop(draw.New(img), 8, -16, 8, -8)) // margins
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("%s: %w", what, cerr)
		}
	}()
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		return fmt.Errorf("%s %s: %w", what, path, err)
	}
	return nil
}

// tenths puts labelled ticks at 0, 0.1, …, 1.
type tenths struct{}

func (tenths) Ticks(lo, hi float64) []plot.Tick {
	var ts []plot.Tick
	for i := 0; i <= 10; i++ {
		v := float64(i) / 10
		if v < lo || v > hi {
			continue
		}
		ts = append(ts, plot.Tick{Value: v, Label: fmt.Sprintf("%.1f", v)})
	}
	return ts
}
