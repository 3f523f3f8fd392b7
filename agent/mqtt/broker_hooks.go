package mqtt

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/storage"
	"github.com/mochi-mqtt/server/v2/packets"
)

// authHook checks logins and ACLs. It is mochi's hooks/auth idea, written
// for edgedet's config (that package also pulls in gopkg.in/yaml.v3).
// Passwords are held as SHA-256 digests and compared in constant time.
type authHook struct {
	mochi.HookBase
	srv      *mochi.Server
	users    map[string]brokerUser // nil: anonymous access to everything
	internal [sha256.Size]byte     // digest of the agent's own password
	log      *slog.Logger
	limits   *msgLimits
}

type brokerUser struct {
	pw             [sha256.Size]byte
	pub, subscribe []string
}

// newAuthHook reads the users' passwords and returns the hook with the
// random password of the agent's own client ("" when auth is off).
func newAuthHook(cfg EmbeddedConfig, log *slog.Logger) (*authHook, string, error) {
	h := &authHook{log: log, limits: newMsgLimits(10 * time.Second)}
	if !cfg.AuthRequired() {
		return h, "", nil
	}
	h.users = make(map[string]brokerUser, len(cfg.Users))
	for i, u := range cfg.Users {
		pw, err := u.password(fmt.Sprintf("mqtt.embedded.users[%d]", i))
		if err != nil {
			return nil, "", err
		}
		h.users[u.Name] = brokerUser{pw: sha256.Sum256([]byte(pw)), pub: u.Publish, subscribe: u.Subscribe}
	}
	var raw [24]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return nil, "", fmt.Errorf("internal password: %w", err)
	}
	internal := hex.EncodeToString(raw[:])
	h.internal = sha256.Sum256([]byte(internal))
	return h, internal, nil
}

func (*authHook) ID() string { return "edgedet-auth" }

func (*authHook) Provides(b byte) bool {
	return b == mochi.OnConnectAuthenticate || b == mochi.OnACLCheck
}

// OnConnectAuthenticate checks the user name and password, that a Will
// stays within the user's publish ACL (mochi does not check Wills) and
// that the client id is not another user's.
func (h *authHook) OnConnectAuthenticate(cl *mochi.Client, pk packets.Packet) bool {
	if h.users == nil {
		return true
	}
	name := string(pk.Connect.Username)
	want, known := h.internal, name == InternalUser
	u, isUser := h.users[name]
	if isUser {
		want, known = u.pw, true
	}
	got := sha256.Sum256(pk.Connect.Password)
	ok := subtle.ConstantTimeCompare(got[:], want[:]) == 1 && known && pk.Connect.PasswordFlag
	if !ok {
		h.refuse("client refused: bad user name or password", cl, "user", name)
		return false
	}
	if w := cl.Properties.Will; w.Flag == 1 && !h.allowed(name, w.TopicName, true) {
		h.refuse("client refused: will topic not allowed", cl, "user", name, "topic", w.TopicName)
		return false
	}
	// A client id takes over the session holding it: only its own user
	// may, so that no user can cut off another (the agent's client above
	// all).
	if old, ok := h.srv.Clients.Get(cl.ID); ok && string(old.Properties.Username) != name {
		h.refuse("client refused: client id in use by another user", cl, "user", name)
		return false
	}
	return true
}

// OnACLCheck allows a publish to topic, or a subscription to (or delivery
// from) topic, by the authenticated user's filters.
func (h *authHook) OnACLCheck(cl *mochi.Client, topic string, write bool) bool {
	if h.users == nil {
		return true
	}
	name := string(cl.Properties.Username)
	if h.allowed(name, topic, write) {
		return true
	}
	verb := "subscribe"
	if write {
		verb = "publish"
	}
	h.refuse("acl: "+verb+" denied", cl, "user", name, "topic", topic)
	return false
}

func (h *authHook) allowed(user, topic string, write bool) bool {
	if user == InternalUser {
		return true
	}
	u, ok := h.users[user]
	if !ok {
		return false
	}
	if write {
		for _, f := range u.pub {
			if filterCovers(f, topic) {
				return true
			}
		}
		return false
	}
	topic = stripShare(topic)
	for _, f := range u.subscribe {
		if filterCovers(f, topic) {
			return true
		}
	}
	return false
}

func (h *authHook) refuse(msg string, cl *mochi.Client, attrs ...any) {
	if n, ok := h.limits.allow(msg); ok {
		h.log.Warn(msg, append(attrs, "client", cl.ID, "remote", cl.Net.Remote, "suppressed_before", n)...)
	}
}

// stripShare turns a shared subscription "$share/<group>/<filter>" into
// its filter.
func stripShare(f string) string {
	if rest, ok := strings.CutPrefix(f, "$share/"); ok {
		if _, filter, ok := strings.Cut(rest, "/"); ok {
			return filter
		}
	}
	return f
}

// filterCovers reports whether every topic matched by filter f (or the
// topic name f) is matched by the ACL filter acl, by MQTT rules: '+'
// matches one level, '#' the rest, and a wildcard in the first level does
// not match topics beginning with '$'.
func filterCovers(acl, f string) bool {
	a, t := strings.Split(acl, "/"), strings.Split(f, "/")
	if strings.HasPrefix(t[0], "$") && (a[0] == "+" || a[0] == "#") {
		return false
	}
	for i, al := range a {
		if al == "#" {
			return true
		}
		if i >= len(t) {
			return false
		}
		switch tl := t[i]; {
		case tl == "#":
			return false // only '#' covers '#'
		case al == "+":
			// covers a name level or '+'
		case al != tl:
			return false
		}
	}
	return len(a) == len(t)
}

// retainHook enforces the retained-store caps and keeps the store (and
// its directory) in step with the broker's retained messages.
type retainHook struct {
	mochi.HookBase
	srv     *mochi.Server
	store   *retainedStore
	loaded  []storage.Message
	started bool         // store.run is running
	closing *atomic.Bool // set by Broker.Close
	// closingWills counts the Wills sent while closing is set.
	closingWills *atomic.Int64
	log          *slog.Logger
	limits       *msgLimits
}

func (*retainHook) ID() string { return "edgedet-retained" }

func (*retainHook) Provides(b byte) bool {
	switch b {
	case mochi.OnPublish, mochi.OnWill, mochi.OnRetainMessage, mochi.OnRetainedExpired, mochi.StoredRetainedMessages:
		return true
	}
	return false
}

// OnPublish refuses a retained message that breaks the caps: mochi then
// completes the QoS flow but neither retains nor forwards it.
func (h *retainHook) OnPublish(cl *mochi.Client, pk packets.Packet) (packets.Packet, error) {
	if !pk.FixedHeader.Retain || len(pk.Payload) == 0 {
		return pk, nil
	}
	if err := h.store.fits(pk.TopicName, msgSize(pk.TopicName, pk.Payload)); err != nil {
		h.warn("retained publish refused", "client", cl.ID, "topic", pk.TopicName, "bytes", len(pk.Payload), "reason", err)
		return pk, packets.CodeSuccessIgnore
	}
	return pk, nil
}

// OnWill drops the retain flag of a Will that breaks the caps, and of
// every Will sent while the broker shuts down.
func (h *retainHook) OnWill(cl *mochi.Client, w mochi.Will) (mochi.Will, error) {
	if h.closing.Load() {
		h.closingWills.Add(1)
		w.Retain = false
		return w, nil
	}
	if w.Retain && len(w.Payload) > 0 {
		if err := h.store.fits(w.TopicName, msgSize(w.TopicName, w.Payload)); err != nil {
			h.warn("will sent without retain", "client", cl.ID, "topic", w.TopicName, "bytes", len(w.Payload), "reason", err)
			w.Retain = false
		}
	}
	return w, nil
}

// OnRetainMessage records the broker's message now retained on the topic;
// one that broke the caps after all (racing publishes, a delayed Will) is
// removed again.
func (h *retainHook) OnRetainMessage(cl *mochi.Client, pk packets.Packet, _ int64) {
	topic := pk.TopicName
	cur, ok := h.srv.Topics.Retained.Get(topic)
	if err := h.store.set(topic, cur, ok); err != nil {
		h.srv.Topics.RetainMessage(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Retain: true}, TopicName: topic})
		h.store.set(topic, packets.Packet{}, false)
		h.warn("retained message removed", "client", cl.ID, "topic", topic, "reason", err)
	}
}

func (h *retainHook) OnRetainedExpired(topic string) { h.store.set(topic, packets.Packet{}, false) }

// StoredRetainedMessages hands mochi the messages loaded from disk.
func (h *retainHook) StoredRetainedMessages() ([]storage.Message, error) {
	out := h.loaded
	h.loaded = nil
	return out, nil
}

// Stop writes the last changes (mochi calls it from Server.Close).
func (h *retainHook) Stop() error {
	if h.started {
		h.started = false
		h.store.close()
	}
	return nil
}

func (h *retainHook) warn(msg string, attrs ...any) {
	if n, ok := h.limits.allow(msg); ok {
		h.log.Warn(msg, append(attrs, "suppressed_before", n)...)
	}
}

// logLimit lets one log line through per interval and counts the others,
// so that a client cannot flood the log.
type logLimit struct {
	every time.Duration
	now   func() time.Time

	mu         sync.Mutex
	last       time.Time
	suppressed int
}

// allow reports whether to log now, and how many lines were suppressed
// since the last one logged.
func (l *logLimit) allow() (suppressed int, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if !l.last.IsZero() && now.Sub(l.last) < l.every {
		l.suppressed++
		return 0, false
	}
	n := l.suppressed
	l.last, l.suppressed = now, 0
	return n, true
}

// msgLimits is a logLimit per message text (mochi's are constants, so the
// map stays small).
type msgLimits struct {
	every time.Duration
	now   func() time.Time

	mu sync.Mutex
	m  map[string]*logLimit
}

func newMsgLimits(every time.Duration) *msgLimits {
	return &msgLimits{every: every, now: time.Now, m: map[string]*logLimit{}}
}

// allow is logLimit.allow for msg; a nil msgLimits allows everything.
func (l *msgLimits) allow(msg string) (suppressed int, ok bool) {
	if l == nil {
		return 0, true
	}
	l.mu.Lock()
	lim := l.m[msg]
	if lim == nil {
		lim = &logLimit{every: l.every, now: l.now}
		l.m[msg] = lim
	}
	l.mu.Unlock()
	return lim.allow()
}
