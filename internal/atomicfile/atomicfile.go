// Package atomicfile replaces small state files so that a crash or power
// loss leaves either the old content or the new one, never a mix: the data
// goes to path+".tmp", is synced, and is renamed over path; the directory is
// then synced so the rename itself is durable. A leftover ".tmp" (a crash
// before the rename) holds nothing the old file lacks, and the next write
// replaces it.
package atomicfile

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// TmpSuffix is appended to a file's path for the copy being written.
const TmpSuffix = ".tmp"

// WriteFile atomically replaces path with data (created with perm) and makes
// the replacement durable.
func WriteFile(path string, data []byte, perm fs.FileMode) error {
	if err := Replace(path, data, perm); err != nil {
		return err
	}
	return SyncDir(filepath.Dir(path))
}

// Replace is WriteFile without the directory sync, for a caller that
// replaces several files of one directory and syncs it once (SyncDir).
func Replace(path string, data []byte, perm fs.FileMode) error {
	tmp := path + TmpSuffix
	if err := WriteSynced(tmp, data, perm); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("replace %s: %w", path, err)
	}
	return nil
}

// WriteSynced writes data to path (truncating it, creating it with perm)
// and syncs it to disk; on failure it removes what it wrote.
func WriteSynced(path string, data []byte, perm fs.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(path)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// SyncDir syncs a directory, making the renames and removals in it durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
