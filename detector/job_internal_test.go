package detector

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"reflect"
	"strings"
	"testing"

	"github.com/edgedet/edgedet/internal/testenv"
	"gocv.io/x/gocv"
)

// TestCancelledContextWins: with a Job free and a session idle, a context
// already cancelled still fails Acquire and Infer every time (a select
// alone would pick the ready Job or session half the time), and a Job
// whose Infer failed decodes to nothing.
func TestCancelledContextWins(t *testing.T) {
	d, _ := loadShared(t, "yolox_nano_416.onnx", func(c *Config) { c.Sessions, c.Slots = 1, 2 })
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	for range 32 {
		if j, err := d.Acquire(cancelled); !errors.Is(err, context.Canceled) || j != nil {
			d.Release(j)
			t.Fatalf("Acquire with a cancelled context = %v, %v; want context.Canceled", j, err)
		}
	}
	img := readDog(t)
	defer img.Close()
	j := preparedJob(t, d, img)
	for range 32 {
		if err := j.Infer(cancelled); !errors.Is(err, context.Canceled) {
			t.Fatalf("Infer with a cancelled context = %v, want context.Canceled", err)
		}
	}
	if res := j.Decode(nil); len(res.Detections) != 0 || res.Timings != (Timings{}) {
		t.Errorf("Decode after a cancelled Infer = %+v, want no detections", res)
	}
}

// preparedJob acquires a Job of d and prepares img in it; the Job is
// released when the test ends (before d is closed).
func preparedJob(t *testing.T, d *Detector, img gocv.Mat) *Job {
	t.Helper()
	j, err := d.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Release(j) })
	if err := j.Prepare(img); err != nil {
		t.Fatal(err)
	}
	return j
}

// TestDecodeNeedsThisFramesInfer: after a new Prepare, Decode does not
// return the previous frame's detections still in the output tensor.
func TestDecodeNeedsThisFramesInfer(t *testing.T) {
	d, _ := loadShared(t, "yolox_nano_416.onnx", func(c *Config) { c.Sessions, c.Slots = 1, 1 })
	img := readDog(t)
	defer img.Close()
	j := preparedJob(t, d, img)
	if err := j.Infer(context.Background()); err != nil {
		t.Fatal(err)
	}
	if res := j.Decode(nil); len(res.Detections) == 0 {
		t.Fatal("nothing found on dog.jpg")
	}
	if err := j.Prepare(img); err != nil {
		t.Fatal(err)
	}
	res := j.Decode(nil)
	if len(res.Detections) != 0 || res.Width != img.Cols() || res.Height != img.Rows() {
		t.Errorf("Decode before this frame's Infer = %d detections, %dx%d; want none, %dx%d",
			len(res.Detections), res.Width, res.Height, img.Cols(), img.Rows())
	}
}

// TestCloseReleasesJobTensors: Close destroys every Job's input and output
// tensors (their data is gone) and every binding. ONNX Runtime's bindings
// expose nothing once destroyed, so the test reads the handle
// onnxruntime_go clears in IoBinding.Destroy.
func TestCloseReleasesJobTensors(t *testing.T) {
	if err := InitRuntime(testenv.ORTLibrary(t)); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Model = testenv.Shared(t, "models", "yolox_nano_416.onnx")
	cfg.Threads, cfg.Sessions, cfg.Slots = 1, 2, 2
	d, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	jobs := d.jobs
	if len(jobs) != 2 || len(jobs[0].bindings) != 2 || len(jobs[0].input.GetData()) == 0 {
		t.Fatalf("%d jobs, want 2 with 2 bindings and tensors", len(jobs))
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	for i, j := range jobs {
		if j.input.GetData() != nil || j.output.GetData() != nil {
			t.Errorf("job %d: tensors still hold data after Close", i)
		}
		for s, b := range j.bindings {
			h := reflect.ValueOf(b).Elem().FieldByName("o")
			if !h.IsValid() || h.Kind() != reflect.Pointer {
				t.Fatalf("onnxruntime_go's IoBinding has no handle field o (%v): update this test", h.Kind())
			}
			if !h.IsNil() {
				t.Errorf("job %d: binding of session %d not destroyed by Close", i, s)
			}
		}
	}
}

// TestNewJobsErrors: a tensor that cannot be allocated or bound fails
// newJobs with an error naming it (here forced through shapes and names
// inspect would never produce), and the jobs made so far are still
// registered for Close.
func TestNewJobsErrors(t *testing.T) {
	d, _ := loadShared(t, "yolox_nano_416.onnx", func(c *Config) { c.Sessions, c.Slots = 1, 1 })
	for _, tc := range []struct {
		name string
		edit func(*ModelInfo)
		want string
	}{
		{"input shape", func(i *ModelInfo) { i.InputShape = []int64{1, 3, -416, 416} }, "allocate input tensor [1 3 -416 416]"},
		{"output shape", func(i *ModelInfo) { i.OutputShape = []int64{1, -3549, 85} }, "allocate output tensor [1 -3549 85]"},
		{"input name", func(i *ModelInfo) { i.InputName = "no_such_input" }, `bind input "no_such_input"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			broken := &Detector{cfg: d.cfg, info: d.info, sessions: d.sessions, log: d.log}
			tc.edit(&broken.info)
			err := broken.newJobs()
			for _, j := range broken.jobs {
				if cerr := j.close(); cerr != nil {
					t.Error(cerr)
				}
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("newJobs = %v, want an error containing %q", err, tc.want)
			}
			if len(broken.jobs) != 1 {
				t.Errorf("%d jobs registered, want the one that failed", len(broken.jobs))
			}
		})
	}
}
