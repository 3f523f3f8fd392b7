package agent

import (
	"context"
	"os"

	"github.com/edgedet/edgedet/agent/report"
)

// startDiscovery queues the Home Assistant discovery configs (when
// [homeassistant] is enabled) now and again after every reconnect, and
// subscribes to the device's own discovery topics (report.DiscoveryFilter):
// a retained config this run does not announce — a camera, label or zone
// removed from the config, a feature switched off — is cleared with an
// empty retained payload, which removes its entity from Home Assistant.
// A refused subscription (a broker ACL) is logged; the stale entities then
// stay until deleted in Home Assistant.
func (a *Agent) startDiscovery(ctx context.Context, env *runEnv) {
	hc := a.cfg.HomeAssistant
	if !hc.Enabled {
		return
	}
	client, box, topics := env.client, env.box, env.topics
	src := a.discoverySource()
	if dups := report.DiscoveryDuplicates(hc, topics, src); len(dups) > 0 {
		a.log.Warn("home assistant: entities left out: their IDs repeat an earlier one's (names that differ only in case or punctuation)",
			"ids", dups)
	}
	configs := func() { box.Send(report.Discovery(hc, topics, src, a.clock.Now())...) }
	known := report.NewDiscoverySet(report.Discovery(hc, topics, src, a.clock.Now()))
	configs()
	client.OnConnect(configs)
	filter := report.DiscoveryFilter(hc, topics)
	err := client.Subscribe(ctx, filter, 1, func(topic string, payload []byte) {
		if m, ok := known.Clear(topic, payload, a.clock.Now()); ok {
			a.log.Info("home assistant: removing an entity no longer configured", "topic", topic)
			box.Send(m)
		}
	})
	if err != nil {
		a.log.Warn("home assistant: cannot watch the discovery topics; entities removed from the config stay in Home Assistant",
			"filter", filter, "err", err)
	}
}

// discoverySource describes, for report.Discovery, what this agent
// publishes: its cameras with their zones and motion detection, whether
// counts and snapshots are on, and the device's configuration URL
// (homeassistant.configuration_url, or one derived from http.listen).
func (a *Agent) discoverySource() report.DiscoverySource {
	src := report.DiscoverySource{
		Version:          a.Version,
		ConfigurationURL: a.cfg.HomeAssistant.ConfigurationURL,
		Events:           a.cfg.Events.Enabled,
		Snapshots:        a.cfg.Events.Enabled && a.cfg.Snapshots.Enabled,
	}
	if src.ConfigurationURL == "" {
		host, _ := os.Hostname() // "" if unknown: no URL for an unspecified listen host
		src.ConfigurationURL = report.DeviceURL(a.cfg.HTTP.Listen, a.cfg.HTTP.LiveView, host)
	}
	for _, cc := range a.cfg.Cameras {
		cam := report.DiscoveryCamera{Name: cc.Name, Motion: cc.Motion.Enabled}
		for _, z := range cc.Zones {
			cam.Zones = append(cam.Zones, report.DiscoveryZone{Name: z.Name, Objects: z.Objects})
		}
		src.Cameras = append(src.Cameras, cam)
	}
	return src
}
