package spool

// Memory is a Spool held in a ring buffer in memory. Its messages are lost
// when the process exits; use Disk to survive restarts.
type Memory struct {
	core
}

// NewMemory returns an empty memory spool bounded by l.
func NewMemory(l Limits) *Memory {
	m := &Memory{}
	m.init(l, nil, nil)
	return m
}
