package lut

import (
	"fmt"
	"math"
	"testing"
)

// refSiLU is the reference the table must equal: dequantize, x·sigmoid(x),
// quantize with round-half-to-even and saturation, written out separately
// from Table.
func refSiLU(b byte, in, out QParams) byte {
	var q int32
	if in.Signed {
		q = int32(int8(b))
	} else {
		q = int32(b)
	}
	x := float64(in.Scale) * float64(q-in.Zero)
	y := x / (1 + math.Exp(-x))
	r := math.RoundToEven(y/float64(out.Scale)) + float64(out.Zero)
	lo, hi := -128.0, 127.0
	if !out.Signed {
		lo, hi = 0, 255
	}
	r = math.Min(hi, math.Max(lo, r))
	if out.Signed {
		return byte(int8(r))
	}
	return byte(r)
}

var qcases = []struct{ in, out QParams }{
	{QParams{Scale: 0.05, Zero: 128}, QParams{Scale: 0.04, Zero: 10}},
	{QParams{Scale: 0.1173, Zero: 201}, QParams{Scale: 0.0511, Zero: 5}},
	{QParams{Scale: 0.02, Zero: 0}, QParams{Scale: 0.5, Zero: 255}}, // saturates low... and high
	{QParams{Scale: 0.25, Zero: 60}, QParams{Scale: 0.01, Zero: 3}}, // saturates high
	{QParams{Scale: 0.05, Zero: 0, Signed: true}, QParams{Scale: 0.04, Zero: -100, Signed: true}},
	{QParams{Scale: 0.0733, Zero: -37, Signed: true}, QParams{Scale: 0.0311, Zero: -120, Signed: true}},
	{QParams{Scale: 0.3, Zero: 127, Signed: true}, QParams{Scale: 0.02, Zero: -128, Signed: true}},
}

// allBytes is every input byte, twice over and in an order that makes each
// vector block mix high and low nibbles, plus a tail that is not a multiple
// of any vector width.
func allBytes() []byte {
	in := make([]byte, 0, 2*256+61)
	for i := range 256 {
		in = append(in, byte(i*37+11))
	}
	for i := range 256 {
		in = append(in, byte(255-i))
	}
	for i := range 61 {
		in = append(in, byte(i*97))
	}
	return in
}

func TestKernelMatchesReferenceOnEveryPath(t *testing.T) {
	in := allBytes()
	ran := 0
	for _, p := range Paths {
		if !p.Supported() {
			t.Logf("path %s: not supported on this CPU, not run", p)
			continue
		}
		ran++
		for _, c := range qcases {
			t.Run(fmt.Sprintf("%s/%+v/%+v", p, c.in, c.out), func(t *testing.T) {
				tab, err := Table(SiLU, c.in, c.out)
				if err != nil {
					t.Fatal(err)
				}
				for _, n := range []int{len(in), 1, 31, 63, 64, 65, 200} {
					out := make([]byte, n+1)
					out[n] = 0xA5 // guard
					if err := Apply(p, tab, in[:n], out); err != nil {
						t.Fatal(err)
					}
					for i, b := range in[:n] {
						if want := refSiLU(b, c.in, c.out); out[i] != want {
							t.Fatalf("n=%d: input byte %d: got %d, want %d", n, b, out[i], want)
						}
					}
					if out[n] != 0xA5 {
						t.Fatalf("n=%d: wrote past the end", n)
					}
				}
			})
		}
	}
	if ran < 2 && BestPath() != PathScalar {
		t.Fatalf("only %d paths ran, best is %s", ran, BestPath())
	}
}

func TestKernelInPlace(t *testing.T) {
	tab, err := Table(SiLU, qcases[0].in, qcases[0].out)
	if err != nil {
		t.Fatal(err)
	}
	buf := allBytes()
	want := make([]byte, len(buf))
	for i, b := range buf {
		want[i] = tab[b]
	}
	if err := Apply(PathAuto, tab, buf, buf); err != nil {
		t.Fatal(err)
	}
	for i := range buf {
		if buf[i] != want[i] {
			t.Fatalf("byte %d: got %d, want %d", i, buf[i], want[i])
		}
	}
}

func TestApplyRejectsShortOutput(t *testing.T) {
	var tab [256]byte
	if err := Apply(PathScalar, &tab, make([]byte, 4), make([]byte, 3)); err == nil {
		t.Fatal("no error for a short output")
	}
}

func TestApplyUnsupportedPath(t *testing.T) {
	var tab [256]byte
	if err := Apply(Path(99), &tab, []byte{1}, []byte{0}); err == nil {
		t.Fatal("no error for an unknown path")
	}
}

// TestTableCloseToTwoStepGraph compares the one-pass table with what the
// all-INT8 QDQ graph computes: sigmoid quantised to 1/255 steps first, then
// the quantised product. They differ by the sigmoid's rounding only.
func TestTableCloseToTwoStepGraph(t *testing.T) {
	sq := QParams{Scale: 1.0 / 255}
	for _, c := range qcases[:2] {
		tab, err := Table(SiLU, c.in, c.out)
		if err != nil {
			t.Fatal(err)
		}
		worst := 0
		for b := range 256 {
			x := c.in.dequantize(byte(b))
			s := sq.dequantize(sq.quantize(sigmoid(x)))
			two := int(c.out.value(c.out.quantize(x * s)))
			if d := int(c.out.value(tab[b])) - two; d > worst || -d > worst {
				worst = max(d, -d)
			}
		}
		if worst > 2 {
			t.Fatalf("%+v: table and two-step graph differ by %d codes", c, worst)
		}
	}
}

func TestTableRejectsBadParams(t *testing.T) {
	bad := []QParams{{Scale: 0}, {Scale: float32(math.NaN())}, {Scale: float32(math.Inf(1))},
		{Scale: 1, Zero: 256}, {Scale: 1, Zero: 128, Signed: true}, {Scale: -1}}
	for _, q := range bad {
		if _, err := Table(SiLU, q, QParams{Scale: 1}); err == nil {
			t.Errorf("input %+v: no error", q)
		}
		if _, err := Table(SiLU, QParams{Scale: 1}, q); err == nil {
			t.Errorf("output %+v: no error", q)
		}
	}
}

func TestActivations(t *testing.T) {
	cases := []struct {
		name string
		f    func(float64) float64
		x, y float64
	}{
		{"silu", SiLU, 2, 2 / (1 + math.Exp(-2))},
		{"sigmoid", Sigmoid, 0, 0.5},
		{"hardswish", HardSwish, 1, 1 * (1.0/6 + 0.5)},
		{"hardswish-low", HardSwish, -4, 0},
		{"hardswish-high", HardSwish, 4, 4},
		{"leaky", LeakyReLU(0.1), -2, -0.2},
		{"leaky-pos", LeakyReLU(0.1), 3, 3},
		{"quickgelu", QuickGelu(1.702), 1, 1 / (1 + math.Exp(-1.702))},
	}
	for _, c := range cases {
		if got := c.f(c.x); math.Abs(got-c.y) > 1e-12 {
			t.Errorf("%s(%v) = %v, want %v", c.name, c.x, got, c.y)
		}
	}
}

func BenchmarkApply(b *testing.B) {
	tab, _ := Table(SiLU, qcases[0].in, qcases[0].out)
	in := make([]byte, 16*208*208) // the stem's output in yolox_nano_416
	for i := range in {
		in[i] = byte(i * 31)
	}
	out := make([]byte, len(in))
	for _, p := range Paths {
		if !p.Supported() {
			continue
		}
		b.Run(p.String(), func(b *testing.B) {
			b.SetBytes(int64(len(in)))
			for b.Loop() {
				if err := Apply(p, tab, in, out); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
