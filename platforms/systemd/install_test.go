package systemd

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// fakeSrc builds a source tree with the build/ layout install.sh expects,
// using the repo's real agent.toml.
func fakeSrc(t *testing.T) string {
	t.Helper()
	src := t.TempDir()
	toml, err := os.ReadFile(filepath.Join("..", "..", "agent.toml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct {
		path string
		data string
		mode fs.FileMode
	}{
		{"build/edgedet", "#!/bin/sh\necho edgedet\n", 0o700},
		{"build/lib/libonnxruntime.so.1", "fake ort", 0o600},
		{"agent.toml", string(toml), 0o600},
	} {
		p := filepath.Join(src, f.path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(f.data), f.mode); err != nil {
			t.Fatal(err)
		}
	}
	return src
}

func runInstall(t *testing.T, src, destdir string, args ...string) (string, error) {
	t.Helper()
	if _, err := exec.LookPath("bash"); err != nil {
		t.Fatalf("bash is required: %v", err)
	}
	cmd := exec.Command("bash", append([]string{"install.sh"}, args...)...)
	cmd.Env = append(os.Environ(), "DESTDIR="+destdir, "EDGEDET_INSTALL_NO_SYSTEM=1", "EDGEDET_SRC_DIR="+src)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

func checkFile(t *testing.T, path string, mode fs.FileMode, contains ...string) string {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatalf("missing: %v", err)
	}
	if st.Mode().Perm() != mode {
		t.Errorf("%s: mode %v, want %v", path, st.Mode().Perm(), mode)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range contains {
		if !strings.Contains(string(b), c) {
			t.Errorf("%s does not contain %q", path, c)
		}
	}
	return string(b)
}

func TestInstallScript(t *testing.T) {
	src := fakeSrc(t)
	dest := t.TempDir()
	out, err := runInstall(t, src, dest)
	if err != nil {
		t.Fatalf("install.sh: %v\n%s", err, out)
	}
	checkFile(t, filepath.Join(dest, "usr/bin/edgedet"), 0o755, "echo edgedet")
	checkFile(t, filepath.Join(dest, "usr/lib/edgedet/libonnxruntime.so.1"), 0o644, "fake ort")
	conf := filepath.Join(dest, "etc/edgedet/agent.toml")
	checkFile(t, conf, 0o644, "\n[spool]\n", `dir = "/var/lib/edgedet/spool"`)
	unit := checkFile(t, filepath.Join(dest, "etc/systemd/system/edgedet.service"), 0o644,
		"ExecStart=/usr/bin/edgedet run -c /etc/edgedet/agent.toml",
		"Environment=EDGEDET_ORT_LIB=/usr/lib/edgedet/libonnxruntime.so.1")
	orig, _ := os.ReadFile("edgedet.service")
	if unit != string(orig) {
		t.Error("with default prefix the installed unit should equal edgedet.service")
	}
	if _, err := os.Stat(conf + ".dist"); err == nil {
		t.Error("agent.toml.dist written on a fresh install")
	}
	if !strings.Contains(out, "systemctl enable --now edgedet") {
		t.Errorf("output lacks the enable hint:\n%s", out)
	}
	// Nothing outside the expected files (no leftover temp files).
	var files []string
	filepath.WalkDir(dest, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			r, _ := filepath.Rel(dest, p)
			files = append(files, r)
		}
		return nil
	})
	if len(files) != 4 {
		t.Errorf("installed files %q, want 4", files)
	}

	// Second run: the user's edited config survives; the sample goes to .dist.
	mine := []byte("# my config\n[spool]\ndir = \"/srv/spool\"\n")
	if err := os.WriteFile(conf, mine, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(conf, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err = runInstall(t, src, dest)
	if err != nil {
		t.Fatalf("second install.sh: %v\n%s", err, out)
	}
	if b, _ := os.ReadFile(conf); !bytes.Equal(b, mine) {
		t.Errorf("agent.toml overwritten:\n%s", b)
	}
	if st, _ := os.Stat(conf); st.Mode().Perm() != 0o600 {
		t.Errorf("agent.toml mode changed to %v", st.Mode().Perm())
	}
	checkFile(t, conf+".dist", 0o644, `dir = "/var/lib/edgedet/spool"`)
	if !strings.Contains(out, conf+".dist") {
		t.Errorf("output does not say where the sample went:\n%s", out)
	}
	checkFile(t, filepath.Join(dest, "usr/bin/edgedet"), 0o755)
}

func TestInstallScriptPrefixAndConfigDir(t *testing.T) {
	src := fakeSrc(t)
	dest := t.TempDir()
	out, err := runInstall(t, src, dest, "--prefix", "/usr/local", "--config-dir=/opt/edgedet/etc")
	if err != nil {
		t.Fatalf("install.sh: %v\n%s", err, out)
	}
	checkFile(t, filepath.Join(dest, "usr/local/bin/edgedet"), 0o755)
	checkFile(t, filepath.Join(dest, "usr/local/lib/edgedet/libonnxruntime.so.1"), 0o644)
	checkFile(t, filepath.Join(dest, "opt/edgedet/etc/agent.toml"), 0o644)
	checkFile(t, filepath.Join(dest, "etc/systemd/system/edgedet.service"), 0o644,
		"ExecStart=/usr/local/bin/edgedet run -c /opt/edgedet/etc/agent.toml",
		"Environment=EDGEDET_ORT_LIB=/usr/local/lib/edgedet/libonnxruntime.so.1")
}

func TestInstallScriptMissingArtefacts(t *testing.T) {
	for _, missing := range []string{"build/edgedet", "build/lib/libonnxruntime.so.1"} {
		src := fakeSrc(t)
		if err := os.Remove(filepath.Join(src, missing)); err != nil {
			t.Fatal(err)
		}
		dest := t.TempDir()
		out, err := runInstall(t, src, dest)
		if err == nil {
			t.Fatalf("without %s: install.sh succeeded\n%s", missing, out)
		}
		if !strings.Contains(out, missing) || !strings.Contains(out, "run make build first") {
			t.Errorf("without %s: unclear error:\n%s", missing, out)
		}
		if ents, _ := os.ReadDir(dest); len(ents) != 0 {
			t.Errorf("without %s: installed something anyway", missing)
		}
	}
	out, err := runInstall(t, fakeSrc(t), t.TempDir(), "--bogus")
	if err == nil || !strings.Contains(out, "unknown argument: --bogus") {
		t.Errorf("--bogus: err=%v\n%s", err, out)
	}
}
