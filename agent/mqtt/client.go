package mqtt

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/edgedet/edgedet/agent/publish"
)

// The Client implements the agent's publishing contract.
var _ publish.Publisher = (*Client)(nil)

// Retry timing. paho sleeps these without watching for Disconnect, so they
// also bound how long paho's own goroutines may outlive Close.
const (
	connectRetryInterval = 2 * time.Second  // between attempts before the first connection
	maxReconnectInterval = 10 * time.Second // reconnect back-off cap after a loss
	disconnectQuiesce    = 500 * time.Millisecond
	notOpenPoll          = 20 * time.Millisecond
)

// Stats are the Client's counters since NewClient. Every Publish call that
// does not return publish.ErrClosed counts in exactly one of Published, Dropped or
// Failed.
type Stats struct {
	Published   uint64 // acknowledged (QoS 1/2) or written (QoS 0)
	Dropped     uint64 // refused with publish.ErrNotConnected
	Failed      uint64 // invalid topic, timeout, cancelled or refused by paho
	Connects    uint64 // successful connections, the first one included
	Disconnects uint64 // connections lost (a clean Close is not counted)
	Connected   bool
}

// Client is the agent's MQTT connection: connects in the background and
// keeps retrying, so a broker that is down at start never stops the agent.
//
// Availability: the Last Will is a retained "offline" on the availability topic;
// every (re)connect publishes a retained "online" there and Close a retained
// "stopped". All methods are safe for concurrent use.
type Client struct {
	cfg    Config
	log    *slog.Logger
	cli    paho.Client
	broker string // redacted, for logs and errors
	avail  string
	secret string // the resolved password, to scrub from logged errors

	// availMu serialises the availability publishes with Close so that no
	// "online" can follow "stopped". It also guards the fields below.
	availMu sync.Mutex
	closed  bool
	connTok paho.Token // from paho Connect; nil until Connect

	closing   chan struct{} // closed when Close starts
	closedFlg atomic.Bool
	wg        sync.WaitGroup // availability goroutines
	closeOnce sync.Once
	closeErr  error

	stateMu      sync.Mutex
	up           chan struct{} // closed while connected
	upClosed     bool
	everUp       bool
	warnedRetry  bool // a connect failure logged for the current outage
	lastFailure  connFailure
	reconnLogged bool // "reconnecting" logged for the current outage
	lostAt       time.Time

	published, dropped, failed, connects, disconnects atomic.Uint64

	// storeSettled is false from a reconnect attempt until paho has read
	// (on reconnect) or cleared (on the first connect) its store of
	// in-flight messages. paho marks the connection open before that, and a
	// publish made in between is stored, sent, and then sent again by
	// paho's resume as a "pending" message: a duplicate. Publishes wait for
	// it (see copyingStore).
	storeSettled atomic.Bool

	hooks connectHooks // OnConnect callbacks and Subscribe's subscriptions (subscribe.go)

	store *copyingStore // paho's store of in-flight packets

	// pending holds the spooled QoS 1/2 messages handed to paho whose
	// acknowledgement PublishMessage stopped waiting for, by spool ID.
	// paho keeps such a message in its store and sends it again after a
	// reconnect; publishing it again would add a second copy, so the next
	// PublishMessage of that ID waits for the stored one instead.
	pendMu   sync.Mutex
	pending  map[uint64]*inflight
	pruneLen int // prune resolved entries when pending grows past this
}

// inflight is a spooled message paho holds in its store.
type inflight struct {
	topic    string
	payload  []byte // the copy handed to paho
	qos      byte
	retained bool
	stored   *storedPublish
}

// same reports whether m is the message p was published for (a spool ID
// can be reused by a new memory spool).
func (p *inflight) same(m publish.Message) bool {
	return p.topic == m.Topic && p.qos == m.QoS && p.retained == m.Retained && bytes.Equal(p.payload, m.Payload)
}

// NewClient applies cfg.WithDefaults, validates it, resolves the password,
// loads the TLS files once (for a TLS broker scheme) and builds the client.
// It warns when mqtt.tls.insecure_skip_verify is set. It does not connect:
// call Connect.
func NewClient(cfg Config, log *slog.Logger) (*Client, error) {
	if log == nil {
		return nil, errors.New("mqtt: nil logger")
	}
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("mqtt config: %w", err)
	}
	pw, err := cfg.password()
	if err != nil {
		return nil, fmt.Errorf("mqtt config: %w", err)
	}
	c := &Client{
		cfg:     cfg,
		broker:  redactURL(cfg.Broker),
		avail:   cfg.Topics().Available(),
		secret:  pw,
		closing: make(chan struct{}),
		up:      make(chan struct{}),
	}
	if u, err := url.Parse(cfg.Broker); err == nil && u.User != nil {
		if p, ok := u.User.Password(); ok && c.secret == "" {
			c.secret = p
		}
	}
	c.log = log.With("component", "mqtt", "broker", c.broker, "client_id", cfg.ClientID)

	// The TLS config is built once: the files are read here (Validate
	// read them too, but they may have changed since) and not again on
	// reconnect.
	var tlsCfg *tls.Config
	if brokerURLIsTLS(cfg.Broker) {
		u, err := url.Parse(cfg.Broker)
		if err != nil {
			return nil, fmt.Errorf("mqtt config: mqtt.broker: %q is not a URL", c.broker)
		}
		var errs []error
		if tlsCfg, errs = cfg.TLS.build(u.Hostname()); len(errs) > 0 {
			return nil, fmt.Errorf("mqtt config: %w", errors.Join(errs...))
		}
		if cfg.TLS.InsecureSkipVerify {
			c.log.Warn("tls certificate verification disabled", "setting", "mqtt.tls.insecure_skip_verify")
		}
	}

	o := paho.NewClientOptions()
	o.AddBroker(cfg.Broker)
	o.SetClientID(cfg.ClientID)
	o.SetUsername(cfg.Username)
	o.SetPassword(pw)
	o.SetCleanSession(true)
	o.SetResumeSubs(false)
	o.SetOrderMatters(false)
	o.SetKeepAlive(cfg.KeepAlive.D())
	o.SetConnectTimeout(cfg.ConnectTimeout.D())
	o.SetDialer(&net.Dialer{Timeout: cfg.ConnectTimeout.D()})
	if tlsCfg != nil {
		o.SetTLSConfig(tlsCfg)
	}
	o.SetWriteTimeout(cfg.PublishTimeout.D())
	o.SetConnectRetry(true)
	o.SetConnectRetryInterval(connectRetryInterval)
	o.SetAutoReconnect(true)
	o.SetMaxReconnectInterval(maxReconnectInterval)
	c.store = newCopyingStore(func() { c.storeSettled.Store(true) })
	o.SetStore(c.store)
	o.SetBinaryWill(c.avail, []byte(AvailabilityOffline), 1, true)
	o.SetOnConnectHandler(c.onConnect)
	o.SetConnectionLostHandler(c.onLost)
	o.SetReconnectingHandler(c.onReconnecting)
	o.SetConnectionNotificationHandler(c.onNotification)
	c.cli = paho.NewClient(o)
	return c, nil
}

// Config returns the resolved configuration (defaults applied).
func (c *Client) Config() Config { return c.cfg }

// Connect starts connecting in the background (retrying until the broker
// answers, then reconnecting after every loss) and returns without waiting
// for the broker. Calling it again is a no-op. It fails only when ctx is
// already done or the client is closed.
func (c *Client) Connect(ctx context.Context) error {
	c.availMu.Lock()
	defer c.availMu.Unlock()
	if c.closed {
		return publish.ErrClosed
	}
	if c.connTok != nil {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("mqtt connect: %w", err)
	}
	c.log.Info("connecting")
	c.connTok = c.cli.Connect()
	return nil
}

// WaitConnected blocks until the client is connected, ctx is done or the
// client is closed.
func (c *Client) WaitConnected(ctx context.Context) error {
	for {
		if c.cli.IsConnectionOpen() {
			return nil
		}
		c.stateMu.Lock()
		up := c.up
		c.stateMu.Unlock()
		select {
		case <-up:
			if !c.cli.IsConnectionOpen() {
				// The handlers ran out of order around a quick loss: poll
				// until the state settles.
				t := time.NewTimer(notOpenPoll)
				select {
				case <-t.C:
				case <-ctx.Done():
					t.Stop()
					return fmt.Errorf("wait for mqtt connection to %s: %w", c.broker, ctx.Err())
				case <-c.closing:
					t.Stop()
					return publish.ErrClosed
				}
			}
		case <-ctx.Done():
			return fmt.Errorf("wait for mqtt connection to %s: %w", c.broker, ctx.Err())
		case <-c.closing:
			return publish.ErrClosed
		}
	}
}

// Connected reports whether the connection to the broker is open now.
func (c *Client) Connected() bool { return c.cli.IsConnectionOpen() }

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

// Stats returns the counters.
func (c *Client) Stats() Stats {
	return Stats{
		Published:   c.published.Load(),
		Dropped:     c.dropped.Load(),
		Failed:      c.failed.Load(),
		Connects:    c.connects.Load(),
		Disconnects: c.disconnects.Load(),
		Connected:   c.cli.IsConnectionOpen(),
	}
}

// Close publishes a retained "stopped" on the availability topic (when
// connected), disconnects cleanly (so the broker does not send the Last
// Will) and stops reconnecting. It returns, within ctx, once the client's
// own goroutines and paho's connection goroutines have ended; during an
// outage paho's reconnect loop ends only after its current back-off sleep
// (at most 10s) and touches nothing of the Client. It is idempotent: later
// calls return the first call's result.
func (c *Client) Close(ctx context.Context) error {
	c.closeOnce.Do(func() { c.closeErr = c.close(ctx) })
	return c.closeErr
}

func (c *Client) close(ctx context.Context) error {
	c.availMu.Lock()
	c.closed = true
	c.closedFlg.Store(true)
	connTok := c.connTok
	var stopTok paho.Token
	if connTok != nil && c.cli.IsConnectionOpen() {
		stopTok = c.cli.Publish(c.avail, 1, true, []byte(AvailabilityStopped))
	}
	c.availMu.Unlock()
	close(c.closing)

	var errs []error
	if stopTok != nil {
		if err := waitToken(ctx, stopTok, c.cfg.PublishTimeout.D()); err != nil {
			errs = append(errs, fmt.Errorf("publish %q to %s: %w", AvailabilityStopped, c.avail, err))
		}
	}
	if connTok != nil {
		// quiesce bounds the wait for DISCONNECT to be written; with no
		// open connection there is nothing to write and paho's Disconnect
		// would only wait for its connect or reconnect loop.
		var quiesce time.Duration
		if c.cli.IsConnectionOpen() {
			quiesce = disconnectQuiesce
			if dl, ok := ctx.Deadline(); ok && time.Until(dl) < quiesce {
				quiesce = max(time.Until(dl), time.Millisecond)
			}
		}
		c.cli.Disconnect(uint(quiesce.Milliseconds()))
		// While paho is still in its first connect loop, the Connect token
		// completes once that loop has seen the disconnect (within
		// connectRetryInterval + ConnectTimeout). A reconnect loop has no
		// such handle: it ends after its current back-off sleep (at most
		// maxReconnectInterval) without calling back.
		select {
		case <-connTok.Done():
		case <-ctx.Done():
			errs = append(errs, fmt.Errorf("wait for connect loop: %w", ctx.Err()))
		}
	}
	c.wg.Wait()
	if err := errors.Join(errs...); err != nil {
		c.log.Warn("closed uncleanly", "err", c.scrub(err))
		return fmt.Errorf("mqtt close: %w", err)
	}
	if connTok != nil {
		c.log.Info("closed")
	}
	return nil
}

func waitToken(ctx context.Context, tok paho.Token, timeout time.Duration) error {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-tok.Done():
		return tok.Error()
	case <-timer.C:
		return fmt.Errorf("no acknowledgement within %s: %w", timeout, context.DeadlineExceeded)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// onConnect runs (in its own goroutine, started by paho) after every
// successful connection.
func (c *Client) onConnect(pc paho.Client) {
	c.waitStoreSettled()
	c.availMu.Lock()
	if c.closed {
		c.availMu.Unlock()
		return
	}
	c.connects.Add(1) // before "online" goes out, for observers of both
	tok := pc.Publish(c.avail, 1, true, []byte(AvailabilityOnline))
	c.wg.Add(1)
	c.availMu.Unlock()
	go func() {
		defer c.wg.Done()
		select {
		case <-tok.Done():
			if err := tok.Error(); err != nil {
				c.log.Warn("publish availability failed", "topic", c.avail, "err", c.scrub(err))
			}
		case <-time.After(c.cfg.PublishTimeout.D()):
			c.log.Warn("publish availability timed out", "topic", c.avail, "timeout", c.cfg.PublishTimeout.D())
		case <-c.closing:
		}
		c.afterOnline(pc)
	}()

	c.stateMu.Lock()
	if !c.upClosed {
		close(c.up)
		c.upClosed = true
	}
	first := !c.everUp
	c.everUp = true
	c.warnedRetry = false
	c.lastFailure = failNone
	c.reconnLogged = false
	lostAt := c.lostAt
	c.stateMu.Unlock()
	if first {
		c.log.Info("connected")
	} else {
		c.log.Info("reconnected", "outage", time.Since(lostAt).Round(time.Millisecond))
	}
}

func (c *Client) onLost(_ paho.Client, err error) {
	c.disconnects.Add(1)
	c.stateMu.Lock()
	if c.upClosed {
		c.up = make(chan struct{})
		c.upClosed = false
	}
	c.lostAt = time.Now()
	c.stateMu.Unlock()
	if c.closedFlg.Load() {
		return
	}
	c.log.Warn("connection lost, reconnecting", "err", c.scrub(err))
}

func (c *Client) onReconnecting(paho.Client, *paho.ClientOptions) {
	c.storeSettled.Store(false)
	c.stateMu.Lock()
	first := !c.reconnLogged
	c.reconnLogged = true
	c.stateMu.Unlock()
	if first && !c.closedFlg.Load() {
		c.log.Debug("reconnecting")
	}
}

// waitStoreSettled waits (in paho's OnConnect goroutine) until paho has
// dealt with its store for this connection, so that "online" and the
// OnConnect callbacks' publishes are not sent twice. paho does so right
// after marking the connection open; should it ever not within
// PublishTimeout, publishing goes ahead (a duplicate is possible, a stall
// is not).
func (c *Client) waitStoreSettled() {
	deadline := time.Now().Add(c.cfg.PublishTimeout.D())
	for !c.storeSettled.Load() && !c.closedFlg.Load() {
		if time.Now().After(deadline) {
			c.log.Warn("mqtt client did not settle its in-flight store after connecting; publishing anyway (a message may be sent twice)")
			c.storeSettled.Store(true)
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// onNotification reports why connecting failed, saying what the broker or
// the network said (see classifyConnect): the first failure of the
// initial connect loop, and then each change of reason. While reconnecting
// after a loss (already logged by onLost), only a refusal by the broker or
// a certificate problem is reported: those need the operator, the network
// usually does not.
func (c *Client) onNotification(_ paho.Client, n paho.ConnectionNotification) {
	f, ok := n.(paho.ConnectionNotificationFailed)
	if !ok {
		return
	}
	kind := classifyConnect(f.Reason)
	c.stateMu.Lock()
	initial := !c.everUp
	warn := kind != c.lastFailure && (initial || kind.needsOperator())
	if !c.everUp && c.warnedRetry && !kind.needsOperator() && !c.lastFailure.needsOperator() {
		warn = false // one "unreachable"-type warning per initial outage
	}
	if warn {
		c.lastFailure = kind
		c.warnedRetry = true
	}
	c.stateMu.Unlock()
	if !warn || c.closedFlg.Load() {
		return
	}
	if initial {
		c.log.Warn(kind.message()+", retrying", "reason", kind.String(), "err", c.scrub(f.Reason),
			"retry_interval", connectRetryInterval)
	} else {
		c.log.Warn(kind.message()+", retrying", "reason", kind.String(), "err", c.scrub(f.Reason),
			"max_retry_interval", maxReconnectInterval)
	}
}

// connFailure is why a connection attempt failed.
type connFailure int

const (
	failNone connFailure = iota
	failOther
	failRefused     // TCP connection refused: nothing listening
	failUnreachable // no route to the host or network
	failDNS         // host name not resolved
	failTimeout     // no answer within connect_timeout
	failClosed      // the broker closed the connection during the handshake
	failBadLogin    // CONNACK: bad user name or password
	failNotAuthorized
	failIDRejected
	failServerUnavailable
	failProtocol
	failCertAuthority // the broker's certificate is not signed by a trusted CA
	failCertName      // the broker's certificate is not for the broker's host name
	failCertInvalid   // the broker's certificate is expired, not yet valid or unusable
	failTLSRejected   // the broker rejected the TLS handshake (our client certificate)
	failTLS           // another TLS handshake failure
)

var connFailures = [...]struct{ reason, message string }{
	failNone:              {"", ""},
	failOther:             {"other", "broker connect failed"},
	failRefused:           {"connection_refused", "broker unreachable (connection refused)"},
	failUnreachable:       {"unreachable", "broker unreachable (no route to host)"},
	failDNS:               {"dns", "broker unreachable (host name not found)"},
	failTimeout:           {"timeout", "broker unreachable (no answer within mqtt.connect_timeout)"},
	failClosed:            {"closed", "broker closed the connection during connect"},
	failBadLogin:          {"bad_username_or_password", "broker refused the connection: bad username or password (mqtt.username, mqtt.password*)"},
	failNotAuthorized:     {"not_authorized", "broker refused the connection: not authorized (check mqtt.username and the password)"},
	failIDRejected:        {"client_id_rejected", "broker refused the connection: client id rejected"},
	failServerUnavailable: {"server_unavailable", "broker refused the connection: server unavailable"},
	failProtocol:          {"protocol", "broker refused the connection: protocol version or violation"},
	failCertAuthority:     {"certificate_unknown_authority", "broker certificate not trusted: unknown authority (mqtt.tls.ca_file)"},
	failCertName:          {"certificate_name_mismatch", "broker certificate does not match the broker host name (mqtt.broker, mqtt.tls.server_name)"},
	failCertInvalid:       {"certificate_invalid", "broker certificate invalid (expired, not yet valid or not for a server)"},
	failTLSRejected:       {"tls_rejected_by_broker", "broker rejected the TLS handshake (client certificate missing or not trusted: mqtt.tls.cert_file)"},
	failTLS:               {"tls", "tls handshake with the broker failed"},
}

func (k connFailure) String() string  { return connFailures[k].reason }
func (k connFailure) message() string { return connFailures[k].message }

// needsOperator reports a failure retrying will not cure.
func (k connFailure) needsOperator() bool { return k >= failBadLogin }

// classifyConnect says why a connection attempt failed, from the error paho
// reports: a CONNACK refusal, a TLS or certificate error, or a network one.
func classifyConnect(err error) connFailure {
	if err == nil {
		return failNone
	}
	switch {
	case errors.Is(err, packets.ErrorRefusedBadUsernameOrPassword):
		return failBadLogin
	case errors.Is(err, packets.ErrorRefusedNotAuthorised):
		return failNotAuthorized
	case errors.Is(err, packets.ErrorRefusedIDRejected):
		return failIDRejected
	case errors.Is(err, packets.ErrorRefusedServerUnavailable):
		return failServerUnavailable
	case errors.Is(err, packets.ErrorRefusedBadProtocolVersion), errors.Is(err, packets.ErrorProtocolViolation):
		return failProtocol
	}
	var (
		unknownCA x509.UnknownAuthorityError
		hostname  x509.HostnameError
		invalid   x509.CertificateInvalidError
		verify    *tls.CertificateVerificationError
		recErr    tls.RecordHeaderError
		dnsErr    *net.DNSError
		netErr    net.Error
	)
	switch {
	case errors.As(err, &unknownCA):
		return failCertAuthority
	case errors.As(err, &hostname):
		return failCertName
	case errors.As(err, &invalid):
		return failCertInvalid
	case errors.As(err, &verify):
		return failCertInvalid
	case errors.As(err, &recErr):
		return failTLS // not a TLS server
	case errors.As(err, &dnsErr):
		return failDNS
	case errors.Is(err, syscall.ECONNREFUSED):
		return failRefused
	case errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.EHOSTUNREACH):
		return failUnreachable
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded),
		errors.As(err, &netErr) && netErr.Timeout():
		return failTimeout
	}
	// A TLS alert from the broker (crypto/tls reports it as a "remote
	// error" whose type is not exported): it refused our certificate.
	if msg := err.Error(); strings.Contains(msg, "remote error: tls:") {
		return failTLSRejected
	} else if strings.Contains(msg, "tls:") {
		return failTLS
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) {
		return failClosed
	}
	return failOther
}

// scrub returns err's text with the password (if any) masked: dial errors
// may quote the broker URL.
func (c *Client) scrub(err error) string {
	if err == nil {
		return ""
	}
	s := err.Error()
	if c.secret != "" {
		s = strings.ReplaceAll(s, c.secret, "xxxxx")
		s = strings.ReplaceAll(s, url.QueryEscape(c.secret), "xxxxx")
		s = strings.ReplaceAll(s, url.PathEscape(c.secret), "xxxxx")
	}
	return s
}

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
