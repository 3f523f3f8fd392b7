package detection

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"

	"github.com/edgedet/edgedet/internal/labels"
)

// ultralyticsNames is the names metadata of a real export (yolov8n).
var ultralyticsNames = func() string {
	var b strings.Builder
	b.WriteString("{")
	for i, n := range labels.COCO80 {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%d: '%s'", i, n)
	}
	b.WriteString("}")
	return b.String()
}()

// FuzzSpecFromMetadata feeds the ONNX metadata keys edgedet reads (names,
// imgsz, stride, author, end2end) and checks that a description it accepts
// is valid, has at most labels.MaxClasses labels, and that the labels,
// written back as a dict, parse to the same list.
func FuzzSpecFromMetadata(f *testing.F) {
	f.Add(ultralyticsNames, "[320, 320]", "32", "Ultralytics", "False")
	f.Add("{0: 'person', 1: \"it's\"}", "[640]", "32", "Ultralytics", "True")
	f.Add("{4611686018427387903: 'x'}", "", "", "", "")
	f.Add("{0: 'a', 1000000000: 'b'}", "[1, 1]", "-1", "", "")
	f.Add("{0: 'a', 0: 'b', 2: 'c'}", "(480, 640)", "8", "x", "True")
	f.Add("{0:'a',\n1:'b',}", "[320, 1000000]", "16", "Ultralytics", "")
	f.Add("{-1: 'neg'}", "[0, 320]", "x", "", "")
	f.Add("{0: 'unterminated}", "[1,2,3]", "", "", "")
	f.Fuzz(func(t *testing.T, names, imgsz, stride, author, end2end string) {
		meta := map[string]string{}
		for k, v := range map[string]string{"names": names, "imgsz": imgsz, "stride": stride, "author": author, "end2end": end2end} {
			if v != "" {
				meta[k] = v
			}
		}
		spec, ok, err := SpecFromMetadata(meta)
		if err != nil {
			return
		}
		if !ok && (meta["names"] != "" || meta["imgsz"] != "" || meta["stride"] != "") {
			t.Fatalf("names/imgsz/stride given but ok is false: %+v", spec)
		}
		if err := spec.Validate(); err != nil {
			t.Fatalf("accepted metadata gives an invalid spec: %v", err)
		}
		if len(spec.Labels) > labels.MaxClasses {
			t.Fatalf("%d labels", len(spec.Labels))
		}
		if meta["names"] == "" {
			return
		}
		var b strings.Builder
		b.WriteString("{")
		for i, n := range spec.Labels {
			q := "'"
			if strings.Contains(n, q) {
				q = `"`
			}
			fmt.Fprintf(&b, "%d: %s%s%s, ", i, q, n, q)
		}
		b.WriteString("}")
		again, _, err := SpecFromMetadata(map[string]string{"names": b.String()})
		if err != nil || !reflect.DeepEqual(again.Labels, spec.Labels) {
			t.Fatalf("names %q -> %q -> %q: %q, %v", names, spec.Labels, b.String(), again.Labels, err)
		}
	})
}

// FuzzParseSidecar checks that a sidecar ParseSidecar accepts is a valid
// partial spec, stays valid once completed with defaults, and that printing
// it as TOML and parsing that gives the same spec.
func FuzzParseSidecar(f *testing.F) {
	f.Add([]byte("format = \"yolox\"\nlabels_file = \"names.txt\"\n"))
	f.Add([]byte("labels = [\"a\", \"b\"]\n"))
	f.Add([]byte("format = \"fastestv2\"\ninput_width = 352\ninput_height = 352\nanchors = [12.64, 19.39, 37.88, 51.48, 55.71, 138.31, 126.91, 78.23, 131.57, 214.55, 279.92, 258.87]\n"))
	f.Add([]byte("channel_order = \"rgb\"\nscale = 0.00392156862745098\nmean = [0.485, 0.456, 0.406]\nstd = [0.229, 0.224, 0.225]\nresize = \"letterbox\"\npad_value = 114\nprecision = \"int8\"\n"))
	f.Add([]byte("scale = nan\nstd = [inf, 1, 1]\n"))
	f.Add([]byte("input_width = 100000\ninput_height = 100000\n"))
	f.Add([]byte("strides = [8, 16, 32]\nresize = \"stretch\"\nformat = \"end2end\"\n"))
	f.Add([]byte("colour = \"blue\"\n"))
	f.Add([]byte("labels = [\"a\"]\nlabels_file = \"/abs/names\"\n"))
	const path = "/models/m.toml"
	f.Fuzz(func(t *testing.T, data []byte) {
		spec, err := ParseSidecar(data, path)
		if err != nil {
			if !strings.Contains(err.Error(), path) {
				t.Fatalf("error %q does not name the sidecar", err)
			}
			return
		}
		if err := spec.Validate(); err != nil {
			t.Fatalf("accepted sidecar is invalid: %v", err)
		}
		if err := spec.WithDefaults().Validate(); err != nil {
			t.Fatalf("accepted sidecar is invalid once defaults are filled: %v", err)
		}
		var buf bytes.Buffer
		if err := toml.NewEncoder(&buf).Encode(spec); err != nil {
			t.Fatalf("encode %+v: %v", spec, err)
		}
		again, err := ParseSidecar(buf.Bytes(), path)
		if err != nil {
			t.Fatalf("printed sidecar does not parse: %v\n%s", err, buf.Bytes())
		}
		if !reflect.DeepEqual(again, spec) {
			t.Fatalf("round trip changed the spec:\n%+v\n%+v\n%s", spec, again, buf.Bytes())
		}
	})
}
