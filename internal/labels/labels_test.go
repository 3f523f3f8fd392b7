package labels

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoad(t *testing.T) {
	p := filepath.Join(t.TempDir(), "names.txt")
	os.WriteFile(p, []byte("# comment\nperson\n\n  bicycle \ncar\n"), 0o644)
	names, err := Load(p)
	if err != nil || strings.Join(names, ",") != "person,bicycle,car" {
		t.Fatalf("Load = %q, %v", names, err)
	}
	os.WriteFile(p, []byte("# only a comment\n\n"), 0o644)
	if _, err := Load(p); err == nil || !strings.Contains(err.Error(), p) {
		t.Fatalf("empty file: want error naming it, got %v", err)
	}
	if _, err := Load(filepath.Join(t.TempDir(), "none.txt")); err == nil || !strings.Contains(err.Error(), "none.txt") {
		t.Fatalf("missing file: want error naming it, got %v", err)
	}
}

func TestCOCO80(t *testing.T) {
	if len(COCO80) != 80 || COCO80[0] != "person" || COCO80[16] != "dog" || COCO80[79] != "toothbrush" {
		t.Fatalf("COCO80 list wrong: %d names", len(COCO80))
	}
}

func TestParseBoundsNames(t *testing.T) {
	many := strings.Repeat("x\n", MaxClasses)
	if names, err := Parse([]byte(many)); err != nil || len(names) != MaxClasses {
		t.Fatalf("%d names: got %d, %v", MaxClasses, len(names), err)
	}
	if _, err := Parse([]byte(many + "y\n")); err == nil || !strings.Contains(err.Error(), "more than 65536 names") {
		t.Fatalf("%d names: want error naming the limit, got %v", MaxClasses+1, err)
	}
}

func TestLoadBoundsFileSize(t *testing.T) {
	p := filepath.Join(t.TempDir(), "big.names")
	if err := os.WriteFile(p, []byte("person\n"+strings.Repeat("#", MaxFileSize)), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(p); err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "too large") {
		t.Fatalf("oversized file: want error naming it, got %v", err)
	}
}
