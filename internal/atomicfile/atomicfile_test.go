package atomicfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestWriteFileReplacesAndLeavesNoTemp(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "state")
	for _, content := range []string{"first", "second, longer than the first", "3"} {
		if err := WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(p)
		if err != nil || string(got) != content {
			t.Fatalf("after WriteFile(%q): %q, %v", content, got, err)
		}
	}
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", st.Mode().Perm())
	}
	if _, err := os.Stat(p + TmpSuffix); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("temporary file left behind: %v", err)
	}
}

func TestReplaceOverALeftoverTemp(t *testing.T) {
	// A crash before the rename leaves path.tmp: the next write must
	// replace it, not fail on it, and leave the old file intact until then.
	dir := t.TempDir()
	p := filepath.Join(dir, "state")
	if err := os.WriteFile(p, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p+TmpSuffix, []byte("half-writ"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(p); string(got) != "old" {
		t.Fatalf("old file changed by a leftover temp: %q", got)
	}
	if err := Replace(p, []byte("new"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(p); string(got) != "new" {
		t.Errorf("got %q, want new", got)
	}
}

func TestErrorsNameTheFileAndKeepTheOld(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "no-such-dir", "state")
	err := WriteFile(missing, []byte("x"), 0o600)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("WriteFile into a missing directory = %v, want ErrNotExist", err)
	}
	// The target is a directory: the rename fails, the old entry stays
	// and no temporary file is left.
	target := filepath.Join(dir, "adir")
	if err := os.MkdirAll(filepath.Join(target, "child"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(target, []byte("x"), 0o600); err == nil {
		t.Fatal("WriteFile over a non-empty directory succeeded")
	}
	if st, err := os.Stat(target); err != nil || !st.IsDir() {
		t.Errorf("target changed: %v, %v", st, err)
	}
	if _, err := os.Stat(target + TmpSuffix); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("temporary file left behind after a failed rename: %v", err)
	}
	if err := SyncDir(filepath.Join(dir, "nope")); err == nil {
		t.Error("SyncDir of a missing directory succeeded")
	}
}
