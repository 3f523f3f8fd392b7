package control

import (
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/edgedet/edgedet/agent/topic"
)

func TestCameraSet(t *testing.T) {
	c := NewCamera("porch", 0.3)
	if !c.Detect() || c.Threshold() != 0.3 {
		t.Fatalf("initial state detect=%v threshold=%v", c.Detect(), c.Threshold())
	}
	cases := []struct {
		s       Setting
		payload string
		changed bool
		bad     bool
	}{
		{SettingDetect, "OFF", true, false},
		{SettingDetect, "off", false, false},
		{SettingDetect, " On ", true, false},
		{SettingDetect, "maybe", false, true},
		{SettingThreshold, "0.55", true, false},
		{SettingThreshold, "0.55", false, false},
		{SettingThreshold, "1.5", false, true},
		{SettingThreshold, "-0.1", false, true},
		{SettingThreshold, "NaN", false, true},
		{SettingThreshold, "high", false, true},
	}
	for _, tc := range cases {
		changed, err := c.Set(tc.s, []byte(tc.payload))
		if tc.bad != (err != nil) || (err != nil && !errors.Is(err, ErrInvalid)) {
			t.Errorf("%s %q: err %v, want invalid=%v", tc.s, tc.payload, err, tc.bad)
		}
		if changed != tc.changed {
			t.Errorf("%s %q: changed %v, want %v", tc.s, tc.payload, changed, tc.changed)
		}
	}
	if !c.Detect() || c.Threshold() != 0.55 {
		t.Fatalf("rejected payloads changed the state: detect=%v threshold=%v", c.Detect(), c.Threshold())
	}
	if _, err := c.Set("zoom", []byte("2")); err == nil {
		t.Error("unknown setting accepted")
	}
}

// TestParseSetAndState: ParseSet accepts the /set topics of the known
// settings only, and StateMessages reports both settings, retained.
func TestParseSetAndState(t *testing.T) {
	tp := topic.Tree{Prefix: "edgedet", Device: "pi"}
	for name, want := range map[string]struct {
		cam string
		s   Setting
		ok  bool
	}{
		"edgedet/pi/porch/detect/set":    {"porch", SettingDetect, true},
		"edgedet/pi/porch/threshold/set": {"porch", SettingThreshold, true},
		"edgedet/pi/porch/zoom/set":      {"", "", false},
		"edgedet/pi/porch/detect/state":  {"", "", false},
		"other/pi/porch/detect/set":      {"", "", false},
	} {
		cam, s, ok := ParseSet(tp, name)
		if cam != want.cam || s != want.s || ok != want.ok {
			t.Errorf("ParseSet(%q) = %q %q %v", name, cam, s, ok)
		}
	}
	c := NewCamera("porch", 0.25)
	c.Set(SettingDetect, []byte("OFF"))
	msgs := StateMessages(tp, c, time.Unix(0, 0))
	if len(msgs) != 2 || msgs[0].Topic != "edgedet/pi/porch/detect/state" || string(msgs[0].Payload) != "OFF" ||
		!msgs[0].Retained || msgs[0].QoS != 1 || msgs[1].Topic != "edgedet/pi/porch/threshold/state" || string(msgs[1].Payload) != "0.25" ||
		!msgs[1].Retained || msgs[1].QoS != 1 {
		t.Fatalf("state messages %+v", msgs)
	}
}

// TestSetBoundsPayload: a /set payload is copied and trimmed only when it
// is short; a 1 MB one (white space around a valid value) is refused, and
// an invalid payload is clipped in the error at a rune boundary.
func TestSetBoundsPayload(t *testing.T) {
	c := NewCamera("porch", 0.3)
	pad := strings.Repeat(" ", 1<<20)
	changed, err := c.Set(SettingThreshold, []byte(pad+"0.5"+pad))
	if !errors.Is(err, ErrInvalid) || changed || c.Threshold() != 0.3 || !strings.Contains(err.Error(), "2097155 bytes") {
		t.Fatalf("1 MB payload: changed=%v err=%v threshold=%v", changed, err, c.Threshold())
	}
	_, err = c.Set(SettingDetect, []byte(strings.Repeat("a", 31)+"ééé"))
	if err == nil || !utf8.ValidString(err.Error()) || strings.Contains(err.Error(), `\x`) {
		t.Fatalf("clipped payload must stay valid UTF-8: %q", err)
	}
}
