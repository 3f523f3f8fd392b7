package spool

import (
	"testing"
)

// BenchmarkMemoryCycle is one flush of a memory spool: Add, Begin, accept,
// End.
func BenchmarkMemoryCycle(b *testing.B) {
	s := NewMemory(Limits{MaxMessages: 10000})
	m := msg("edgedet/dev/cam0/detections", string(make([]byte, 256)))
	b.ReportAllocs()
	for b.Loop() {
		s.Add(m)
		tx := s.Begin(100)
		tx.AcceptAll()
		s.End(tx)
	}
}

// BenchmarkMemoryFailingPublisher adds while a publisher keeps failing: every
// flush keeps its batch, the spool stays full and drops the oldest.
func BenchmarkMemoryFailingPublisher(b *testing.B) {
	s := NewMemory(Limits{MaxMessages: 1000})
	m := msg("edgedet/dev/cam0/detections", string(make([]byte, 256)))
	b.ReportAllocs()
	for b.Loop() {
		s.Add(m)
		tx := s.Begin(100)
		s.End(tx)
	}
}

// BenchmarkDiskAdd is one durable Add (write and fsync) of one message.
func BenchmarkDiskAdd(b *testing.B) {
	s := openTestDisk(b, b.TempDir(), Limits{}, defaultSegmentSize, nil)
	m := msg("edgedet/dev/cam0/detections", string(make([]byte, 256)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Add(m); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDiskCycle is Add, Begin, accept, End on disk: a segment append
// plus a checkpoint rewrite, each with fsync.
func BenchmarkDiskCycle(b *testing.B) {
	s := openTestDisk(b, b.TempDir(), Limits{}, defaultSegmentSize, nil)
	m := msg("edgedet/dev/cam0/detections", string(make([]byte, 256)))
	b.ReportAllocs()
	for b.Loop() {
		s.Add(m)
		tx := s.Begin(100)
		tx.AcceptAll()
		s.End(tx)
	}
}
