package eval

import (
	"image/png"
	"os"
	"path/filepath"
	"testing"
)

func TestPlotTradeoff(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tradeoff.png")
	err := PlotTradeoff(path, "yolox_nano", TradeoffPoint{"fp32", 28, 0.325}, TradeoffPoint{"pruned", 25, 0.28},
		TradeoffPoint{"int8", 27, 0.316}, TradeoffPoint{"pruned+int8", 24, 0.27})
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("not a PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() != PlotWidth || b.Dy() != PlotHeight {
		t.Errorf("plot is %v, want %dx%d", b, PlotWidth, PlotHeight)
	}
	if err := PlotTradeoff(path, "x"); err == nil {
		t.Error("no points: want an error")
	}
}
