package mqtt

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/edgedet/edgedet/agent/publish"
)

// maxPacketRemaining is MQTT's largest "remaining length" (268,435,455).
const maxPacketRemaining = 1<<28 - 1

// checkPublishSize fails when a PUBLISH of topic and payload would exceed the
// MQTT packet size limit (2-byte topic length and 2-byte packet ID included).
func checkPublishSize(topic string, payload []byte) error {
	if n := 2 + len(topic) + 2 + len(payload); n > maxPacketRemaining {
		return fmt.Errorf("packet of %d bytes over the MQTT limit of %d", n, maxPacketRemaining)
	}
	return nil
}

// PublishMessage is Publish with m's own QoS (0..2) and Retained instead of
// the configured QoS. Errors are those of Publish; an invalid QoS or topic
// wraps publish.ErrInvalidMessage.
//
// A QoS 1/2 message with a spool ID (m.ID != 0) is never handed to paho
// twice while paho still holds it: after a timeout the copy stays in flight
// (paho resends it on reconnect), and the next call for the same ID and
// message waits for that copy's acknowledgement instead of publishing
// again. A subscriber sees at most the copy written before a hang and
// paho's resend.
func (c *Client) PublishMessage(ctx context.Context, m publish.Message) error {
	if m.QoS > 2 {
		if c.closedFlg.Load() {
			return publish.ErrClosed
		}
		c.failed.Add(1)
		return fmt.Errorf("mqtt publish %q: %w: QoS %d not in 0..2", m.Topic, publish.ErrInvalidMessage, m.QoS)
	}
	if m.ID != 0 && m.QoS > 0 {
		return c.publishSpooled(ctx, m)
	}
	return c.publish(ctx, m.Topic, m.Payload, m.QoS, m.Retained)
}

// connectHooks is the Client's state for OnConnect and Subscribe.
type connectHooks struct {
	mu    sync.Mutex
	fns   []func()
	subs  map[string]subscription // by filter
	order []string                // filters in first-subscribed order
}

type subscription struct {
	qos     byte
	handler paho.MessageHandler
}

// OnConnect registers fn to run after every successful connection, the first
// one and every reconnect, once the retained "online" has been published
// (acknowledged or timed out) and the subscriptions are re-established. Each
// call of fn runs in its own goroutine, so it never blocks paho; Close waits
// for running calls, so fn must return promptly and must not call Close.
// A connection made before OnConnect is called does not run fn.
func (c *Client) OnConnect(fn func()) {
	if fn == nil {
		return
	}
	c.hooks.mu.Lock()
	c.hooks.fns = append(c.hooks.fns, fn)
	c.hooks.mu.Unlock()
}

// Subscribe subscribes to filter at qos and remembers the subscription: the
// session is clean, so the broker forgets it on every disconnect, and the
// Client subscribes again after each reconnect (before OnConnect callbacks
// run). Subscribing again to the same filter replaces its qos and handler.
//
// When connected, Subscribe waits for the broker's SUBACK (at most
// PublishTimeout and until ctx is done) and returns an error if the broker
// refused the subscription or did not answer; the subscription stays
// remembered and is retried on the next reconnect. When not connected it
// returns nil at once: the subscription is made on connect.
//
// handler gets the topic and the payload (which it may keep). It is called
// from paho's inbound message router: the Client runs paho with OrderMatters
// false, so each message gets its own goroutine, calls may be concurrent and
// messages of one topic may be handled out of order. The message is
// acknowledged to the broker only after handler returns, so handler must not
// block: hand the message to a buffered channel or queue and return.
func (c *Client) Subscribe(ctx context.Context, filter string, qos byte, handler func(topic string, payload []byte)) error {
	if c.closedFlg.Load() {
		return publish.ErrClosed
	}
	if err := CheckTopicFilter(filter); err != nil {
		return fmt.Errorf("mqtt subscribe: %w", err)
	}
	if qos > 2 {
		return fmt.Errorf("mqtt subscribe %q: QoS %d not in 0..2", filter, qos)
	}
	if handler == nil {
		return fmt.Errorf("mqtt subscribe %q: nil handler", filter)
	}
	sub := subscription{qos: qos, handler: func(_ paho.Client, m paho.Message) { handler(m.Topic(), m.Payload()) }}
	c.hooks.mu.Lock()
	if c.hooks.subs == nil {
		c.hooks.subs = make(map[string]subscription)
	}
	if _, ok := c.hooks.subs[filter]; !ok {
		c.hooks.order = append(c.hooks.order, filter)
	}
	c.hooks.subs[filter] = sub
	c.hooks.mu.Unlock()

	// paho reports its status as connected before it runs onConnect: if
	// the connection is not open now, afterOnline has yet to run and will
	// see the subscription added above.
	if !c.cli.IsConnectionOpen() {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("mqtt subscribe %q: %w", filter, err)
	}
	tok := c.cli.Subscribe(filter, qos, sub.handler)
	if err := c.waitSubscribe(ctx, tok); err != nil {
		return fmt.Errorf("mqtt subscribe %q: %w", filter, err)
	}
	return nil
}

// waitSubscribe waits for a subscribe token and checks the granted QoS.
func (c *Client) waitSubscribe(ctx context.Context, tok paho.Token) error {
	timeout := c.cfg.PublishTimeout.D()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-tok.Done():
	case <-timer.C:
		return fmt.Errorf("no SUBACK within %s: %w", timeout, context.DeadlineExceeded)
	case <-ctx.Done():
		return ctx.Err()
	case <-c.closing:
		return publish.ErrClosed
	}
	if err := tok.Error(); err != nil {
		if errors.Is(err, paho.ErrNotConnected) {
			return publish.ErrNotConnected
		}
		return err
	}
	if st, ok := tok.(*paho.SubscribeToken); ok {
		for f, q := range st.Result() {
			if q == 0x80 {
				return fmt.Errorf("broker refused the subscription to %q", f)
			}
		}
	}
	return nil
}

// afterOnline runs in the goroutine onConnect starts (counted in c.wg),
// once "online" was published: it re-subscribes, then starts the OnConnect
// callbacks.
func (c *Client) afterOnline(pc paho.Client) {
	if c.closedFlg.Load() {
		return
	}
	c.hooks.mu.Lock()
	type pending struct {
		filter string
		tok    paho.Token
	}
	var toks []pending
	for _, f := range c.hooks.order {
		s := c.hooks.subs[f]
		toks = append(toks, pending{f, pc.Subscribe(f, s.qos, s.handler)})
	}
	fns := append([]func(){}, c.hooks.fns...)
	c.hooks.mu.Unlock()

	for _, p := range toks {
		if err := c.waitSubscribe(context.Background(), p.tok); err != nil {
			if errors.Is(err, publish.ErrClosed) {
				return
			}
			c.log.Warn("re-subscribe failed", "filter", p.filter, "err", c.scrub(err))
		}
	}
	if c.closedFlg.Load() {
		return
	}
	for _, fn := range fns {
		// c.wg is above zero here (this goroutine holds it), so Add is
		// safe while Close waits.
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			fn()
		}()
	}
}

// CheckTopicFilter checks a subscription filter by the MQTT rules (as mochi
// applies them): not empty, at most 65535 bytes, valid UTF-8 without NUL,
// '+' only as a whole level, '#' only as the whole last level. A shared
// subscription "$share/<group>/<filter>" needs a group without wildcards
// and a valid filter.
func CheckTopicFilter(filter string) error {
	switch {
	case filter == "":
		return errors.New("empty topic filter")
	case len(filter) > 65535:
		return fmt.Errorf("topic filter of %d bytes over the MQTT limit of 65535", len(filter))
	case !utf8.ValidString(filter) || strings.ContainsRune(filter, 0):
		return fmt.Errorf("topic filter %q is not valid UTF-8 without NUL", filter)
	}
	f := filter
	if rest, ok := strings.CutPrefix(f, "$share/"); ok {
		group, sub, found := strings.Cut(rest, "/")
		if !found || group == "" || sub == "" || strings.ContainsAny(group, "+#") {
			return fmt.Errorf("topic filter %q: shared subscription must be $share/<group>/<filter>", filter)
		}
		f = sub
	}
	levels := strings.Split(f, "/")
	for i, l := range levels {
		switch {
		case l == "#":
			if i != len(levels)-1 {
				return fmt.Errorf("topic filter %q: '#' must be the last level", filter)
			}
		case l == "+":
		case strings.ContainsAny(l, "+#"):
			return fmt.Errorf("topic filter %q: a wildcard must occupy a whole level", filter)
		}
	}
	return nil
}
