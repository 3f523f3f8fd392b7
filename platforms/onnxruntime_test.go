package platforms

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFindONNXRuntimeExplicit(t *testing.T) {
	dir := t.TempDir()
	lib := filepath.Join(dir, ORTLibraryName)
	if err := os.WriteFile(lib, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := FindONNXRuntime(lib)
	if err != nil || got != lib {
		t.Fatalf("FindONNXRuntime(%q) = %q, %v", lib, got, err)
	}
	missing := filepath.Join(dir, "nope.so")
	_, err = FindONNXRuntime(missing)
	if err == nil || !strings.Contains(err.Error(), missing) {
		t.Fatalf("missing explicit library: want error naming %s, got %v", missing, err)
	}
	if _, err = FindONNXRuntime(dir); err == nil || !strings.Contains(err.Error(), "directory") {
		t.Fatalf("directory: want error, got %v", err)
	}
}

func TestFindONNXRuntimeEnv(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(ORTLibraryEnv, filepath.Join(dir, "missing.so"))
	_, err := FindONNXRuntime("")
	if err == nil || !strings.Contains(err.Error(), "missing.so") {
		t.Fatalf("want error naming the env path, got %v", err)
	}
}

func TestORTCandidatesOrder(t *testing.T) {
	t.Setenv(ORTLibraryEnv, "")
	got := ORTCandidates("", "/opt/edgedet/bin/edgedet")
	want := []string{
		"/opt/edgedet/bin/lib/" + ORTLibraryName,
		"/opt/edgedet/lib/edgedet/" + ORTLibraryName,
		"/usr/lib/edgedet/" + ORTLibraryName,
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("got %v, want %v", got, want)
	}
	if got := ORTCandidates("/x.so", "/bin/e"); len(got) != 1 || got[0] != "/x.so" {
		t.Fatalf("explicit path must be the only candidate, got %v", got)
	}
}
