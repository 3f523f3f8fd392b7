package systemd

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
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
		"Type":                    "notify",
		"NotifyAccess":            "main",
		"ExecStart":               "/usr/bin/edgedet run -c /etc/edgedet/agent.toml",
		"ExecReload":              "/bin/kill -HUP $MAINPID",
		"Restart":                 "on-failure",
		"RestartSec":              "5",
		"WatchdogSec":             "30",
		"TimeoutStopSec":          "30",
		"KillMode":                "mixed",
		"User":                    "edgedet",
		"Group":                   "edgedet",
		"SupplementaryGroups":     "video",
		"StateDirectory":          "edgedet",
		"CacheDirectory":          "edgedet",
		"ProtectSystem":           "strict",
		"ProtectHome":             "true",
		"PrivateTmp":              "true",
		"NoNewPrivileges":         "true",
		"ProtectKernelTunables":   "true",
		"ProtectKernelModules":    "true",
		"ProtectKernelLogs":       "true",
		"ProtectControlGroups":    "true",
		"RestrictSUIDSGID":        "true",
		"LockPersonality":         "true",
		"RestrictRealtime":        "true",
		"RestrictNamespaces":      "true",
		"SystemCallArchitectures": "native",
		"MemoryDenyWriteExecute":  "false",
		"DeviceAllow":             "char-video4linux rw",
		"LimitNOFILE":             "65536",
		"Environment":             "EDGEDET_ORT_LIB=/usr/lib/edgedet/libonnxruntime.so.1",
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
		t.Errorf("ReadWritePaths = %q: StateDirectory/CacheDirectory already cover the spool and engine cache", rw)
	}
	// The spool lives where agent.toml's deployment comment says.
	toml, err := os.ReadFile(filepath.Join("..", "..", "agent.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(toml), `"/var/lib/edgedet/spool"`) {
		t.Error(`agent.toml no longer mentions "/var/lib/edgedet/spool" (StateDirectory=edgedet)`)
	}
}

// TestUnitVerify runs `systemd-analyze verify` when systemd-analyze is
// installed. verify insists that ExecStart's binary exists, so it checks a
// copy pointing at a stand-in executable; any output (unknown keys, bad
// values are only warnings) fails the test. The keys themselves are asserted
// by TestUnitFileKeys on every machine.
func TestUnitVerify(t *testing.T) {
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Logf("systemd-analyze not installed: unit checked by TestUnitFileKeys only")
		return
	}
	raw, err := os.ReadFile("edgedet.service")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	stand := filepath.Join(dir, "edgedet")
	if err := os.WriteFile(stand, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	unit := strings.Replace(string(raw), "ExecStart=/usr/bin/edgedet ", "ExecStart="+stand+" ", 1)
	if unit == string(raw) {
		t.Fatal("ExecStart=/usr/bin/edgedet not found")
	}
	path := filepath.Join(dir, "edgedet.service")
	if err := os.WriteFile(path, []byte(unit), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(sa, "verify", path).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}
