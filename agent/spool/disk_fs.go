package spool

import (
	"io"
	"io/fs"
	"os"

	"github.com/edgedet/edgedet/internal/atomicfile"
)

// fileSystem is what a Disk does to its directory (its lock aside): the os
// and atomicfile calls it makes, so that tests can make any of them fail
// and check that the failure is reported and loses nothing.
type fileSystem interface {
	MkdirAll(path string, perm fs.FileMode) error
	ReadDir(name string) ([]fs.DirEntry, error)
	ReadFile(name string) ([]byte, error)
	OpenFile(name string, flag int, perm fs.FileMode) (file, error)
	Remove(name string) error
	Rename(oldpath, newpath string) error
	Lstat(name string) (fs.FileInfo, error)
	// Replace, WriteSynced and SyncDir are atomicfile's.
	Replace(path string, data []byte, perm fs.FileMode) error
	WriteSynced(path string, data []byte, perm fs.FileMode) error
	SyncDir(dir string) error
}

// file is an open segment file.
type file interface {
	io.Writer
	Sync() error
	Truncate(size int64) error
	Close() error
}

// osFS is the real file system.
type osFS struct{}

func (osFS) MkdirAll(path string, perm fs.FileMode) error { return os.MkdirAll(path, perm) }
func (osFS) ReadDir(name string) ([]fs.DirEntry, error)   { return os.ReadDir(name) }
func (osFS) ReadFile(name string) ([]byte, error)         { return os.ReadFile(name) }
func (osFS) Remove(name string) error                     { return os.Remove(name) }
func (osFS) Rename(oldpath, newpath string) error         { return os.Rename(oldpath, newpath) }
func (osFS) Lstat(name string) (fs.FileInfo, error)       { return os.Lstat(name) }
func (osFS) SyncDir(dir string) error                     { return atomicfile.SyncDir(dir) }

func (osFS) OpenFile(name string, flag int, perm fs.FileMode) (file, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err // not a non-nil file holding a nil *os.File
	}
	return f, nil
}

func (osFS) Replace(path string, data []byte, perm fs.FileMode) error {
	return atomicfile.Replace(path, data, perm)
}

func (osFS) WriteSynced(path string, data []byte, perm fs.FileMode) error {
	return atomicfile.WriteSynced(path, data, perm)
}
