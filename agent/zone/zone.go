// Package zone implements Frigate-style zones and object-filter masks for
// one camera's tracked objects.
//
// An object is in a zone when the bottom-centre of its box (where it
// stands, see BottomCentre) is inside the zone's polygon; how much of the
// box overlaps the polygon does not matter. Points on a polygon's edge
// count as inside. A zone may be limited to some labels (Config.Objects),
// and an object must be inside for Inertia consecutive updates before it
// counts as having entered, and outside for as many before it counts as
// having left, so a box jittering on the boundary does not flap.
//
// A Mask drops detections whose bottom-centre is inside any of its
// polygons, before they reach the tracker.
//
// Everything here is plain Go. Tracker and Counts are not safe for
// concurrent use: the camera's pipeline stage owns them, like
// track.Tracker. Mask is immutable and safe to share.
package zone

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
)

// Config is one zone of one camera, as decoded from a [[zone]] table:
//
//	[[zone]]
//	camera = "porch"
//	name = "driveway"
//	points = [[0,400],[640,400],[640,480],[0,480]]
//	inertia = 3
//	objects = ["car","person"]   # empty = all labels
type Config struct {
	// Camera is the name of the camera the zone belongs to.
	Camera string `toml:"camera"`
	// Name identifies the zone within its camera and is one MQTT topic
	// level (<prefix>/<device>/<camera>/zone/<name>/<label>).
	Name string `toml:"name"`
	// Points is the polygon in frame pixels, at least 3 vertices, in
	// either winding order; it may be self-intersecting (the even-odd rule
	// decides) and may extend outside the frame.
	Points []Point `toml:"points"`
	// Inertia is how many consecutive updates an object must be inside
	// before it enters the zone, and outside before it leaves (default 3,
	// range 1..100).
	Inertia int `toml:"inertia"`
	// Objects limits the zone to these labels; empty means all labels.
	Objects []string `toml:"objects"`
}

// Defaults and limits.
const (
	DefaultInertia = 3
	MaxInertia     = 100
)

// WithDefaults returns c with Inertia set to DefaultInertia when it is
// zero. Other values, valid or not, are kept for Validate to judge. The
// returned Config shares c's slices; nothing in this package modifies
// them.
func (c Config) WithDefaults() Config {
	if c.Inertia == 0 {
		c.Inertia = DefaultInertia
	}
	return c
}

var validName = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// Validate reports every invalid field, each naming its key relative to
// the zone table and its value, e.g. `points: 2 points, a polygon needs at
// least 3`. Call it on c.WithDefaults(); ValidateAll adds the "zone[i]."
// prefix and the checks that span zones.
func (c Config) Validate() error {
	return errors.Join(c.validate()...)
}

func (c Config) validate() []error {
	var errs []error
	if !validName.MatchString(c.Camera) {
		errs = append(errs, fmt.Errorf("camera: %q must be letters, digits, '_' or '-' (it is an MQTT topic level)", c.Camera))
	}
	if !validName.MatchString(c.Name) {
		errs = append(errs, fmt.Errorf("name: %q must be letters, digits, '_' or '-' (it is an MQTT topic level)", c.Name))
	}
	if err := checkPolygon(c.Points); err != nil {
		errs = append(errs, fmt.Errorf("points: %w", err))
	}
	if c.Inertia < 1 || c.Inertia > MaxInertia {
		errs = append(errs, fmt.Errorf("inertia: %d not in 1..%d", c.Inertia, MaxInertia))
	}
	for i, l := range c.Objects {
		if l == "" {
			errs = append(errs, fmt.Errorf("objects[%d]: empty label", i))
		}
	}
	return errs
}

// ValidateAll checks a [[zone]] array as it will be used (each entry with
// WithDefaults applied; zones is not modified) and reports all problems at
// once, keys prefixed with the entry's index: `zone[2].points: 2 points, a
// polygon needs at least 3`. Beyond Validate it rejects a name used twice
// for the same camera and, when cameras is not nil, a camera that is not
// in cameras.
func ValidateAll(zones []Config, cameras []string) error {
	var errs []error
	type key struct{ camera, name string }
	seen := make(map[key]int, len(zones))
	for i, z := range zones {
		z = z.WithDefaults()
		for _, err := range z.validate() {
			errs = append(errs, fmt.Errorf("zone[%d].%w", i, err))
		}
		if cameras != nil && validName.MatchString(z.Camera) && !slices.Contains(cameras, z.Camera) {
			errs = append(errs, fmt.Errorf("zone[%d].camera: %q is not a configured camera", i, z.Camera))
		}
		k := key{z.Camera, z.Name}
		if j, dup := seen[k]; dup {
			errs = append(errs, fmt.Errorf("zone[%d].name: %q is already zone[%d] of camera %q", i, z.Name, j, z.Camera))
		} else {
			seen[k] = i
		}
	}
	return errors.Join(errs...)
}
