package mqtt

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/edgedet/edgedet/internal/atomicfile"
	"github.com/mochi-mqtt/server/v2/hooks/storage"
	"github.com/mochi-mqtt/server/v2/packets"
)

// Retained-message files: one per topic in <state_dir>/broker/retained,
// named by the SHA-256 of the topic (so a change rewrites only that
// message, not the whole store: snapshots are large and SD cards wear).
// A file is retainedMagic, the CRC-32C of the body (big endian) and the
// body, mochi's storage.Message as JSON.
const (
	retainedMagic   = "EDGRET01"
	retainedExt     = ".msg"
	retainedTmpExt  = atomicfile.TmpSuffix
	retainedAsideEx = ".damaged"
	// retainedFlushEvery bounds how often changed messages are written.
	retainedFlushEvery = time.Second
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// retainedLimits are the caps of [EmbeddedConfig].
type retainedLimits struct {
	maxSize  int64 // one message, topic + payload bytes
	maxCount int
	maxBytes int64
}

// retainedStore mirrors the broker's retained messages for the caps and,
// with a directory, keeps them on disk. The broker's topic index stays the
// truth: sync re-reads a topic from it after every change.
type retainedStore struct {
	lim retainedLimits
	dir string // "" keeps nothing on disk
	log *slog.Logger

	mu    sync.Mutex
	msgs  map[string]storage.Message
	total int64               // topic + payload bytes of msgs
	dirty map[string]struct{} // topics to write or remove
	wErr  bool                // the last flush failed (logged once per streak)

	kick chan struct{} // capacity 1: changes to flush
	stop chan struct{}
	done chan struct{}
}

func newRetainedStore(lim retainedLimits, dir string, log *slog.Logger) *retainedStore {
	return &retainedStore{
		lim: lim, dir: dir, log: log,
		msgs:  map[string]storage.Message{},
		dirty: map[string]struct{}{},
		kick:  make(chan struct{}, 1),
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
	}
}

func msgSize(topic string, payload []byte) int64 { return int64(len(topic) + len(payload)) }

// fits reports why a retained message of size bytes on topic would break
// the caps, or nil. A message replacing one on the same topic counts only
// the difference.
func (s *retainedStore) fits(topic string, size int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fitsLocked(topic, size)
}

func (s *retainedStore) fitsLocked(topic string, size int64) error {
	if size > s.lim.maxSize {
		return fmt.Errorf("%d bytes over max_retained_size %d", size, s.lim.maxSize)
	}
	count, total := len(s.msgs), s.total+size
	if old, ok := s.msgs[topic]; ok {
		total -= msgSize(topic, old.Payload)
	} else {
		count++
	}
	if count > s.lim.maxCount {
		return fmt.Errorf("store full: max_retained_messages %d reached", s.lim.maxCount)
	}
	if total > s.lim.maxBytes {
		return fmt.Errorf("store full: %d bytes would exceed max_retained_bytes %d", total, s.lim.maxBytes)
	}
	return nil
}

// set records the broker's current retained message for topic (ok false:
// none) and reports whether the store now breaks the caps, in which case
// the caller removes it from the broker and calls set again with ok false.
func (s *retainedStore) set(topic string, pk packets.Packet, ok bool) (over error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, had := s.msgs[topic]
	if had {
		s.total -= msgSize(topic, old.Payload)
		delete(s.msgs, topic)
	}
	if ok && len(pk.Payload) > 0 {
		if err := s.fitsLocked(topic, msgSize(topic, pk.Payload)); err != nil {
			over = err
		}
		s.msgs[topic] = toStorage(pk)
		s.total += msgSize(topic, pk.Payload)
	}
	if had || ok {
		s.markLocked(topic)
	}
	return over
}

func (s *retainedStore) markLocked(topic string) {
	if s.dir == "" {
		return
	}
	s.dirty[topic] = struct{}{}
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

func toStorage(pk packets.Packet) storage.Message {
	return storage.Message{
		TopicName:   pk.TopicName,
		Payload:     slices.Clone(pk.Payload),
		Origin:      pk.Origin,
		Created:     pk.Created,
		FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: pk.FixedHeader.Qos, Retain: true},
		Properties: storage.MessageProperties{
			PayloadFormat:         pk.Properties.PayloadFormat,
			PayloadFormatFlag:     pk.Properties.PayloadFormatFlag,
			MessageExpiryInterval: pk.Properties.MessageExpiryInterval,
			ContentType:           pk.Properties.ContentType,
			ResponseTopic:         pk.Properties.ResponseTopic,
			CorrelationData:       slices.Clone(pk.Properties.CorrelationData),
			User:                  slices.Clone(pk.Properties.User),
		},
	}
}

// count returns the number of messages and their bytes.
func (s *retainedStore) count() (int, int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.msgs), s.total
}

// fileName is the file of topic's message.
func (s *retainedStore) fileName(topic string) string {
	sum := sha256.Sum256([]byte(topic))
	return filepath.Join(s.dir, hex.EncodeToString(sum[:16])+retainedExt)
}

// load reads the directory into the store (creating it if needed) and
// returns the messages for the broker. A file that does not decode is
// logged with its name and renamed to <name>.damaged; files beyond the
// caps (lowered since they were written) are logged and removed, the
// newest kept. Only a directory that cannot be created or listed is an
// error.
func (s *retainedStore) load() ([]storage.Message, error) {
	if s.dir == "" {
		return nil, nil
	}
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return nil, fmt.Errorf("retained store: %w", err)
	}
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("retained store: %w", err)
	}
	type loaded struct {
		path string
		msg  storage.Message
	}
	var all []loaded
	for _, e := range entries {
		name := e.Name()
		path := filepath.Join(s.dir, name)
		switch {
		case strings.HasSuffix(name, retainedTmpExt): // a write cut short
			_ = os.Remove(path)
			continue
		case !strings.HasSuffix(name, retainedExt) || !e.Type().IsRegular():
			continue
		}
		msg, err := s.readFile(path)
		if err != nil {
			aside := path + retainedAsideEx
			if rerr := os.Rename(path, aside); rerr != nil {
				s.log.Warn("retained message file damaged; could not move it aside", "file", path, "err", err, "rename_err", rerr)
			} else {
				s.log.Warn("retained message file damaged; moved aside", "file", path, "moved_to", aside, "err", err)
			}
			continue
		}
		all = append(all, loaded{path, msg})
	}
	// Newest first, so that lowered caps keep the latest messages.
	slices.SortFunc(all, func(a, b loaded) int {
		if c := b.msg.Created - a.msg.Created; c != 0 {
			return int(min(max(c, -1), 1))
		}
		return strings.Compare(a.msg.TopicName, b.msg.TopicName)
	})
	var out []storage.Message
	for _, l := range all {
		if err := s.fitsLocked(l.msg.TopicName, msgSize(l.msg.TopicName, l.msg.Payload)); err != nil {
			s.log.Warn("retained message from disk dropped", "file", l.path, "topic", l.msg.TopicName, "reason", err)
			_ = os.Remove(l.path)
			continue
		}
		s.msgs[l.msg.TopicName] = l.msg
		s.total += msgSize(l.msg.TopicName, l.msg.Payload)
		out = append(out, l.msg)
	}
	return out, nil
}

// readFile decodes one message file, checking its size bound, checksum,
// topic (it must hash to the file name) and payload.
func (s *retainedStore) readFile(path string) (storage.Message, error) {
	var msg storage.Message
	// JSON carries the payload in base64 (4/3) plus the other fields.
	limit := s.lim.maxSize*3/2 + 64<<10 + int64(len(retainedMagic)) + 4
	f, err := os.Open(path)
	if err != nil {
		return msg, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return msg, err
	}
	if st.Size() > limit {
		return msg, fmt.Errorf("%d bytes, over the %d a message within max_retained_size takes", st.Size(), limit)
	}
	b := make([]byte, st.Size())
	if _, err := f.ReadAt(b, 0); err != nil {
		return msg, fmt.Errorf("read: %w", err)
	}
	hdr := len(retainedMagic) + 4
	if len(b) < hdr || string(b[:len(retainedMagic)]) != retainedMagic {
		return msg, errors.New("not a retained message file (bad header)")
	}
	body := b[hdr:]
	if got, want := crc32.Checksum(body, castagnoli), binary.BigEndian.Uint32(b[len(retainedMagic):hdr]); got != want {
		return msg, fmt.Errorf("checksum %08x, want %08x", got, want)
	}
	if err := msg.UnmarshalBinary(body); err != nil {
		return msg, fmt.Errorf("decode: %w", err)
	}
	switch {
	case checkTopicName(msg.TopicName) != nil:
		return msg, fmt.Errorf("bad topic: %w", checkTopicName(msg.TopicName))
	case s.fileName(msg.TopicName) != path:
		return msg, fmt.Errorf("topic %q does not belong to this file name", msg.TopicName)
	case len(msg.Payload) == 0:
		return msg, errors.New("empty payload")
	case msg.FixedHeader.Qos > 2:
		return msg, fmt.Errorf("qos %d", msg.FixedHeader.Qos)
	}
	msg.FixedHeader = packets.FixedHeader{Type: packets.Publish, Qos: msg.FixedHeader.Qos, Retain: true}
	return msg, nil
}

// run writes changes at most every retainedFlushEvery until stop is
// closed, then writes what is left.
func (s *retainedStore) run() {
	defer close(s.done)
	for {
		select {
		case <-s.kick:
			s.flush()
		case <-s.stop:
			s.flush()
			return
		}
		t := time.NewTimer(retainedFlushEvery)
		select {
		case <-t.C:
		case <-s.stop:
			t.Stop()
			s.flush()
			return
		}
	}
}

// close stops run after a last flush; it is called once.
func (s *retainedStore) close() {
	if s.dir == "" {
		return
	}
	close(s.stop)
	<-s.done
}

// flush writes every changed topic: its file atomically (temp file,
// fsync, rename) or, for a topic with no message, removes the file; then
// syncs the directory. Topics that failed stay dirty for the next flush.
func (s *retainedStore) flush() {
	s.mu.Lock()
	work := make(map[string]*storage.Message, len(s.dirty))
	for topic := range s.dirty {
		if m, ok := s.msgs[topic]; ok && m.Properties.MessageExpiryInterval == 0 {
			work[topic] = &m
		} else {
			work[topic] = nil // deleted, or meant to expire: not kept across restarts
		}
	}
	clear(s.dirty)
	s.mu.Unlock()
	if len(work) == 0 {
		return
	}
	var errs []error
	for topic, m := range work {
		var err error
		if m == nil {
			if err = os.Remove(s.fileName(topic)); errors.Is(err, fs.ErrNotExist) {
				err = nil
			}
		} else {
			err = s.writeFile(s.fileName(topic), m)
		}
		if err != nil {
			errs = append(errs, err)
			s.mu.Lock()
			s.dirty[topic] = struct{}{}
			s.mu.Unlock()
		}
	}
	if err := atomicfile.SyncDir(s.dir); err != nil {
		errs = append(errs, err)
	}
	s.mu.Lock()
	wasErr := s.wErr
	s.wErr = len(errs) > 0
	s.mu.Unlock()
	switch {
	case len(errs) > 0 && !wasErr:
		s.log.Warn("retained messages not saved; retrying", "dir", s.dir, "failed", len(errs), "err", errors.Join(errs...))
	case len(errs) == 0 && wasErr:
		s.log.Info("retained messages saved again", "dir", s.dir)
	}
}

func (s *retainedStore) writeFile(path string, m *storage.Message) error {
	body, err := m.MarshalBinary()
	if err != nil {
		return fmt.Errorf("encode retained %q: %w", m.TopicName, err)
	}
	var buf bytes.Buffer
	buf.Grow(len(retainedMagic) + 4 + len(body))
	buf.WriteString(retainedMagic)
	buf.Write(binary.BigEndian.AppendUint32(nil, crc32.Checksum(body, castagnoli)))
	buf.Write(body)
	return atomicfile.Replace(path, buf.Bytes(), 0o600)
}
