package main

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/edgedet/edgedet/internal/testenv"
)

// TestRunNotifiesSystemd runs the agent as systemd would (NOTIFY_SOCKET,
// WATCHDOG_USEC) and checks READY=1 after the first frame, WATCHDOG=1 pings
// while it works, and STOPPING=1 on SIGTERM.
func TestRunNotifiesSystemd(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var mu sync.Mutex
	var got []string
	go func() {
		buf := make([]byte, 4096)
		for {
			n, _, err := conn.ReadFromUnix(buf)
			if err != nil {
				return
			}
			mu.Lock()
			got = append(got, strings.TrimSpace(string(buf[:n])))
			mu.Unlock()
		}
	}()
	has := func(s string) bool {
		mu.Lock()
		defer mu.Unlock()
		for _, g := range got {
			if strings.Contains(g, s) {
				return true
			}
		}
		return false
	}

	clip := sampleClip(t)
	broker := testenv.StartMosquitto(t)
	path := filepath.Join(t.TempDir(), "agent.toml")
	os.WriteFile(path, []byte(agentConfig(broker.URL, testenv.Shared(t, "models", "yolox_nano_416.onnx"), clipCamera("porch", clip))), 0o644)
	cmd := exec.Command(edgedetBinary(t), "run", "-c", path)
	cmd.Env = append(os.Environ(), "EDGEDET_ORT_LIB="+testenv.ORTLibrary(t), "NOTIFY_SOCKET="+sock, "WATCHDOG_USEC=400000")
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
		if t.Failed() {
			t.Logf("agent log:\n%s", stderr.String())
		}
	})
	testenv.Eventually(t, 30*time.Second, "READY=1", func() bool { return has("READY=1") })
	testenv.Eventually(t, 10*time.Second, "WATCHDOG=1", func() bool { return has("WATCHDOG=1") })
	cmd.Process.Signal(syscall.SIGTERM)
	testenv.Eventually(t, 15*time.Second, "STOPPING=1", func() bool { return has("STOPPING=1") })
	select {
	case err := <-done:
		done <- err
		if err != nil {
			t.Fatalf("agent exit: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("agent did not stop")
	}
}
