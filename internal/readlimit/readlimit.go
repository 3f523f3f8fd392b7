// Package readlimit reads files whose size is controlled by whoever wrote
// them (label lists, model sidecars, dataset annotations) without letting a
// huge or endless file (/dev/zero, a FIFO fed forever) exhaust memory.
package readlimit

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// ErrTooLarge is wrapped by the error of ReadFile for a file over its limit.
var ErrTooLarge = errors.New("file too large")

// ReadFile reads the whole file at path, or fails with an error wrapping
// ErrTooLarge and naming the file and the limit when it holds more than
// limit bytes. It never reads more than limit+1 bytes.
func ReadFile(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s: %w: more than %d bytes", path, ErrTooLarge, limit)
	}
	return data, nil
}
