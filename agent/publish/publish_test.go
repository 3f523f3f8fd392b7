package publish

import "testing"

// Size is what the spool's max_bytes counts: topic plus payload, nothing
// for the header fields.
func TestMessageSize(t *testing.T) {
	for _, tc := range []struct {
		m    Message
		want int64
	}{
		{Message{}, 0},
		{Message{Topic: "edgedet/pi/front/events"}, 23},
		{Message{Payload: []byte("12345")}, 5},
		{Message{ID: 9, Topic: "a/b", Payload: []byte("ON"), QoS: 2, Retained: true}, 5},
	} {
		if got := tc.m.Size(); got != tc.want {
			t.Errorf("%+v: Size = %d, want %d", tc.m, got, tc.want)
		}
	}
}
