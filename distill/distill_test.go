package distill

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edgedet/edgedet/onnx"
	"github.com/edgedet/edgedet/onnx/onnxpb"
	"github.com/edgedet/edgedet/train"
)

const frameSize = 3 * 8 * 8

// perturbed is m with every Conv weight and bias moved by up to ±share of
// its magnitude (uniform noise).
func perturbed(m *onnxpb.ModelProto, share float32, seed uint64) *onnxpb.ModelProto {
	rng := rand.New(rand.NewPCG(seed, 5))
	for _, t := range m.GetGraph().GetInitializer() {
		if !strings.HasSuffix(t.GetName(), ".w") && !strings.HasSuffix(t.GetName(), ".b") {
			continue
		}
		v, _ := onnx.TensorFloats(t)
		for i := range v {
			v[i] += share * (rng.Float32()*2 - 1) * float32(math.Abs(float64(v[i])))
		}
		onnx.SetTensorFloats(t, v)
	}
	return m
}

// maxOutputGap is the largest |teacher − student| over both graph outputs
// on frames, and the largest |teacher output|.
func maxOutputGap(t *testing.T, teacher, student *onnxpb.ModelProto, f *frames) (gap, peak float64) {
	t.Helper()
	tg, err := train.Build(teacher, train.Options{})
	if err != nil {
		t.Fatal(err)
	}
	sg, err := train.Build(student, train.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range f.Len() {
		x, _ := train.FromData(f.data[i], 1, 3, 8, 8)
		a, err := tg.Forward(map[string]*train.Tensor{"x": x})
		if err != nil {
			t.Fatal(err)
		}
		b, err := sg.Forward(map[string]*train.Tensor{"x": x})
		if err != nil {
			t.Fatal(err)
		}
		for name, ta := range a {
			for j, v := range ta.Data {
				gap = max(gap, math.Abs(float64(v-b[name].Data[j])))
				peak = max(peak, math.Abs(float64(v)))
			}
		}
	}
	return gap, peak
}

// TestStudentLearnsTeacher: a student whose weights are the teacher's
// moved by up to 30 % is trained end to end (no regions differ) until its
// head loss is ~0 and its outputs match the teacher's on fresh frames.
func TestStudentLearnsTeacher(t *testing.T) {
	teacher := tinyDetector(1, 2)
	student := perturbed(tinyDetector(1, 2), 0.3, 9)
	fresh := randomFrames(77, 8, frameSize)
	before, peak := maxOutputGap(t, teacher, student, fresh)
	out, rep, err := Distill(context.Background(), teacher, student, randomFrames(1, 32, frameSize),
		Options{Steps: 400, Batch: 8, LR: 0.01, NoAugment: true})
	if err != nil {
		t.Fatal(err)
	}
	after, _ := maxOutputGap(t, teacher, out, fresh)
	ph := rep.Phases[0]
	t.Logf("loss %.3g → %.3g in %d steps; max output gap %.3g → %.3g (outputs reach %.3g)", ph.FirstLoss, ph.LastLoss, ph.Steps, before, after, peak)
	if len(rep.Phases) != 1 || ph.Name != PhaseEndToEnd || ph.Steps != 400 {
		t.Fatalf("phases %+v, want one end-to-end phase of 400 steps", rep.Phases)
	}
	if ph.LastLoss > 1e-3*ph.FirstLoss || ph.LastLoss > 1e-4 {
		t.Errorf("loss %g → %g: not ~0", ph.FirstLoss, ph.LastLoss)
	}
	if after > 0.01*peak || after > before/10 {
		t.Errorf("outputs differ by %g after training (%g before, outputs reach %g)", after, before, peak)
	}
}

// TestCopyOfTeacherUnchanged: distilling an unpruned copy of the teacher
// has nothing to do block-wise, its loss is 0 and no weight moves.
func TestCopyOfTeacherUnchanged(t *testing.T) {
	teacher := tinyDetector(1, 2)
	out, rep, err := Distill(context.Background(), teacher, tinyDetector(1, 2), randomFrames(1, 8, frameSize),
		Options{Steps: 10, Batch: 2, LR: 0.01})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Regions) != 0 || len(rep.Phases) != 1 || rep.Phases[0].Name != PhaseEndToEnd {
		t.Fatalf("regions %+v phases %+v, want no region and only the end-to-end phase", rep.Regions, rep.Phases)
	}
	if rep.FinalLoss > 1e-12 || rep.Phases[0].FirstLoss > 1e-12 {
		t.Errorf("loss %g → %g, want 0", rep.Phases[0].FirstLoss, rep.FinalLoss)
	}
	want := map[string][]float32{}
	for _, init := range teacher.GetGraph().GetInitializer() {
		want[init.GetName()], _ = onnx.TensorFloats(init)
	}
	for _, init := range out.GetGraph().GetInitializer() {
		got, _ := onnx.TensorFloats(init)
		for i, v := range got {
			if math.Abs(float64(v-want[init.GetName()][i])) > 1e-7 {
				t.Fatalf("%s[%d] moved from %g to %g", init.GetName(), i, want[init.GetName()][i], v)
			}
		}
	}
}

// TestPrunedStudentRecovers: with c1 and c3 pruned, the block-wise phase
// gets 30 % of the steps and lowers the regions' loss, the end-to-end
// phase the rest and lowers the head loss, and the outputs move towards
// the teacher's.
func TestPrunedStudentRecovers(t *testing.T) {
	teacher := tinyDetector(1, 2)
	student := tinyDetector(1, 2)
	pruneOutputs(student, "c1", "a1", 0, 3)
	pruneOutputs(student, "c3", "a3", 5)
	fresh := randomFrames(77, 8, frameSize)
	before, _ := maxOutputGap(t, teacher, student, fresh)
	out, rep, err := Distill(context.Background(), teacher, student, randomFrames(1, 16, frameSize),
		Options{Steps: 100, Batch: 4, LR: 0.01})
	if err != nil {
		t.Fatal(err)
	}
	after, _ := maxOutputGap(t, teacher, out, fresh)
	for _, ph := range rep.Phases {
		t.Logf("%s: %d steps, loss %.3g → %.3g", ph.Name, ph.Steps, ph.FirstLoss, ph.LastLoss)
	}
	t.Logf("output gap %.3g → %.3g", before, after)
	if len(rep.Regions) != 2 || len(rep.Phases) != 2 {
		t.Fatalf("regions %+v phases %+v, want 2 and 2", rep.Regions, rep.Phases)
	}
	for i, want := range []struct {
		name  string
		steps int
	}{{PhaseBlockwise, 30}, {PhaseEndToEnd, 70}} {
		ph := rep.Phases[i]
		if ph.Name != want.name || ph.Steps != want.steps {
			t.Errorf("phase %d is %s with %d steps, want %s with %d", i, ph.Name, ph.Steps, want.name, want.steps)
		}
		if n := min(maxLossWindow, want.steps/5); len(ph.Losses) != ph.Steps || ph.FirstLoss != mean(ph.Losses[:n]) || ph.LastLoss != mean(ph.Losses[ph.Steps-n:]) {
			t.Errorf("%s: first and last losses %g, %g are not the means of the first and last %d of %v", ph.Name, ph.FirstLoss, ph.LastLoss, n, ph.Losses)
		}
		if ph.LastLoss >= ph.FirstLoss/2 {
			t.Errorf("%s loss %g → %g: did not halve", ph.Name, ph.FirstLoss, ph.LastLoss)
		}
	}
	if rep.Steps != 100 || rep.Images != 400 || rep.FinalLoss != rep.Phases[1].LastLoss {
		t.Errorf("report steps %d images %d final loss %g", rep.Steps, rep.Images, rep.FinalLoss)
	}
	if after >= before/2 {
		t.Errorf("output gap %g → %g: did not halve", before, after)
	}
}

func TestDistillRejectsBadInput(t *testing.T) {
	data := randomFrames(1, 4, frameSize)
	for _, tc := range []struct {
		name    string
		student *onnxpb.ModelProto
		data    onnx.Inputs
		opt     Options
		want    string
	}{
		{"incompatible outputs", tinyDetector(1, 3), data, Options{Steps: 1}, `student output "obj" is [1 3 8 8], teacher's is [1 2 8 8]`},
		{"empty data", tinyDetector(1, 2), &frames{}, Options{Steps: 1}, "no frames"},
		{"no data", tinyDetector(1, 2), nil, Options{Steps: 1}, "no frames"},
		{"no budget", tinyDetector(1, 2), data, Options{}, "no budget"},
		{"negative budget", tinyDetector(1, 2), data, Options{Steps: -1}, "negative budget"},
		{"wrong frame size", tinyDetector(1, 2), randomFrames(1, 2, 10), Options{Steps: 1}, "frame"},
		{"unknown head loss", tinyDetector(1, 2), data, Options{Steps: 1, HeadLoss: "l1"}, `unknown head loss "l1"`},
		{"mosaic share above 1", tinyDetector(1, 2), data, Options{Steps: 1, Mosaic: 1.5}, "mosaic share 1.5 outside [0, 1]"},
		{"negative mosaic share", tinyDetector(1, 2), data, Options{Steps: 1, Mosaic: -0.1}, "mosaic share -0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, _, err := Distill(context.Background(), tinyDetector(1, 2), tc.student, tc.data, tc.opt)
			if err == nil || !strings.Contains(err.Error(), tc.want) || m != nil {
				t.Errorf("model %v, error %v; want no model and an error containing %q", m != nil, err, tc.want)
			}
		})
	}
}

// TestCancelledReturnsNoModel: cancelling during training returns an error
// wrapping context.Canceled and no model.
func TestCancelledReturnsNoModel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	steps := 0
	m, rep, err := Distill(ctx, tinyDetector(1, 2), tinyDetector(2, 2), randomFrames(1, 4, frameSize), Options{Steps: 50, Batch: 1,
		Progress: func(Progress) {
			if steps++; steps == 3 {
				cancel()
			}
		}})
	if !errors.Is(err, context.Canceled) || m != nil || rep != nil {
		t.Errorf("model %v report %v error %v; want none and context.Canceled", m != nil, rep, err)
	}
	if steps != 3 {
		t.Errorf("%d steps ran, want 3 (it stops at the next step)", steps)
	}
}

// fakeClock advances by tick on every reading.
type fakeClock struct {
	now  time.Time
	tick time.Duration
}

func (c *fakeClock) Now() time.Time {
	c.now = c.now.Add(c.tick)
	return c.now
}

// TestBudgets: a step budget runs exactly that many steps, reported in
// order; a time budget on the injected clock stops once it is spent, gives
// the block-wise phase its 30 %, and does not count the time spent in
// checkpoints.
func TestBudgets(t *testing.T) {
	pruned := func() *onnxpb.ModelProto {
		m := tinyDetector(1, 2)
		pruneOutputs(m, "c1", "a1", 0)
		return m
	}
	data := randomFrames(1, 4, frameSize)
	var seen []Progress
	_, rep, err := Distill(context.Background(), tinyDetector(1, 2), pruned(), data, Options{Steps: 7, Batch: 1,
		Progress: func(p Progress) { seen = append(seen, p) }})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Steps != 7 || len(seen) != 7 {
		t.Fatalf("%d steps, %d progress calls; want 7", rep.Steps, len(seen))
	}
	for i, p := range seen {
		phase := PhaseEndToEnd
		if i < 2 { // round(0.3·7)
			phase = PhaseBlockwise
		}
		if p.Step != i+1 || p.Steps != 7 || p.Phase != phase {
			t.Errorf("progress %d: %+v, want step %d of 7 in %s", i, p, i+1, phase)
		}
	}

	run := func(every int, pause time.Duration) *Report {
		clock := &fakeClock{now: time.Unix(0, 0), tick: time.Second}
		var ckpts []Checkpoint
		_, rep, err := Distill(context.Background(), tinyDetector(1, 2), pruned(), data, Options{Duration: 100 * time.Second, Batch: 1, Now: clock.Now,
			CheckpointSteps: every, Checkpoint: func(c Checkpoint) error {
				ckpts = append(ckpts, c)
				clock.now = clock.now.Add(pause)
				if c.Model == nil || c.Step%every != 0 {
					t.Errorf("checkpoint %+v", c)
				}
				return nil
			}})
		if err != nil {
			t.Fatal(err)
		}
		if every > 0 && len(ckpts) != rep.Steps/every {
			t.Errorf("%d checkpoints in %d steps, want one every %d", len(ckpts), rep.Steps, every)
		}
		return rep
	}
	plain := run(0, 0)
	if plain.Elapsed < 100*time.Second || plain.Elapsed > 105*time.Second {
		t.Errorf("training took %v of a 100s budget", plain.Elapsed)
	}
	if b := plain.Phases[0]; b.Name != PhaseBlockwise || b.Elapsed < 28*time.Second || b.Elapsed > 33*time.Second {
		t.Errorf("block-wise phase %+v, want about 30s", b)
	}
	paused := run(5, time.Hour)
	if paused.Steps != plain.Steps || paused.Elapsed != plain.Elapsed {
		t.Errorf("with hour-long checkpoints: %d steps in %v, without: %d in %v", paused.Steps, paused.Elapsed, plain.Steps, plain.Elapsed)
	}
}

// TestMetadataAndDeterminism: the model records the teacher's hash, the
// data, the steps, the final loss and the duration; the same seed gives
// the same weights, another seed other ones.
func TestMetadataAndDeterminism(t *testing.T) {
	student := tinyDetector(1, 2)
	pruneOutputs(student, "c3", "a3", 1)
	data := randomFrames(1, 6, frameSize)
	distill := func(seed uint64) (*onnxpb.ModelProto, *Report) {
		clock := &fakeClock{now: time.Unix(0, 0), tick: time.Second}
		m, rep, err := Distill(context.Background(), tinyDetector(1, 2), student, data, Options{Steps: 6, Batch: 2, Seed: seed,
			Now: clock.Now, TeacherSHA256: "abc123", DataDescription: "frames/"})
		if err != nil {
			t.Fatal(err)
		}
		return m, rep
	}
	a, rep := distill(1)
	meta := onnx.Metadata(a)
	for k, v := range map[string]string{MetaTeacherSHA256: "abc123", MetaData: "frames/", MetaSteps: "6",
		MetaDuration: rep.Elapsed.String(), MetaFinalLoss: strconvG(rep.FinalLoss)} {
		if meta[k] != v {
			t.Errorf("metadata %s = %q, want %q", k, meta[k], v)
		}
	}
	b, _ := distill(1)
	c, _ := distill(2)
	if !sameWeights(a, b) {
		t.Error("the same seed gave different weights")
	}
	if sameWeights(a, c) {
		t.Error("another seed gave the same weights")
	}
}

func strconvG(v float64) string { return strconv.FormatFloat(v, 'g', 6, 64) }

func sameWeights(a, b *onnxpb.ModelProto) bool {
	for i, t := range a.GetGraph().GetInitializer() {
		va, _ := onnx.TensorFloats(t)
		vb, _ := onnx.TensorFloats(b.GetGraph().GetInitializer()[i])
		if !slices.Equal(va, vb) {
			return false
		}
	}
	return true
}

// TestFeatureWeight: with FeatureWeight the end-to-end loss also matches
// the regions' outputs, which together weigh FeatureWeight next to the
// heads' 1; without it only the heads (here by their squared error,
// HeadLossMSE, each divided by the teacher's variance).
func TestFeatureWeight(t *testing.T) {
	student := tinyDetector(1, 2)
	pruneOutputs(student, "c1", "a1", 0)
	for _, fw := range []float64{0, 0.5} {
		tr, err := newTrainer(tinyDetector(1, 2), student, randomFrames(1, 2, frameSize), Options{Batch: 2, FeatureWeight: fw, HeadLoss: HeadLossMSE}.withDefaults())
		if err != nil {
			t.Fatal(err)
		}
		x, err := tr.batch(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		_, weights, err := tr.endToEndStep(x, nil)
		if err != nil {
			t.Fatal(err)
		}
		tv, err := tr.teacher.Forward(map[string]*train.Tensor{"x": x}, "h1", "h2", "c2")
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]float64{"h1": 0.5 / variance(tv["h1"].Data), "h2": 0.5 / variance(tv["h2"].Data)}
		if fw > 0 {
			want["c2"] = fw / variance(tv["c2"].Data)
		}
		if len(weights) != len(want) {
			t.Fatalf("FeatureWeight %g: weights %v, want %v", fw, weights, want)
		}
		for k, w := range want {
			if math.Abs(weights[k]-w) > 1e-9*w {
				t.Errorf("FeatureWeight %g: weight of %s %g, want %g", fw, k, weights[k], w)
			}
		}
	}
}

// TestEndToEndLRShare: the end-to-end phase steps at LR·EndToEndLRShare:
// with a share of 1e-6 the weights barely move, with 1 they do.
func TestEndToEndLRShare(t *testing.T) {
	teacher := tinyDetector(1, 2)
	start := perturbed(tinyDetector(1, 2), 0.3, 9)
	moved := func(share float64) float64 {
		out, _, err := Distill(context.Background(), teacher, start, randomFrames(1, 8, frameSize),
			Options{Steps: 5, Batch: 2, LR: 0.01, EndToEndLRShare: share})
		if err != nil {
			t.Fatal(err)
		}
		var d float64
		for i, init := range out.GetGraph().GetInitializer() {
			a, _ := onnx.TensorFloats(init)
			b, _ := onnx.TensorFloats(start.GetGraph().GetInitializer()[i])
			for j := range a {
				d = max(d, math.Abs(float64(a[j]-b[j])))
			}
		}
		return d
	}
	small, full := moved(1e-6), moved(1)
	if small > 1e-5*full || full == 0 {
		t.Errorf("largest weight change %g with share 1e-6, %g with share 1", small, full)
	}
}

// constantFrames are frames whose every value is the frame's index + 1.
type constantFrames struct{ n int }

func (f constantFrames) Len() int { return f.n }

func (f constantFrames) Input(_ context.Context, i int, dst []float32) error {
	for j := range dst {
		dst[j] = float32(i + 1)
	}
	return nil
}

// TestMosaicTakesFourFrames: a mosaic is built from the next four frames
// of the epoch's order, one per quadrant, every pixel from one of them;
// the following mosaic continues the order.
func TestMosaicTakesFourFrames(t *testing.T) {
	const c, h, w = 3, 16, 16
	tr := &trainer{data: constantFrames{n: 8}, rng: rand.New(rand.NewPCG(4, 4))}
	img, tmp := make([]float32, c*h*w), make([]float32, c*h*w)
	seen := map[float32]bool{}
	for range 2 {
		if err := tr.mosaic(context.Background(), img, tmp, c, h, w); err != nil {
			t.Fatal(err)
		}
		values := map[float32]int{} // bilinear weights sum to 1 within float32 rounding
		for _, v := range img {
			r := float32(math.Round(float64(v)))
			if math.Abs(float64(v-r)) > 1e-5 {
				t.Fatalf("value %g is not a frame's constant", v)
			}
			values[r]++
		}
		if len(values) != 4 {
			t.Fatalf("mosaic has values %v, want four frames' constants", values)
		}
		for v := range values {
			if v < 1 || v > 8 || seen[v] {
				t.Fatalf("value %g: not a frame or a frame used twice in one epoch (seen %v)", v, seen)
			}
			seen[v] = true
		}
	}
	if tr.next != 8 {
		t.Errorf("two mosaics read %d frames of the order, want 8", tr.next)
	}
}

// TestBatchMosaicShare: with Mosaic 1 every image of a batch is a mosaic
// (four frames read each), with 0 none is (one frame each).
func TestBatchMosaicShare(t *testing.T) {
	for _, tc := range []struct {
		mosaic    float64
		wantReads int
	}{{0, 2}, {1, 8}} {
		tr := &trainer{data: constantFrames{n: 16}, rng: rand.New(rand.NewPCG(5, 5)), plan: &plan{inShape: []int64{1, 3, 16, 16}},
			opt: Options{Batch: 2, Mosaic: tc.mosaic}.withDefaults()}
		if _, err := tr.batch(context.Background()); err != nil {
			t.Fatal(err)
		}
		if tr.next != tc.wantReads {
			t.Errorf("mosaic %g: a batch of 2 read %d frames, want %d", tc.mosaic, tr.next, tc.wantReads)
		}
	}
}
