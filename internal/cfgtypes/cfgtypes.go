// Package cfgtypes holds small value types shared by the TOML configs of
// edgedet's packages: durations written as "250ms" or "30s", and the range
// checks every float key goes through (NaN and ±Inf are never valid).
package cfgtypes

import (
	"fmt"
	"time"
)

// Duration is a time.Duration that decodes from a TOML string such as "1.5s".
type Duration time.Duration

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(text []byte) error {
	v, err := time.ParseDuration(string(text))
	if err != nil {
		return fmt.Errorf("invalid duration %q (want e.g. \"500ms\", \"30s\", \"1m\")", text)
	}
	*d = Duration(v)
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String implements fmt.Stringer.
func (d Duration) String() string { return time.Duration(d).String() }
