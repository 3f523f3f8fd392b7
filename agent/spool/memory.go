package spool

// Memory is a Spool held in a ring buffer in memory. Its messages are lost
// when the process exits; use Disk to survive restarts.
type Memory struct {
	core
}

// NewMemory returns an empty memory spool bounded by l. Its clock is
// SystemClock unless an option says otherwise.
func NewMemory(l Limits, opts ...Option) *Memory {
	o := buildOptions(opts)
	m := &Memory{}
	m.init(l, o.clock, nil, nil)
	return m
}
