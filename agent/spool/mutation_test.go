package spool

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"strings"
	"testing"
	"time"
)

// Tests here pin behaviours that mutation testing (make mutate) showed the
// other tests did not: each one fails for a specific operator change.

// A version 1 record whose checksum is right but whose body does not decode
// (its topic length runs past the body) is damage from there on, not a
// message with an empty topic.
func TestParseSegmentV1UndecodableBodyIsDamage(t *testing.T) {
	seg := segmentV1(1, time.Date(2019, 5, 6, 7, 8, 9, 0, time.UTC), "a")
	badAt := len(seg)
	body := binary.LittleEndian.AppendUint64(nil, 2)
	body = binary.LittleEndian.AppendUint64(body, 0)
	body = append(body, 1, 0)              // QoS, flags
	body = binary.AppendUvarint(body, 100) // topic length: more than is left
	body = append(body, "ab"...)
	seg = binary.LittleEndian.AppendUint32(seg, uint32(len(body)))
	seg = binary.LittleEndian.AppendUint32(seg, crc32.Checksum(body, castagnoli))
	seg = append(seg, body...)

	sc := parseSegmentV1(seg)
	if len(sc.recs) != 1 || sc.recs[0].ID != 1 {
		t.Fatalf("records %+v, want only ID 1", sc.recs)
	}
	if len(sc.damage) != 1 {
		t.Fatalf("damage %+v, want one range", sc.damage)
	}
	if d := sc.damage[0]; d.off != badAt || d.end != len(seg) || !strings.Contains(d.cause, "topic length") {
		t.Errorf("damage %+v, want [%d, %d) for the topic length", d, badAt, len(seg))
	}
}

// An index equal to the number of messages is out of range like any other:
// Accept and Reject ignore it, and the messages stay.
func TestTxIndexAtLength(t *testing.T) {
	for _, c := range constructors() {
		t.Run(c.name, func(t *testing.T) {
			s := c.open(t, Limits{})
			addN(t, s, 2)
			tx := s.Begin(10)
			tx.Accept(2)
			tx.Reject(2)
			s.End(tx)
			if st := s.Stats(); st.Delivered != 0 || st.DroppedRejected != 0 {
				t.Errorf("stats %+v after marking index 2 of 2 messages, want nothing delivered or rejected", st)
			}
			wantPayloads(t, "kept", drain(t, s), "0", "1")
		})
	}
}

// Add after Close drops nothing (it adds nothing either).
func TestAddAfterCloseDropsNothing(t *testing.T) {
	for _, c := range constructors() {
		t.Run(c.name, func(t *testing.T) {
			s := c.open(t, Limits{MaxMessages: 1})
			addN(t, s, 1)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if dropped, err := s.Add(msg("t", "x"), msg("t", "y")); dropped != 0 || !errors.Is(err, ErrClosed) {
				t.Errorf("Add after Close = %d, %v; want 0, ErrClosed", dropped, err)
			}
		})
	}
}

// An Add whose every message is too large, on a spool that never held
// anything, refuses them all and changes nothing; the next message that
// fits is added as usual.
func TestAddOnlyTooLarge(t *testing.T) {
	for _, c := range constructors() {
		t.Run(c.name, func(t *testing.T) {
			s := c.open(t, Limits{MaxBytes: 4096})
			big := msg("t", strings.Repeat("x", 8192))
			dropped, err := s.Add(big, big)
			if dropped != 0 || !errors.Is(err, ErrTooLarge) {
				t.Fatalf("Add of two oversize messages = %d, %v; want 0, ErrTooLarge", dropped, err)
			}
			if st := s.Stats(); st.Len != 0 || st.Added != 0 || st.Lost() != 0 {
				t.Fatalf("stats %+v after refusing everything, want an empty spool", st)
			}
			add(t, s, msg("t", "fits"))
			wantPayloads(t, "kept", drain(t, s), "fits")
		})
	}
}
