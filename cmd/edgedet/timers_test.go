package main

import (
	"context"
	"log/slog"
	"os"
	"testing"

	"github.com/edgedet/edgedet/detection"
	"github.com/edgedet/edgedet/internal/testenv"
	"github.com/edgedet/edgedet/onnx"
)

// A model given in memory (quantize's candidate entry regions) is written
// to a temporary file with the source's description in its metadata, so
// the detector loads it like the source (here: labels it does not hold
// itself); Close removes the file, and the timers' Close their directory.
func TestDetectorTimersOpenModel(t *testing.T) {
	cleanup, err := initRuntime(testenv.ORTLibrary(t))
	if err != nil {
		t.Fatal(err)
	}
	defer cleanup()
	path := yoloxPath(t)
	m, err := onnx.LoadModel(path)
	if err != nil {
		t.Fatal(err)
	}
	spec, err := modelSpec(path, "")
	if err != nil {
		t.Fatal(err)
	}
	spec.Labels = make([]string, 80)
	for i := range spec.Labels {
		spec.Labels[i] = "thing"
	}
	spec.LabelsFile = ""
	timers := &detectorTimers{threads: 1, log: slog.New(slog.DiscardHandler), spec: &spec}
	tm, err := timers.OpenModel(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	dt := tm.(*detectorTimer)
	if labels := dt.det.Info().Spec.Labels; len(labels) != 80 || labels[0] != "thing" {
		t.Errorf("candidate loaded with labels %v..., want the given description's", labels[:min(3, len(labels))])
	}
	saved, err := onnx.LoadModel(dt.file)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := detection.SpecFromEdgedetMetadata(onnx.Metadata(saved)); !ok || err != nil {
		t.Errorf("temporary model has no %s metadata (%v)", detection.MetadataSpecKey, err)
	}
	if _, ok := onnx.Metadata(m)[detection.MetadataSpecKey]; ok {
		t.Error("OpenModel changed the caller's model")
	}
	if d, err := tm.Time(context.Background()); err != nil || d <= 0 {
		t.Errorf("Time = %v, %v", d, err)
	}
	if err := tm.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dt.file); !os.IsNotExist(err) {
		t.Errorf("temporary model %s left behind (%v)", dt.file, err)
	}
	dir := timers.dir
	if err := timers.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("temporary directory %s left behind (%v)", dir, err)
	}
}
