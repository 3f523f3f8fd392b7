package readlimit

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f.txt")
	if err := os.WriteFile(p, []byte("12345"), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := ReadFile(p, 5); err != nil || string(b) != "12345" {
		t.Fatalf("at the limit: %q, %v", b, err)
	}
	_, err := ReadFile(p, 4)
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "more than 4") {
		t.Fatalf("over the limit: want ErrTooLarge naming file and limit, got %v", err)
	}
	if _, err := ReadFile(filepath.Join(t.TempDir(), "none"), 4); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing file: want ErrNotExist, got %v", err)
	}
}

func TestReadFileEndless(t *testing.T) {
	// /dev/zero never ends; ReadFile must stop at the limit.
	if _, err := ReadFile("/dev/zero", 1<<20); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("/dev/zero: want ErrTooLarge, got %v", err)
	}
}

func TestReadRegularFile(t *testing.T) {
	for _, p := range []string{"/dev/zero", t.TempDir()} {
		if _, err := ReadRegularFile(p, 1<<30); err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("%s: want a not-a-regular-file error, got %v", p, err)
		}
	}
	p := filepath.Join(t.TempDir(), "m.onnx")
	if err := os.WriteFile(p, []byte("abc"), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := ReadRegularFile(p, 3); err != nil || string(b) != "abc" {
		t.Fatalf("regular file: %q, %v", b, err)
	}
}
