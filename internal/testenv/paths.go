// Package testenv gives tests the real parts they run against: the shared
// models and images, the ONNX Runtime library, a Mosquitto broker and
// generated video clips. Every helper fails the test with an install hint
// when a part is missing; only SharedOptional skips.
package testenv

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/edgedet/edgedet/platforms"
)

// RepoRoot is the directory holding go.mod.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// SharedDir is ../shared beside the checkout (models, datasets), or
// $EDGEDET_SHARED when set.
func SharedDir() string {
	if d := os.Getenv("EDGEDET_SHARED"); d != "" {
		return d
	}
	return filepath.Join(RepoRoot(), "..", "shared")
}

// Shared returns a path inside SharedDir, failing the test when it is missing.
func Shared(t testing.TB, elem ...string) string {
	t.Helper()
	p := filepath.Join(append([]string{SharedDir()}, elem...)...)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("shared test data missing: %v (the checkout needs ../shared beside it, or set EDGEDET_SHARED)", err)
	}
	return p
}

// ORTLibrary returns the ONNX Runtime library the tests load: $EDGEDET_ORT_LIB
// or the copy scripts/setup.sh puts in build/lib.
func ORTLibrary(t testing.TB) string {
	t.Helper()
	p := os.Getenv(platforms.ORTLibraryEnv)
	if p == "" {
		p = filepath.Join(RepoRoot(), "build", "lib", platforms.ORTLibraryName)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("onnx runtime library missing: %v (run scripts/setup.sh or make test)", err)
	}
	return p
}

// SharedOptional returns a path inside SharedDir like Shared, but skips the
// test, naming the path, when it is missing: for shared files that came
// after the set every checkout has (a model added for one format), so an
// older ../shared does not fail the run.
func SharedOptional(t testing.TB, elem ...string) string {
	t.Helper()
	p := filepath.Join(append([]string{SharedDir()}, elem...)...)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("optional shared test data missing: %v", err)
	}
	return p
}
