package topic

import (
	"maps"
	"strings"
	"testing"
	"unicode/utf8"
)

// TestTree pins every topic name of the tree documented on the package.
func TestTree(t *testing.T) {
	tr := Tree{Prefix: "home/edgedet", Device: "pi5"}
	cases := []struct{ got, want string }{
		{tr.Available(), "home/edgedet/pi5/available"},
		{tr.Stats(), "home/edgedet/pi5/stats"},
		{tr.Detections("front"), "home/edgedet/pi5/front/detections"},
		{tr.Events("front"), "home/edgedet/pi5/front/events"},
		{tr.EventsFilter(), "home/edgedet/pi5/+/events"},
		{tr.Count("front", "dog"), "home/edgedet/pi5/front/dog"},
		{tr.Count("front", "traffic light"), "home/edgedet/pi5/front/traffic light"},
		{tr.Count("front", ""), "home/edgedet/pi5/front/_"},
		{tr.Count("front", "nul\x00bad\xff"), "home/edgedet/pi5/front/nul_bad_"},
		{tr.Count("front", "café"), "home/edgedet/pi5/front/café"},
		{tr.Snapshot("front", "dog"), "home/edgedet/pi5/front/dog/snapshot"},
		{tr.Snapshot("front", "a/b+c#d"), "home/edgedet/pi5/front/a_b_c_d/snapshot"},
		{tr.ZoneCount("front", "drive", "car"), "home/edgedet/pi5/front/zone/drive/car"},
		{tr.ZoneCount("front", "drive", "a/b"), "home/edgedet/pi5/front/zone/drive/a_b"},
		{tr.Set("porch", "detect"), "home/edgedet/pi5/porch/detect/set"},
		{tr.State("porch", "threshold"), "home/edgedet/pi5/porch/threshold/state"},
		{tr.SetFilter(), "home/edgedet/pi5/+/+/set"},
		{Discovery("homeassistant", "sensor", "edgedet_pi5", "front_person_count"),
			"homeassistant/sensor/edgedet_pi5/front_person_count/config"},
	}
	for _, c := range cases {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}

func TestParseSet(t *testing.T) {
	tr := Tree{Prefix: "edgedet", Device: "pi"}
	for name, want := range map[string]struct {
		camera, setting string
		ok              bool
	}{
		"edgedet/pi/porch/detect/set":     {"porch", "detect", true},
		"edgedet/pi/porch/zoom/set":       {"porch", "zoom", true}, // the caller checks the setting
		"edgedet/pi//detect/set":          {"", "detect", true},
		"edgedet/pi/porch/detect/state":   {"", "", false},
		"edgedet/pi/porch/detect/set/x":   {"", "", false},
		"edgedet/pi/detect/set":           {"", "", false},
		"other/pi/porch/detect/set":       {"", "", false},
		"edgedet/pi2/porch/detect/set":    {"", "", false},
		"edgedet/pi":                      {"", "", false},
		"edgedet/pi/porch/threshold/set/": {"", "", false},
	} {
		cam, s, ok := tr.ParseSet(name)
		if cam != want.camera || s != want.setting || ok != want.ok {
			t.Errorf("ParseSet(%q) = %q, %q, %v; want %q, %q, %v", name, cam, s, ok, want.camera, want.setting, want.ok)
		}
	}
}

// FuzzParseSet: a topic ParseSet accepts is the Set topic of the camera
// and setting it returns, and neither holds a level separator.
func FuzzParseSet(f *testing.F) {
	f.Add("edgedet", "box1", "edgedet/box1/porch/detect/set")
	f.Add("a/b", "c", "a/b/c//detect/set")
	f.Add("", "", "//x/detect/set/extra")
	f.Fuzz(func(t *testing.T, prefix, device, name string) {
		tr := Tree{Prefix: prefix, Device: device}
		cam, s, ok := tr.ParseSet(name)
		if !ok {
			if cam != "" || s != "" {
				t.Fatalf("%q: not a /set topic but camera %q setting %q", name, cam, s)
			}
			return
		}
		if strings.Contains(cam, "/") || strings.Contains(s, "/") {
			t.Fatalf("%q: camera %q setting %q", name, cam, s)
		}
		if got := tr.Set(cam, s); got != name {
			t.Fatalf("%q parses to (%q, %q), whose /set topic is %q", name, cam, s, got)
		}
	})
}

// FuzzLevel: Level always returns one non-empty, valid UTF-8 level without
// wildcards or NUL, and keeps a string that already is one.
func FuzzLevel(f *testing.F) {
	for _, s := range []string{"", "person", "traffic light", "a/b", "+", "#", "\x00", "\xff", "café"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l := Level(s)
		if l == "" || !utf8.ValidString(l) || strings.ContainsAny(l, "+#/\x00") {
			t.Fatalf("Level(%q) = %q", s, l)
		}
		if s != "" && utf8.ValidString(s) && !strings.ContainsAny(s, "+#/\x00") && l != s {
			t.Fatalf("Level(%q) = %q, want it unchanged", s, l)
		}
	})
}

// TestFrigateTree pins the topic names of Frigate mode: no device level,
// one events topic, zones at the top level, the motion and /active topics.
func TestFrigateTree(t *testing.T) {
	tr := Tree{Prefix: "frigate", Device: "pi5", Frigate: true}
	cases := []struct{ got, want string }{
		{tr.Available(), "frigate/available"},
		{tr.Stats(), "frigate/stats"},
		{tr.Events("front"), "frigate/events"},
		{tr.Events("back"), "frigate/events"},
		{tr.EventsFilter(), "frigate/events"},
		{tr.Count("front", "dog"), "frigate/front/dog"},
		{tr.Count("front", AllLabel), "frigate/front/all"},
		{tr.ActiveCount("front", "dog"), "frigate/front/dog/active"},
		{tr.Snapshot("front", "dog"), "frigate/front/dog/snapshot"},
		{tr.Motion("front"), "frigate/front/motion"},
		{tr.ZoneCount("front", "drive", "car"), "frigate/drive/car"},
		{tr.ZoneCount("front", "drive", "a/b"), "frigate/drive/a_b"},
		{tr.ZoneActiveCount("front", "drive", "car"), "frigate/drive/car/active"},
		{tr.Set("porch", "detect"), "frigate/porch/detect/set"},
		{tr.State("porch", "detect"), "frigate/porch/detect/state"},
		{tr.SetFilter(), "frigate/+/+/set"},
		{tr.Detections("front"), "frigate/front/detections"},
	}
	for _, c := range cases {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
	native := Tree{Prefix: "edgedet", Device: "pi5"}
	for _, c := range []struct{ got, want string }{
		{native.Motion("front"), "edgedet/pi5/front/motion"},
		{native.ActiveCount("front", "dog"), "edgedet/pi5/front/dog/active"},
		{native.ZoneActiveCount("front", "drive", "car"), "edgedet/pi5/front/zone/drive/car/active"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}

func TestFrigateParseSet(t *testing.T) {
	tr := Tree{Prefix: "site/frigate", Device: "pi", Frigate: true}
	for name, want := range map[string]struct {
		camera, setting string
		ok              bool
	}{
		"site/frigate/porch/detect/set":    {"porch", "detect", true},
		"site/frigate/pi/porch/detect/set": {"", "", false}, // the native layout is not Frigate's
		"site/frigate/porch/detect/state":  {"", "", false},
		"frigate/porch/detect/set":         {"", "", false},
	} {
		cam, s, ok := tr.ParseSet(name)
		if cam != want.camera || s != want.setting || ok != want.ok {
			t.Errorf("ParseSet(%q) = %q, %q, %v; want %q, %q, %v", name, cam, s, ok, want.camera, want.setting, want.ok)
		}
	}
}

// TestWithAll: the "all" count is the sum of the others (negatives add
// nothing, a stale "all" is replaced), and the input is left alone.
func TestWithAll(t *testing.T) {
	in := map[string]int{"dog": 2, "person": 1, "car": -1, AllLabel: 99}
	got := WithAll(in)
	want := map[string]int{"dog": 2, "person": 1, "car": -1, AllLabel: 3}
	if !maps.Equal(got, want) {
		t.Errorf("WithAll = %v, want %v", got, want)
	}
	if in[AllLabel] != 99 || len(in) != 4 {
		t.Errorf("input changed: %v", in)
	}
	if got := WithAll(nil); !maps.Equal(got, map[string]int{AllLabel: 0}) {
		t.Errorf("WithAll(nil) = %v", got)
	}
}
