// Package control holds the run-time settings of each camera that MQTT
// subscribers may change without a restart — detection on/off and the
// score threshold — parses the /set payloads that change them and builds
// the retained /state messages that report them (topics from package
// topic).
package control

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/edgedet/edgedet/agent/publish"
	"github.com/edgedet/edgedet/agent/topic"
)

// Setting names a controllable setting; it is the topic level before /set
// and /state.
type Setting string

// The settings a camera has.
const (
	SettingDetect    Setting = "detect"
	SettingThreshold Setting = "threshold"
)

// Camera is one camera's live settings. Its methods are safe for
// concurrent use: the pipeline reads them on every frame while MQTT
// handlers write them.
type Camera struct {
	name      string
	detect    atomic.Bool
	threshold atomic.Uint32 // float32 bits
}

// NewCamera starts with detection on and the given score threshold.
func NewCamera(name string, threshold float32) *Camera {
	c := &Camera{name: name}
	c.detect.Store(true)
	c.threshold.Store(math.Float32bits(threshold))
	return c
}

// Name is the camera's name.
func (c *Camera) Name() string { return c.name }

// Detect reports whether detection is on.
func (c *Camera) Detect() bool { return c.detect.Load() }

// Threshold is the current minimum score of reported objects.
func (c *Camera) Threshold() float32 { return math.Float32frombits(c.threshold.Load()) }

// SetThreshold sets the score threshold (a config reload).
func (c *Camera) SetThreshold(t float32) { c.threshold.Store(math.Float32bits(t)) }

// MaxPayload is the longest /set payload Set reads; every valid one is a
// few bytes ("OFF", "0.35"), with room for surrounding white space.
const MaxPayload = 64

// ErrInvalid marks a payload that was rejected; the setting is unchanged.
var ErrInvalid = errors.New("invalid payload")

// Set applies a /set payload: "ON"/"OFF" (any case) for detect, a number
// in [0, 1] for threshold. It returns whether the value changed; an
// invalid payload returns an error wrapping ErrInvalid and changes nothing.
func (c *Camera) Set(s Setting, payload []byte) (changed bool, err error) {
	if len(payload) > MaxPayload {
		// Reject before copying: the payload size is the publisher's choice.
		return false, fmt.Errorf("camera %q %s: %w: %d bytes (at most %d)", c.name, s, ErrInvalid, len(payload), MaxPayload)
	}
	v := strings.TrimSpace(string(payload))
	switch s {
	case SettingDetect:
		var on bool
		switch strings.ToUpper(v) {
		case "ON":
			on = true
		case "OFF":
		default:
			return false, fmt.Errorf("camera %q detect: %w %q (want ON or OFF)", c.name, ErrInvalid, clip(v))
		}
		return c.detect.Swap(on) != on, nil
	case SettingThreshold:
		f, perr := strconv.ParseFloat(v, 32)
		if perr != nil || math.IsNaN(f) || f < 0 || f > 1 {
			return false, fmt.Errorf("camera %q threshold: %w %q (want a number from 0 to 1)", c.name, ErrInvalid, clip(v))
		}
		bits := math.Float32bits(float32(f))
		return c.threshold.Swap(bits) != bits, nil
	}
	return false, fmt.Errorf("camera %q: unknown setting %q", c.name, s)
}

// clip keeps an invalid payload short in logs, cutting at a rune boundary.
func clip(s string) string {
	if len(s) <= 32 {
		return s
	}
	n := 32
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// ParseSet splits a topic of t's /set filter (t.SetFilter) into camera and
// setting; ok is false for a topic that is not the /set topic of a setting
// a camera has.
func ParseSet(t topic.Tree, name string) (camera string, s Setting, ok bool) {
	camera, setting, ok := t.ParseSet(name)
	if s = Setting(setting); !ok || (s != SettingDetect && s != SettingThreshold) {
		return "", "", false
	}
	return camera, s, true
}

// StateMessages are the retained /state messages (QoS 1, Time now) for c's
// settings, on t.State.
func StateMessages(t topic.Tree, c *Camera, now time.Time) []publish.Message {
	detect := "OFF"
	if c.Detect() {
		detect = "ON"
	}
	th := strconv.FormatFloat(float64(c.Threshold()), 'f', -1, 32)
	return []publish.Message{
		{Topic: t.State(c.name, string(SettingDetect)), Payload: []byte(detect), QoS: 1, Retained: true, Time: now},
		{Topic: t.State(c.name, string(SettingThreshold)), Payload: []byte(th), QoS: 1, Retained: true, Time: now},
	}
}
