package detector

import (
	"errors"
	"fmt"
	"os"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/edgedet/edgedet/detector/lut"
	"github.com/edgedet/edgedet/internal/readlimit"
)

// registerLUT adds package lut's custom operators to session options. Tests
// replace it to make registration fail.
var registerLUT = lut.Register

// fuse is the state of the INT8 activation fusion for one model load.
type fuse struct {
	tried bool
	model []byte // the rewritten, machine-specific graph; nil = use the file
}

// fusedModel returns the model the CPU provider's sessions load with the
// INT8 activations fused (package lut), computing it on the first call, or
// nil when the standard graph is to be used. It applies to INT8 models
// only; when it cannot be used it logs one warning with the reason (an
// info line when the model has nothing to fuse). The
// optimised graph depends on this CPU and exists only in memory: its
// temporary directory is removed before this returns.
func (d *Detector) fusedModel() []byte {
	f := &d.fuse
	if f.tried {
		return f.model
	}
	f.tried = true
	if !d.cfg.FuseActivations || d.info.Precision != "int8" {
		return nil
	}
	n, err := d.prepareFused()
	switch {
	case err != nil:
		d.log.Warn("int8 activations not fused; running the standard graph", "model", d.info.Path, "reason", err.Error())
	case n == 0:
		// Not a failure: a ReLU model, or dynamic quantisation, has no
		// quantised activation to fuse.
		d.log.Info("int8 model has no activation to fuse; running the standard graph", "model", d.info.Path,
			"hint", "fuse_activations = false skips the check")
	default:
		d.info.FusedActivations = n
		d.log.Info("int8 activations fused", "count", n, "path", lut.BestPath().String(), "model", d.info.Path)
	}
	return f.model
}

// prepareFused checks that the operators register, then lets ONNX Runtime
// optimise the model with the sessions' settings and rewrites the result.
func (d *Detector) prepareFused() (int, error) {
	if d.cfg.GraphOptimization != "all" && d.cfg.GraphOptimization != "" {
		return 0, fmt.Errorf("graph_optimization is %q; fusing needs \"all\"", d.cfg.GraphOptimization)
	}
	if err := d.checkRegister(); err != nil {
		return 0, err
	}
	raw, err := readlimit.ReadRegularFile(d.info.Path, MaxModelSize)
	if err != nil {
		return 0, fmt.Errorf("read model: %w", err)
	}
	dir, err := os.MkdirTemp("", "edgedet-fuse-*")
	if err != nil {
		return 0, fmt.Errorf("temporary directory: %w", err)
	}
	defer os.RemoveAll(dir)
	model, n, err := optimizeAndRewrite(raw, dir, d.runOptions)
	if err != nil {
		return 0, err
	}
	d.fuse.model = model
	return n, nil
}

// checkRegister registers the operators on throwaway options, so a failure
// is known before the model is optimised.
func (d *Detector) checkRegister() error {
	opts, err := ort.NewSessionOptions()
	if err != nil {
		return fmt.Errorf("session options: %w", err)
	}
	defer opts.Destroy()
	return registerLUT(opts, loadedLib)
}

// fusedSession creates a CPU session from the fused model: the operators
// registered and graph optimisation at "extended", which keeps the layout
// ONNX Runtime already chose.
func (d *Detector) fusedSession(model []byte) (*ort.DynamicAdvancedSession, error) {
	opts, err := d.sessionOptions(ProviderCPU)
	if err != nil {
		return nil, err
	}
	defer opts.Destroy()
	if err := registerLUT(opts, loadedLib); err != nil {
		return nil, err
	}
	if err := opts.SetGraphOptimizationLevel(ort.GraphOptimizationLevelEnableExtended); err != nil {
		return nil, fmt.Errorf("set graph optimisation extended: %w", err)
	}
	info := &d.info
	s, err := ort.NewDynamicAdvancedSessionWithONNXData(model, []string{info.InputName}, []string{info.OutputName}, opts)
	if err != nil {
		return nil, fmt.Errorf("create session from the fused model: %w", err)
	}
	return s, nil
}

// cpuSession creates a CPU session, from the fused model when there is
// one. If the first fused session fails, the fusion is dropped with a
// warning and the standard graph is loaded instead.
func (d *Detector) cpuSession() (*ort.DynamicAdvancedSession, error) {
	model := d.fusedModel()
	if model == nil {
		return nil, errNotFused
	}
	s, err := d.fusedSession(model)
	if err == nil || len(d.sessions) > 0 {
		return s, err
	}
	d.log.Warn("int8 activations not fused; running the standard graph", "model", d.info.Path, "reason", err.Error())
	d.fuse.model, d.info.FusedActivations = nil, 0
	return nil, errNotFused
}

var errNotFused = errors.New("not fused")

// optimizeAndRewrite is package lut's graph optimisation and rewrite. Tests
// replace it to make the optimisation fail.
var optimizeAndRewrite = lut.OptimizeAndRewrite
