package report

import (
	"time"

	"github.com/edgedet/edgedet/agent/publish"
	"github.com/edgedet/edgedet/agent/topic"
)

// Motion payloads on topic.Tree.Motion, as Frigate's <camera>/motion.
const (
	MotionOn  = "ON"
	MotionOff = "OFF"
)

// Motion turns one camera's per-frame motion (did the motion detector see
// any?) into its retained motion state on topic.Tree.Motion: "ON" from the
// first frame with motion, "OFF" once no frame has had motion for the off
// delay. Only changes are sent, so the topic does not flap every frame,
// and it stays ON through the short pauses of someone walking.
//
// The delay is measured in frame times, not on a clock of its own: a
// replayed clip holds ON for off delay of its own time, and tests need no
// sleeping. A frame time earlier than the last motion (the source's clock
// stepped back) restarts the delay from that frame.
//
// Motion is not safe for concurrent use; the camera's pipeline stage owns
// it. Update allocates only when it returns a message.
type Motion struct {
	topic    string
	offDelay time.Duration
	on       bool
	last     time.Time // frame time of the latest frame with motion, while on
}

// NewMotion returns the motion state of camera on t.Motion, off.
func NewMotion(t topic.Tree, camera string, offDelay time.Duration) *Motion {
	return &Motion{topic: t.Motion(camera), offDelay: offDelay}
}

// On reports the state last returned.
func (m *Motion) On() bool { return m.on }

// Initial is the "OFF" message to send at start (produced at now): it
// replaces an "ON" a previous run left retained.
func (m *Motion) Initial(now time.Time) publish.Message {
	return m.message(false, now)
}

// Update takes one frame's motion at frame time at and returns the message
// to send, if the state changed: "ON" on motion after OFF; "OFF" on a
// frame without motion at least the off delay after the last one with.
func (m *Motion) Update(moving bool, at time.Time) (publish.Message, bool) {
	switch {
	case moving:
		m.last = at
		if !m.on {
			m.on = true
			return m.message(true, at), true
		}
	case m.on && at.Before(m.last):
		m.last = at
	case m.on && at.Sub(m.last) >= m.offDelay:
		m.on = false
		return m.message(false, at), true
	}
	return publish.Message{}, false
}

// Stop returns "OFF" if the state is ON (the camera stops: nothing will
// turn it off later).
func (m *Motion) Stop(now time.Time) (publish.Message, bool) {
	if !m.on {
		return publish.Message{}, false
	}
	m.on = false
	return m.message(false, now), true
}

func (m *Motion) message(on bool, at time.Time) publish.Message {
	p := MotionOff
	if on {
		p = MotionOn
	}
	return publish.Message{Topic: m.topic, Payload: []byte(p), QoS: 1, Retained: true, Time: at}
}
