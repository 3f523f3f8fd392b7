package outbox

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"github.com/edgedet/edgedet/agent/publish"
	"github.com/edgedet/edgedet/internal/atomicfile"
)

// EpochFile is the file in spool.dir that holds the spool's epoch, the
// first part of every msg_id (see withID).
const EpochFile = "msgid-epoch"

// epochLen is the length of an epoch: 64 random bits in hex.
const epochLen = 16

// loadEpoch returns the epoch of the spool's message IDs. A memory spool's
// IDs start at 1 in every process, so it gets a random epoch per Outbox. A
// disk spool's IDs stay unique as long as its directory lives, so its
// epoch is kept in EpochFile there: read it, or create it when it is
// missing. A damaged file is replaced (with a warning): a new epoch only
// means IDs no consumer has seen.
func (o *Outbox) loadEpoch() (string, error) {
	if !o.disk {
		return newEpoch()
	}
	path := filepath.Join(o.cfg.Dir, EpochFile)
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		if e := string(bytes.TrimSpace(b)); validEpoch(e) {
			return e, nil
		}
		o.log.Warn("spool epoch file damaged, starting a new message id epoch", "file", path, "bytes", len(b))
	case !errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("outbox: read message id epoch: %w", err)
	}
	e, err := newEpoch()
	if err != nil {
		return "", err
	}
	if err := atomicfile.WriteFile(path, []byte(e+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("outbox: write message id epoch: %w", err)
	}
	return e, nil
}

func newEpoch() (string, error) {
	var b [epochLen / 2]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("outbox: message id epoch: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

func validEpoch(e string) bool {
	if len(e) != epochLen {
		return false
	}
	_, err := hex.DecodeString(e)
	return err == nil
}

// withID returns m with "msg_id":"<epoch>-<m.ID>" as the first member of
// its payload when that is a JSON object and m is not retained, so that
// consumers can de-duplicate: the id is the same on every attempt to
// deliver m, in this process or after a restart on the same disk spool.
// Other payloads (retained state, which is idempotent, and non-JSON ones
// such as JPEG snapshots) are returned unchanged. The payload is built in
// a buffer reused by the next call: it is valid until then.
func (o *Outbox) withID(m publish.Message) publish.Message {
	if m.Retained || m.ID == 0 || len(o.idPrefix) == 0 || !isJSONObject(m.Payload) {
		return m
	}
	i := bytes.IndexByte(m.Payload, '{') + 1
	rest := m.Payload[i:]
	b := append(o.idBuf[:0], m.Payload[:i]...)
	b = append(b, o.idPrefix...)
	b = strconv.AppendUint(b, m.ID, 10)
	b = append(b, '"')
	if len(bytes.TrimSpace(rest)) > 1 { // more than the closing brace
		b = append(b, ',')
	}
	b = append(b, rest...)
	o.idBuf = b
	m.Payload = b
	return m
}

// isJSONObject reports whether p looks like a JSON object: its first and
// last non-blank bytes are braces.
func isJSONObject(p []byte) bool {
	p = bytes.TrimSpace(p)
	return len(p) >= 2 && p[0] == '{' && p[len(p)-1] == '}'
}
