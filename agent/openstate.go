package agent

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/edgedet/edgedet/agent/outbox"
	"github.com/edgedet/edgedet/agent/report"
	"github.com/edgedet/edgedet/agent/topic"
	"github.com/edgedet/edgedet/agent/track"
	"github.com/edgedet/edgedet/detection"
	"github.com/edgedet/edgedet/internal/atomicfile"
)

// openObjectsFile is the file in state_dir listing the objects each camera
// has open (reported "new", not yet "end").
const openObjectsFile = "open-objects.json"

// openStateVersion is the format of openObjectsFile; a file of another
// version is treated as damaged.
const openStateVersion = 1

// openState is openObjectsFile's content.
type openState struct {
	Version int                   `json:"version"`
	Cameras map[string]openCamera `json:"cameras"`
}

// openCamera is one camera's open objects and what their events need
// besides the objects.
type openCamera struct {
	Model     string       `json:"model"`
	Precision string       `json:"precision"`
	Width     int          `json:"width"`
	Height    int          `json:"height"`
	Zones     bool         `json:"zones,omitempty"` // the camera has zones: events carry current/entered zones
	Objects   []openObject `json:"objects"`
}

// openObject is a tracked object as persisted: its state when the set of
// open objects last changed (an object seen since has a later last_seen
// than recorded; its restart "end" says when it was last known to be
// there).
type openObject struct {
	ID           string     `json:"id"`
	Label        string     `json:"label"`
	ClassID      int        `json:"class_id"`
	Score        float32    `json:"score"`
	TopScore     float32    `json:"top_score"`
	Box          [4]float32 `json:"box"`
	Start        time.Time  `json:"start_time"`
	LastSeen     time.Time  `json:"last_seen"`
	Hits         int        `json:"hits"`
	CurrentZones []string   `json:"current_zones,omitempty"`
	EnteredZones []string   `json:"entered_zones,omitempty"`
}

func finite32(v float32) float32 {
	if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
		return 0
	}
	return v
}

func toOpenObject(o track.Object, zones func(id string) (current, entered []string)) openObject {
	b := o.Box
	oo := openObject{ID: o.ID, Label: o.Label, ClassID: o.ClassID, Score: finite32(o.Score), TopScore: finite32(o.TopScore),
		Box:   [4]float32{finite32(b.X1), finite32(b.Y1), finite32(b.X2), finite32(b.Y2)},
		Start: o.Start, LastSeen: o.LastSeen, Hits: o.Hits}
	if zones != nil {
		oo.CurrentZones, oo.EnteredZones = zones(o.ID)
	}
	return oo
}

func (o openObject) object() track.Object {
	box := detection.Box{X1: o.Box[0], Y1: o.Box[1], X2: o.Box[2], Y2: o.Box[3]}
	return track.Object{ID: o.ID, Label: o.Label, ClassID: o.ClassID, Score: o.Score, TopScore: o.TopScore,
		Box: box, Area: box.Area(), Start: o.Start, LastSeen: o.LastSeen, Hits: o.Hits, FrameTime: o.LastSeen}
}

// check reports the first field that makes st unusable.
func (st *openState) check() error {
	if st.Version != openStateVersion {
		return fmt.Errorf("version %d, want %d", st.Version, openStateVersion)
	}
	for name, c := range st.Cameras {
		if name == "" {
			return errors.New("cameras: empty camera name")
		}
		for i, o := range c.Objects {
			if o.ID == "" || o.Label == "" {
				return fmt.Errorf("cameras.%s.objects[%d]: id %q, label %q: both must be set", name, i, o.ID, o.Label)
			}
		}
	}
	return nil
}

// openStore keeps openObjectsFile in step with the objects every camera
// has open. Pipelines call set when their set of open objects changes (a
// "new" or an "end"), never per frame; each call rewrites the file
// atomically (temporary file, fsync, rename, fsync of the directory), so a
// kill at any moment leaves the previous or the new list, whole. It is
// safe for concurrent use.
type openStore struct {
	path string
	log  *slog.Logger

	mu     sync.Mutex
	state  openState
	writes int // files written (tests)
	failed bool
}

// openOpenStore opens the store in dir (created if missing) and returns
// what the previous run left open, by camera. A file that cannot be read
// as a state file is logged with its name and moved aside (to
// <name>.damaged); the store then starts empty. Only a directory that
// cannot be created or read is an error.
func openOpenStore(dir string, log *slog.Logger) (*openStore, map[string]openCamera, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, nil, fmt.Errorf("state_dir %q: %w", dir, err)
	}
	s := &openStore{path: filepath.Join(dir, openObjectsFile), log: log,
		state: openState{Version: openStateVersion, Cameras: map[string]openCamera{}}}
	prev, err := s.load()
	if err != nil {
		return nil, nil, err
	}
	return s, prev, nil
}

// load reads the file; a damaged one is moved aside.
func (s *openStore) load() (map[string]openCamera, error) {
	data, err := os.ReadFile(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", s.path, err)
	}
	var st openState
	err = json.Unmarshal(data, &st)
	if err == nil {
		err = st.check()
	}
	if err != nil {
		s.moveAside(err)
		return nil, nil
	}
	return st.Cameras, nil
}

func (s *openStore) moveAside(why error) {
	aside := s.path + ".damaged"
	if err := os.Rename(s.path, aside); err != nil {
		s.log.Error("damaged state file, could not move it aside; objects open at the last stop are not ended",
			"file", s.path, "err", why, "rename_err", err)
		return
	}
	s.log.Warn("damaged state file moved aside; objects open at the last stop are not ended",
		"file", s.path, "moved_to", aside, "err", why)
}

// set records camera's open objects (none: the camera has none) and
// rewrites the file. A write error is logged (once per streak) and the
// next change tries again.
func (s *openStore) set(camera string, meta report.Meta, objs []track.Object) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(objs) == 0 {
		if _, ok := s.state.Cameras[camera]; !ok {
			return // nothing recorded, nothing to clear
		}
		delete(s.state.Cameras, camera)
	} else {
		c := openCamera{Model: meta.Model, Precision: meta.Precision, Width: meta.Width, Height: meta.Height,
			Zones: meta.Zones != nil, Objects: make([]openObject, 0, len(objs))}
		for _, o := range objs {
			c.Objects = append(c.Objects, toOpenObject(o, meta.Zones))
		}
		slices.SortFunc(c.Objects, func(a, b openObject) int { return cmp.Compare(a.ID, b.ID) })
		s.state.Cameras[camera] = c
	}
	if err := s.write(); err != nil {
		if !s.failed {
			s.log.Warn("write state file", "file", s.path, "err", err)
		}
		s.failed = true
		return
	}
	s.failed = false
}

// clear empties the file: what the previous run left open has been ended.
func (s *openStore) clear() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.state.Cameras)
	return s.write()
}

// write replaces the file with s.state atomically.
func (s *openStore) write() error {
	data, err := json.Marshal(&s.state)
	if err != nil {
		return fmt.Errorf("encode %s: %w", s.path, err)
	}
	if err := atomicfile.WriteFile(s.path, data, 0o600); err != nil {
		return err
	}
	s.writes++
	return nil
}

// restartEnds builds the "end" events, reason restart, of the objects cam
// had open when the previous run stopped, decided at now, in ID order, and
// the Meta to encode them with.
func restartEnds(camera string, cam openCamera, now time.Time) (report.Meta, []track.Event) {
	zones := map[string][2][]string{}
	evs := make([]track.Event, 0, len(cam.Objects))
	for _, o := range cam.Objects {
		obj := o.object()
		evs = append(evs, track.EndOf(obj, obj, now, track.EndRestart))
		zones[o.ID] = [2][]string{nonNil(o.CurrentZones), nonNil(o.EnteredZones)}
	}
	slices.SortFunc(evs, func(a, b track.Event) int { return cmp.Compare(a.After.ID, b.After.ID) })
	meta := report.Meta{Camera: camera, Model: cam.Model, Precision: cam.Precision, Width: cam.Width, Height: cam.Height}
	if cam.Zones {
		meta.Zones = func(id string) (current, entered []string) { z := zones[id]; return z[0], z[1] }
	}
	return meta, evs
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// restoreOpen opens the state directory (nil store when state_dir is
// unset) and queues an "end" (reason restart) for every object the
// previous run left open — it was killed or lost power before it could
// end them — with the per-label counts of their cameras back to 0. Then it
// empties the file, so they are ended once. It returns the counts it
// published per camera, for the pipelines to carry on from.
func (a *Agent) restoreOpen(box *outbox.Outbox, topics topic.Tree) (*openStore, map[string]*report.Counts, error) {
	if a.cfg.StateDir == "" {
		return nil, nil, nil
	}
	store, prev, err := openOpenStore(a.cfg.StateDir, a.log)
	if err != nil {
		return nil, nil, err
	}
	counts := map[string]*report.Counts{}
	now := a.clock.Now()
	for _, name := range slices.Sorted(maps.Keys(prev)) {
		cam := prev[name]
		if len(cam.Objects) == 0 {
			continue
		}
		meta, evs := restartEnds(name, cam, now)
		zero := map[string]int{}
		var frigate *report.FrigateEvents
		if topics.Frigate {
			frigate = report.NewFrigateEvents(topics, name)
		}
		for _, ev := range evs {
			if frigate != nil {
				box.Send(frigate.Message(meta, ev))
			} else {
				box.Send(report.EventMessage(topics, meta, ev))
			}
			zero[ev.After.Label] = 0
		}
		c := report.NewCounts(topics, name)
		box.Send(c.Update(zero, now)...)
		counts[name] = c
		a.log.Info("ended the objects the previous run left open", "camera", name, "objects", len(evs),
			"end_reason", track.EndRestart, "file", store.path)
	}
	if err := store.clear(); err != nil {
		return nil, nil, fmt.Errorf("state_dir: %w", err)
	}
	return store, counts, nil
}
