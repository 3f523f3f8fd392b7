package detector

import (
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
)

// TestProviderPlanDefault: a config naming no provider plans the default
// list, a copy of it; a named list is normalised.
func TestProviderPlanDefault(t *testing.T) {
	plan := Config{}.providerPlan()
	if !slices.Equal(plan, DefaultProviders) || len(plan) == 0 {
		t.Fatalf("plan without providers = %q, want %q", plan, DefaultProviders)
	}
	plan[0] = "changed"
	if DefaultProviders[0] == "changed" {
		DefaultProviders[0] = ProviderCPU
		t.Error("the plan shares DefaultProviders' storage")
	}
	if got := (Config{Providers: []string{" XNNPACK", "Cpu "}}).providerPlan(); !slices.Equal(got, []string{"xnnpack", "cpu"}) {
		t.Errorf("plan = %q, want normalised names", got)
	}
}

// TestCPUProviderOptions: provider_options may list cpu with no options,
// but one option for cpu is refused.
func TestCPUProviderOptions(t *testing.T) {
	for _, tc := range []struct {
		opts map[string]string
		bad  bool
	}{
		{nil, false},
		{map[string]string{}, false},
		{map[string]string{"intra_op_num_threads": "2"}, true},
		{map[string]string{"a": "1", "b": "2"}, true},
	} {
		errs := Config{ProviderOptions: map[string]map[string]string{"CPU": tc.opts}}.validateProviders()
		if bad := len(errs) > 0; bad != tc.bad || (bad && !strings.Contains(errors.Join(errs...).Error(), "cpu provider takes no options")) {
			t.Errorf("cpu options %v: errors %v, want refused %v", tc.opts, errs, tc.bad)
		}
	}
}

// TestProviderOptionsLookup: a provider's options are found under any
// spelling of its name; a provider without options gets nil.
func TestProviderOptionsLookup(t *testing.T) {
	c := Config{ProviderOptions: map[string]map[string]string{
		" XNNPACK ": {"intra_op_num_threads": "2"},
		"cuda":      {"device_id": "1"},
	}}
	for p, want := range map[string]map[string]string{
		"xnnpack": {"intra_op_num_threads": "2"},
		"cuda":    {"device_id": "1"},
		"cpu":     nil,
	} {
		if got := c.providerOptions(p); !maps.Equal(got, want) || (want == nil) != (got == nil) {
			t.Errorf("providerOptions(%q) = %v, want %v", p, got, want)
		}
	}
}

// TestExplainProviderError: ORT's terse "Failed to load shared library"
// gets an explanation naming the provider's libraries, keeping ORT's
// error; any other error is returned as it is.
func TestExplainProviderError(t *testing.T) {
	terse := errors.New("[ONNXRuntimeError] : 1 : FAIL : Failed to load shared library")
	got := explainProviderError("cuda", terse)
	if !errors.Is(got, terse) || !strings.Contains(got.Error(), "the cuda provider's libraries") ||
		!strings.Contains(got.Error(), "libonnxruntime_providers_shared.so") {
		t.Errorf("explained error = %v, want ORT's error with the cuda libraries named", got)
	}
	other := errors.New("no CUDA device")
	if got := explainProviderError("cuda", other); got != other {
		t.Errorf("explainProviderError(%v) = %v, want it unchanged", other, got)
	}
}

// TestTrySessionMissingModel: a session that cannot be created (the model
// file is gone) is an error, not a nil session.
func TestTrySessionMissingModel(t *testing.T) {
	d, _ := loadShared(t, "yolox_nano_416.onnx", func(c *Config) { c.Sessions, c.Slots = 1, 1 })
	path := d.info.Path
	d.info.Path = path + ".missing"
	defer func() { d.info.Path = path }()
	s, err := d.trySession(ProviderCPU)
	if err == nil || !strings.Contains(err.Error(), "create session") {
		if s != nil {
			s.Destroy()
		}
		t.Fatalf("trySession on a missing model = %v, %v; want a create session error", s, err)
	}
}
