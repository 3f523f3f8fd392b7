package mqtt

import (
	"testing"

	"github.com/eclipse/paho.mqtt.golang/packets"
)

// The store tracks each outbound PUBLISH from Put until its
// acknowledgement (Del) or a Reset, and ignores other packets.
func TestCopyingStoreTracksOutbound(t *testing.T) {
	settled := 0
	s := newCopyingStore(func() { settled++ })
	s.Open()
	pub := func(mid uint16) *packets.PublishPacket {
		p := packets.NewControlPacket(packets.Publish).(*packets.PublishPacket)
		p.Qos, p.MessageID, p.TopicName = 1, mid, "t"
		return p
	}
	s.Put("o.7", pub(7))
	s.Put("i.8", pub(8)) // inbound: not ours
	a := s.outbound(7)
	if a == nil || s.outbound(8) != nil {
		t.Fatalf("outbound(7) = %v, outbound(8) = %v; want tracked, untracked", a, s.outbound(8))
	}
	rel := packets.NewControlPacket(packets.Pubrel).(*packets.PubrelPacket)
	rel.MessageID = 7
	s.Put("o.7", rel) // QoS 2 PUBREL replaces the packet, same message
	if s.outbound(7) != a {
		t.Fatal("PUBREL replaced the tracked publish")
	}
	s.Del("o.7")
	select {
	case <-a.done:
	default:
		t.Fatal("Del did not resolve the stored publish")
	}
	if !a.acked || s.outbound(7) != nil {
		t.Fatalf("after Del: acked %v, still tracked %v", a.acked, s.outbound(7) != nil)
	}

	s.Put("o.9", pub(9))
	b := s.outbound(9)
	s.Reset()
	select {
	case <-b.done:
	default:
		t.Fatal("Reset did not resolve the stored publish")
	}
	if b.acked || settled != 1 {
		t.Fatalf("after Reset: acked %v (want false), settled %d (want 1)", b.acked, settled)
	}
	if mid, ok := outboundMID("o.65535"); !ok || mid != 65535 {
		t.Errorf("outboundMID(o.65535) = %d, %v", mid, ok)
	}
	for _, k := range []string{"i.3", "o.", "o.70000", "o.x"} {
		if _, ok := outboundMID(k); ok {
			t.Errorf("outboundMID(%q) ok", k)
		}
	}
}
