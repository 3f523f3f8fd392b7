package labels

import (
	"strings"
	"testing"
)

// FuzzParse checks that any names file either fails or gives a list of
// trimmed, non-empty, non-comment names that reads back the same when
// written one per line.
func FuzzParse(f *testing.F) {
	f.Add([]byte(strings.Join(COCO80, "\n") + "\n"))
	f.Add([]byte("# classes\r\nperson\r\n\r\n  bicycle \r\ncar"))
	f.Add([]byte("# only a comment\n\n"))
	f.Add([]byte(""))
	f.Add([]byte("\xff\xfe\x00p\x00e\x00r\x00s\x00o\x00n\x00\n"))
	f.Add([]byte("a\vb\u0085\n\u00a0#x\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		names, err := Parse(data)
		if err != nil {
			if names != nil {
				t.Fatalf("error %v with names %q", err, names)
			}
			return
		}
		if len(names) == 0 || len(names) > MaxClasses {
			t.Fatalf("%d names without error", len(names))
		}
		for i, n := range names {
			if n == "" || n != strings.TrimSpace(n) || strings.ContainsRune(n, '\n') || strings.HasPrefix(n, "#") {
				t.Fatalf("name %d %q: not a trimmed single-line name", i, n)
			}
		}
		again, err := Parse([]byte(strings.Join(names, "\n")))
		if err != nil || strings.Join(again, "\n") != strings.Join(names, "\n") {
			t.Fatalf("round trip: %q -> %q, %v", names, again, err)
		}
	})
}
