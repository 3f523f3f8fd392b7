package camera

import (
	"context"
	"time"
)

// pacer spaces reads period apart, like a live camera. The first read is
// immediate; a reader that falls more than one period behind restarts the
// schedule instead of bursting to catch up.
type pacer struct {
	period time.Duration
	next   time.Time
}

func (p *pacer) wait(ctx context.Context) error {
	if p.period <= 0 {
		return nil
	}
	now := time.Now()
	if p.next.IsZero() || now.Sub(p.next) > p.period {
		p.next = now
	}
	if d := p.next.Sub(now); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
	p.next = p.next.Add(p.period)
	return nil
}
