package report

import (
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/edgedet/edgedet/agent/publish"
)

// DiscoverySet is the set of config topics one Discovery call returned:
// what the running agent announces.
type DiscoverySet map[string]struct{}

// NewDiscoverySet returns the set of msgs' topics.
func NewDiscoverySet(msgs []publish.Message) DiscoverySet {
	s := make(DiscoverySet, len(msgs))
	for _, m := range msgs {
		s[m.Topic] = struct{}{}
	}
	return s
}

// Clear decides about a retained config received on topic through
// DiscoveryFilter: one that s does not hold, left by an earlier run whose
// config had a camera, label or zone this one lacks, is removed from Home
// Assistant by the returned message (an empty retained payload on its
// topic, QoS 1, Time now). ok is false for a topic of s and for an empty
// payload (a config already removed).
func (s DiscoverySet) Clear(topic string, payload []byte, now time.Time) (m publish.Message, ok bool) {
	if len(payload) == 0 {
		return publish.Message{}, false
	}
	if _, known := s[topic]; known {
		return publish.Message{}, false
	}
	return publish.Message{Topic: topic, QoS: 1, Retained: true, Time: now}, true
}

// DeviceURL is the configuration_url derived from the HTTP server's listen
// address: http://<host>:<port>/ when the live view is on, …/healthz when
// it is not. An unspecified host (":9464", "0.0.0.0:9464", "[::]:9464")
// becomes hostname, which is what other machines can reach; "" when listen
// is "" (no HTTP server), is not host:port, has port 0 (chosen at random:
// no stable address) or needs a hostname that is "".
func DeviceURL(listen string, liveView bool, hostname string) string {
	if listen == "" {
		return ""
	}
	host, port, err := net.SplitHostPort(listen)
	if err != nil || port == "" || port == "0" {
		return ""
	}
	if ip := net.ParseIP(strings.Trim(host, "[]")); host == "" || (ip != nil && ip.IsUnspecified()) {
		if hostname == "" {
			return ""
		}
		host = hostname
	}
	path := "/healthz"
	if liveView {
		path = "/"
	}
	return (&url.URL{Scheme: "http", Host: net.JoinHostPort(host, port), Path: path}).String()
}
