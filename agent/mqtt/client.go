package mqtt

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

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
		return err // the caller says what it was connecting for
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
