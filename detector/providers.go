package detector

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	ort "github.com/yalue/onnxruntime_go"
)

// Execution-provider names as written in the config's providers list.
const (
	ProviderTensorRT = "tensorrt"
	ProviderCUDA     = "cuda"
	ProviderOpenVINO = "openvino"
	ProviderXNNPACK  = "xnnpack"
	ProviderACL      = "acl"
	ProviderArmNN    = "armnn"
	ProviderCPU      = "cpu"
)

// ProviderNames lists the execution providers a config may name, in the
// usual order of preference.
func ProviderNames() []string {
	return []string{ProviderTensorRT, ProviderCUDA, ProviderOpenVINO, ProviderXNNPACK, ProviderACL, ProviderArmNN, ProviderCPU}
}

// DefaultProviders is the plan used when the config names none.
var DefaultProviders = []string{ProviderCPU}

// webGPURefusal is why "webgpu" is refused without ever being tried.
const webGPURefusal = "webgpu is not supported: appending ONNX Runtime's WebGPU provider breaks the runtime's later teardown " +
	"(DestroyEnvironment deadlocks); use cuda/tensorrt, openvino, xnnpack/acl or cpu"

// ErrArmNNUnavailable is the failure recorded for "armnn": the prebuilt ONNX
// Runtime libraries have no ArmNN provider (ORT itself answers "Unknown
// provider name 'ArmNN'"), so it is reported without asking ORT.
var ErrArmNNUnavailable = errors.New("the ArmNN provider is not in the prebuilt ONNX Runtime libraries " +
	"(and upstream is retiring it); use xnnpack or acl on Arm boards, or cpu")

// normProvider is the canonical spelling of a provider name.
func normProvider(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// providerPlan is cfg's provider list, normalised, or DefaultProviders.
func (c Config) providerPlan() []string {
	if len(c.Providers) == 0 {
		return slices.Clone(DefaultProviders)
	}
	plan := make([]string, len(c.Providers))
	for i, p := range c.Providers {
		plan[i] = normProvider(p)
	}
	return plan
}

// validateProviders checks providers and provider_options.
func (c Config) validateProviders() []error {
	var errs []error
	valid := ProviderNames()
	seen := map[string]bool{}
	plan := c.providerPlan()
	for i, p := range plan {
		switch {
		case p == "webgpu":
			errs = append(errs, fmt.Errorf("providers: %s", webGPURefusal))
			continue
		case !slices.Contains(valid, p):
			errs = append(errs, fmt.Errorf("providers: %q is not one of %s", c.Providers[i], strings.Join(valid, ", ")))
			continue
		case seen[p]:
			errs = append(errs, fmt.Errorf("providers: %q is listed twice", p))
			continue
		}
		seen[p] = true
		if p == ProviderCPU && i != len(plan)-1 {
			errs = append(errs, fmt.Errorf("providers: cpu must be last (nothing after it is ever tried), got %s", strings.Join(plan, ", ")))
		}
	}
	for name, opts := range c.ProviderOptions {
		p := normProvider(name)
		switch {
		case p == "webgpu":
			errs = append(errs, fmt.Errorf("provider_options.%s: %s", name, webGPURefusal))
		case !slices.Contains(valid, p):
			errs = append(errs, fmt.Errorf("provider_options.%s: %q is not one of %s", name, name, strings.Join(valid, ", ")))
		case p == ProviderCPU && len(opts) > 0:
			errs = append(errs, fmt.Errorf("provider_options.%s: the cpu provider takes no options", name))
		}
	}
	return errs
}

// providerOptions are the options configured for provider p (nil = none).
func (c Config) providerOptions(p string) map[string]string {
	for name, opts := range c.ProviderOptions {
		if normProvider(name) == p {
			return opts
		}
	}
	return nil
}

// appendProvider adds provider p, with opts, to o. "cpu" appends nothing:
// ORT's CPU provider is always there as the last resort.
func appendProvider(o *ort.SessionOptions, p string, opts map[string]string) error {
	switch p {
	case ProviderCPU:
		return nil
	case ProviderArmNN:
		return ErrArmNNUnavailable
	case ProviderTensorRT:
		trt, err := ort.NewTensorRTProviderOptions()
		if err != nil {
			return err
		}
		defer trt.Destroy()
		if err := trt.Update(opts); err != nil {
			return fmt.Errorf("options: %w", err)
		}
		return o.AppendExecutionProviderTensorRT(trt)
	case ProviderCUDA:
		cuda, err := ort.NewCUDAProviderOptions()
		if err != nil {
			return err
		}
		defer cuda.Destroy()
		if err := cuda.Update(opts); err != nil {
			return fmt.Errorf("options: %w", err)
		}
		return o.AppendExecutionProviderCUDA(cuda)
	case ProviderOpenVINO:
		return o.AppendExecutionProviderOpenVINO(opts)
	case ProviderXNNPACK:
		return o.AppendExecutionProvider("XNNPACK", opts)
	case ProviderACL:
		return o.AppendExecutionProvider("ACL", opts)
	}
	// Validate refuses anything else (webgpu in particular) before this.
	return fmt.Errorf("unknown execution provider %q", p)
}

// sessionOptions makes fresh session options from cfg (threads, profiling,
// graph optimisation) with provider p appended. The caller destroys them.
func (d *Detector) sessionOptions(p string) (*ort.SessionOptions, error) {
	opts, err := ort.NewSessionOptions()
	if err != nil {
		return nil, fmt.Errorf("session options: %w", err)
	}
	if err := d.configureOptions(opts, p); err != nil {
		opts.Destroy()
		return nil, err
	}
	return opts, nil
}

func (d *Detector) configureOptions(opts *ort.SessionOptions, p string) error {
	if err := d.runOptions(opts); err != nil {
		return err
	}
	if d.cfg.ProfilePrefix != "" {
		if err := opts.EnableProfiling(d.cfg.ProfilePrefix); err != nil {
			return fmt.Errorf("enable profiling: %w", err)
		}
	}
	level, _ := graphOptLevel(d.cfg.GraphOptimization)
	if err := opts.SetGraphOptimizationLevel(level); err != nil {
		return fmt.Errorf("set graph optimisation %q: %w", d.cfg.GraphOptimization, err)
	}
	if err := appendProvider(opts, p, d.cfg.providerOptions(p)); err != nil {
		return explainProviderError(p, err)
	}
	return nil
}

// runOptions sets what the sessions run with (threads, spinning); the
// activation fusion optimises the model with the same settings.
func (d *Detector) runOptions(opts *ort.SessionOptions) error {
	if d.cfg.Threads > 0 {
		if err := opts.SetIntraOpNumThreads(d.cfg.Threads); err != nil {
			return fmt.Errorf("set intra-op threads %d: %w", d.cfg.Threads, err)
		}
	}
	if err := opts.AddSessionConfigEntry("session.intra_op.allow_spinning", map[bool]string{true: "1", false: "0"}[d.cfg.SpinWait]); err != nil {
		return fmt.Errorf("set spin_wait: %w", err)
	}
	return nil
}

// explainProviderError keeps ORT's text and, where ORT's returned status is
// terse, adds what it means (ORT's own log line names the missing file).
func explainProviderError(p string, err error) error {
	if strings.Contains(err.Error(), "Failed to load shared library") {
		return fmt.Errorf("%w (the %s provider's libraries, libonnxruntime_providers_shared.so and its "+
			"libonnxruntime_providers_<name>.so, are not next to the loaded libonnxruntime; ORT's log names the missing file)", err, p)
	}
	return err
}

// newSessions tries the providers of the plan in order with the first
// session and keeps the first that is created; the other cfg.Sessions-1
// sessions use the same provider. Each failure is logged with ORT's reason
// and recorded in d.info.ProviderErrors; without fallback the first
// failure is returned.
func (d *Detector) newSessions() error {
	info := &d.info
	plan := d.cfg.providerPlan()
	info.ProviderErrors = nil
	for _, p := range plan {
		s, err := d.trySession(p)
		if err == nil {
			d.sessions = append(d.sessions, s)
			info.Provider = p
			break
		}
		info.ProviderErrors = append(info.ProviderErrors, fmt.Sprintf("%s: %v", p, err))
		if !d.cfg.ProviderFallback {
			return fmt.Errorf("model %s: execution provider %s failed (provider_fallback is off): %w", info.Path, p, err)
		}
		d.log.Warn("provider failed", "provider", p, "model", info.Path, "error", err.Error())
	}
	if len(d.sessions) == 0 {
		return fmt.Errorf("model %s: no execution provider of %s worked: %s", info.Path, strings.Join(plan, ", "),
			strings.Join(info.ProviderErrors, "; "))
	}
	for len(d.sessions) < d.cfg.Sessions {
		s, err := d.trySession(info.Provider)
		if err != nil {
			return fmt.Errorf("model %s: session %d of %d: %w", info.Path, len(d.sessions)+1, d.cfg.Sessions, err)
		}
		d.sessions = append(d.sessions, s)
	}
	d.fuse.model = nil // the sessions have it; the bytes are not needed any more
	d.idle = make(chan int, len(d.sessions))
	for i := range d.sessions {
		d.idle <- i
	}
	return nil
}

func (d *Detector) trySession(p string) (*ort.DynamicAdvancedSession, error) {
	if p == ProviderCPU {
		if s, err := d.cpuSession(); !errors.Is(err, errNotFused) {
			return s, err
		}
	}
	opts, err := d.sessionOptions(p)
	if err != nil {
		return nil, err
	}
	defer opts.Destroy()
	info := &d.info
	s, err := ort.NewDynamicAdvancedSession(info.Path, []string{info.InputName}, []string{info.OutputName}, opts)
	if err != nil {
		return nil, fmt.Errorf("create session: %w", err)
	}
	return s, nil
}
