package redact

import "testing"

func TestString(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"rtsp://admin:hunter2@10.0.0.5:554/stream1", "rtsp://admin:xxxxx@10.0.0.5:554/stream1"},
		{"rtsp://admin@cam/s", "rtsp://admin@cam/s"},
		{"https://u:p%40ss@host/x.m3u8", "https://u:xxxxx@host/x.m3u8"},
		{"tcp://u:p@h:1883", "tcp://u:xxxxx@h:1883"},
		{"tcp://u:p@h:1883/%zz", "tcp://u:xxxxx@h:1883/%zz"},
		{"mqtts://u:p:with:colons@h", "mqtts://u:xxxxx@h"},
		{"rtspsrc location=rtsp://u:pw@cam/s latency=0 ! decodebin ! appsink",
			"rtspsrc location=rtsp://u:xxxxx@cam/s latency=0 ! decodebin ! appsink"},
		{"rtspsrc location=rtsp://cam/s user-id=admin user-pw=hunter2 ! decodebin ! appsink",
			"rtspsrc location=rtsp://cam/s user-id=admin user-pw=xxxxx ! decodebin ! appsink"},
		{`souphttpsrc proxy-pw="a b" ! jpegdec`, `souphttpsrc proxy-pw=xxxxx ! jpegdec`},
		{`open url "rtsp://u:pw@cam/s": capture did not open`, `open url "rtsp://u:xxxxx@cam/s": capture did not open`},
		{"http://cam/video.cgi?user=admin&password=hunter2&res=hd", "http://cam/video.cgi?user=admin&password=xxxxx&res=hd"},
		{"http://cam/v?pwd=1;Access_Token=abc#frag", "http://cam/v?pwd=xxxxx;Access_Token=xxxxx#frag"},
		{"http://cam/v?api%5Fkey=abc&key=k&keyframe=2", "http://cam/v?api%5Fkey=xxxxx&key=xxxxx&keyframe=2"},
		{"http://u:p@cam/v?token=t err: 401", "http://u:xxxxx@cam/v?token=xxxxx err: 401"},
		{"rtsp://cam/s", "rtsp://cam/s"},
		{"http://host/a@b", "http://host/a@b"}, // '@' after the host is not user info
		{"/dev/video0", "/dev/video0"},
		{"me@example.com", "me@example.com"},
		{"a=b c=d", "a=b c=d"},
		{"", ""},
	} {
		if got := String(c.in); got != c.want {
			t.Errorf("String(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestURL(t *testing.T) {
	for in, want := range map[string]string{
		"tcp://h:1883":            "tcp://h:1883",
		"tcp://u:p@h:1883":        "tcp://u:xxxxx@h:1883",
		"tcp://u@h:1883":          "tcp://u@h:1883",
		"tcp://u:p@h:1883 \x7f/x": "tcp://u:xxxxx@h:1883 \x7f/x",
		"u:p@h":                   "u:xxxxx@h",
		"u:p@h:1883":              "u:xxxxx@h:1883",
		"h:1883":                  "h:1883",
		"/dev/video0":             "/dev/video0",
	} {
		if got := URL(in); got != want {
			t.Errorf("URL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSecretName(t *testing.T) {
	for name, want := range map[string]bool{
		"password": true, "PASSWORD": true, "mqtt_password": true, "access_token": true, "pwd": true, "key": true,
		"client_secret": true, "user": false, "keyframe": false, "password_file": false, "password_env": false, "key_file": false, "width": false,
	} {
		if got := SecretName(name); got != want {
			t.Errorf("SecretName(%q) = %v, want %v", name, got, want)
		}
	}
}
