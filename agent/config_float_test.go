package agent

import (
	"reflect"
	"slices"
	"strings"
	"testing"
)

// floatKey is one float config key: the TOML that sets it to %s (a value
// or, for arrays, the first element), appended to minimal's text, and how
// its error names it.
type floatKey struct {
	path string // the key as found by floatPaths
	toml string
	name string // in the error message
	msg  string // the whole message, %s the value, when not "name: value is not a …"
}

var floatKeys = []floatKey{
	{"detector.score_threshold", "[detector]\nscore_threshold = %s\n", "detector.score_threshold", ""},
	{"detector.iou_threshold", "[detector]\niou_threshold = %s\n", "detector.iou_threshold", ""},
	{"detector.min_area", "[detector]\nmin_area = %s\n", "detector.min_area", ""},
	{"detector.min_scores", "[detector.min_scores]\nperson = %s\n", "detector.min_scores.person", ""},
	{"detector.scale", "[detector]\nscale = %s\n", "detector.scale", ""},
	{"detector.mean", "[detector]\nmean = [%s, 0.0, 0.0]\n", "detector.mean[0]", ""},
	{"detector.std", "[detector]\nstd = [1.0, %s, 1.0]\n", "detector.std[1]", ""},
	{"detector.anchors", "[detector]\nanchors = [1.0, 1.0, 1.0, 1.0, %s, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]\n", "detector.anchors[4]", ""},
	{"events.iou_match", "[events]\niou_match = %s\n", "events.iou_match", ""},
	{"events.move_threshold", "[events]\nmove_threshold = %s\n", "events.move_threshold", ""},
	{"http.live_fps", "[http]\nlive_fps = %s\n", "http.live_fps", ""},
	{"camera.fps", "[[camera]]\nname = \"back\"\nsource = \"frames\"\nfps = %s\n", `camera "back": fps`, ""},
	{"camera.detect_fps", "[[camera]]\nname = \"back\"\nsource = \"frames\"\ndetect_fps = %s\n", `camera "back": detect_fps`, ""},
	{"camera.motion.learning_rate", "[camera.motion]\nenabled = true\nlearning_rate = %s\n", "camera[0].motion.learning_rate", ""},
	{"camera.zone.points", "[events]\nenabled = true\n[[camera.zone]]\nname = \"drive\"\npoints = [[0.0, 0.0], [10.0, %s], [0.0, 10.0]]\n", "camera[0].zone[0].points", "camera[0].zone[0].points: point 1 (10, %s) is not finite"},
	{"camera.object_mask", "[[camera]]\nname = \"back\"\nsource = \"frames\"\nobject_mask = [[[0.0, 0.0], [10.0, %s], [0.0, 10.0]]]\n", "camera[1].object_mask", "camera[1].object_mask: polygon 0: point 1 (10, %s) is not finite"},
	{"camera.motion.lightning_threshold", "[camera.motion]\nenabled = true\nlightning_threshold = %s\n", "camera[0].motion.lightning_threshold", ""},
}

// withKey merges a [detector] (or other) table the test appends into
// the one minimal already has, since TOML forbids defining a table twice.
func withKey(text, add string) string {
	header, body, _ := strings.Cut(add, "\n")
	if strings.Contains(text, header+"\n") && !strings.HasPrefix(header, "[[") {
		return strings.Replace(text, header+"\n", header+"\n"+body, 1)
	}
	return text + "\n" + add
}

// TestFloatKeysRejectNaNAndInf: every float key refuses NaN (which passes
// a plain range test: score_threshold = nan turned NMS off) and ±Inf, with
// the key and the value named.
func TestFloatKeysRejectNaNAndInf(t *testing.T) {
	dir, text := minimal(t)
	for _, k := range floatKeys {
		for _, v := range []struct{ toml, shown string }{{"nan", "NaN"}, {"inf", "+Inf"}, {"-inf", "-Inf"}, {"+nan", "NaN"}} {
			t.Run(k.path+"="+v.toml, func(t *testing.T) {
				cfg := withKey(text, strings.Replace(k.toml, "%s", v.toml, 1))
				_, err := Parse([]byte(cfg), dir)
				want := k.name + ": " + v.shown + " is not a "
				if k.msg != "" {
					want = strings.Replace(k.msg, "%s", v.shown, 1)
				}
				// The decoder itself refuses ±Inf for a float32, naming the
				// key (an array's, without the index) and line.
				base, _, _ := strings.Cut(k.name, "[")
				decoder := base + ": " + v.shown + " is out of range for float32"
				if err == nil || !strings.Contains(err.Error(), want) && !strings.Contains(err.Error(), decoder) {
					t.Errorf("error %v does not contain %q\nconfig:\n%s", err, want, cfg)
				}
			})
		}
		// The same key with a sane value parses (the test edits are right).
		t.Run(k.path+"=valid", func(t *testing.T) {
			cfg := withKey(text, strings.Replace(k.toml, "%s", "0.5", 1))
			if _, err := Parse([]byte(cfg), dir); err != nil {
				t.Errorf("%v\nconfig:\n%s", err, cfg)
			}
		})
	}
}

// TestFloatKeysCovered: floatKeys lists every float key of Config, so a
// new one cannot skip the NaN/Inf test.
func TestFloatKeysCovered(t *testing.T) {
	var listed []string
	for _, k := range floatKeys {
		listed = append(listed, k.path)
	}
	for _, p := range floatPaths(reflect.TypeFor[Config](), "") {
		if !slices.Contains(listed, p) {
			t.Errorf("float key %s is not in floatKeys", p)
		}
	}
}

// floatPaths lists the TOML paths of the float fields (and slices and maps
// of floats) under t.
func floatPaths(t reflect.Type, prefix string) []string {
	var out []string
	for f := range t.Fields() {
		if !f.IsExported() {
			continue
		}
		tag, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		if tag == "-" {
			continue
		}
		path := prefix
		if !f.Anonymous {
			name := tag
			if name == "" {
				name = f.Name
			}
			path = strings.TrimPrefix(prefix+"."+name, ".")
		}
		ft := f.Type
		for ft.Kind() == reflect.Pointer || ft.Kind() == reflect.Slice || ft.Kind() == reflect.Map || ft.Kind() == reflect.Array {
			ft = ft.Elem()
		}
		switch ft.Kind() {
		case reflect.Float32, reflect.Float64:
			out = append(out, path)
		case reflect.Struct:
			out = append(out, floatPaths(ft, path)...)
		}
	}
	return out
}

// TestTypeErrorsNameKey: a value of the wrong type is reported with its
// line, its key and both types in words.
func TestTypeErrorsNameKey(t *testing.T) {
	dir, text := minimal(t)
	for _, tc := range []struct{ add, want string }{
		{"[detector]\nscore_threshold = \"high\"\n", "line 3: detector.score_threshold: expected a number, got a string"},
		{"[detector]\nthreads = 1.5\n", "line 3: detector.threads: expected an integer, got a number"},
		{"[mqtt]\nqos = \"one\"\n", "line 6: mqtt.qos: expected an integer, got a string"},
		{"[http]\nlisten = 9464\n", "line 14: http.listen: expected a string, got an integer"},
		{"[http]\nmetrics = \"yes\"\n", "line 14: http.metrics: expected true or false, got a string"},
		{"[detector.min_scores]\nperson = true\n", "line 14: detector.min_scores.person: expected a number, got true or false"},
		{"[detector]\nmean = 0.5\n", "line 3: detector.mean: expected an array, got a number"},
		{"[log]\nstats_interval = \"5q\"\n", `line 14: log.stats_interval: invalid duration "5q"`},
		// A bare number is refused, not read as nanoseconds (which a
		// plain time.Duration field would do: max_age = 3 → 3ns).
		{"[events]\nmax_age = 3\n", `line 14: events.max_age: invalid duration "3" (want e.g. "500ms", "30s", "1m")`},
		{"[events]\nenabled = 1\n", "line 14: events.enabled: expected true or false, got an integer"},
		{"[[camera]]\nname = \"back\"\nsource = \"frames\"\nfps = \"fast\"\n", "line 16: camera.fps: expected a number, got a string"},
	} {
		cfg := withKey(text, tc.add)
		_, err := Parse([]byte(cfg), dir)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("error %v does not contain %q\nconfig:\n%s", err, tc.want, cfg)
		}
	}
	// A syntax error names the line, and the key only when it is on it.
	_, err := Parse([]byte(text+"\n[http]\nlisten =\n"), dir)
	if err == nil || !strings.Contains(err.Error(), "line 14: http.listen: ") {
		t.Errorf("syntax error: %v", err)
	}
	_, err = Parse([]byte(text+"\n[http\n"), dir)
	if err == nil || !strings.Contains(err.Error(), "line 14: ") || strings.Contains(err.Error(), "source") {
		t.Errorf("bad table header: %v", err)
	}
}
