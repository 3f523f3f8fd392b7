package train

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// checkLossGradient compares a loss's gradient with respect to y against
// central finite differences on every element.
func checkLossGradient(t *testing.T, name string, loss func(y *Tensor) (float64, *Tensor, error), y *Tensor) {
	t.Helper()
	_, g, err := loss(y)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	const eps = 1e-3
	for i := range y.Data {
		orig := y.Data[i]
		y.Data[i] = orig + eps
		up, _, _ := loss(y)
		y.Data[i] = orig - eps
		down, _, _ := loss(y)
		y.Data[i] = orig
		num := (up - down) / (2 * eps)
		if ana := float64(g.Data[i]); math.Abs(num-ana) > 1e-4+2e-3*math.Abs(num) {
			t.Errorf("%s element %d: gradient %.6g, finite difference %.6g", name, i, ana, num)
		}
	}
}

func TestCellLossGradients(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	y, tg := randTensor(rng, 2, 3, 2, 2), randTensor(rng, 2, 3, 2, 2)
	for i := range tg.Data { // logits over a wider range than ±1
		tg.Data[i] *= 4
	}
	cells := NewTensor(2, 1, 2, 2)
	for i := range cells.Data {
		cells.Data[i] = rng.Float32()
	}
	for _, c := range []*Tensor{nil, cells} {
		checkLossGradient(t, "squared error", func(y *Tensor) (float64, *Tensor, error) { return CellSquaredError(y, tg, c) }, y)
		checkLossGradient(t, "sigmoid KL", func(y *Tensor) (float64, *Tensor, error) { return CellSigmoidKL(y, tg, c) }, y)
	}
}

func TestCellSquaredErrorWithoutCellsIsMSE(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	y, tg := randTensor(rng, 2, 3, 4), randTensor(rng, 2, 3, 4)
	got, g, err := CellSquaredError(y, tg, nil)
	if err != nil {
		t.Fatal(err)
	}
	want, wg, err := MSE(map[string]*Tensor{"y": y}, map[string]*Tensor{"y": tg}, map[string]float64{"y": 1})
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(got-want) > 1e-9 {
		t.Errorf("loss %g, MSE %g", got, want)
	}
	for i := range g.Data {
		if math.Abs(float64(g.Data[i]-wg["y"].Data[i])) > 1e-6 {
			t.Fatalf("gradient %d: %g, MSE's %g", i, g.Data[i], wg["y"].Data[i])
		}
	}
}

func TestCellWeights(t *testing.T) {
	// Two cells, two channels: cell 0 weighs 1, cell 1 weighs 0.
	y := mustData([]float32{1, 5, 1, 5}, 1, 2, 2)
	tg := mustData([]float32{0, 0, 0, 0}, 1, 2, 2)
	cells := mustData([]float32{1, 0}, 1, 1, 2)
	loss, g, err := CellSquaredError(y, tg, cells)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(loss-1) > 1e-9 { // only the 1s of cell 0 count
		t.Errorf("loss %g, want 1", loss)
	}
	if g.Data[1] != 0 || g.Data[3] != 0 || math.Abs(float64(g.Data[0])-1) > 1e-6 { // 1·2·1/2
		t.Errorf("gradient %v, want [1 0 1 0]", g.Data)
	}
	loss, g, err = CellSquaredError(y, tg, mustData([]float32{0, 0}, 1, 1, 2))
	if err != nil || loss != 0 || g.Data[0] != 0 {
		t.Errorf("all-zero weights: loss %g, gradient %v, err %v; want zeros", loss, g.Data, err)
	}
	if _, _, err := CellSquaredError(y, tg, mustData([]float32{1, 0}, 1, 2, 1)); err == nil || !strings.Contains(err.Error(), "[1 1 2]") {
		t.Errorf("wrong cell shape: %v, want the expected shape named", err)
	}
	if _, _, err := CellSigmoidKL(y, NewTensor(4), nil); err == nil || !strings.Contains(err.Error(), "[1 2 2]") {
		t.Errorf("shape mismatch: %v, want both shapes named", err)
	}
}

func TestCellSigmoidKLIsSmallWhereBothAreSure(t *testing.T) {
	kl := func(y, tg float32) float64 {
		l, _, err := CellSigmoidKL(mustData([]float32{y}, 1, 1), mustData([]float32{tg}, 1, 1), nil)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	if l := kl(3, 3); math.Abs(l) > 1e-12 {
		t.Errorf("equal logits: %g, want 0", l)
	}
	background, object := kl(-8, -10), kl(1, -1)
	if background > 1e-3 || object < 0.3 {
		t.Errorf("KL(−10→−8) = %g (want < 1e-3), KL(−1→1) = %g (want > 0.3)", background, object)
	}
	if l := kl(-1000, 1000); math.IsInf(l, 0) || math.IsNaN(l) || l < 900 {
		t.Errorf("extreme logits: %g, want a large finite loss", l)
	}
}
