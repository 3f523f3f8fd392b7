package report

import (
	"fmt"
	"testing"
	"time"

	"github.com/edgedet/edgedet/agent/publish"
)

func summary(msgs []publish.Message) string {
	s := ""
	for _, m := range msgs {
		s += fmt.Sprintf("%s=%s ", m.Topic, m.Payload)
	}
	return s
}

func TestCounts(t *testing.T) {
	c := NewCounts(testTopics, "front")
	now := t0
	steps := []struct {
		name    string
		current map[string]int
		want    string
	}{
		{"nothing yet", nil, ""},
		{"first objects", map[string]int{"dog": 1, "person": 2}, "edgedet/pi5/front/dog=1 edgedet/pi5/front/person=2 "},
		{"unchanged", map[string]int{"person": 2, "dog": 1}, ""},
		{"one changes", map[string]int{"dog": 1, "person": 3}, "edgedet/pi5/front/person=3 "},
		{"drop to absent", map[string]int{"person": 3}, "edgedet/pi5/front/dog=0 "},
		{"still absent", map[string]int{"person": 3}, ""},
		{"explicit zero", map[string]int{"person": 0}, "edgedet/pi5/front/person=0 "},
		{"all gone", map[string]int{}, ""},
		{"label with space", map[string]int{"traffic light": 1}, "edgedet/pi5/front/traffic light=1 "},
		{"start-up zero clears", map[string]int{"cat": 0, "traffic light": 1}, "edgedet/pi5/front/cat=0 "},
		{"zero stays zero", map[string]int{"cat": 0}, "edgedet/pi5/front/traffic light=0 "},
		{"negative is zero", map[string]int{"cat": -1}, ""},
	}
	for _, s := range steps {
		now = now.Add(time.Second)
		msgs := c.Update(s.current, now)
		if got := summary(msgs); got != s.want {
			t.Errorf("%s: got %q, want %q", s.name, got, s.want)
		}
		for _, m := range msgs {
			if !m.Retained || m.QoS != 1 || !m.Time.Equal(now) {
				t.Errorf("%s: %s retained %v qos %d time %v, want retained QoS 1 at %v", s.name, m.Topic, m.Retained, m.QoS, m.Time, now)
			}
		}
	}
}
