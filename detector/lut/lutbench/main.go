// Command lutbench measures the LUT activation rewrite on a YOLOX model: it
// times the FP32 model, each INT8 model as it is, and each INT8 model
// rewritten (before ONNX Runtime's optimisation, and after it), interleaved
// over several rounds in one process, one session at a time; and it checks
// that the rewritten models find the same objects on an image.
//
//	go run ./detector/lut/lutbench -fp32 m.onnx -int8 default=q.onnx -image dog.jpg
package main

import (
	"cmp"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	ort "github.com/yalue/onnxruntime_go"
	"gocv.io/x/gocv"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"

	"github.com/edgedet/edgedet/detection"
	"github.com/edgedet/edgedet/detector"
	"github.com/edgedet/edgedet/detector/lut"
	"github.com/edgedet/edgedet/onnx"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

type namedPaths []string

func (n *namedPaths) String() string     { return strings.Join(*n, ",") }
func (n *namedPaths) Set(v string) error { *n = append(*n, v); return nil }

type config struct {
	fp32, image, lib, workDir, profileDir string
	lutPath                               string
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
	fs.StringVar(&c.lutPath, "lut-path", "auto", "lookup kernel the custom operator uses: auto, scalar, avx2, avx512vbmi, neon")
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
	path := lut.BestPath()
	if c.lutPath != "auto" {
		i := slices.IndexFunc(lut.Paths, func(p lut.Path) bool { return p.String() == c.lutPath })
		if i < 0 {
			return fmt.Errorf("-lut-path %q: unknown", c.lutPath)
		}
		path = lut.Paths[i]
		if err := lut.SetOperatorPath(path); err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "onnx runtime %s; lut kernel path %s\n", ort.GetVersion(), path)
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
	m, err := onnx.DecodeModel(b)
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

// rewriteOptimised is lut.OptimizeAndRewrite; it also keeps ORT's
// optimised graph of the rewritten model in the work directory, to inspect.
func rewriteOptimised(c config, name string, b []byte) (variant, error) {
	ob, n, err := lut.OptimizeAndRewrite(b, c.workDir, nil)
	if err != nil {
		return variant{}, err
	}
	v := variant{name: name + "+lut-post", data: ob, register: true, level: ort.GraphOptimizationLevelEnableExtended, rewrites: n}
	if n == 0 {
		v.data, v.register, v.level = b, false, ort.GraphOptimizationLevelEnableAll
	}
	if err := optimise(c.lib, v.data, filepath.Join(c.workDir, "lutbench-"+name+"-post-reoptimised.onnx"), v.register, v.level); err != nil {
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
	spec := detection.Spec{Format: detection.FormatYOLOX, InputWidth: side, InputHeight: side}.WithDefaults()
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
	dec, err := detection.NewDecoder(detection.FormatYOLOX, outShape, side, side)
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
		dets = detection.NMS(dets, detection.NMSOptions{IoU: 0.45})
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
		s.close() // ORT writes <prefix>_<date>.json when the session ends
		files, err := filepath.Glob(filepath.Join(c.profileDir, v.name) + "_*.json")
		if err != nil || len(files) == 0 {
			return fmt.Errorf("%s: no profile written under %s", v.name, c.profileDir)
		}
		slices.Sort(files)
		if err := summarise(out, v.name, files[len(files)-1]); err != nil {
			return err
		}
	}
	return nil
}

// summarise prints, from an ORT profile (JSON trace events; node events end
// in _kernel_time), the 8 costliest operator types, each the sum over its
// nodes of the node's median time over the runs: medians, because on a
// shared machine a preempted node shows up as a huge outlier in the mean.
func summarise(out io.Writer, name, file string) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	var events []struct {
		Cat  string  `json:"cat"`
		Name string  `json:"name"`
		Dur  float64 `json:"dur"` // µs
		Args struct {
			OpName string `json:"op_name"`
		} `json:"args"`
	}
	if err := json.Unmarshal(b, &events); err != nil {
		return fmt.Errorf("profile %s: %w", file, err)
	}
	perNode := map[string][]float64{}
	opOf := map[string]string{}
	for _, e := range events {
		if e.Cat == "Node" && strings.HasSuffix(e.Name, "_kernel_time") {
			perNode[e.Name] = append(perNode[e.Name], e.Dur)
			opOf[e.Name] = e.Args.OpName
		}
	}
	if len(perNode) == 0 {
		return fmt.Errorf("profile %s: no node events", file)
	}
	perOp := map[string]float64{}
	total := 0.0
	for node, d := range perNode {
		slices.Sort(d)
		perOp[opOf[node]] += d[len(d)/2]
		total += d[len(d)/2]
	}
	ops := slices.SortedFunc(maps.Keys(perOp), func(a, b string) int { return cmp.Compare(perOp[b], perOp[a]) })
	var parts []string
	for _, op := range ops[:min(8, len(ops))] {
		parts = append(parts, fmt.Sprintf("%s %.2f", op, perOp[op]/1000))
	}
	fmt.Fprintf(out, "%-18s kernels %.2f ms: %s  (%s)\n", name, total/1000, strings.Join(parts, ", "), file)
	return nil
}

// sample is one variant's figures in one round: median wall time, the
// fastest run, and the median CPU time of a run (the calling thread's at 1
// intra-op thread, the process's otherwise), which other processes on a
// busy machine inflate much less than wall time.
type sample struct{ p50, min, cpu time.Duration }

// timeAll times every variant at every thread count, one session at a
// time, in rotating order, for c.rounds rounds, and prints per-round p50s
// and the median over rounds of each variant's ratio to the first variant.
func timeAll(c config, vs []variant, input []float32, out io.Writer) error {
	runtime.LockOSThread() // so the thread's CPU time is the inference's at 1 thread
	defer runtime.UnlockOSThread()
	for _, th := range c.threads {
		res := make([][]sample, len(vs)) // [variant][round]
		for r := range c.rounds {
			for k := range vs {
				i := (k + r) % len(vs)
				s, err := timeOne(c, vs[i], input, th)
				if err != nil {
					return err
				}
				res[i] = append(res[i], s)
			}
		}
		fmt.Fprintf(out, "\n%d thread(s), %d rounds x %d runs; ratio to %s: median [min..max] over rounds\n", th, c.rounds, c.iters, vs[0].name)
		fmt.Fprintf(out, "  %-18s %-34s %-34s %s\n", "variant", "p50 wall ms (median over rounds)", "fastest run ms", "p50 cpu ms")
		for i, v := range vs {
			col := func(get func(sample) time.Duration) string {
				ms := make([]float64, c.rounds)
				ratios := make([]float64, c.rounds)
				for r := range c.rounds {
					ms[r] = float64(get(res[i][r])) / 1e6
					ratios[r] = float64(get(res[i][r])) / float64(get(res[0][r]))
				}
				slices.Sort(ms)
				slices.Sort(ratios)
				return fmt.Sprintf("%6.2f  %.2fx [%.2f..%.2f]", ms[len(ms)/2], ratios[len(ratios)/2], ratios[0], ratios[len(ratios)-1])
			}
			fmt.Fprintf(out, "  %-18s %-34s %-34s %s\n", v.name, col(func(s sample) time.Duration { return s.p50 }),
				col(func(s sample) time.Duration { return s.min }), col(func(s sample) time.Duration { return s.cpu }))
		}
	}
	return nil
}

func cpuTime(who int) time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(who, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func timeOne(c config, v variant, input []float32, threads int) (sample, error) {
	s, err := open(c.lib, v, input, threads, "")
	if err != nil {
		return sample{}, err
	}
	defer s.close()
	for range 5 {
		if err := s.s.Run(); err != nil {
			return sample{}, err
		}
	}
	who := unix.RUSAGE_SELF
	if threads == 1 {
		who = unix.RUSAGE_THREAD
	}
	wall := make([]time.Duration, c.iters)
	cpu := make([]time.Duration, c.iters)
	for i := range wall {
		c0, t0 := cpuTime(who), time.Now()
		if err := s.s.Run(); err != nil {
			return sample{}, err
		}
		wall[i], cpu[i] = time.Since(t0), cpuTime(who)-c0
	}
	slices.Sort(wall)
	slices.Sort(cpu)
	return sample{p50: wall[len(wall)/2], min: wall[0], cpu: cpu[len(cpu)/2]}, nil
}
