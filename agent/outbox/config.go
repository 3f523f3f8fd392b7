package outbox

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/edgedet/edgedet/internal/cfgtypes"
)

// Defaults of Config.
const (
	DefaultMaxMessages   = 10000
	DefaultMaxBytes      = 64 << 20
	DefaultMaxAge        = 24 * time.Hour
	DefaultFlushInterval = time.Second
	DefaultBatchSize     = 100
)

// Config is the [spool] table of agent.toml. A zero (unset) field takes its
// default; negative values are invalid.
type Config struct {
	// Dir is the disk spool's directory; "" keeps the spool in memory
	// only (its messages are lost on restart).
	Dir           string            `toml:"dir"`
	MaxMessages   int               `toml:"max_messages"`   // oldest dropped beyond; default 10000
	MaxBytes      int64             `toml:"max_bytes"`      // memory: topics + payloads; disk: the spool's files; default 64 MiB
	MaxAge        cfgtypes.Duration `toml:"max_age"`        // older messages are dropped unsent; default 24h
	FlushInterval cfgtypes.Duration `toml:"flush_interval"` // retry period while the broker is unreachable; default 1s
	BatchSize     int               `toml:"batch_size"`     // messages per spool transaction; default 100
}

// WithDefaults returns c with its zero fields set to the defaults.
func (c Config) WithDefaults() Config {
	if c.MaxMessages == 0 {
		c.MaxMessages = DefaultMaxMessages
	}
	if c.MaxBytes == 0 {
		c.MaxBytes = DefaultMaxBytes
	}
	if c.MaxAge == 0 {
		c.MaxAge = cfgtypes.Duration(DefaultMaxAge)
	}
	if c.FlushInterval == 0 {
		c.FlushInterval = cfgtypes.Duration(DefaultFlushInterval)
	}
	if c.BatchSize == 0 {
		c.BatchSize = DefaultBatchSize
	}
	return c
}

// Validate reports every invalid field, naming it spool.<key> with its value.
// Zero values are accepted (they mean the default).
func (c Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Dir != "" {
		if fi, err := os.Stat(c.Dir); err == nil && !fi.IsDir() {
			add("spool.dir: %q is not a directory", c.Dir)
		}
	}
	if c.MaxMessages < 0 {
		add("spool.max_messages: %d must be > 0", c.MaxMessages)
	}
	if c.MaxBytes < 0 {
		add("spool.max_bytes: %d must be > 0", c.MaxBytes)
	}
	if c.MaxAge < 0 {
		add("spool.max_age: %v must be > 0", c.MaxAge)
	}
	if c.FlushInterval < 0 {
		add("spool.flush_interval: %v must be > 0", c.FlushInterval)
	} else if c.FlushInterval > 0 && c.FlushInterval.D() < 10*time.Millisecond {
		add("spool.flush_interval: %v must be at least 10ms", c.FlushInterval)
	}
	if c.BatchSize < 0 {
		add("spool.batch_size: %d must be > 0", c.BatchSize)
	}
	return errors.Join(errs...)
}
