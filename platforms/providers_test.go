package platforms_test

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/edgedet/edgedet/internal/testenv"
	"github.com/edgedet/edgedet/platforms"
)

func TestAvailableProviders(t *testing.T) {
	lib := testenv.ORTLibrary(t)
	got, err := platforms.AvailableProviders(lib)
	if err != nil {
		t.Fatalf("AvailableProviders(%s): %v", lib, err)
	}
	t.Logf("providers in %s: %v", lib, got)
	if !slices.Contains(got, "CPUExecutionProvider") {
		t.Errorf("no CPUExecutionProvider in %v", got)
	}
	if runtime.GOARCH == "amd64" {
		// SETUP-NOTES: the npm x64 library is built with TensorRT and CUDA.
		for _, p := range []string{"TensorrtExecutionProvider", "CUDAExecutionProvider"} {
			if !slices.Contains(got, p) {
				t.Errorf("no %s in %v", p, got)
			}
		}
	}
	// A second call works: the reference is dropped and taken again.
	again, err := platforms.AvailableProviders(lib)
	if err != nil || !slices.Equal(again, got) {
		t.Errorf("second call: %v, %v", again, err)
	}
}

func TestAvailableProvidersErrors(t *testing.T) {
	dir := t.TempDir()
	notLib := filepath.Join(dir, "libnot.so")
	if err := os.WriteFile(notLib, []byte("not an ELF file"), 0o644); err != nil {
		t.Fatal(err)
	}
	// libdl is a real shared library without OrtGetApiBase.
	for _, p := range []string{notLib, filepath.Join(dir, "missing.so"), "libc.so.6"} {
		_, err := platforms.AvailableProviders(p)
		var le *platforms.LibraryError
		if !errors.As(err, &le) || le.Library != p || !strings.Contains(err.Error(), p) {
			t.Errorf("AvailableProviders(%s) = %v, want a *LibraryError naming it", p, err)
		}
		t.Logf("%v", err)
	}
}
