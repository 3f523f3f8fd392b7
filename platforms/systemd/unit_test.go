package systemd

import (
	"bufio"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// parseUnit returns section -> key -> values (repeated keys accumulate).
func parseUnit(t *testing.T, path string) map[string]map[string][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	u := map[string]map[string][]string{}
	section := ""
	sc := bufio.NewScanner(f)
	for ln := 1; sc.Scan(); ln++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[' && line[len(line)-1] == ']':
			section = line[1 : len(line)-1]
			if u[section] == nil {
				u[section] = map[string][]string{}
			}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" || strings.HasSuffix(line, `\`) {
				t.Fatalf("%s:%d: unexpected line %q", path, ln, line)
			}
			k = strings.TrimSpace(k)
			u[section][k] = append(u[section][k], strings.TrimSpace(v))
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return u
}

func TestUnitFileKeys(t *testing.T) {
	u := parseUnit(t, "edgedet.service")
	svc := u["Service"]
	want := map[string]string{
		"Type":                "notify",
		"NotifyAccess":        "main",
		"ExecStart":           "/usr/bin/edgedet run -c /etc/edgedet/agent.toml",
		"ExecReload":          "/bin/kill -HUP $MAINPID",
		"Restart":             "on-failure",
		"RestartSec":          "5",
		"WatchdogSec":         "30",
		"TimeoutStopSec":      "30",
		"KillMode":            "mixed",
		"User":                "edgedet",
		"Group":               "edgedet",
		"SupplementaryGroups": "video",
		"StateDirectory":      "edgedet",
		"CacheDirectory":      "edgedet",
		"LimitNOFILE":         "65536",
		"Environment":         "EDGEDET_ORT_LIB=/usr/lib/edgedet/libonnxruntime.so.1",
	}
	for k, v := range want {
		got := svc[k]
		if len(got) != 1 || got[0] != v {
			t.Errorf("[Service] %s = %q, want exactly %q", k, got, v)
		}
	}
	if u["Unit"]["Description"] == nil {
		t.Error("[Unit] Description missing")
	}
	if got := u["Install"]["WantedBy"]; len(got) != 1 || got[0] != "multi-user.target" {
		t.Errorf("[Install] WantedBy = %q", got)
	}
	// Nothing writable beyond StateDirectory/CacheDirectory.
	if rw := svc["ReadWritePaths"]; len(rw) != 0 {
		t.Errorf("ReadWritePaths = %q: StateDirectory/CacheDirectory already cover the spool, state and engine cache", rw)
	}
	// The spool and the state live where agent.toml's deployment comments
	// say: both under StateDirectory=edgedet.
	toml, err := os.ReadFile(filepath.Join("..", "..", "agent.toml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{`"/var/lib/edgedet/spool"`, `"/var/lib/edgedet/state"`} {
		if !strings.Contains(string(toml), dir) {
			t.Errorf("agent.toml no longer mentions %s (StateDirectory=edgedet)", dir)
		}
	}
}

// hardening is every sandboxing directive of edgedet.service with its exact
// value(s) and why the agent can live with it. A directive added to or
// dropped from the unit must be added to or dropped from this list.
var hardening = []struct {
	key  string
	want []string
	why  string
}{
	{"CapabilityBoundingSet", []string{""}, "no capabilities: an unprivileged user binding ports ≥ 1024"},
	{"AmbientCapabilities", []string{""}, "no capabilities"},
	{"NoNewPrivileges", []string{"true"}, "no setuid escalation"},
	{"UMask", []string{"0077"}, "spool, state and engine cache private to edgedet"},
	{"ProtectSystem", []string{"strict"}, "writes only to StateDirectory and CacheDirectory"},
	{"ProtectHome", []string{"true"}, "no home directories"},
	{"PrivateTmp", []string{"true"}, "private /tmp"},
	{"PrivateMounts", []string{"true"}, "no mount propagation"},
	{"RemoveIPC", []string{"true"}, "SysV IPC removed at stop"},
	{"ProtectProc", []string{"invisible"}, "other processes hidden"},
	{"ProtectKernelTunables", []string{"true"}, "/proc/sys, /sys read-only"},
	{"ProtectKernelModules", []string{"true"}, "no module loading"},
	{"ProtectKernelLogs", []string{"true"}, "no kernel log"},
	{"ProtectControlGroups", []string{"true"}, "cgroup fs read-only"},
	{"ProtectClock", []string{"true"}, "clock untouchable"},
	{"ProtectHostname", []string{"true"}, "host name untouchable"},
	{"RestrictSUIDSGID", []string{"true"}, "no set-id files"},
	{"LockPersonality", []string{"true"}, "no personality changes"},
	{"RestrictRealtime", []string{"true"}, "no real-time scheduling"},
	{"RestrictNamespaces", []string{"true"}, "no namespaces"},
	{"RestrictAddressFamilies", []string{"AF_UNIX AF_INET AF_INET6"}, "MQTT, RTSP, HTTP, sd_notify; no netlink"},
	{"SystemCallFilter", []string{"@system-service", "~@privileged"}, "typical service calls, @resources kept for ORT's sched_setaffinity"},
	{"SystemCallErrorNumber", []string{"EPERM"}, "a filtered call fails, the agent is not killed"},
	{"SystemCallArchitectures", []string{"native"}, "no 32-bit syscall ABI"},
	{"MemoryDenyWriteExecute", []string{"true"}, "CPU path has no JIT; GPU drop-ins relax it"},
	{"DevicePolicy", []string{"closed"}, "pseudo devices and DeviceAllow= only"},
	{"DeviceAllow", []string{"char-video4linux rw"}, "V4L2 cameras and sub-devices"},
}

func TestUnitHardening(t *testing.T) {
	svc := parseUnit(t, "edgedet.service")["Service"]
	for _, h := range hardening {
		if got := svc[h.key]; !slices.Equal(got, h.want) {
			t.Errorf("[Service] %s = %q, want %q (%s)", h.key, got, h.want, h.why)
		}
	}
	// Relaxations that would undo the above must not creep in.
	for _, k := range []string{"ReadWritePaths", "PrivateDevices", "ProcSubset", "PrivateNetwork", "IPAddressDeny", "DynamicUser"} {
		if v, ok := svc[k]; ok {
			t.Errorf("[Service] %s = %q is set: see the unit's comments for why it is not", k, v)
		}
	}
}

// dropIns are the per-board drop-ins install.sh installs as
// edgedet.service.d/platform.conf, with what each may relax.
var dropIns = map[string]map[string]bool{
	"jetson":     {"MemoryDenyWriteExecute": true, "DeviceAllow": true, "BindPaths": true},
	"nvidia-gpu": {"MemoryDenyWriteExecute": true, "DeviceAllow": true},
	"rpi-csi":    {"DeviceAllow": true, "RestrictAddressFamilies": true},
}

func TestDropIns(t *testing.T) {
	ents, err := os.ReadDir("dropins")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, strings.TrimSuffix(e.Name(), ".conf"))
	}
	if want := slices.Sorted(maps.Keys(dropIns)); !slices.Equal(names, want) {
		t.Fatalf("dropins/ holds %q, want %q", names, want)
	}
	for name, allowed := range dropIns {
		u := parseUnit(t, filepath.Join("dropins", name+".conf"))
		for k, v := range u["Service"] {
			if !allowed[k] {
				t.Errorf("%s.conf sets %s = %q: only %v may be relaxed for this board", name, k, v, slices.Sorted(maps.Keys(allowed)))
			}
			if k == "MemoryDenyWriteExecute" && !slices.Equal(v, []string{"false"}) {
				t.Errorf("%s.conf: MemoryDenyWriteExecute = %q, want false (CUDA/TensorRT JIT)", name, v)
			}
			if k == "DeviceAllow" {
				for _, d := range v {
					if f := strings.Fields(d); len(f) != 2 || (f[1] != "rw" && f[1] != "r") {
						t.Errorf("%s.conf: DeviceAllow = %q, want a device and r or rw (never m: mknod)", name, d)
					}
				}
			}
		}
	}
	// What each board needs beyond the base unit.
	jet := parseUnit(t, "dropins/jetson.conf")["Service"]
	for _, d := range []string{"/dev/nvmap rw", "char-nvhost* rw", "char-nvgpu* rw", "char-media rw"} {
		if !slices.Contains(jet["DeviceAllow"], d) {
			t.Errorf("jetson.conf lacks DeviceAllow=%s", d)
		}
	}
	if !slices.Equal(jet["BindPaths"], []string{"-/tmp/argus_socket"}) {
		t.Errorf("jetson.conf BindPaths = %q, want the Argus socket (PrivateTmp hides it)", jet["BindPaths"])
	}
	rpi := parseUnit(t, "dropins/rpi-csi.conf")["Service"]
	if !slices.Equal(rpi["DeviceAllow"], []string{"char-media rw", "char-dma_heap rw"}) {
		t.Errorf("rpi-csi.conf DeviceAllow = %q, want libcamera's media controller and DMA heaps", rpi["DeviceAllow"])
	}
}

// systemdAnalyze returns systemd-analyze's path, skipping the test where it
// is not installed (scripts/setup.sh installs it, so `make test` runs these).
func systemdAnalyze(t *testing.T) string {
	t.Helper()
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed (scripts/setup.sh installs Debian's systemd package)")
	}
	return sa
}

// unitVariants returns the unit as installed on each kind of board: the base
// unit alone and with each drop-in.
func unitVariants(t *testing.T) map[string]string {
	t.Helper()
	raw, err := os.ReadFile("edgedet.service")
	if err != nil {
		t.Fatal(err)
	}
	v := map[string]string{"generic": ""}
	for name := range dropIns {
		b, err := os.ReadFile(filepath.Join("dropins", name+".conf"))
		if err != nil {
			t.Fatal(err)
		}
		v[name] = string(b)
	}
	for name, d := range v {
		// A drop-in's sections merge into the unit's as if appended.
		v[name] = string(raw) + "\n" + d
	}
	return v
}

// TestUnitVerify runs `systemd-analyze verify` on the unit alone and with
// each board's drop-in. verify insists that ExecStart's binary exists, so it
// checks copies pointing at a stand-in executable; any output (unknown keys,
// bad values are only warnings) fails the test.
func TestUnitVerify(t *testing.T) {
	sa := systemdAnalyze(t)
	dir := t.TempDir()
	stand := filepath.Join(dir, "edgedet")
	if err := os.WriteFile(stand, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, text := range unitVariants(t) {
		unit := strings.Replace(text, "ExecStart=/usr/bin/edgedet ", "ExecStart="+stand+" ", 1)
		if unit == text {
			t.Fatal("ExecStart=/usr/bin/edgedet not found")
		}
		path := filepath.Join(dir, name, "edgedet.service")
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(unit), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(sa, "verify", path).CombinedOutput()
		if err != nil || len(strings.TrimSpace(string(out))) > 0 {
			t.Errorf("%s: systemd-analyze verify: %v\n%s", name, err, out)
		}
	}
}

// maxExposure is the highest `systemd-analyze security` exposure the unit may
// have on any board (issue 13: ≤ 2.0, "OK").
const maxExposure = 2.0

var exposureRE = regexp.MustCompile(`Overall exposure level for edgedet\.service: (\d+\.\d)`)

// TestUnitSecurityExposure rates the unit, alone and with each board's
// drop-in installed the way install.sh installs it, with `systemd-analyze
// security --offline=true` and fails above maxExposure, printing the table.
func TestUnitSecurityExposure(t *testing.T) {
	sa := systemdAnalyze(t)
	for name, d := range unitVariants(t) {
		root := t.TempDir()
		sys := filepath.Join(root, "etc", "systemd", "system")
		if err := os.MkdirAll(filepath.Join(sys, "edgedet.service.d"), 0o755); err != nil {
			t.Fatal(err)
		}
		raw, _ := os.ReadFile("edgedet.service")
		if err := os.WriteFile(filepath.Join(sys, "edgedet.service"), raw, 0o644); err != nil {
			t.Fatal(err)
		}
		// The drop-in as a real edgedet.service.d file (d minus the base).
		if dropIn := strings.TrimPrefix(d, string(raw)+"\n"); dropIn != "" {
			if err := os.WriteFile(filepath.Join(sys, "edgedet.service.d", "platform.conf"), []byte(dropIn), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		out, err := exec.Command(sa, "security", "--offline=true", "--no-pager", "--root="+root, "edgedet.service").CombinedOutput()
		if err != nil && strings.Contains(string(out), "unrecognized option") {
			t.Skipf("this systemd-analyze cannot rate a unit offline (needs systemd ≥ 250): %s", out)
		}
		m := exposureRE.FindSubmatch(out)
		if m == nil {
			t.Fatalf("%s: no exposure level in systemd-analyze security output (%v):\n%s", name, err, out)
		}
		score, perr := strconv.ParseFloat(string(m[1]), 64)
		if perr != nil {
			t.Fatalf("%s: exposure %q: %v", name, m[1], perr)
		}
		if score > maxExposure {
			t.Errorf("%s: exposure %.1f > %.1f:\n%s", name, score, maxExposure, out)
		} else {
			t.Logf("%s: exposure %.1f", name, score)
		}
	}
}

// needed are system calls the agent's libraries make on the CPU path (Go
// runtime, glibc, OpenCV V4L2 and FFmpeg, GStreamer and ORC, ONNX Runtime,
// sd_notify), all of which SystemCallFilter= must leave allowed.
var needed = []string{
	"ioctl",                       // V4L2 (VIDIOC_*), terminal probes
	"sched_setaffinity",           // ONNX Runtime pins intra-op threads (threads = 0)
	"sched_getaffinity",           // Go runtime, OpenCV, FFmpeg: CPU count
	"mmap", "mprotect", "madvise", // allocators; ORC maps its code twice
	"clone3", "futex", "rseq", // threads
	"epoll_pwait", "eventfd2", // Go netpoller
	"socket", "connect", "bind", "listen", "accept4", "sendmsg", "recvmsg",
	"getrandom",                 // crypto/rand, TLS
	"memfd_create", "ftruncate", // ORC, GStreamer shared memory
	"prlimit64", // Go raises RLIMIT_NOFILE
	"pidfd_open", "tgkill", "sigaltstack", "rt_sigaction",
	"fsync", "fdatasync", "renameat2", "unlinkat", "flock", // spool, state
}

// TestSystemCallFilterAllowsWhatTheAgentNeeds expands the unit's
// SystemCallFilter= with systemd-analyze's own group definitions and checks
// every call in needed is allowed, and that the filter really removes the
// privileged calls.
func TestSystemCallFilterAllowsWhatTheAgentNeeds(t *testing.T) {
	sa := systemdAnalyze(t)
	out, err := exec.Command(sa, "syscall-filter", "--no-pager").Output()
	if err != nil {
		t.Fatalf("systemd-analyze syscall-filter: %v", err)
	}
	groups := parseSyscallGroups(string(out))
	if len(groups["@system-service"]) == 0 {
		t.Fatalf("no @system-service in systemd-analyze syscall-filter output:\n%s", out)
	}
	allowed := map[string]bool{}
	for _, f := range parseUnit(t, "edgedet.service")["Service"]["SystemCallFilter"] {
		deny := strings.HasPrefix(f, "~")
		for _, item := range strings.Fields(strings.TrimPrefix(f, "~")) {
			for _, sc := range expandSyscalls(groups, item, map[string]bool{}) {
				allowed[sc] = !deny
			}
		}
	}
	for _, sc := range needed {
		if !allowed[sc] {
			t.Errorf("SystemCallFilter= denies %s, which the agent needs", sc)
		}
	}
	for _, sc := range []string{"setuid", "chown", "mount", "reboot", "init_module", "ptrace", "perf_event_open", "settimeofday", "bpf"} {
		if allowed[sc] {
			t.Errorf("SystemCallFilter= allows %s", sc)
		}
	}
}

// parseSyscallGroups reads `systemd-analyze syscall-filter`: a "@group"
// line, then its members (calls or @groups), one per line, indented.
func parseSyscallGroups(s string) map[string][]string {
	groups := map[string][]string{}
	cur := ""
	for _, line := range strings.Split(s, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 0:
			cur = ""
		case !strings.HasPrefix(line, " ") && strings.HasPrefix(f[0], "@"):
			cur = f[0]
		case cur != "" && !strings.HasPrefix(f[0], "#"):
			groups[cur] = append(groups[cur], f[0])
		}
	}
	return groups
}

func expandSyscalls(groups map[string][]string, item string, seen map[string]bool) []string {
	if !strings.HasPrefix(item, "@") {
		return []string{item}
	}
	if seen[item] {
		return nil
	}
	seen[item] = true
	var out []string
	for _, m := range groups[item] {
		out = append(out, expandSyscalls(groups, m, seen)...)
	}
	return out
}
