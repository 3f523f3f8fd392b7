package detector_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/edgedet/edgedet/detector"
	"github.com/edgedet/edgedet/internal/testenv"
)

const armnnMessage = "the ArmNN provider is not in the prebuilt ONNX Runtime libraries (and upstream is retiring it); use xnnpack or acl on Arm boards, or cpu"

func providerConfig(t testing.TB, providers ...string) detector.Config {
	cfg := detector.DefaultConfig()
	cfg.Model = testenv.Shared(t, "models", "yolox_nano_416.onnx")
	cfg.Providers = providers
	return cfg
}

func loadLogged(t *testing.T, cfg detector.Config) (*detector.Detector, string, error) {
	t.Helper()
	initORT(t)
	var buf syncBuffer
	d, err := detector.New(cfg, slog.New(slog.NewTextHandler(&buf, nil)))
	if d != nil {
		t.Cleanup(func() {
			if err := d.Close(); err != nil {
				t.Errorf("close: %v", err)
			}
		})
	}
	return d, buf.String(), err
}

// providerLibsMissing reports whether p is an execution provider ONNX
// Runtime loads from shared libraries of its own and one of them is not
// next to the ORT library the tests load: then appending p must fail with
// "Failed to load shared library". When they are there (a GPU build), or p
// is compiled into ORT or not (xnnpack, acl), p may load or fail for
// another reason (no device), and the tests accept either outcome,
// checking each fully.
func providerLibsMissing(t testing.TB, p string) bool {
	t.Helper()
	switch p {
	case "cuda", "tensorrt", "openvino":
	default:
		return false
	}
	dir := filepath.Dir(testenv.ORTLibrary(t))
	for _, lib := range []string{"libonnxruntime_providers_shared.so", "libonnxruntime_providers_" + p + ".so"} {
		if _, err := os.Stat(filepath.Join(dir, lib)); err != nil {
			return true
		}
	}
	return false
}

// checkWorkingProvider fails unless d loaded on provider p with no errors,
// logged so, and finds the dog in dog.jpg.
func checkWorkingProvider(t *testing.T, d *detector.Detector, p, logs string) {
	t.Helper()
	info := d.Info()
	if info.Provider != p || len(info.ProviderErrors) != 0 {
		t.Errorf("provider %q errors %q, want %s and none", info.Provider, info.ProviderErrors, p)
	}
	if !strings.Contains(logs, `msg="model loaded"`) || !strings.Contains(logs, "provider="+p) {
		t.Errorf("'model loaded' does not name provider=%s:\n%s", p, logs)
	}
	checkFindsDog(t, d)
}

// checkFindsDog fails unless d finds a dog in dog.jpg.
func checkFindsDog(t *testing.T, d *detector.Detector) {
	t.Helper()
	img := readImage(t, testenv.Shared(t, "datasets", "samples", "dog.jpg"))
	res, err := d.Detect(context.Background(), img, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, det := range res.Detections {
		if det.Label == "dog" {
			return
		}
	}
	t.Errorf("no dog on provider %s: %+v", d.Info().Provider, res.Detections)
}

// TestProviderFallbackToCPU: a provider that fails to load is reported
// (error naming it with ORT's reason, a warning) and the model runs on
// cpu; one that loads runs the model itself.
func TestProviderFallbackToCPU(t *testing.T) {
	cases := []struct {
		provider string
		mention  string // ORT's reason names it, in any case
	}{
		{"cuda", "cuda"},
		{"tensorrt", "tensorrt"},
		{"openvino", "openvino"},
		{"xnnpack", "xnnpack"},
		{"acl", "acl"},
	}
	for _, tc := range cases {
		t.Run(tc.provider, func(t *testing.T) {
			d, logs, err := loadLogged(t, providerConfig(t, tc.provider, "cpu"))
			if err != nil {
				t.Fatalf("%s,cpu with fallback: %v", tc.provider, err)
			}
			info := d.Info()
			if info.Provider == tc.provider && !providerLibsMissing(t, tc.provider) {
				t.Logf("%s loaded here", tc.provider)
				checkWorkingProvider(t, d, tc.provider, logs)
				return
			}
			if info.Provider != "cpu" {
				t.Errorf("provider %q, want cpu", info.Provider)
			}
			if len(info.ProviderErrors) != 1 {
				t.Fatalf("provider errors %q, want one for %s", info.ProviderErrors, tc.provider)
			}
			e := info.ProviderErrors[0]
			prefix := tc.provider + ": "
			if !strings.HasPrefix(e, prefix) || len(strings.TrimSpace(strings.TrimPrefix(e, prefix))) == 0 {
				t.Errorf("provider error %q does not name %s with a reason", e, tc.provider)
			}
			reason := strings.TrimPrefix(e, prefix)
			// ORT says e.g. "OrtSessionOptionsAppendExecutionProvider_Cuda:
			// Failed to load shared library": match case-insensitively.
			if !strings.Contains(strings.ToLower(reason), tc.mention) {
				t.Errorf("ORT's reason %q does not mention %s", reason, tc.mention)
			}
			if providerLibsMissing(t, tc.provider) && !strings.Contains(reason, "Failed to load shared library") {
				t.Errorf("ORT's reason %q: want %q, %s's libraries are not next to libonnxruntime", reason, "Failed to load shared library", tc.provider)
			}
			t.Logf("ORT said: %s", e)
			if !strings.Contains(logs, "provider failed") || !strings.Contains(logs, "provider="+tc.provider) {
				t.Errorf("no 'provider failed' warning for %s in logs:\n%s", tc.provider, logs)
			}
			if !strings.Contains(logs, `msg="model loaded"`) || !strings.Contains(logs, "provider=cpu") {
				t.Errorf("'model loaded' does not name provider=cpu:\n%s", logs)
			}
		})
	}
}

func TestProviderNoFallbackIsAnError(t *testing.T) {
	cfg := providerConfig(t, "cuda")
	cfg.ProviderFallback = false
	d, logs, err := loadLogged(t, cfg)
	switch {
	case err == nil && providerLibsMissing(t, "cuda"):
		t.Fatalf("cuda without fallback loaded on %s although its libraries are missing", d.Info().Provider)
	case err == nil:
		t.Log("cuda loaded here")
		checkWorkingProvider(t, d, "cuda", logs)
	default:
		msg := err.Error()
		if !strings.Contains(msg, "execution provider cuda failed (provider_fallback is off): ") {
			t.Errorf("error %q should name cuda and say fallback is off", msg)
		}
		if providerLibsMissing(t, "cuda") && !strings.Contains(msg, "Failed to load shared library") {
			t.Errorf("error %q should carry ORT's reason, %q", msg, "Failed to load shared library")
		}
		t.Logf("error: %v", err)
	}

	// Fallback off, the first provider works: no error.
	cfg = providerConfig(t, "cpu")
	cfg.ProviderFallback = false
	d, logs, err = loadLogged(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	checkWorkingProvider(t, d, "cpu", logs)
}

func TestProviderArmNN(t *testing.T) {
	d, _, err := loadLogged(t, providerConfig(t, "armnn", "cpu"))
	if err != nil {
		t.Fatal(err)
	}
	info := d.Info()
	if info.Provider != "cpu" || len(info.ProviderErrors) != 1 || info.ProviderErrors[0] != "armnn: "+armnnMessage {
		t.Errorf("provider %q errors %q, want cpu after %q", info.Provider, info.ProviderErrors, "armnn: "+armnnMessage)
	}

	cfg := providerConfig(t, "armnn")
	cfg.ProviderFallback = false
	_, _, err = loadLogged(t, cfg)
	if err == nil || !strings.Contains(err.Error(), armnnMessage) || !strings.Contains(err.Error(), "armnn") {
		t.Errorf("armnn without fallback: %v, want an error with %q", err, armnnMessage)
	}

	// Only failing providers, fallback on: the error lists each. (Where
	// cuda loads, it runs the model after armnn's failure.)
	d, logs, err := loadLogged(t, providerConfig(t, "armnn", "cuda"))
	if err == nil && !providerLibsMissing(t, "cuda") {
		t.Log("cuda loaded here")
		info := d.Info()
		if info.Provider != "cuda" || len(info.ProviderErrors) != 1 || info.ProviderErrors[0] != "armnn: "+armnnMessage {
			t.Errorf("provider %q errors %q, want cuda after %q", info.Provider, info.ProviderErrors, "armnn: "+armnnMessage)
		}
		if !strings.Contains(logs, "provider=cuda") {
			t.Errorf("'model loaded' does not name provider=cuda:\n%s", logs)
		}
		checkFindsDog(t, d)
		return
	}
	if err == nil || !strings.Contains(err.Error(), "armnn: ") || !strings.Contains(err.Error(), "cuda: ") {
		t.Errorf("armnn,cuda: %v, want an error naming both", err)
	}
}

// TestProviderDetectAfterFallback: the model runs on the first provider of
// the plan that loads, after one error per provider before it, and
// detects. Where tensorrt's and cuda's libraries are missing (CPU builds,
// as here) that is xnnpack if compiled in, else cpu after 3 failures.
func TestProviderDetectAfterFallback(t *testing.T) {
	plan := []string{"tensorrt", "cuda", "xnnpack", "cpu"}
	cfg := providerConfig(t, plan...)
	cfg.ProviderOptions = map[string]map[string]string{
		"tensorrt": {"trt_fp16_enable": "1", "trt_engine_cache_enable": "1", "trt_engine_cache_path": t.TempDir()},
		"cuda":     {"device_id": "0"},
	}
	d, _, err := loadLogged(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	info := d.Info()
	chosen := slices.Index(plan, info.Provider)
	if chosen < 0 || len(info.ProviderErrors) != chosen {
		t.Fatalf("provider %q errors %q, want a provider of %v after one error for each before it", info.Provider, info.ProviderErrors, plan)
	}
	for i, e := range info.ProviderErrors {
		if !strings.HasPrefix(e, plan[i]+": ") {
			t.Errorf("error %d %q does not name %s", i, e, plan[i])
		}
	}
	for i, p := range plan[:2] {
		if !providerLibsMissing(t, p) {
			continue
		}
		if i >= chosen {
			t.Errorf("ran on %s although %s's libraries are missing", info.Provider, p)
			continue
		}
		// Setting the options is what loads the provider's library: it
		// fails before the provider is appended.
		if !strings.HasPrefix(info.ProviderErrors[i], p+": options: ") {
			t.Errorf("error %q, want %s's options refused first", info.ProviderErrors[i], p)
		}
	}
	t.Logf("ran on %s after %q", info.Provider, info.ProviderErrors)
	checkFindsDog(t, d)
}

func TestProviderValidate(t *testing.T) {
	cases := []struct {
		name      string
		providers []string
		options   map[string]map[string]string
		want      []string // substrings of the error; nil = valid
	}{
		{"default", nil, nil, nil},
		{"full plan", []string{"tensorrt", "cuda", "openvino", "xnnpack", "acl", "armnn", "cpu"}, nil, nil},
		{"no cpu", []string{"cuda"}, nil, nil},
		{"case", []string{"CUDA", "Cpu"}, nil, nil},
		{"options", []string{"tensorrt", "cpu"}, map[string]map[string]string{"tensorrt": {"trt_int8_enable": "1"}}, nil},
		{"webgpu", []string{"webgpu", "cpu"}, nil, []string{"webgpu", "teardown"}},
		{"unknown", []string{"rocm", "cpu"}, nil, []string{`"rocm"`, "tensorrt, cuda, openvino, xnnpack, acl, armnn, cpu"}},
		{"cpu not last", []string{"cpu", "cuda"}, nil, []string{"cpu must be last"}},
		{"duplicate", []string{"cuda", "cuda", "cpu"}, nil, []string{`"cuda" is listed twice`}},
		{"duplicate cpu", []string{"cpu", "cpu"}, nil, []string{"listed twice"}},
		{"unknown options", nil, map[string]map[string]string{"rocm": {"a": "b"}}, []string{"provider_options.rocm"}},
		{"webgpu options", nil, map[string]map[string]string{"webgpu": {}}, []string{"provider_options.webgpu", "teardown"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := detector.DefaultConfig()
			cfg.Model = "m.onnx"
			cfg.Providers = tc.providers
			cfg.ProviderOptions = tc.options
			err := cfg.Validate()
			if tc.want == nil {
				if err != nil {
					t.Errorf("valid config refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("%v accepted", tc.providers)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

// TestProviderWebGPUNeverTried checks New refuses webgpu before touching ORT.
func TestProviderWebGPUNeverTried(t *testing.T) {
	_, _, err := loadLogged(t, providerConfig(t, "webgpu", "cpu"))
	if err == nil || !strings.Contains(err.Error(), "detector config") || !strings.Contains(err.Error(), "webgpu") {
		t.Errorf("webgpu: %v, want a config error", err)
	}
}

// syncBuffer collects log output (see testenv.Buffer).
type syncBuffer = testenv.Buffer
