// Command lutbench measures the LUT activation rewrite on a YOLOX model: it
// times the FP32 model, each INT8 model as it is, and each INT8 model
// rewritten (before ONNX Runtime's optimisation, and after it), interleaved
// over several rounds in one process, one session at a time; and it checks
// that the rewritten models find the same objects on an image.
//
//	go run ./detector/lut/lutbench -fp32 m.onnx -int8 default=q.onnx -image dog.jpg
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	ort "github.com/yalue/onnxruntime_go"
	"gocv.io/x/gocv"
	"google.golang.org/protobuf/proto"

	"github.com/edgedet/edgedet/detector"
	"github.com/edgedet/edgedet/detector/lut"
	"github.com/edgedet/edgedet/quant"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

type namedPaths []string

func (n *namedPaths) String() string     { return strings.Join(*n, ",") }
func (n *namedPaths) Set(v string) error { *n = append(*n, v); return nil }

type config struct {
	fp32, image, lib, workDir, profileDir string
	int8                                  namedPaths
	rounds, iters                         int
	threads                               []int
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("lutbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c config
	var threads string
	fs.StringVar(&c.fp32, "fp32", "", "FP32 model")
	fs.Var(&c.int8, "int8", "name=path of an INT8 QDQ model (repeatable)")
	fs.StringVar(&c.image, "image", "", "image to compare detections on")
	fs.StringVar(&c.lib, "ort-lib", os.Getenv("EDGEDET_ORT_LIB"), "ONNX Runtime library")
	fs.StringVar(&c.workDir, "work", os.TempDir(), "where optimised and rewritten models are written")
	fs.StringVar(&c.profileDir, "profile", "", "write one ORT profile per variant (1 thread) here and exit")
	fs.IntVar(&c.rounds, "rounds", 5, "interleaved rounds")
	fs.IntVar(&c.iters, "iters", 40, "timed runs per variant per round (after 5 warm-up runs)")
	fs.StringVar(&threads, "threads", "1,2", "intra-op thread counts")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	for _, s := range strings.Split(threads, ",") {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			fmt.Fprintf(stderr, "-threads: %q is not a positive integer\n", s)
			return 2
		}
		c.threads = append(c.threads, n)
	}
	if err := bench(c, stdout); err != nil {
		fmt.Fprintln(stderr, "lutbench:", err)
		return 1
	}
	return 0
}

// variant is one model as ORT will load it.
type variant struct {
	name     string
	data     []byte
	register bool
	level    ort.GraphOptimizationLevel
	rewrites int
}

func bench(c config, out io.Writer) error {
	if c.lib == "" {
		return errors.New("no ONNX Runtime library: -ort-lib or EDGEDET_ORT_LIB")
	}
	if err := detector.InitRuntime(c.lib); err != nil {
		return err
	}
	defer detector.DestroyRuntime()
	fmt.Fprintf(out, "onnx runtime %s; lut kernel path %s\n", ort.GetVersion(), lut.BestPath())
	vs, err := variants(c)
	if err != nil {
		return err
	}
	input, err := prepare(c.image)
	if err != nil {
		return err
	}
	if c.profileDir != "" {
		return profiles(c, vs, input, out)
	}
	if c.image != "" {
		if err := compare(c, vs, input, out); err != nil {
			return err
		}
	}
	return timeAll(c, vs, input, out)
}

func variants(c config) ([]variant, error) {
	var vs []variant
	if c.fp32 != "" {
		b, err := os.ReadFile(c.fp32)
		if err != nil {
			return nil, err
		}
		vs = append(vs, variant{name: "fp32", data: b, level: ort.GraphOptimizationLevelEnableAll})
	}
	for _, np := range c.int8 {
		name, path, ok := strings.Cut(np, "=")
		if !ok {
			return nil, fmt.Errorf("-int8 %q: want name=path", np)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		vs = append(vs, variant{name: name, data: b, level: ort.GraphOptimizationLevelEnableAll})
		pre, err := rewriteBytes(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		pre.name = name + "+lut"
		if err := optimise(c.lib, pre.data, filepath.Join(c.workDir, "lutbench-"+name+"-pre-optimised.onnx"), true, pre.level); err != nil {
			return nil, fmt.Errorf("optimise rewritten %s: %w", path, err)
		}
		vs = append(vs, pre)
		post, err := rewriteOptimised(c, name, b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		vs = append(vs, post)
	}
	return vs, nil
}

func rewriteBytes(b []byte) (variant, error) {
	m, err := quant.DecodeModel(b)
	if err != nil {
		return variant{}, err
	}
	n, err := lut.Rewrite(m)
	if err != nil {
		return variant{}, err
	}
	rb, err := proto.Marshal(m)
	if err != nil {
		return variant{}, err
	}
	return variant{data: rb, register: true, level: ort.GraphOptimizationLevelEnableAll, rewrites: n}, nil
}

// rewriteOptimised lets ORT optimise the model (level all: QDQ fusion and
// the NHWC layout), rewrites the optimised graph and loads that with the
// optimisation level extended, which does not redo the layout.
func rewriteOptimised(c config, name string, b []byte) (variant, error) {
	optPath := filepath.Join(c.workDir, "lutbench-"+name+"-optimised.onnx")
	if err := optimise(c.lib, b, optPath, false, ort.GraphOptimizationLevelEnableAll); err != nil {
		return variant{}, err
	}
	ob, err := os.ReadFile(optPath)
	if err != nil {
		return variant{}, err
	}
	v, err := rewriteBytes(ob)
	if err != nil {
		return variant{}, err
	}
	v.name = name + "+lut-post"
	v.level = ort.GraphOptimizationLevelEnableExtended
	// Keep what ORT makes of the rewritten graph, to inspect.
	if err := optimise(c.lib, v.data, filepath.Join(c.workDir, "lutbench-"+name+"-post-reoptimised.onnx"), true, v.level); err != nil {
		return variant{}, fmt.Errorf("re-optimise rewritten: %w", err)
	}
	return v, nil
}

func optimise(lib string, b []byte, path string, register bool, level ort.GraphOptimizationLevel) error {
	opts, err := ort.NewSessionOptions()
	if err != nil {
		return err
	}
	defer opts.Destroy()
	if register {
		if err := lut.Register(opts, lib); err != nil {
			return err
		}
	}
	if err := opts.SetGraphOptimizationLevel(level); err != nil {
		return err
	}
	if err := opts.SetOptimizedModelFilePath(path); err != nil {
		return err
	}
	s, err := ort.NewDynamicAdvancedSessionWithONNXData(b, []string{"images"}, []string{"output"}, opts)
	if err != nil {
		return fmt.Errorf("optimise to %s: %w", path, err)
	}
	return s.Destroy()
}

const side = 416

var outShape = []int64{1, 3549, 85}

// prepare is the model input for image (zeros without one).
func prepare(image string) ([]float32, error) {
	buf := make([]float32, 3*side*side)
	if image == "" {
		return buf, nil
	}
	spec := detector.Spec{Format: detector.FormatYOLOX, InputWidth: side, InputHeight: side}.WithDefaults()
	p, err := detector.NewPreprocessor(spec)
	if err != nil {
		return nil, err
	}
	defer p.Close()
	img := gocv.IMRead(image, gocv.IMReadColor)
	defer img.Close()
	if img.Empty() {
		return nil, fmt.Errorf("read image %s", image)
	}
	if _, err := p.Run(img, buf); err != nil {
		return nil, err
	}
	return buf, nil
}

// session is one loaded variant with its tensors.
type session struct {
	s       *ort.AdvancedSession
	in, out *ort.Tensor[float32]
}

func (s *session) close() {
	if s.s != nil {
		s.s.Destroy()
	}
	if s.in != nil {
		s.in.Destroy()
	}
	if s.out != nil {
		s.out.Destroy()
	}
}

func open(lib string, v variant, input []float32, threads int, profile string) (*session, error) {
	opts, err := ort.NewSessionOptions()
	if err != nil {
		return nil, err
	}
	defer opts.Destroy()
	if err := opts.SetIntraOpNumThreads(threads); err != nil {
		return nil, err
	}
	if err := opts.SetGraphOptimizationLevel(v.level); err != nil {
		return nil, err
	}
	if profile != "" {
		if err := opts.EnableProfiling(profile); err != nil {
			return nil, err
		}
	}
	if v.register {
		if err := lut.Register(opts, lib); err != nil {
			return nil, err
		}
	}
	s := &session{}
	if s.in, err = ort.NewTensor(ort.NewShape(1, 3, side, side), input); err != nil {
		return nil, err
	}
	if s.out, err = ort.NewEmptyTensor[float32](ort.NewShape(outShape...)); err != nil {
		s.close()
		return nil, err
	}
	s.s, err = ort.NewAdvancedSessionWithONNXData(v.data, []string{"images"}, []string{"output"},
		[]ort.Value{s.in}, []ort.Value{s.out}, opts)
	if err != nil {
		s.close()
		return nil, fmt.Errorf("%s: %w", v.name, err)
	}
	return s, nil
}

func compare(c config, vs []variant, input []float32, out io.Writer) error {
	dec, err := detector.NewDecoder(detector.FormatYOLOX, outShape, side, side)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "detections on %s (score >= 0.3, NMS 0.45; boxes in input pixels):\n", c.image)
	for _, v := range vs {
		s, err := open(c.lib, v, input, 1, "")
		if err != nil {
			return err
		}
		err = s.s.Run()
		dets := dec.Decode(s.out.GetData(), 0.3, nil)
		s.close()
		if err != nil {
			return fmt.Errorf("%s: %w", v.name, err)
		}
		dets = detector.NMS(dets, detector.NMSOptions{IoU: 0.45})
		var parts []string
		for _, d := range dets {
			parts = append(parts, fmt.Sprintf("c%d %.3f [%.0f %.0f %.0f %.0f]", d.ClassID, d.Score, d.Box.X1, d.Box.Y1, d.Box.X2, d.Box.Y2))
		}
		fmt.Fprintf(out, "  %-20s rewrites=%-3d %s\n", v.name, v.rewrites, strings.Join(parts, "; "))
	}
	return nil
}

func profiles(c config, vs []variant, input []float32, out io.Writer) error {
	if err := os.MkdirAll(c.profileDir, 0o755); err != nil {
		return err
	}
	for _, v := range vs {
		s, err := open(c.lib, v, input, 1, filepath.Join(c.profileDir, v.name))
		if err != nil {
			return err
		}
		for range 20 {
			if err := s.s.Run(); err != nil {
				s.close()
				return err
			}
		}
		s.close() // the profile is written when the session ends
		fmt.Fprintf(out, "profile %s written under %s\n", v.name, c.profileDir)
	}
	return nil
}

// timeAll times every variant at every thread count, one session at a
// time, in rotating order, for c.rounds rounds, and prints per-round p50s
// and the median over rounds of each variant's ratio to the first variant.
func timeAll(c config, vs []variant, input []float32, out io.Writer) error {
	for _, th := range c.threads {
		p50 := make([][]time.Duration, len(vs)) // [variant][round]
		for r := range c.rounds {
			for k := range vs {
				i := (k + r) % len(vs)
				d, err := timeOne(c, vs[i], input, th)
				if err != nil {
					return err
				}
				p50[i] = append(p50[i], d)
			}
		}
		fmt.Fprintf(out, "\n%d thread(s), %d rounds x %d runs; p50 ms per round; ratio to %s: median [min..max] over rounds\n",
			th, c.rounds, c.iters, vs[0].name)
		for i, v := range vs {
			ratios := make([]float64, c.rounds)
			ms := make([]string, c.rounds)
			for r := range c.rounds {
				ratios[r] = float64(p50[i][r]) / float64(p50[0][r])
				ms[r] = fmt.Sprintf("%.2f", float64(p50[i][r])/1e6)
			}
			slices.Sort(ratios)
			fmt.Fprintf(out, "  %-20s %-40s ratio %.2f [%.2f..%.2f]\n", v.name, strings.Join(ms, " "),
				ratios[len(ratios)/2], ratios[0], ratios[len(ratios)-1])
		}
	}
	return nil
}

func timeOne(c config, v variant, input []float32, threads int) (time.Duration, error) {
	s, err := open(c.lib, v, input, threads, "")
	if err != nil {
		return 0, err
	}
	defer s.close()
	for range 5 {
		if err := s.s.Run(); err != nil {
			return 0, err
		}
	}
	d := make([]time.Duration, c.iters)
	for i := range d {
		t0 := time.Now()
		if err := s.s.Run(); err != nil {
			return 0, err
		}
		d[i] = time.Since(t0)
	}
	slices.Sort(d)
	return d[len(d)/2], nil
}
