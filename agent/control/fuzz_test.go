package control

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/edgedet/edgedet/agent/topic"
)

// FuzzSet applies a fuzzed /set payload to each setting. A rejected one
// wraps ErrInvalid and changes nothing; an accepted one leaves detect
// ON/OFF as asked and the threshold a number in [0, 1] that the retained
// /state payload spells exactly.
func FuzzSet(f *testing.F) {
	for _, p := range []string{"ON", "off", " On\r\n", "maybe", "0.55", "1", "0", "-0", "1.5", "NaN", "+Inf",
		"0x1p-2", "1e-50", "   0.35   ", "\xff\xfe", strings.Repeat("9", 70)} {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, payload string) {
		c := NewCamera("porch", 0.3)
		c.detect.Store(false)
		for _, s := range []Setting{SettingDetect, SettingThreshold} {
			beforeDetect, beforeThreshold := c.Detect(), c.Threshold()
			changed, err := c.Set(s, []byte(payload))
			if err != nil {
				if !errors.Is(err, ErrInvalid) || !utf8.ValidString(err.Error()) && utf8.ValidString(payload) {
					t.Fatalf("%s %q: error %q", s, payload, err)
				}
				if changed || c.Detect() != beforeDetect || c.Threshold() != beforeThreshold {
					t.Fatalf("%s %q: rejected payload changed the state", s, payload)
				}
				continue
			}
			if len(payload) > MaxPayload {
				t.Fatalf("%s: accepted a %d-byte payload", s, len(payload))
			}
			switch s {
			case SettingDetect:
				if want := strings.EqualFold(strings.TrimSpace(payload), "ON"); c.Detect() != want || changed != (want != beforeDetect) {
					t.Fatalf("detect %q: detect=%v changed=%v", payload, c.Detect(), changed)
				}
			case SettingThreshold:
				th := c.Threshold()
				if math.IsNaN(float64(th)) || th < 0 || th > 1 {
					t.Fatalf("threshold %q: %g", payload, th)
				}
				state := string(StateMessages(topic.Tree{Prefix: "p", Device: "d"}, c, time.Time{})[1].Payload)
				again := NewCamera("x", 0.9)
				if _, err := again.Set(SettingThreshold, []byte(state)); err != nil || again.Threshold() != th {
					t.Fatalf("threshold %q: state %q reads back as %g, %v", payload, state, again.Threshold(), err)
				}
			}
		}
	})
}

// FuzzParseSet checks that a topic ParseSet accepts is the /set topic of
// the camera and setting it returns.
func FuzzParseSet(f *testing.F) {
	f.Add("edgedet", "box1", "edgedet/box1/porch/detect/set")
	f.Add("edgedet", "box1", "edgedet/box1/porch/threshold/set")
	f.Add("edgedet", "box1", "edgedet/box1/porch/threshold/state")
	f.Add("a/b", "c", "a/b/c//detect/set")
	f.Add("", "", "//x/detect/set/extra")
	f.Fuzz(func(t *testing.T, prefix, device, name string) {
		tp := topic.Tree{Prefix: prefix, Device: device}
		camera, s, ok := ParseSet(tp, name)
		if !ok {
			if camera != "" || s != "" {
				t.Fatalf("%q: not a /set topic but camera %q setting %q", name, camera, s)
			}
			return
		}
		if strings.Contains(camera, "/") || (s != SettingDetect && s != SettingThreshold) {
			t.Fatalf("%q: camera %q setting %q", name, camera, s)
		}
		if got := tp.Set(camera, string(s)); got != name {
			t.Fatalf("%q parses to (%q, %q), whose /set topic is %q", name, camera, s, got)
		}
	})
}
