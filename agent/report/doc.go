// Package report builds the MQTT messages about tracked objects: lifecycle
// events (<prefix>/<device>/<camera>/events), per-label counts
// (<prefix>/<device>/<camera>/<label>), per-zone counts
// (<prefix>/<device>/<camera>/zone/<zone>/<label>) and best-frame JPEG
// snapshots (<prefix>/<device>/<camera>/<label>/snapshot), in the Frigate
// style, the camera's motion state (<prefix>/<device>/<camera>/motion), and
// the Home Assistant discovery configs of the agent. With mqtt.compat =
// "frigate" the events are encoded as Frigate's (FrigateEvents) and the
// counts gain "all" and /active. The topic names come from package topic.
//
// Everything but Snapshot is plain Go; Snapshot uses gocv and closes every
// Mat it creates before returning.
package report
