package spool

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// errInjected is the error faultFS returns for a call it makes fail.
var errInjected = errors.New("injected fault")

// faultFS is the real file system, except that the calls matching a rule
// set with failOn fail with errInjected. A failed Write first writes half
// its bytes, as a write cut short by a full disk can.
type faultFS struct {
	fileSystem
	mu    sync.Mutex
	rules []faultRule
	calls []string // "op name" of every call, in order
}

type faultRule struct {
	op, name string // the call and the base name of its path ("" = any)
	skip     int    // matching calls let through before the failures start
	times    int    // failures left; < 0 = every call
}

func newFaultFS() *faultFS { return &faultFS{fileSystem: osFS{}} }

// failOn makes every call op on a path with base name name ("" = any)
// fail.
func (f *faultFS) failOn(op, name string) { f.failAfter(op, name, 0, -1) }

// failAfter lets skip matching calls through, then makes the next times
// ones fail (times < 0: all of them).
func (f *faultFS) failAfter(op, name string, skip, times int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rules = append(f.rules, faultRule{op: op, name: name, skip: skip, times: times})
}

// heal removes every rule.
func (f *faultFS) heal() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rules = nil
}

// called reports whether op was called on a path with base name name.
func (f *faultFS) called(op, name string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.calls {
		if c == op+" "+name {
			return true
		}
	}
	return false
}

func (f *faultFS) check(op, path string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	base := filepath.Base(path)
	f.calls = append(f.calls, op+" "+base)
	for i := range f.rules {
		r := &f.rules[i]
		if r.op != op || (r.name != "" && r.name != base) || r.times == 0 {
			continue
		}
		if r.skip > 0 {
			r.skip--
			continue
		}
		if r.times > 0 {
			r.times--
		}
		return &fs.PathError{Op: op, Path: path, Err: errInjected}
	}
	return nil
}

func (f *faultFS) MkdirAll(path string, perm fs.FileMode) error {
	if err := f.check("mkdir", path); err != nil {
		return err
	}
	return f.fileSystem.MkdirAll(path, perm)
}

func (f *faultFS) ReadDir(name string) ([]fs.DirEntry, error) {
	if err := f.check("readdir", name); err != nil {
		return nil, err
	}
	return f.fileSystem.ReadDir(name)
}

func (f *faultFS) ReadFile(name string) ([]byte, error) {
	if err := f.check("readfile", name); err != nil {
		return nil, err
	}
	return f.fileSystem.ReadFile(name)
}

func (f *faultFS) OpenFile(name string, flag int, perm fs.FileMode) (file, error) {
	if err := f.check("open", name); err != nil {
		return nil, err
	}
	fl, err := f.fileSystem.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &faultFile{file: fl, fs: f, path: name}, nil
}

func (f *faultFS) Remove(name string) error {
	if err := f.check("remove", name); err != nil {
		return err
	}
	return f.fileSystem.Remove(name)
}

func (f *faultFS) Rename(oldpath, newpath string) error {
	if err := f.check("rename", oldpath); err != nil {
		return err
	}
	return f.fileSystem.Rename(oldpath, newpath)
}

func (f *faultFS) Lstat(name string) (fs.FileInfo, error) {
	if err := f.check("lstat", name); err != nil {
		return nil, err
	}
	return f.fileSystem.Lstat(name)
}

func (f *faultFS) Replace(path string, data []byte, perm fs.FileMode) error {
	if err := f.check("replace", path); err != nil {
		return err
	}
	return f.fileSystem.Replace(path, data, perm)
}

func (f *faultFS) WriteSynced(path string, data []byte, perm fs.FileMode) error {
	if err := f.check("writesynced", path); err != nil {
		return err
	}
	return f.fileSystem.WriteSynced(path, data, perm)
}

func (f *faultFS) SyncDir(dir string) error {
	if err := f.check("syncdir", dir); err != nil {
		return err
	}
	return f.fileSystem.SyncDir(dir)
}

type faultFile struct {
	file
	fs   *faultFS
	path string
}

func (f *faultFile) Write(p []byte) (int, error) {
	if err := f.fs.check("write", f.path); err != nil {
		n, _ := f.file.Write(p[:len(p)/2])
		return n, err
	}
	return f.file.Write(p)
}

func (f *faultFile) Sync() error {
	if err := f.fs.check("sync", f.path); err != nil {
		return err
	}
	return f.file.Sync()
}

func (f *faultFile) Truncate(size int64) error {
	if err := f.fs.check("truncate", f.path); err != nil {
		return err
	}
	return f.file.Truncate(size)
}

func (f *faultFile) Close() error {
	err := f.file.Close() // the descriptor is released either way
	if ferr := f.fs.check("close", f.path); ferr != nil {
		return ferr
	}
	return err
}

// withFS makes a Disk use fsys.
func withFS(fsys fileSystem) Option { return func(o *options) { o.fs = fsys } }

// wantFault checks that err is the injected fault, wrapped with the spool
// directory and the file's name.
func wantFault(t testing.TB, err error, dir, name string) {
	t.Helper()
	if !errors.Is(err, errInjected) {
		t.Fatalf("err = %v, want the injected fault", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "spool "+dir) || !strings.Contains(msg, name) {
		t.Fatalf("error %q does not name the spool %s and the file %s", msg, dir, name)
	}
}

// openFaulty opens dir through fsys with the test segment size.
// openFaultyDisk opens a disk spool in dir through a new faultFS, logging
// into the returned buffer, and closes it when the test ends.
func openFaultyDisk(t *testing.T, dir string) (*Disk, *faultFS, *syncBuffer) {
	t.Helper()
	fsys := newFaultFS()
	log, buf := captureLog()
	d, err := openFaulty(dir, Limits{}, fsys, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d, fsys, buf
}

func openFaulty(dir string, l Limits, fsys fileSystem, log *slog.Logger, opts ...Option) (*Disk, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return OpenDisk(dir, l, log, append([]Option{withSegmentSize(testSegmentSize), withFS(fsys)}, opts...)...)
}

// A file-system call failing while a directory is opened makes OpenDisk
// fail with an error naming the spool and the file, and leaves the
// directory so that, once the fault is gone, it opens with every message
// (nothing lost, nothing damaged). Each case builds a directory that
// takes OpenDisk down one path (a leftover temporary file, a version 1
// segment, a write cut short, a damaged record, a damaged checkpoint, an
// empty segment) and fails one call on it.
func TestDiskOpenFaults(t *testing.T) {
	type dirState struct {
		build func(t *testing.T, dir string) // leaves a closed spool in dir
		want  []string                       // what it holds after the fault
		lost  uint64                         // DroppedCorrupt once opened
	}
	// plain: "0".."9" in two segments, "0" and "1" delivered, and an
	// interrupted checkpoint write.
	plain := dirState{func(t *testing.T, dir string) {
		s := openTestDisk(t, dir, Limits{}, testSegmentSize, nil)
		addN(t, s, 10)
		tx := s.Begin(2)
		tx.AcceptAll()
		s.End(tx)
		s.Close()
		writeFile(t, filepath.Join(dir, ckName+".tmp"), []byte("half a checkpoint"))
	}, seq(2, 10), 0}
	v1 := dirState{func(t *testing.T, dir string) {
		writeFile(t, filepath.Join(dir, segName(1)), segmentV1(1, testDates[0], "a", "b"))
	}, []string{"a", "b"}, 0}
	torn := dirState{func(t *testing.T, dir string) {
		s := openTestDisk(t, dir, Limits{}, testSegmentSize, nil)
		addN(t, s, 3)
		s.Close()
		editFile(t, filepath.Join(dir, segName(1)), func(b []byte) []byte { return b[:len(b)-3] })
	}, seq(0, 2), 0}
	damagedSeg := dirState{func(t *testing.T, dir string) {
		s := openTestDisk(t, dir, Limits{}, testSegmentSize, nil)
		addN(t, s, 3)
		s.Close()
		editFile(t, filepath.Join(dir, segName(1)), func(b []byte) []byte {
			b[recordOffsets(t, b)[2]-1] ^= 0xff // "1"
			return b
		})
	}, []string{"0", "2"}, 1}
	badCheckpoint := dirState{func(t *testing.T, dir string) {
		s := openTestDisk(t, dir, Limits{}, testSegmentSize, nil)
		addN(t, s, 2)
		s.Close()
		writeFile(t, filepath.Join(dir, ckName), []byte("EDSPCKP2 damaged"))
	}, seq(0, 2), 0}
	emptySeg := dirState{func(t *testing.T, dir string) {
		s := openTestDisk(t, dir, Limits{}, testSegmentSize, nil)
		addN(t, s, 2)
		s.Close()
		writeFile(t, filepath.Join(dir, segName(3)), []byte(segMagic))
	}, seq(0, 2), 0}

	repaired := func(s dirState) dirState { s.lost = 0; return s }
	dirName := "" // stands for the spool directory's base name
	for _, tc := range []struct {
		name     string
		state    dirState
		op, file string
	}{
		{"create dir", plain, "mkdir", dirName},
		{"list dir", plain, "readdir", dirName},
		{"remove temp", plain, "remove", ckName + ".tmp"},
		{"read checkpoint", plain, "readfile", ckName},
		{"read segment", plain, "readfile", segName(6)},
		{"write checkpoint", plain, "replace", ckName},
		{"sync checkpoint", plain, "syncdir", dirName},
		{"rewrite v1", v1, "replace", segName(1)},
		{"sync v1 rewrite", v1, "syncdir", dirName},
		{"open torn", torn, "open", segName(1)},
		{"truncate torn", torn, "truncate", segName(1)},
		{"sync torn", torn, "sync", segName(1)},
		{"close torn", torn, "close", segName(1)},
		{"create corrupt dir", damagedSeg, "mkdir", corruptDir},
		{"look in corrupt dir", damagedSeg, "lstat", segName(1)},
		{"copy damaged aside", damagedSeg, "writesynced", segName(1)},
		{"put intact records in place", damagedSeg, "replace", segName(1)},
		{"move checkpoint aside", badCheckpoint, "rename", ckName},
		{"remove empty segment", emptySeg, "remove", segName(3)},
		// The repair is done when these fail: reopened, the spool
		// finds no damage.
		{"sync corrupt dir", repaired(damagedSeg), "syncdir", corruptDir},
		{"sync dir after repair", repaired(damagedSeg), "syncdir", dirName},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			tc.state.build(t, dir)
			file := tc.file
			if file == dirName {
				file = filepath.Base(dir)
			}
			fsys := newFaultFS()
			fsys.failAfter(tc.op, file, 0, 1) // once: that failure alone must fail the open
			d, err := openFaulty(dir, Limits{}, fsys, nil)
			if err == nil {
				d.Close()
				t.Fatalf("OpenDisk succeeded with %s %s failing", tc.op, file)
			}
			if d != nil {
				t.Fatalf("OpenDisk returned a spool with its error %v", err)
			}
			wantFault(t, err, dir, file)

			// Healed, the directory opens (the failed open released
			// its lock) with every message.
			fsys.heal()
			d, err = openFaulty(dir, Limits{}, fsys, nil)
			if err != nil {
				t.Fatalf("open after the fault: %v", err)
			}
			defer d.Close()
			if st := d.Stats(); st.DroppedCorrupt != tc.state.lost {
				t.Errorf("DroppedCorrupt = %d, want %d", st.DroppedCorrupt, tc.state.lost)
			}
			wantPayloads(t, "after the fault", drain(t, d), tc.state.want...)
		})
	}
}

func segName(first uint64) string { return fmt.Sprintf("%020d%s", first, segExt) }

// wantDiskBytes checks that Stats.DiskBytes is what the files take.
func wantDiskBytes(t testing.TB, d *Disk, dir string) {
	t.Helper()
	if got, want := d.Stats().DiskBytes, dirBytes(t, dir); got != want {
		t.Fatalf("Stats.DiskBytes = %d, the directory holds %d", got, want)
	}
}

// An Add whose write fails is refused with an error naming the segment
// and holds nothing of that call; the spool goes on, and reopened holds
// exactly the messages Add accepted, with no damage and no loss: a write
// cut short is cut back (or repaired on open if that fails too), a segment
// left empty is deleted.
func TestDiskAddFaults(t *testing.T) {
	payload := strings.Repeat("p", 100) // two records fill a test segment
	for _, tc := range []struct {
		name   string
		before []string // added first
		faults []faultRule
		file   string // named by the error
		torn   bool   // the failed write is repaired on reopen
	}{
		{name: "write", before: []string{"a", "b"},
			faults: []faultRule{{op: "write", name: segName(1)}}, file: segName(1)},
		{name: "sync", before: []string{"a", "b"},
			faults: []faultRule{{op: "sync", name: segName(1)}}, file: segName(1)},
		{name: "write and truncate", before: []string{"a", "b"},
			faults: []faultRule{{op: "write", name: segName(1)}, {op: "truncate", name: segName(1)}},
			file:   segName(1), torn: true},
		{name: "write to a new segment",
			faults: []faultRule{{op: "write", name: segName(1)}}, file: segName(1)},
		// The spent ID cannot be checkpointed either: the empty segment
		// must still go at once.
		{name: "write to a new segment, checkpoint failing",
			faults: []faultRule{{op: "write", name: segName(1)}, {op: "replace", name: ckName}}, file: segName(1)},
		{name: "sync of a new segment", before: []string{payload},
			faults: []faultRule{{op: "sync", name: segName(2)}}, file: segName(2)},
		{name: "create segment",
			faults: []faultRule{{op: "open", name: segName(1)}}, file: segName(1)},
		{name: "sync dir for a new segment",
			faults: []faultRule{{op: "syncdir"}}, file: segName(1)},
		{name: "close at rollover", before: []string{payload},
			faults: []faultRule{{op: "close", name: segName(1)}}, file: segName(1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			fsys := newFaultFS()
			alog, abuf := captureLog()
			d, err := openFaulty(dir, Limits{}, fsys, alog)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			for _, p := range tc.before {
				add(t, d, msg("t", p))
			}
			for _, r := range tc.faults {
				fsys.failAfter(r.op, r.name, 0, 1)
			}
			dropped, err := d.Add(msg("t", payload))
			if dropped != 0 {
				t.Errorf("the failed Add dropped %d", dropped)
			}
			wantFault(t, err, dir, tc.file)
			if warned := abuf.count("level=WARN", "cannot cut off failed write", tc.file) == 1; warned != tc.torn {
				t.Errorf("warned that the failed write stays: %v, want %v; log:\n%s", warned, tc.torn, abuf)
			}
			if st := d.Stats(); st.Len != len(tc.before) || st.Added != uint64(len(tc.before)) {
				t.Fatalf("after the failed Add: %+v, want the %d messages added before", st, len(tc.before))
			}
			for _, f := range segFiles(t, dir) {
				if data, err := os.ReadFile(f); err != nil || (len(parseSegment(data).recs) == 0 && !tc.torn) {
					t.Fatalf("segment %s left without records (%v)", f, err)
				}
			}
			if !tc.torn {
				wantDiskBytes(t, d, dir)
			}
			fsys.heal()
			add(t, d, msg("t", "after"))
			want := append(slices.Clone(tc.before), "after")
			wantPayloads(t, "held", payloads(d.Begin(10).Messages), want...)
			if err := d.Close(); err != nil {
				t.Fatal(err)
			}

			log, buf := captureLog()
			d = openTestDisk(t, dir, Limits{}, testSegmentSize, log)
			if st := d.Stats(); st.DroppedCorrupt != 0 {
				t.Errorf("DroppedCorrupt = %d after reopening", st.DroppedCorrupt)
			}
			if warned := buf.count("level=WARN") > 0; warned != tc.torn {
				t.Errorf("warnings on reopening: %v, want %v; log:\n%s", warned, tc.torn, buf)
			}
			wantPayloads(t, "reopened", drain(t, d), want...)
		})
	}
}

// An acknowledgement whose checkpoint cannot be written is logged (End
// returns nothing) and deletes no segment, so that a crash then loses
// nothing: the acknowledged messages come back (at least once), the
// others are all there. The next checkpoint that lands deletes the dead
// segments.
func TestDiskCheckpointFaults(t *testing.T) {
	payload := strings.Repeat("p", 100) // one message per segment
	// held is what a crash right after the failure leaves: with only the
	// directory sync failing, the new checkpoint is in place.
	for op, held := range map[string]int{"replace": 6, "syncdir": 4} {
		t.Run(op, func(t *testing.T) {
			dir := t.TempDir()
			d, fsys, buf := openFaultyDisk(t, dir)
			for i := range 5 {
				add(t, d, msg("t", fmt.Sprint(i, payload)))
			}
			fsys.failAfter(op, "", 0, 1)
			tx := d.Begin(2)
			tx.AcceptAll()
			d.End(tx)
			if buf.count("level=WARN", "acknowledgement not persisted", ckName, "injected fault") != 1 {
				t.Fatalf("no warning naming the checkpoint; log:\n%s", buf)
			}
			// A new segment (the old one closed) deletes none either.
			add(t, d, msg("t", fmt.Sprint(5, payload)))
			segs := segFiles(t, dir)
			if len(segs) != 6 {
				t.Fatalf("segments %v after the failed checkpoint, want all 6", segs)
			}
			wantDiskBytes(t, d, dir)
			c := openCrashed(t, dir)
			if got := drain(t, c); len(got) != held {
				t.Fatalf("after a crash: %d messages, want %d", len(got), held)
			}

			// The fault gone, the next acknowledgement catches up.
			fsys.heal()
			tx = d.Begin(1)
			tx.AcceptAll()
			d.End(tx)
			if got := segFiles(t, dir); !slices.Equal(got, segs[3:]) {
				t.Fatalf("segments %v after the checkpoint landed, want %v", got, segs[3:])
			}
			wantDiskBytes(t, d, dir)
			c = openCrashed(t, dir)
			if got := drain(t, c); len(got) != 3 {
				t.Fatalf("after a crash: %d messages, want the 3 not acknowledged", len(got))
			}
		})
	}
}

// A dead segment that cannot be deleted is reported, counted in
// DiskBytes while it is there, and deleted by the next acknowledgement;
// one already gone is no error.
func TestDiskSegmentRemoveFaults(t *testing.T) {
	payload := strings.Repeat("p", 100)
	dir := t.TempDir()
	d, fsys, buf := openFaultyDisk(t, dir)
	for i := range 7 {
		add(t, d, msg("t", fmt.Sprint(i, payload)))
	}
	segs := segFiles(t, dir) // one per message
	fsys.failOn("remove", filepath.Base(segs[0]))
	tx := d.Begin(2)
	tx.AcceptAll()
	d.End(tx)
	if buf.count("level=WARN", "acknowledgement not persisted", filepath.Base(segs[0]), "injected fault") != 1 {
		t.Fatalf("no warning naming the segment; log:\n%s", buf)
	}
	if got, want := segFiles(t, dir), without(segs, segs[1]); !slices.Equal(got, want) {
		t.Fatalf("segments %v, want %v", got, want)
	}
	wantDiskBytes(t, d, dir)

	fsys.heal()
	if err := os.Remove(segs[2]); err != nil { // as if deleted by hand
		t.Fatal(err)
	}
	tx = d.Begin(2)
	tx.AcceptAll()
	d.End(tx)
	if n := buf.count("level=WARN"); n != 1 {
		t.Fatalf("%d warnings, want only the first; log:\n%s", n, buf)
	}
	if got := segFiles(t, dir); !slices.Equal(got, segs[4:]) {
		t.Fatalf("segments %v, want %v", got, segs[4:])
	}
	wantDiskBytes(t, d, dir)
}

// A damaged file that cannot be pruned from corrupt/ is logged, with its
// name; pruning that works logs nothing.
func TestPruneCorruptRemoveFault(t *testing.T) {
	dir := t.TempDir()
	s, fsys, buf := openFaultyDisk(t, dir)
	cdir := filepath.Join(dir, corruptDir)
	if err := os.Mkdir(cdir, 0o700); err != nil {
		t.Fatal(err)
	}
	base := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	for i := range maxCorruptFiles + 1 {
		p := filepath.Join(cdir, fmt.Sprintf("seg%02d", i))
		writeFile(t, p, []byte("x"))
		if err := os.Chtimes(p, base, base.Add(time.Duration(i)*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	fsys.failOn("remove", "seg00")
	s.pruneCorrupt(cdir)
	if buf.count("level=WARN", "cannot prune", "file=seg00", "injected fault") != 1 {
		t.Fatalf("no warning naming seg00; log:\n%s", buf)
	}
	fsys.heal()
	s.pruneCorrupt(cdir)
	if n := buf.count("level=WARN"); n != 1 {
		t.Fatalf("%d warnings, want only the first; log:\n%s", n, buf)
	}
	if _, err := os.Stat(filepath.Join(cdir, "seg00")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("seg00 not pruned: %v", err)
	}
}

// A segment left behind when its messages were all acknowledged (its
// delete failed; the checkpoint landed) is deleted on the next open.
func TestDiskDeadSegmentDeletedOnOpen(t *testing.T) {
	dir := t.TempDir()
	fsys := newFaultFS()
	s, err := openFaulty(dir, Limits{}, fsys, nil)
	if err != nil {
		t.Fatal(err)
	}
	addN(t, s, 3)
	fsys.failOn("remove", segName(1))
	drain(t, s)
	s.Close()
	if got := segFiles(t, dir); len(got) != 1 {
		t.Fatalf("segments %v, want the one that could not be deleted", got)
	}
	fsys.heal()
	s, err = openFaulty(dir, Limits{}, fsys, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := segFiles(t, dir); len(got) != 0 || s.Len() != 0 {
		t.Fatalf("segments %v and %d messages after reopening, want none", got, s.Len())
	}
}
