package mqtt

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
)

// Broker is an in-process MQTT broker for single-box setups (the default in
// the sample config so `make run` needs no external broker). It allows
// anonymous access to every topic and keeps nothing on disk.
type Broker struct {
	srv  *mochi.Server
	addr string
	log  *slog.Logger

	once sync.Once
	err  error
}

// StartBroker starts a broker with a TCP listener on listen (host:port; port
// 0 picks a free port, see Addr). Anonymous access is allowed, so a listen
// address beyond loopback is logged as a warning. The broker's own logging
// goes to log at warn level and above.
func StartBroker(listen string, log *slog.Logger) (*Broker, error) {
	if log == nil {
		return nil, errors.New("mqtt broker: nil logger")
	}
	if err := checkListen(listen); err != nil {
		return nil, fmt.Errorf("mqtt broker: listen %q %w", listen, err)
	}
	log = log.With("component", "mqtt-broker")
	srv := mochi.New(&mochi.Options{
		Logger:       slog.New(minLevelHandler{min: slog.LevelWarn, h: log.Handler()}),
		InlineClient: false,
	})
	if err := srv.AddHook(new(allowAllHook), nil); err != nil {
		return nil, fmt.Errorf("mqtt broker: add auth hook: %w", err)
	}
	tcp := listeners.NewTCP(listeners.Config{ID: "edgedet-tcp", Address: listen})
	if err := srv.AddListener(tcp); err != nil {
		return nil, fmt.Errorf("mqtt broker: listen on %s: %w", listen, err)
	}
	b := &Broker{srv: srv, addr: tcp.Address(), log: log}
	if err := srv.Serve(); err != nil {
		_ = b.Close()
		return nil, fmt.Errorf("mqtt broker: serve: %w", err)
	}
	if !isLoopback(listen) {
		log.Warn("embedded broker reachable beyond loopback with anonymous access", "listen", listen, "addr", b.addr)
	}
	log.Info("embedded broker started", "addr", b.addr)
	return b, nil
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

// minLevelHandler passes on only records at min or above.
type minLevelHandler struct {
	min slog.Level
	h   slog.Handler
}

func (m minLevelHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= m.min && m.h.Enabled(ctx, l)
}

func (m minLevelHandler) Handle(ctx context.Context, r slog.Record) error { return m.h.Handle(ctx, r) }

func (m minLevelHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return minLevelHandler{min: m.min, h: m.h.WithAttrs(as)}
}

func (m minLevelHandler) WithGroup(name string) slog.Handler {
	return minLevelHandler{min: m.min, h: m.h.WithGroup(name)}
}

// allowAllHook lets every client connect and use every topic. It is
// mochi's hooks/auth.AllowHook, restated because that package pulls in
// gopkg.in/yaml.v3, which edgedet does not otherwise need.
type allowAllHook struct{ mochi.HookBase }

func (*allowAllHook) ID() string { return "edgedet-allow-all" }

func (*allowAllHook) Provides(b byte) bool {
	return b == mochi.OnConnectAuthenticate || b == mochi.OnACLCheck
}

func (*allowAllHook) OnConnectAuthenticate(*mochi.Client, packets.Packet) bool { return true }

func (*allowAllHook) OnACLCheck(*mochi.Client, string, bool) bool { return true }
