package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"gocv.io/x/gocv"
	"google.golang.org/protobuf/proto"

	"github.com/edgedet/edgedet/detection"
	"github.com/edgedet/edgedet/detector"
	"github.com/edgedet/edgedet/internal/latency"
	"github.com/edgedet/edgedet/onnx"
	"github.com/edgedet/edgedet/onnx/onnxpb"
)

// detectorTimers time models in the detector, the agent's own session, on
// frame, or a grey 640×480 frame when it is nil: prune's latency is the
// detector's inference time. (An INT8 model's time can depend on the
// picture: ONNX Runtime's uint8 MaxPool took 1.6 ms on a grey frame and
// 4.3 ms on dog.jpg in yolo-fastestv2.)
type detectorTimers struct {
	threads int
	log     *slog.Logger
	frame   *gocv.Mat // not owned; nil: a grey frame
	// spec, when set, is stored in the metadata of models given in memory
	// (quantize's candidates), so they load like the model they come from.
	spec *detection.Spec
	dir  string // temporary files of models given in memory
	n    int
}

// detectorTimer is one model's detector and frame.
type detectorTimer struct {
	det  *detector.Detector
	img  gocv.Mat
	file string // removed by Close when set
}

var _ latency.Timer = (*detectorTimer)(nil)

func (t *detectorTimer) Time(ctx context.Context) (time.Duration, error) {
	res, err := t.det.Detect(ctx, t.img, nil)
	return res.Timings.Inference, err
}

func (t *detectorTimer) Close() error {
	err := errors.Join(t.det.Close(), t.img.Close())
	if t.file != "" {
		err = errors.Join(err, os.Remove(t.file))
	}
	return err
}

// OpenFile opens the model at path for timing.
func (d *detectorTimers) OpenFile(path string) (*detectorTimer, error) {
	cfg := detector.DefaultConfig()
	cfg.Model, cfg.Threads = path, d.threads
	det, err := detector.New(cfg, d.log)
	if err != nil {
		return nil, err
	}
	img := gocv.NewMatWithSizeFromScalar(gocv.NewScalar(114, 114, 114, 0), 480, 640, gocv.MatTypeCV8UC3)
	if d.frame != nil {
		d.frame.CopyTo(&img)
	}
	return &detectorTimer{det: det, img: img}, nil
}

// OpenModel is a latency.Open: it writes m to a temporary file, which
// the timer's Close removes.
func (d *detectorTimers) OpenModel(_ context.Context, m *onnxpb.ModelProto) (latency.Timer, error) {
	if d.dir == "" {
		dir, err := os.MkdirTemp("", "edgedet-timing-")
		if err != nil {
			return nil, err
		}
		d.dir = dir
	}
	d.n++
	path := filepath.Join(d.dir, fmt.Sprintf("candidate-%d.onnx", d.n))
	if d.spec != nil {
		desc, err := d.spec.EncodeMetadata()
		if err != nil {
			return nil, err
		}
		m = proto.Clone(m).(*onnxpb.ModelProto)
		onnx.SetMetadata(m, detection.MetadataSpecKey, desc)
	}
	if err := onnx.SaveModel(path, m); err != nil {
		return nil, err
	}
	t, err := d.OpenFile(path)
	if err != nil {
		os.Remove(path)
		return nil, err
	}
	t.file = path
	return t, nil
}

// PairedFiles times the models at a and b alternately (latency.Paired).
func (d *detectorTimers) PairedFiles(ctx context.Context, a, b string) (time.Duration, time.Duration, error) {
	ta, err := d.OpenFile(a)
	if err != nil {
		return 0, 0, err
	}
	defer ta.Close()
	tb, err := d.OpenFile(b)
	if err != nil {
		return 0, 0, err
	}
	defer tb.Close()
	return latency.Paired(ctx, ta, tb)
}

// Close removes the temporary directory.
func (d *detectorTimers) Close() error {
	if d.dir == "" {
		return nil
	}
	return os.RemoveAll(d.dir)
}
