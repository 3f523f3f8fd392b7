package mqtt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/edgedet/edgedet/agent/publish"
)

// Publish sends payload to topic with the configured QoS and waits for the
// broker's acknowledgement (QoS 1/2) or the write (QoS 0), at most
// PublishTimeout and until ctx is done.
//
// When not connected it returns publish.ErrNotConnected at once; a timeout wraps
// context.DeadlineExceeded (the message may still reach the broker later,
// so QoS 1 receivers should de-duplicate). payload is copied.
func (c *Client) Publish(ctx context.Context, topic string, payload []byte, retained bool) error {
	return c.publish(ctx, topic, payload, c.cfg.QoS, retained)
}

// publish is Publish with an explicit QoS (checked by the caller).
func (c *Client) publish(ctx context.Context, topic string, payload []byte, qos byte, retained bool) error {
	if c.closedFlg.Load() {
		return publish.ErrClosed
	}
	if err := checkTopicName(topic); err != nil {
		c.failed.Add(1)
		return fmt.Errorf("mqtt publish: %w: %w", publish.ErrInvalidMessage, err)
	}
	if err := checkPublishSize(topic, payload); err != nil {
		c.failed.Add(1)
		return fmt.Errorf("mqtt publish %q: %w: %w", topic, publish.ErrInvalidMessage, err)
	}
	if !c.cli.IsConnectionOpen() || !c.storeSettled.Load() {
		c.dropped.Add(1)
		return publish.ErrNotConnected
	}
	if err := ctx.Err(); err != nil {
		c.failed.Add(1)
		return fmt.Errorf("mqtt publish %q: %w", topic, err)
	}
	tok := c.cli.Publish(topic, qos, retained, bytes.Clone(payload))
	return c.awaitToken(ctx, topic, tok)
}

// publishSpooled publishes a QoS 1/2 message with a spool ID and waits for
// its acknowledgement like publish, but never hands paho a second copy of
// a message paho still holds: when an earlier call for the same ID gave up
// waiting, this call waits for that copy's acknowledgement instead (paho
// resends it after a reconnect). Only when paho dropped the copy unsent
// (its store was reset for a clean session) is the message published again.
func (c *Client) publishSpooled(ctx context.Context, m publish.Message) error {
	if c.closedFlg.Load() {
		return publish.ErrClosed
	}
	if err := checkTopicName(m.Topic); err != nil {
		c.failed.Add(1)
		return fmt.Errorf("mqtt publish: %w: %w", publish.ErrInvalidMessage, err)
	}
	if err := checkPublishSize(m.Topic, m.Payload); err != nil {
		c.failed.Add(1)
		return fmt.Errorf("mqtt publish %q: %w: %w", m.Topic, publish.ErrInvalidMessage, err)
	}
	if p := c.takePending(m); p != nil {
		select {
		case <-p.stored.done:
			if p.stored.acked {
				c.published.Add(1)
				return nil
			}
			// The store was reset: paho dropped it; publish it again.
		default:
			if !c.cli.IsConnectionOpen() {
				c.keepPending(m.ID, p)
				c.dropped.Add(1)
				return publish.ErrNotConnected
			}
			return c.awaitStored(ctx, m, p)
		}
	}
	if !c.cli.IsConnectionOpen() || !c.storeSettled.Load() {
		c.dropped.Add(1)
		return publish.ErrNotConnected
	}
	if err := ctx.Err(); err != nil {
		c.failed.Add(1)
		return fmt.Errorf("mqtt publish %q: %w", m.Topic, err)
	}
	payload := bytes.Clone(m.Payload)
	tok := c.cli.Publish(m.Topic, m.QoS, m.Retained, payload)
	var stored *storedPublish
	if pt, ok := tok.(*paho.PublishToken); ok && pt.MessageID() != 0 {
		stored = c.store.outbound(pt.MessageID())
	}
	if stored == nil {
		// paho did not store it (refused at once) or it was acknowledged
		// already: the token tells which.
		return c.awaitToken(ctx, m.Topic, tok)
	}
	// Stored: paho sends it until acknowledged, whatever the token says
	// (a write timeout sets an error on it but keeps the packet).
	p := &inflight{topic: m.Topic, payload: payload, qos: m.QoS, retained: m.Retained, stored: stored}
	return c.awaitStored(ctx, m, p)
}

// awaitStored waits for the acknowledgement of p, a message in paho's store,
// at most PublishTimeout and until ctx is done. When it gives up, p stays
// pending for the next PublishMessage of m.ID.
func (c *Client) awaitStored(ctx context.Context, m publish.Message, p *inflight) error {
	timeout := c.cfg.PublishTimeout.D()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-p.stored.done:
		if p.stored.acked {
			c.published.Add(1)
			return nil
		}
		c.dropped.Add(1) // dropped by a store reset: not sent, publish again
		return publish.ErrNotConnected
	case <-timer.C:
		c.keepPending(m.ID, p)
		c.failed.Add(1)
		return fmt.Errorf("mqtt publish %q: no acknowledgement within %s (kept in flight): %w", m.Topic, timeout, context.DeadlineExceeded)
	case <-ctx.Done():
		c.keepPending(m.ID, p)
		c.failed.Add(1)
		return fmt.Errorf("mqtt publish %q: %w", m.Topic, ctx.Err())
	case <-c.closing:
		c.failed.Add(1)
		return fmt.Errorf("mqtt publish %q: %w", m.Topic, publish.ErrClosed)
	}
}

// takePending removes and returns the pending copy of m, or nil. A pending
// entry under m.ID for a different message (a reused ID) is forgotten:
// paho still delivers it, as the message it is.
func (c *Client) takePending(m publish.Message) *inflight {
	c.pendMu.Lock()
	defer c.pendMu.Unlock()
	p := c.pending[m.ID]
	if p == nil {
		return nil
	}
	delete(c.pending, m.ID)
	if !p.same(m) {
		return nil
	}
	return p
}

// keepPending records p as the copy of message id paho holds. Entries
// resolved since (acknowledged, or dropped by a reset) are pruned when the
// map has doubled, so messages the caller never asks about again (dropped
// from its spool meanwhile) do not accumulate.
func (c *Client) keepPending(id uint64, p *inflight) {
	c.pendMu.Lock()
	defer c.pendMu.Unlock()
	if c.pending == nil {
		c.pending = make(map[uint64]*inflight)
	}
	c.pending[id] = p
	if len(c.pending) <= max(c.pruneLen, 64) {
		return
	}
	for k, q := range c.pending {
		select {
		case <-q.stored.done:
			delete(c.pending, k)
		default:
		}
	}
	c.pruneLen = 2 * len(c.pending)
}

// awaitToken waits for tok, a publish paho did not keep in its store.
func (c *Client) awaitToken(ctx context.Context, topic string, tok paho.Token) error {
	timeout := c.cfg.PublishTimeout.D()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-tok.Done():
		if err := tok.Error(); err != nil {
			if errors.Is(err, paho.ErrNotConnected) {
				c.dropped.Add(1)
				return publish.ErrNotConnected
			}
			c.failed.Add(1)
			return fmt.Errorf("mqtt publish %q: %w", topic, err)
		}
		c.published.Add(1)
		return nil
	case <-timer.C:
		c.failed.Add(1)
		return fmt.Errorf("mqtt publish %q: no acknowledgement within %s: %w", topic, timeout, context.DeadlineExceeded)
	case <-ctx.Done():
		c.failed.Add(1)
		return fmt.Errorf("mqtt publish %q: %w", topic, ctx.Err())
	case <-c.closing:
		c.failed.Add(1)
		return fmt.Errorf("mqtt publish %q: %w", topic, publish.ErrClosed)
	}
}
