package mqtt

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
)

// Broker is an in-process MQTT broker for single-box setups (the default in
// the sample config so `make run` needs no external broker), built on
// mochi-mqtt with edgedet's hooks: packet and retained-store caps,
// optional credentials and per-user ACLs, and retained messages kept in
// the state directory.
type Broker struct {
	srv      *mochi.Server
	addr     string
	log      *slog.Logger
	retained *retainedStore
	internal string // the agent's own password; "" when auth is off
	closing  *atomic.Bool
	// closingWills counts the Wills mochi still sent during Close (none,
	// unless a client connected while it ran).
	closingWills *atomic.Int64

	once sync.Once
	err  error
}

// StartBroker starts a broker with the [EmbeddedConfig] defaults on listen
// (anonymous access, nothing kept on disk): see [StartEmbedded].
func StartBroker(listen string, log *slog.Logger) (*Broker, error) {
	cfg := DefaultEmbeddedConfig()
	cfg.Listen = listen
	return StartEmbedded(cfg, "", log)
}

// StartEmbedded starts a broker with a TCP listener on cfg.Listen (port 0
// picks a free port, see Addr). The broker's own logging goes to log at
// warn level and above.
//
// Caps: a packet over cfg.MaxPacketSize closes the client's connection
// before it is read. A retained publish that breaks max_retained_size,
// max_retained_messages or max_retained_bytes (deleting a retained message
// is always allowed) is refused: acknowledged by the normal QoS flow but
// neither retained nor forwarded, as Mosquitto does with its
// message_size_limit, and logged (rate-limited). A retained Will that does
// not fit is sent without the retain flag, as are the Wills of clients cut
// off by Close.
//
// Auth: with cfg.Users, clients must log in as one of them (or as the
// agent's own client, [Broker.InternalCredentials]) and each user may
// publish and subscribe only within its ACL filters; a Will on a topic the
// user may not publish to refuses the connection. Without users, anyone
// who can reach the listener may do anything, so a listen address beyond
// loopback is logged as a warning.
//
// With stateDir, retained messages are kept in stateDir/broker/retained
// (one file per topic, written atomically at most once a second and at
// Close) and loaded at start; a damaged file is logged and moved aside.
func StartEmbedded(cfg EmbeddedConfig, stateDir string, log *slog.Logger) (*Broker, error) {
	if log == nil {
		return nil, errors.New("mqtt broker: nil logger")
	}
	if errs := cfg.validate(); len(errs) > 0 {
		return nil, fmt.Errorf("mqtt broker: %w", errors.Join(errs...))
	}
	log = log.With("component", "mqtt-broker")
	auth, internal, err := newAuthHook(cfg, log)
	if err != nil {
		return nil, fmt.Errorf("mqtt broker: %w", err)
	}
	dir := ""
	if stateDir != "" {
		dir = filepath.Join(stateDir, "broker", "retained")
	}
	store := newRetainedStore(retainedLimits{
		maxSize:  cfg.MaxRetainedSize,
		maxCount: cfg.MaxRetainedMessages,
		maxBytes: cfg.MaxRetainedBytes,
	}, dir, log)
	loaded, err := store.load()
	if err != nil {
		return nil, fmt.Errorf("mqtt broker: %w", err)
	}

	caps := mochi.NewDefaultServerCapabilities()
	caps.MaximumPacketSize = uint32(cfg.MaxPacketSize)
	// mochi drops retained (and queued) messages older than this, 24 h by
	// default: retained counts and availability must not vanish after a
	// quiet day. Messages with their own expiry still expire.
	caps.MaximumMessageExpiryInterval = 0
	closing := new(atomic.Bool)
	srv := mochi.New(&mochi.Options{
		Logger:       slog.New(minLevelHandler{min: slog.LevelWarn, h: log.Handler(), limits: newMsgLimits(10 * time.Second), closing: closing}),
		InlineClient: false,
		Capabilities: caps,
	})
	auth.srv = srv
	b := &Broker{srv: srv, log: log, retained: store, internal: internal, closing: closing, closingWills: new(atomic.Int64)}
	rh := &retainHook{srv: srv, store: store, loaded: loaded, closing: b.closing, closingWills: b.closingWills, log: log, limits: newMsgLimits(10 * time.Second)}
	if dir != "" {
		rh.started = true
		go store.run()
	}
	for _, h := range []mochi.Hook{auth, rh} {
		if err := srv.AddHook(h, nil); err != nil {
			_ = b.Close()
			return nil, fmt.Errorf("mqtt broker: add %s hook: %w", h.ID(), err)
		}
	}
	tcp := listeners.NewTCP(listeners.Config{ID: "edgedet-tcp", Address: cfg.Listen})
	if err := srv.AddListener(tcp); err != nil {
		_ = b.Close()
		return nil, fmt.Errorf("mqtt broker: listen on %s: %w", cfg.Listen, err)
	}
	b.addr = tcp.Address()
	if err := srv.Serve(); err != nil {
		_ = b.Close()
		return nil, fmt.Errorf("mqtt broker: serve: %w", err)
	}
	if !isLoopback(cfg.Listen) && !cfg.AuthRequired() {
		log.Warn("embedded broker reachable beyond loopback with anonymous access (set [[mqtt.embedded.users]])", "listen", cfg.Listen, "addr", b.addr)
	}
	n, size := store.count()
	log.Info("embedded broker started", "addr", b.addr, "auth", cfg.AuthRequired(), "users", len(cfg.Users),
		"retained_loaded", n, "retained_bytes", size, "retained_dir", dir)
	return b, nil
}

// InternalCredentials returns the user name and password the agent's own
// client uses on this broker, which are allowed every topic; ok is false
// when the broker takes anonymous clients. The password is random per
// start and never logged.
func (b *Broker) InternalCredentials() (user, password string, ok bool) {
	if b.internal == "" {
		return "", "", false
	}
	return InternalUser, b.internal, true
}

// Addr returns the bound host:port (the real port when listen had port 0).
func (b *Broker) Addr() string { return b.addr }

// URL returns a tcp:// URL a client on this host can use (Config.Broker).
func (b *Broker) URL() string { return "tcp://" + dialAddr(b.addr) }

// Close disconnects the clients and stops the broker. It is idempotent.
func (b *Broker) Close() error {
	if b == nil {
		return nil
	}
	b.once.Do(func() {
		// Clients cut off by the shutdown (the agent's own client may still
		// be on its way out) are not failures: their Wills must not
		// replace the retained state (the agent's "stopped") on disk.
		b.closing.Store(true)
		// mochi says goodbye to every client with a DISCONNECT packet,
		// which only MQTT 5 defines for a server; an MQTT 3.1.1 client
		// (mosquitto_sub's default, many Home Assistant setups) reports it
		// as a protocol error. 3.1.1 has the server just close the
		// connection: do that first, then let mochi close the rest.
		// A client cut off by the shutdown has not failed: its Will (the
		// agent's own "offline", still on its way out) is not sent, so
		// subscribers see "stopped" last.
		for _, cl := range b.srv.Clients.GetAll() {
			atomic.StoreUint32(&cl.Properties.Will.Flag, 0)
			if cl.Properties.ProtocolVersion < 5 {
				cl.Stop(packets.ErrServerShuttingDown)
			}
		}
		b.err = b.srv.Close()
		if b.err != nil {
			b.err = fmt.Errorf("mqtt broker: close: %w", b.err)
		}
		b.log.Info("embedded broker stopped")
	})
	return b.err
}

func isLoopback(listen string) bool {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// minLevelHandler passes on only records at min or above, each message
// text at most once per interval of limits (clients can make mochi log:
// bad logins, oversized packets), with the count of those left out.
type minLevelHandler struct {
	min    slog.Level
	h      slog.Handler
	limits *msgLimits
	// closing is set by Broker.Close: then connections end because the
	// broker closes them, and only errors are passed on.
	closing *atomic.Bool
}

func (m minLevelHandler) Enabled(ctx context.Context, l slog.Level) bool {
	if m.closing != nil && m.closing.Load() && l < slog.LevelError {
		return false
	}
	return l >= m.min && m.h.Enabled(ctx, l)
}

// Handle passes r on with two fixes for mochi's records: a packet
// attribute (mochi logs whole packets, payload and all, which a client
// controls) becomes its type, topic and size, and the empty message of
// mochi's listener errors gets a text.
func (m minLevelHandler) Handle(ctx context.Context, r slog.Record) error {
	msg := r.Message
	if msg == "" {
		msg = "client connection ended"
	}
	suppressed, ok := m.limits.allow(msg)
	if !ok {
		return nil
	}
	out := slog.NewRecord(r.Time, r.Level, msg, r.PC)
	if suppressed > 0 {
		out.AddAttrs(slog.Int("suppressed_before", suppressed))
	}
	r.Attrs(func(a slog.Attr) bool {
		if pk, ok := a.Value.Any().(packets.Packet); ok {
			a = slog.Group(a.Key, "type", packets.PacketNames[pk.FixedHeader.Type], "topic", pk.TopicName, "bytes", len(pk.Payload))
		}
		out.AddAttrs(a)
		return true
	})
	return m.h.Handle(ctx, out)
}

func (m minLevelHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return minLevelHandler{min: m.min, h: m.h.WithAttrs(as), limits: m.limits, closing: m.closing}
}

func (m minLevelHandler) WithGroup(name string) slog.Handler {
	return minLevelHandler{min: m.min, h: m.h.WithGroup(name), limits: m.limits, closing: m.closing}
}

// ClientConfig returns c with the agent's own credentials on this broker
// filled in when c dials the embedded listener (the broker URL that
// WithDefaults derives from mqtt.embedded.listen) without credentials of
// its own and the broker requires them. A configured user name is kept:
// that user's ACL then applies to the agent too.
func (b *Broker) ClientConfig(c Config) Config {
	user, pw, ok := b.InternalCredentials()
	if !ok || c.Username != "" || c.Password != "" || c.PasswordFile != "" || c.PasswordEnv != "" ||
		c.Broker != "tcp://"+dialAddr(c.Embedded.Listen) {
		return c
	}
	c.Username, c.Password = user, pw
	return c
}
