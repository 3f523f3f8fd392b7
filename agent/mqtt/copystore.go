package mqtt

import (
	"strconv"
	"strings"
	"sync"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
)

// copyingStore is paho's MemoryStore holding private copies of packets:
// Put stores a copy and Get returns a fresh one. Otherwise, after a
// reconnect, paho's resume sets Dup on the very packet the outgoing
// goroutine may still be writing (a publish made just after the reconnect,
// such as our "online"): a data race, eclipse-paho/paho.mqtt.golang#703,
// open in v1.5.1. Copying on Put too matters because Write itself sets
// RemainingLength on the packet it writes.
//
// It also reports when paho has settled it for a new connection: resume
// reads All on every reconnect, and the first connect (clean session)
// calls Reset. A publish stored after that is not in resume's list.
//
// And it tracks each outbound PUBLISH from Put to its removal, the one
// reliable record of what paho will still send (paho v1.5.1): Publish
// stores a QoS 1/2 packet before writing it; the packet stays through
// write timeouts and connection losses (resume sends it again after every
// reconnect, completing the original token with no error, acknowledged or
// not), and only PUBACK (QoS 1) or PUBCOMP (QoS 2) deletes it, or Reset
// drops it.
type copyingStore struct {
	*paho.MemoryStore
	settled func()

	mu  sync.Mutex
	out map[uint16]*storedPublish // outbound PUBLISH packets by packet ID
}

// storedPublish is one outbound PUBLISH in the store.
type storedPublish struct {
	done  chan struct{} // closed when the packet left the store
	acked bool          // set before done is closed: deleted by the acknowledgement, not by a reset
}

func newCopyingStore(settled func()) *copyingStore {
	return &copyingStore{MemoryStore: paho.NewMemoryStore(), settled: settled, out: make(map[uint16]*storedPublish)}
}

// outbound returns the stored PUBLISH with packet ID mid, or nil.
func (s *copyingStore) outbound(mid uint16) *storedPublish {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.out[mid]
}

func (s *copyingStore) All() []string {
	keys := s.MemoryStore.All()
	s.settled()
	return keys
}

func (s *copyingStore) Reset() {
	s.MemoryStore.Reset()
	s.mu.Lock()
	for mid, p := range s.out {
		close(p.done)
		delete(s.out, mid)
	}
	s.mu.Unlock()
	s.settled()
}

func (s *copyingStore) Put(key string, p packets.ControlPacket) {
	if _, ok := p.(*packets.PublishPacket); ok {
		if mid, ok := outboundMID(key); ok {
			s.mu.Lock()
			if old := s.out[mid]; old != nil { // replaced unacknowledged: gone
				close(old.done)
			}
			s.out[mid] = &storedPublish{done: make(chan struct{})}
			s.mu.Unlock()
		}
	}
	s.MemoryStore.Put(key, copyPacket(p))
}

func (s *copyingStore) Del(key string) {
	s.MemoryStore.Del(key)
	if mid, ok := outboundMID(key); ok {
		s.mu.Lock()
		if p := s.out[mid]; p != nil {
			p.acked = true
			close(p.done)
			delete(s.out, mid)
		}
		s.mu.Unlock()
	}
}

func (s *copyingStore) Get(key string) packets.ControlPacket {
	return copyPacket(s.MemoryStore.Get(key))
}

// outboundMID parses paho's key of an outbound packet, "o.<packet ID>".
func outboundMID(key string) (uint16, bool) {
	rest, ok := strings.CutPrefix(key, "o.")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseUint(rest, 10, 16)
	return uint16(n), err == nil
}

func copyPacket(p packets.ControlPacket) packets.ControlPacket {
	switch p := p.(type) {
	case *packets.PublishPacket:
		cp := *p
		return &cp
	case *packets.PubrelPacket:
		cp := *p
		return &cp
	}
	return p
}
