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
// limit bytes. It never reads more than limit+1 bytes, and reads nothing
// of a regular file whose size is over the limit.
func ReadFile(path string, limit int64) ([]byte, error) {
	return read(path, limit, false)
}

// ReadRegularFile is ReadFile for a file that must be a regular file (a
// model): a device such as /dev/zero, a FIFO or a directory is an error
// before anything is read.
func ReadRegularFile(path string, limit int64) ([]byte, error) {
	return read(path, limit, true)
}

func read(path string, limit int64, regular bool) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	switch {
	case regular && !st.Mode().IsRegular():
		return nil, fmt.Errorf("%s: not a regular file (%v)", path, st.Mode().Type())
	case st.Mode().IsRegular() && st.Size() > limit:
		return nil, fmt.Errorf("%s: %w: %d bytes, more than %d", path, ErrTooLarge, st.Size(), limit)
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s: %w: more than %d bytes", path, ErrTooLarge, limit)
	}
	return data, nil
}
