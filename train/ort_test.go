package train

import (
	"image"
	"image/jpeg"
	"math"
	"os"
	"testing"

	"golang.org/x/image/draw"

	"github.com/edgedet/edgedet/internal/testenv"
	"github.com/edgedet/edgedet/onnx"
	"github.com/edgedet/edgedet/onnx/onnxtest"
)

// bgrInput resizes the image at path (bilinear) to the model's input as
// the models' notes describe: letterbox places the resized image at the
// top-left on a grey (114) canvas, otherwise it is stretched; channels are
// BGR and each byte is multiplied by scale.
func bgrInput(t testing.TB, path string, size int, letterbox bool, scale float32) *Tensor {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	src, err := jpeg.Decode(f)
	if err != nil {
		t.Fatalf("decode %s: %v", path, err)
	}
	canvas := image.NewRGBA(image.Rect(0, 0, size, size))
	dst := canvas.Bounds()
	if letterbox {
		draw.Draw(canvas, dst, image.NewUniform(colorGrey114), image.Point{}, draw.Src)
		b := src.Bounds()
		r := math.Min(float64(size)/float64(b.Dx()), float64(size)/float64(b.Dy()))
		dst = image.Rect(0, 0, int(float64(b.Dx())*r), int(float64(b.Dy())*r))
	}
	draw.BiLinear.Scale(canvas, dst, src, src.Bounds(), draw.Src, nil)
	x := NewTensor(1, 3, size, size)
	plane := size * size
	for i := range plane {
		px := canvas.Pix[4*i:]
		x.Data[i] = float32(px[2]) * scale // B
		x.Data[plane+i] = float32(px[1]) * scale
		x.Data[2*plane+i] = float32(px[0]) * scale // R
	}
	return x
}

func requireORT(t *testing.T) {
	t.Helper()
	if os.Getenv("EDGEDET_ORT_LIB") == "" {
		t.Skip("EDGEDET_ORT_LIB is not set: the comparison with ONNX Runtime needs its library")
	}
}

// TestForwardMatchesORT runs the shared YOLO models on dog.jpg, prepared
// as each model's notes say, through this engine and through ONNX Runtime
// and compares every output.
func TestForwardMatchesORT(t *testing.T) {
	requireORT(t)
	dog := testenv.Shared(t, "datasets", "samples", "dog.jpg")
	for _, c := range []struct {
		model     string
		size      int
		letterbox bool
		scale     float32
	}{
		{"yolox_nano_416.onnx", 416, true, 1},
		{"yolo-fastestv2_352.onnx", 352, false, 1.0 / 255},
	} {
		t.Run(c.model, func(t *testing.T) {
			path := testenv.Shared(t, "models", c.model)
			m, err := onnx.LoadModel(path)
			if err != nil {
				t.Fatal(err)
			}
			g, err := Build(m, Options{})
			if err != nil {
				t.Fatal(err)
			}
			x := bgrInput(t, dog, c.size, c.letterbox, c.scale)
			inName := g.Inputs()[0]
			want := onnxtest.RunORT(t, path, []onnxtest.Input{{Name: inName, Shape: []int64{1, 3, int64(c.size), int64(c.size)}, Data: x.Data}})
			got, err := g.Forward(map[string]*Tensor{inName: x})
			if err != nil {
				t.Fatal(err)
			}
			for name, w := range want {
				y := got[name]
				if y == nil || len(y.Data) != len(w) {
					t.Fatalf("output %q: got %v, ONNX Runtime has %d values", name, y, len(w))
				}
				var maxAbs, maxRel float64
				for i, v := range w {
					d := math.Abs(float64(y.Data[i]) - float64(v))
					maxAbs = max(maxAbs, d)
					maxRel = max(maxRel, d/math.Max(1, math.Abs(float64(v))))
				}
				t.Logf("%s output %q %v: max |Go − ORT| = %.3g (relative to max(1,|ORT|): %.3g)", c.model, name, y.Shape, maxAbs, maxRel)
				if maxRel > 2e-4 {
					t.Errorf("output %q deviates from ONNX Runtime by %.3g (relative), want ≤ 2e-4", name, maxRel)
				}
			}
		})
	}
}

var colorGrey114 = grey114{}

type grey114 struct{}

func (grey114) RGBA() (r, g, b, a uint32) { return 114 * 0x101, 114 * 0x101, 114 * 0x101, 0xffff }
