package train

import (
	"math/rand/v2"
	"slices"
	"testing"
)

func TestConvGradients(t *testing.T) {
	cases := []struct {
		name    string
		x, w    []int
		p       convParams
		noBias  bool
		outWant []int
	}{
		{"3x3 pad1", []int{2, 3, 7, 5}, []int{4, 3, 3, 3}, convParams{group: 1, strideH: 1, strideW: 1, dilH: 1, dilW: 1, padT: 1, padL: 1, padB: 1, padR: 1}, false, []int{2, 4, 7, 5}},
		{"stride2 odd asym pads", []int{1, 2, 9, 7}, []int{3, 2, 3, 2}, convParams{group: 1, strideH: 2, strideW: 2, dilH: 1, dilW: 1, padT: 1, padL: 0, padB: 0, padR: 1}, false, []int{1, 3, 4, 4}},
		{"dilation2", []int{1, 2, 8, 8}, []int{2, 2, 3, 3}, convParams{group: 1, strideH: 1, strideW: 1, dilH: 2, dilW: 2, padT: 2, padL: 2, padB: 2, padR: 2}, false, []int{1, 2, 8, 8}},
		{"groups2", []int{2, 4, 6, 5}, []int{6, 2, 3, 3}, convParams{group: 2, strideH: 1, strideW: 2, dilH: 1, dilW: 1, padT: 1, padL: 1, padB: 1, padR: 1}, false, []int{2, 6, 6, 3}},
		{"depthwise stride2", []int{2, 5, 9, 9}, []int{5, 1, 3, 3}, convParams{group: 5, strideH: 2, strideW: 2, dilH: 1, dilW: 1, padT: 1, padL: 1, padB: 1, padR: 1}, false, []int{2, 5, 5, 5}},
		{"depthwise 5x5 dilated", []int{1, 3, 8, 6}, []int{3, 1, 5, 5}, convParams{group: 3, strideH: 1, strideW: 1, dilH: 1, dilW: 2, padT: 2, padL: 4, padB: 2, padR: 4}, true, []int{1, 3, 8, 6}},
		{"channel multiplier", []int{1, 3, 5, 5}, []int{6, 1, 3, 3}, convParams{group: 3, strideH: 1, strideW: 1, dilH: 1, dilW: 1, padT: 1, padL: 1, padB: 1, padR: 1}, false, []int{1, 6, 5, 5}},
		{"pointwise", []int{3, 6, 4, 3}, []int{5, 6, 1, 1}, convParams{group: 1, strideH: 1, strideW: 1, dilH: 1, dilW: 1}, true, []int{3, 5, 4, 3}},
		{"1x1 stride2", []int{1, 4, 5, 5}, []int{3, 4, 1, 1}, convParams{group: 1, strideH: 2, strideW: 2, dilH: 1, dilW: 1}, false, []int{1, 3, 3, 3}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, uint64(len(c.name))))
			ins := []*Tensor{randTensor(rng, c.x...), randTensor(rng, c.w...)}
			wrt := []int{0, 1}
			if !c.noBias {
				ins = append(ins, randTensor(rng, c.w[0]))
				wrt = append(wrt, 2)
			}
			k := convKernel{p: c.p}
			outs, _, err := k.forward(ins)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(outs[0].Shape, c.outWant) {
				t.Fatalf("output shape %v, want %v", outs[0].Shape, c.outWant)
			}
			checkGradients(t, k, ins, wrt...)
		})
	}
}

// TestConvMatchesDirect compares the im2col/GEMM and depthwise paths with a
// direct six-loop convolution.
func TestConvMatchesDirect(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, c := range []struct {
		x, w []int
		p    convParams
	}{
		{[]int{2, 4, 7, 6}, []int{6, 2, 3, 3}, convParams{group: 2, strideH: 2, strideW: 1, dilH: 1, dilW: 2, padT: 1, padL: 2, padB: 0, padR: 1}},
		{[]int{1, 4, 6, 6}, []int{4, 1, 3, 3}, convParams{group: 4, strideH: 2, strideW: 2, dilH: 1, dilW: 1, padT: 1, padL: 1, padB: 1, padR: 1}},
	} {
		x, w, b := randTensor(rng, c.x...), randTensor(rng, c.w...), randTensor(rng, c.w[0])
		outs, _, err := convKernel{p: c.p}.forward([]*Tensor{x, w, b})
		if err != nil {
			t.Fatal(err)
		}
		g, _ := c.p.geometry(x, w)
		y := outs[0]
		for n := range g.n {
			for m := range g.m {
				gi := m / g.mg
				for oy := range g.ho {
					for ox := range g.wo {
						s := float64(b.Data[m])
						for ci := range g.cg {
							for ky := range g.kh {
								for kx := range g.kw {
									iy := oy*g.strideH - g.padT + ky*g.dilH
									ix := ox*g.strideW - g.padL + kx*g.dilW
									if iy < 0 || iy >= g.h || ix < 0 || ix >= g.w {
										continue
									}
									xv := x.Data[((n*g.c+gi*g.cg+ci)*g.h+iy)*g.w+ix]
									wv := w.Data[((m*g.cg+ci)*g.kh+ky)*g.kw+kx]
									s += float64(xv) * float64(wv)
								}
							}
						}
						got := y.Data[((n*g.m+m)*g.ho+oy)*g.wo+ox]
						if d := float64(got) - s; d > 1e-5 || d < -1e-5 {
							t.Fatalf("%v: y[%d,%d,%d,%d] = %g, direct %g", c.x, n, m, oy, ox, got, s)
						}
					}
				}
			}
		}
	}
}

func TestActivationGradients(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for name, k := range map[string]kernel{
		"sigmoid":        sigmoidKernel(),
		"silu":           siluKernel(),
		"relu":           reluKernel(),
		"leakyrelu":      leakyReluKernel(0.1),
		"softmax legacy": softmaxKernel(1, true),
		"softmax axis":   softmaxKernel(-2, false),
	} {
		t.Run(name, func(t *testing.T) {
			checkGradients(t, k, []*Tensor{awayFromZero(rng, 2, 3, 5, 3)}, 0)
		})
	}
}

func TestActivationValues(t *testing.T) {
	x, _ := FromData([]float32{-2, -0.5, 0, 1.5}, 4)
	for name, c := range map[string]struct {
		k    kernel
		want []float32
	}{
		"sigmoid":   {sigmoidKernel(), []float32{0.1192029, 0.3775407, 0.5, 0.8175745}},
		"silu":      {siluKernel(), []float32{-0.2384058, -0.1887703, 0, 1.2263618}},
		"relu":      {reluKernel(), []float32{0, 0, 0, 1.5}},
		"leakyrelu": {leakyReluKernel(0.1), []float32{-0.2, -0.05, 0, 1.5}},
	} {
		outs, _, err := c.k.forward([]*Tensor{x})
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range outs[0].Data {
			if d := v - c.want[i]; d > 1e-6 || d < -1e-6 {
				t.Errorf("%s(%g) = %g, want %g", name, x.Data[i], v, c.want[i])
			}
		}
	}
}

func TestBinaryGradients(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 9))
	shapes := [][2][]int{
		{{2, 3, 4, 5}, {2, 3, 4, 5}},
		{{2, 3, 4, 5}, {3, 1, 1}},
		{{2, 1, 4, 1}, {1, 3, 1, 5}},
		{{3, 4}, {1}},
		{{1}, {2, 3}},
	}
	for _, op := range []binaryOp{opAdd, opSub, opMul, opDiv} {
		for _, s := range shapes {
			t.Run(op.String(), func(t *testing.T) {
				a, b := randTensor(rng, s[0]...), awayFromZero(rng, s[1]...)
				for i := range b.Data {
					b.Data[i] += 1.5 * b.Data[i] / abs32(b.Data[i]) // |b| ≥ 1.6: Div stays smooth
				}
				checkGradients(t, binaryKernel{op}, []*Tensor{a, b}, 0, 1)
			})
		}
	}
}

func abs32(v float32) float32 {
	if v < 0 {
		return -v
	}
	return v
}

func TestBinaryBroadcastValues(t *testing.T) {
	a, _ := FromData([]float32{1, 2, 3, 4, 5, 6}, 2, 3)
	b, _ := FromData([]float32{10, 20}, 2, 1)
	outs, _, err := binaryKernel{opSub}.forward([]*Tensor{a, b})
	if err != nil {
		t.Fatal(err)
	}
	want := []float32{-9, -8, -7, -16, -15, -14}
	if !slices.Equal(outs[0].Data, want) || !slices.Equal(outs[0].Shape, []int{2, 3}) {
		t.Fatalf("got %v %v, want [2 3] %v", outs[0].Shape, outs[0].Data, want)
	}
	if _, _, err := (binaryKernel{opAdd}).forward([]*Tensor{NewTensor(2, 3), NewTensor(4)}); err == nil {
		t.Fatal("adding [2 3] and [4] did not fail")
	}
}

func TestMaxPoolGradients(t *testing.T) {
	rng := rand.New(rand.NewPCG(10, 11))
	for name, c := range map[string]struct {
		p    poolParams
		x    []int
		want []int
	}{
		"k3 s2 p1 odd": {poolParams{kh: 3, kw: 3, strideH: 2, strideW: 2, dilH: 1, dilW: 1, padT: 1, padL: 1, padB: 1, padR: 1}, []int{2, 2, 7, 9}, []int{2, 2, 4, 5}},
		"spp k5":       {poolParams{kh: 5, kw: 5, strideH: 1, strideW: 1, dilH: 1, dilW: 1, padT: 2, padL: 2, padB: 2, padR: 2}, []int{1, 2, 6, 5}, []int{1, 2, 6, 5}},
		"spp k9":       {poolParams{kh: 9, kw: 9, strideH: 1, strideW: 1, dilH: 1, dilW: 1, padT: 4, padL: 4, padB: 4, padR: 4}, []int{1, 1, 7, 7}, []int{1, 1, 7, 7}},
		"spp k13":      {poolParams{kh: 13, kw: 13, strideH: 1, strideW: 1, dilH: 1, dilW: 1, padT: 6, padL: 6, padB: 6, padR: 6}, []int{1, 2, 5, 6}, []int{1, 2, 5, 6}},
		"k2 s2 ceil":   {poolParams{kh: 2, kw: 2, strideH: 2, strideW: 2, dilH: 1, dilW: 1, ceil: true}, []int{1, 2, 5, 7}, []int{1, 2, 3, 4}},
	} {
		t.Run(name, func(t *testing.T) {
			k := maxPoolKernel{c.p}
			ins := []*Tensor{distinct(rng, c.x...)}
			outs, _, err := k.forward(ins)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(outs[0].Shape, c.want) {
				t.Fatalf("shape %v, want %v", outs[0].Shape, c.want)
			}
			checkGradients(t, k, ins, 0)
		})
	}
}

func TestResize(t *testing.T) {
	x, _ := FromData([]float32{1, 2, 3, 4, 5, 6}, 1, 1, 2, 3)
	asym := resizeParams{coordMode: "asymmetric", nearestMode: "floor"}
	scales, _ := FromData([]float32{1, 1, 2, 2}, 4)
	outs, _, err := resizeKernel{p: asym, scalesAt: 2, sizesAt: -1}.forward([]*Tensor{x, nil, scales})
	if err != nil {
		t.Fatal(err)
	}
	want := []float32{1, 1, 2, 2, 3, 3, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 4, 4, 5, 5, 6, 6}
	if !slices.Equal(outs[0].Data, want) || !slices.Equal(outs[0].Shape, []int{1, 1, 4, 6}) {
		t.Fatalf("nearest ×2: %v %v, want %v", outs[0].Shape, outs[0].Data, want)
	}
	rng := rand.New(rand.NewPCG(12, 13))
	for name, c := range map[string]struct {
		p   resizeParams
		ins []*Tensor
	}{
		"x2 asymmetric":         {asym, []*Tensor{randTensor(rng, 2, 3, 3, 5), nil, scales}},
		"sizes half_pixel":      {resizeParams{"half_pixel", "round_prefer_floor"}, []*Tensor{randTensor(rng, 1, 2, 5, 4), nil, nil, ints(1, 2, 7, 9)}},
		"sizes align_corners":   {resizeParams{"align_corners", "round_prefer_ceil"}, []*Tensor{randTensor(rng, 1, 2, 5, 4), nil, nil, ints(1, 2, 3, 10)}},
		"pytorch_half_pixel x3": {resizeParams{"pytorch_half_pixel", "floor"}, []*Tensor{randTensor(rng, 1, 1, 3, 2), nil, mustData([]float32{1, 1, 3, 3}, 4)}},
	} {
		t.Run(name, func(t *testing.T) {
			checkGradients(t, resizeKernel{p: c.p, scalesAt: 2, sizesAt: 3}, c.ins, 0)
		})
	}
}

func mustData(v []float32, shape ...int) *Tensor {
	t, err := FromData(v, shape...)
	if err != nil {
		panic(err)
	}
	return t
}

func TestMovementGradients(t *testing.T) {
	rng := rand.New(rand.NewPCG(14, 15))
	x := func(shape ...int) *Tensor { return randTensor(rng, shape...) }
	for name, c := range map[string]struct {
		k    kernel
		ins  []*Tensor
		wrt  []int
		want []int
	}{
		"concat axis1":       {concatKernel{1}, []*Tensor{x(2, 2, 3, 3), x(2, 1, 3, 3), x(2, 3, 3, 3)}, []int{0, 1, 2}, []int{2, 6, 3, 3}},
		"concat axis -1":     {concatKernel{-1}, []*Tensor{x(2, 3, 2), x(2, 3, 5)}, []int{0, 1}, []int{2, 3, 7}},
		"slice steps":        {sliceKernel(nil), []*Tensor{x(2, 4, 6, 5), ints(0, 1), ints(1<<40, 5), ints(2, 3), ints(2, 2)}, []int{0}, []int{2, 4, 3, 2}},
		"slice negative":     {sliceKernel(nil), []*Tensor{x(2, 5, 4), ints(-1), ints(-100), ints(1), ints(-2)}, []int{0}, []int{2, 3, 4}},
		"slice attrs":        {sliceKernel(&sliceSpec{starts: []int64{1}, ends: []int64{-1}}), []*Tensor{x(5, 3)}, []int{0}, []int{3, 3}},
		"transpose":          {transposeKernel([]int{0, 2, 3, 1}), []*Tensor{x(2, 3, 4, 5)}, []int{0}, []int{2, 4, 5, 3}},
		"transpose reverse":  {transposeKernel(nil), []*Tensor{x(2, 3, 4)}, []int{0}, []int{4, 3, 2}},
		"reshape":            {reshapeKernel(false), []*Tensor{x(2, 6, 5), ints(0, -1, 3)}, []int{0}, []int{2, 10, 3}},
		"flatten":            {flattenKernel(2), []*Tensor{x(2, 3, 4, 5)}, []int{0}, []int{6, 20}},
		"unsqueeze":          {unsqueezeKernel([]int64{0, -1}), []*Tensor{x(3, 2)}, []int{0}, []int{1, 3, 2, 1}},
		"squeeze":            {squeezeKernel(nil), []*Tensor{x(1, 3, 1, 2)}, []int{0}, []int{3, 2}},
		"gather scalar":      {gatherKernel(0), []*Tensor{x(2, 3, 4), intTensor([]int64{1})}, []int{0}, []int{3, 4}},
		"gather vector axis": {gatherKernel(1), []*Tensor{x(2, 5, 3), ints(4, 0, 4, -1)}, []int{0}, []int{2, 4, 3}},
		"split equal":        {splitKernel{axis: 1, outputs: 2}, []*Tensor{x(2, 6, 3)}, []int{0}, []int{2, 3, 3}},
		"split sizes":        {splitKernel{axis: -1, outputs: 3}, []*Tensor{x(2, 3, 6), ints(1, 2, 3)}, []int{0}, []int{2, 3, 1}},
		"identity":           {identityKernel(), []*Tensor{x(2, 3)}, []int{0}, []int{2, 3}},
		"cast float":         {castKernel{toFloat: true}, []*Tensor{x(2, 3)}, []int{0}, []int{2, 3}},
	} {
		t.Run(name, func(t *testing.T) {
			outs, _, err := c.k.forward(c.ins)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(outs[0].Shape, c.want) {
				t.Fatalf("shape %v, want %v", outs[0].Shape, c.want)
			}
			checkGradients(t, c.k, c.ins, c.wrt...)
		})
	}
}

func TestMovementValues(t *testing.T) {
	x, _ := FromData([]float32{0, 1, 2, 3, 4, 5}, 2, 3)
	check := func(name string, k kernel, ins []*Tensor, want []float32) {
		t.Helper()
		outs, _, err := k.forward(ins)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !slices.Equal(outs[0].Data, want) {
			t.Errorf("%s: %v, want %v", name, outs[0].Data, want)
		}
	}
	check("transpose", transposeKernel([]int{1, 0}), []*Tensor{x}, []float32{0, 3, 1, 4, 2, 5})
	check("slice reverse", sliceKernel(nil), []*Tensor{x, ints(-1), ints(-1 << 40), ints(1), ints(-1)}, []float32{2, 1, 0, 5, 4, 3})
	check("gather", gatherKernel(1), []*Tensor{x, ints(2, 0)}, []float32{2, 0, 5, 3})
	check("concat", concatKernel{0}, []*Tensor{x, x}, []float32{0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5})
}

func TestKernelErrors(t *testing.T) {
	for name, c := range map[string]struct {
		k   kernel
		ins []*Tensor
	}{
		"conv groups":    {convKernel{p: convParams{group: 2, strideH: 1, strideW: 1, dilH: 1, dilW: 1}}, []*Tensor{NewTensor(1, 3, 4, 4), NewTensor(2, 3, 1, 1)}},
		"conv too small": {convKernel{p: convParams{group: 1, strideH: 1, strideW: 1, dilH: 1, dilW: 1}}, []*Tensor{NewTensor(1, 1, 2, 2), NewTensor(1, 1, 3, 3)}},
		"reshape count":  {reshapeKernel(false), []*Tensor{NewTensor(2, 3), ints(4, 2)}},
		"concat shapes":  {concatKernel{1}, []*Tensor{NewTensor(1, 2, 3), NewTensor(1, 2, 4)}},
		"split sizes":    {splitKernel{axis: 0, outputs: 2}, []*Tensor{NewTensor(5, 2), ints(2, 2)}},
		"gather range":   {gatherKernel(0), []*Tensor{NewTensor(2, 2), ints(2)}},
		"transpose perm": {transposeKernel([]int{0, 0}), []*Tensor{NewTensor(2, 2)}},
		"conv huge pads": {convKernel{p: convParams{group: 1, strideH: 1, strideW: 1, dilH: 1, dilW: 1, padT: 1 << 20, padL: 1 << 20, padB: 1 << 20, padR: 1 << 20}}, []*Tensor{NewTensor(1, 1, 2, 2), NewTensor(1, 1, 1, 1)}},
		"pool huge pads": {maxPoolKernel{poolParams{kh: 1, kw: 1, strideH: 1, strideW: 1, dilH: 1, dilW: 1, padT: 1 << 20, padL: 1 << 20, padB: 1 << 20, padR: 1 << 20}}, []*Tensor{NewTensor(1, 1, 2, 2)}},
		"resize huge":    {resizeKernel{p: resizeParams{"asymmetric", "floor"}, scalesAt: 2, sizesAt: -1}, []*Tensor{NewTensor(1, 1, 2, 2), nil, mustData([]float32{1, 1, 1e6, 1e6}, 4)}},
		"resize sizes":   {resizeKernel{p: resizeParams{"asymmetric", "floor"}, scalesAt: 2, sizesAt: 3}, []*Tensor{NewTensor(1, 1, 2, 2), nil, nil, ints(1, 1, -2, 4)}},
		"resize scales":  {resizeKernel{p: resizeParams{"asymmetric", "floor"}, scalesAt: 2, sizesAt: -1}, []*Tensor{NewTensor(1, 1, 2, 2), nil, mustData([]float32{2, 2}, 2)}},
	} {
		if _, _, err := c.k.forward(c.ins); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// TestShapeArithmetic covers the integer path exported graphs use to build
// Reshape targets: Shape → Gather → Unsqueeze → Concat, integer Mul/Div,
// Cast.
func TestShapeArithmetic(t *testing.T) {
	x := NewTensor(2, 3, 4, 5)
	run := func(k kernel, ins ...*Tensor) *Tensor {
		t.Helper()
		outs, _, err := k.forward(ins)
		if err != nil {
			t.Fatal(err)
		}
		return outs[0]
	}
	shape := run(shapeKernel{0, 1 << 62}, x)
	if !slices.Equal(shape.ints, []int64{2, 3, 4, 5}) {
		t.Fatalf("Shape = %v", shape.ints)
	}
	if tail := run(shapeKernel{-2, 1 << 62}, x); !slices.Equal(tail.ints, []int64{4, 5}) {
		t.Errorf("Shape start=-2 = %v, want [4 5]", tail.ints)
	}
	n := run(gatherKernel(0), shape, intTensor([]int64{0}))
	if len(n.Shape) != 0 || n.ints[0] != 2 {
		t.Fatalf("Gather scalar index: shape %v values %v", n.Shape, n.ints)
	}
	hw := run(binaryKernel{opMul}, run(gatherKernel(0), shape, intTensor([]int64{2})), run(gatherKernel(0), shape, intTensor([]int64{3})))
	half := run(binaryKernel{opDiv}, hw, intTensor([]int64{3}))
	target := run(concatKernel{0}, run(unsqueezeKernel([]int64{0}), n), ints(3), run(unsqueezeKernel([]int64{0}), half))
	if !slices.Equal(target.ints, []int64{2, 3, 6}) {
		t.Fatalf("target %v, want [2 3 6] (20/3 truncates)", target.ints)
	}
	if f := run(castKernel{toFloat: true}, target); !slices.Equal(f.Data, []float32{2, 3, 6}) {
		t.Errorf("Cast to float: %v", f.Data)
	}
	if _, _, err := (binaryKernel{opDiv}).forward([]*Tensor{ints(1), ints(0)}); err == nil {
		t.Error("integer division by zero accepted")
	}
	if _, _, err := (binaryKernel{opAdd}).forward([]*Tensor{ints(1), NewTensor(1)}); err == nil {
		t.Error("int + float accepted")
	}
}
