// Package publish is the contract between the code that produces the
// agent's MQTT messages (report, zone, control, the pipelines) and the code
// that delivers them (mqtt.Client, the spool, the outbox): the Message they
// pass around, the Publisher that sends one, and the errors a publish
// returns. It imports nothing of edgedet, so producers and deliverers can
// all import it without importing each other.
package publish

import (
	"context"
	"errors"
	"time"
)

// Message is one MQTT message to deliver.
type Message struct {
	// ID is assigned by the spool on Add. IDs increase in Add order and,
	// for a disk spool, stay unique across restarts; publishers use them
	// to deduplicate QoS 1 redeliveries. 0 means "not spooled".
	ID       uint64
	Topic    string
	Payload  []byte
	QoS      byte
	Retained bool
	// Time is when the message was produced, on the producer's wall
	// clock. It is data for the subscriber: the spool keeps it as it is
	// and never measures an age with it (see spool.Limits.MaxAge). The
	// spool's Add sets a zero Time to the current wall-clock time.
	Time time.Time
}

// Size is what a message counts against spool.Limits.MaxBytes: the length
// of its topic plus the length of its payload.
func (m *Message) Size() int64 { return int64(len(m.Topic) + len(m.Payload)) }

// Publisher publishes one message and waits for the broker's
// acknowledgement (QoS 1/2) or the write (QoS 0). An error wrapping
// ErrInvalidMessage means the message can never be sent as it is; any
// other error (ErrNotConnected, ErrClosed, a timeout) means "not now".
// m.Payload is only valid during the call.
//
// *mqtt.Client implements it. The outbox delivers the spooled topics
// (events, counts, snapshots, control states, discovery) through it, and
// the pipelines publish the lossy per-frame detections straight to it.
type Publisher interface {
	PublishMessage(ctx context.Context, m Message) error
}

var (
	// ErrNotConnected is returned by a publish, without waiting, when there
	// is no open connection to the broker. Nothing was sent: keep the
	// message.
	ErrNotConnected = errors.New("mqtt: not connected")
	// ErrClosed is returned by calls on a closed publisher (an
	// mqtt.Client after Close).
	ErrClosed = errors.New("mqtt: client closed")
	// ErrInvalidMessage is wrapped by the error a publish returns for a
	// message that can never be sent as it is (invalid topic name, QoS
	// outside 0..2, over the MQTT packet size limit). Retrying it is
	// useless; every other error is worth a retry.
	ErrInvalidMessage = errors.New("invalid message")
)
