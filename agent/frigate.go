package agent

import (
	"fmt"

	"github.com/edgedet/edgedet/agent/mqtt"
)

// frigateTopLevel are the levels right under the prefix that Frigate's
// tree uses for itself: a camera or zone of that name would publish onto
// them.
var frigateTopLevel = map[string]bool{
	"available": true, "events": true, "stats": true, "restart": true, "reviews": true,
	"tracked_object_update": true, "camera_activity": true, "notifications": true, "onConnect": true,
}

// validateFrigate checks what mqtt.compat = "frigate" needs of the cameras
// and zones: in Frigate's tree cameras and zones share the level under the
// prefix (<prefix>/<camera>/<label>, <prefix>/<zone>/<label>), so a zone
// name must be unique across cameras and differ from every camera name,
// and neither may be one of Frigate's own top-level topics.
func (c *Config) validateFrigate() []error {
	if c.MQTT.Compat != mqtt.CompatFrigate {
		return nil
	}
	var errs []error
	cameras := map[string]bool{}
	for i, cam := range c.Cameras {
		cameras[cam.Name] = true
		if frigateTopLevel[cam.Name] {
			errs = append(errs, fmt.Errorf("camera[%d].name: %q is a topic of Frigate's own with mqtt.compat = %q (rename the camera)",
				i, cam.Name, mqtt.CompatFrigate))
		}
	}
	zoneAt := map[string]string{} // zone name → where it was first defined
	for i, cam := range c.Cameras {
		for j, z := range cam.Zones {
			key := fmt.Sprintf("camera[%d].zone[%d].name", i, j)
			switch {
			case frigateTopLevel[z.Name]:
				errs = append(errs, fmt.Errorf("%s: %q is a topic of Frigate's own with mqtt.compat = %q (rename the zone)",
					key, z.Name, mqtt.CompatFrigate))
			case cameras[z.Name]:
				errs = append(errs, fmt.Errorf("%s: %q is also a camera name; with mqtt.compat = %q zones and cameras share <prefix>/<name>/<label> (rename the zone)",
					key, z.Name, mqtt.CompatFrigate))
			case zoneAt[z.Name] != "":
				errs = append(errs, fmt.Errorf("%s: %q is already %s; with mqtt.compat = %q zone names are global, as in Frigate (rename one)",
					key, z.Name, zoneAt[z.Name], mqtt.CompatFrigate))
			default:
				zoneAt[z.Name] = key
			}
		}
	}
	return errs
}
