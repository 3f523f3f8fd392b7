package report

import (
	"testing"
	"time"
)

// TestMotionHoldOff drives the motion state with frame times alone: ON at
// the first motion, held through pauses shorter than the off delay, OFF on
// the first frame at least the delay after the last motion, no repeats,
// and a clock stepping back restarts the delay instead of holding ON.
func TestMotionHoldOff(t *testing.T) {
	const delay = 5 * time.Second
	m := NewMotion(testTopics, "front", delay)
	init := m.Initial(t0)
	if init.Topic != "edgedet/pi5/front/motion" || string(init.Payload) != "OFF" || !init.Retained || init.QoS != 1 {
		t.Fatalf("initial %s=%s retained %v qos %d", init.Topic, init.Payload, init.Retained, init.QoS)
	}
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	steps := []struct {
		s      float64
		moving bool
		want   string // "" = no message
	}{
		{0, false, ""},
		{1, true, "ON"},
		{1.1, true, ""},
		{2, false, ""},
		{5.9, false, ""}, // 4.9 s after the last motion
		{6, true, ""},    // motion again: the delay restarts
		{10.9, false, ""},
		{11, false, "OFF"}, // 5 s after the last motion
		{11.1, false, ""},
		{20, false, ""},
		{21, true, "ON"},
		{3, false, ""}, // the clock stepped back: the delay restarts from here
		{7.9, false, ""},
		{8, false, "OFF"},
	}
	on := false
	for _, s := range steps {
		msg, ok := m.Update(s.moving, at(s.s))
		got := ""
		if ok {
			got = string(msg.Payload)
			if msg.Topic != "edgedet/pi5/front/motion" || !msg.Retained || msg.QoS != 1 || !msg.Time.Equal(at(s.s)) {
				t.Errorf("t=%v: message %s retained %v qos %d time %v", s.s, msg.Topic, msg.Retained, msg.QoS, msg.Time)
			}
		}
		if got != s.want {
			t.Errorf("t=%v moving=%v: got %q, want %q", s.s, s.moving, got, s.want)
		}
		if got != "" {
			on = got == "ON"
		}
		if m.On() != on {
			t.Errorf("t=%v: On() = %v, want %v", s.s, m.On(), on)
		}
	}
	if _, ok := m.Stop(at(30)); ok {
		t.Error("Stop while OFF sent a message")
	}
	m.Update(true, at(31))
	if msg, ok := m.Stop(at(32)); !ok || string(msg.Payload) != "OFF" {
		t.Errorf("Stop while ON: %q, %v; want OFF", msg.Payload, ok)
	}
	if m.On() {
		t.Error("On after Stop")
	}
}

func TestMotionFrigateTopic(t *testing.T) {
	m := NewMotion(frigateTopics, "front", time.Second)
	if msg, ok := m.Update(true, t0); !ok || msg.Topic != "frigate/front/motion" || string(msg.Payload) != "ON" {
		t.Errorf("got %s=%s (%v), want frigate/front/motion=ON", msg.Topic, msg.Payload, ok)
	}
}
