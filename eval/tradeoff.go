package eval

import (
	"errors"
	"fmt"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// TradeoffPoint is one model on an accuracy/speed plot.
type TradeoffPoint struct {
	Name      string
	LatencyMs float64
	MAP       float64 // mAP@0.5:0.95, 0..1
}

// PlotTradeoff draws mAP@0.5:0.95 against latency, one labelled marker per
// model, and writes a PNG to path.
func PlotTradeoff(path, title string, points ...TradeoffPoint) error {
	if len(points) == 0 {
		return errors.New("plot trade-off: no models")
	}
	p := plot.New()
	p.Title.Text = title
	p.Title.Padding = vg.Points(6)
	p.X.Label.Text = "latency (ms, median)"
	p.Y.Label.Text = "mAP@0.5:0.95"
	p.Add(plotter.NewGrid())
	p.Legend.Top = true
	p.Legend.TextStyle.Font.Size = vg.Points(11)
	minX, maxX, maxY := points[0].LatencyMs, points[0].LatencyMs, 0.0
	for i, pt := range points {
		s, err := plotter.NewScatter(plotter.XYs{{X: pt.LatencyMs, Y: pt.MAP}})
		if err != nil {
			return fmt.Errorf("plot trade-off %q: %w", pt.Name, err)
		}
		s.GlyphStyle.Color = plotutil.Color(i)
		s.GlyphStyle.Shape = plotutil.Shape(i)
		s.GlyphStyle.Radius = vg.Points(6)
		p.Add(s)
		p.Legend.Add(fmt.Sprintf("%s  %.1f ms, mAP %.3f", pt.Name, pt.LatencyMs, pt.MAP), s)
		minX, maxX, maxY = min(minX, pt.LatencyMs), max(maxX, pt.LatencyMs), max(maxY, pt.MAP)
	}
	pad := max((maxX-minX)*0.15, 1)
	p.X.Min, p.X.Max = max(0, minX-pad), maxX+pad
	p.Y.Min, p.Y.Max = 0, maxY*1.35+0.01 // room for the legend
	return savePlot(p, path, "plot trade-off")
}
