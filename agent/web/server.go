// Package web serves the agent's HTTP endpoints: /healthz for supervisors,
// /metrics when a handler is given, and, when the live view is on, a page
// that shows every camera's annotated frames as an MJPEG stream next to its
// current stats.
//
// The live view costs the pipeline nothing while nobody watches: each camera
// has a Feed whose Offer returns after one atomic load when no viewer is
// connected, and never blocks otherwise (see Feed).
package web

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/edgedet/edgedet/internal/clock"
	"github.com/edgedet/edgedet/internal/redact"
)

// DefaultStallAfter is the StallAfter used when Options leaves it zero.
const DefaultStallAfter = 30 * time.Second

const (
	// shutdownTimeout bounds http.Server.Shutdown; connections still open
	// after it are closed.
	shutdownTimeout = 5 * time.Second
	// streamWriteTimeout bounds writing one MJPEG part to a viewer, so a
	// client that stops reading cannot hold a handler forever.
	streamWriteTimeout = 10 * time.Second
	// latestWait is how long latest.jpg waits for a fresh frame.
	latestWait = 5 * time.Second
	// boundary separates the parts of an MJPEG stream.
	boundary = "edgedetframe"
)

// Options configures a Server.
type Options struct {
	Listen     string        // host:port, e.g. "127.0.0.1:9464"; port 0 picks a free one
	LiveView   bool          // serve the live page and MJPEG streams
	Metrics    http.Handler  // served at /metrics when non-nil
	StallAfter time.Duration // /healthz fails for a camera with no progress for this long (0: DefaultStallAfter)
	Log        *slog.Logger  // nil: discard
	// Clock judges stalls on its monotonic reading (nil: clock.System).
	// CameraStatus.StartedMono and LastProgressMono must come from it.
	Clock clock.Clock
}

// CameraStatus is one camera's state as the pipeline reports it.
type CameraStatus struct {
	Connected    bool      `json:"connected"`
	LastError    string    `json:"last_error,omitempty"`
	Started      time.Time `json:"started,omitzero"`       // pipeline start (wall clock, shown only)
	LastProgress time.Time `json:"last_progress,omitzero"` // last frame processed (or skipped because detection is off); zero: none yet
	// StartedMono and LastProgressMono are the same instants on the
	// monotonic clock (Options.Clock's Mono): health is judged from them,
	// never from the wall times above, which can step. Each is meaningful
	// only when its wall twin is not zero.
	StartedMono      time.Duration `json:"-"`
	LastProgressMono time.Duration `json:"-"`
	CaptureFPS       float64       `json:"capture_fps"`
	ProcessFPS       float64       `json:"process_fps"`
	InferenceMs      float64       `json:"inference_ms"`
	Detect           bool          `json:"detect"` // detection switched on
	// Objects counts the objects currently tracked, by label, sorted by
	// label: [{"label":"bicycle","count":1}, …].
	Objects []ObjectCount `json:"objects"`
}

// ObjectCount is how many objects of one label a camera tracks.
type ObjectCount struct {
	Label string `json:"label"`
	Count int    `json:"count"`
}

// CameraView is one camera as the server shows it.
type CameraView struct {
	Name string
	Feed *Feed // nil when the live view is off
	// Status returns the camera's current state. The server calls it from
	// its request goroutines, so it must be safe for concurrent use.
	Status func() CameraStatus
}

// Server serves the agent's HTTP endpoints. NewServer, then Start (binds
// the listener) and Run (serves until its context is done).
type Server struct {
	opts    Options
	log     *slog.Logger
	cams    []CameraView
	byName  map[string]*CameraView
	handler http.Handler
	page    []byte // rendered live page

	mu      sync.Mutex
	ln      net.Listener
	started time.Duration // when Start bound the listener (Clock.Mono); 0: not yet
	ran     bool

	viewers sync.WaitGroup // stream and latest.jpg handlers in flight
}

//go:embed index.html
var pageHTML string

var pageTmpl = template.Must(template.New("index.html").Parse(pageHTML))

// NewServer checks opts and the cameras and builds the server; it does not
// bind yet (see Start). It logs a warning when the live view is on and
// Listen is not a loopback address, since anyone who reaches it can watch
// the cameras.
func NewServer(opts Options, cams []CameraView) (*Server, error) {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	host, err := checkListen(opts.Listen)
	if err != nil {
		return nil, err
	}
	switch {
	case opts.StallAfter < 0:
		return nil, fmt.Errorf("web: stall_after %s: must not be negative", opts.StallAfter)
	case opts.StallAfter == 0:
		opts.StallAfter = DefaultStallAfter
	}
	if opts.Clock == nil {
		opts.Clock = clock.System
	}
	s := &Server{
		opts:   opts,
		log:    opts.Log.With("component", "web"),
		cams:   append([]CameraView(nil), cams...),
		byName: make(map[string]*CameraView, len(cams)),
	}
	for i := range s.cams {
		c := &s.cams[i]
		switch {
		case c.Name == "":
			return nil, fmt.Errorf("web: camera %d: empty name", i)
		case s.byName[c.Name] != nil:
			return nil, fmt.Errorf("web: camera %q: listed twice", c.Name)
		case c.Status == nil:
			return nil, fmt.Errorf("web: camera %q: no Status func", c.Name)
		case opts.LiveView && c.Feed == nil:
			return nil, fmt.Errorf("web: camera %q: live view is on but the camera has no Feed", c.Name)
		}
		s.byName[c.Name] = c
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.serveHealth)
	if opts.Metrics != nil {
		mux.Handle("/metrics", opts.Metrics)
	}
	if opts.LiveView {
		if s.page, err = s.renderPage(); err != nil {
			return nil, err
		}
		if !isLoopback(host) {
			s.log.Warn("live view served beyond loopback: anyone who can reach the address can watch the cameras",
				"listen", opts.Listen)
		}
		mux.HandleFunc("GET /{$}", s.servePage)
		mux.HandleFunc("GET /api/cameras", s.serveCameras)
		mux.HandleFunc("GET /cameras/{name}/stream.mjpg", s.serveStream)
		mux.HandleFunc("GET /cameras/{name}/latest.jpg", s.serveLatest)
	}
	s.handler = mux
	return s, nil
}

// checkListen validates a host:port listen address and returns the host.
func checkListen(listen string) (string, error) {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", fmt.Errorf("web: listen %q: want host:port such as 127.0.0.1:9464: %w", listen, err)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return "", fmt.Errorf("web: listen %q: port %q is not a number in 0..65535", listen, port)
	}
	return host, nil
}

// isLoopback reports whether host (from a listen address) only accepts
// local connections. An empty host means every interface.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Start binds the listener, so Addr is known and a bind error surfaces at
// startup. Run calls it when it has not been called.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln != nil || s.ran {
		return fmt.Errorf("web: listen %q: server already started", s.opts.Listen)
	}
	ln, err := net.Listen("tcp", s.opts.Listen)
	if err != nil {
		return fmt.Errorf("web: listen %q: %w", s.opts.Listen, err)
	}
	s.ln = ln
	s.started = s.opts.Clock.Mono()
	s.log.Info("web server listening", "addr", ln.Addr().String(), "live_view", s.opts.LiveView,
		"metrics", s.opts.Metrics != nil)
	return nil
}

// Addr is the bound address (host:port), "" before Start.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Run serves until ctx is done, then shuts the server down: open MJPEG
// streams end at once, and http.Server.Shutdown gets a bounded time before
// the remaining connections are closed. It returns nil after a shutdown
// caused by ctx, and only after every stream handler has returned. Run may
// be called once.
func (s *Server) Run(ctx context.Context) error {
	s.mu.Lock()
	if s.ran {
		s.mu.Unlock()
		return fmt.Errorf("web: listen %q: server already ran", s.opts.Listen)
	}
	bound := s.ln != nil
	s.mu.Unlock()
	if !bound {
		if err := s.Start(); err != nil {
			return err
		}
	}
	s.mu.Lock()
	s.ran = true
	ln := s.ln
	s.mu.Unlock()
	addr := ln.Addr().String()

	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		// Request contexts derive from ctx, so streams end when it does.
		BaseContext: func(net.Listener) context.Context { return ctx },
		ErrorLog:    slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	select {
	case err := <-served:
		_ = srv.Close() // ends the streams still open
		s.viewers.Wait()
		return fmt.Errorf("web: serve %s: %w", addr, err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		s.log.Warn("web server shutdown timed out, closing connections", "err", err, "timeout", shutdownTimeout)
		if err := srv.Close(); err != nil {
			s.log.Warn("web server close", "err", err)
		}
	}
	<-served // http.ErrServerClosed
	s.viewers.Wait()
	s.log.Info("web server stopped", "addr", addr)
	return nil
}

// camera returns the camera named in the request path, or writes a 404
// naming it.
func (s *Server) camera(w http.ResponseWriter, r *http.Request) *CameraView {
	name := r.PathValue("name")
	c := s.byName[name]
	if c == nil {
		http.Error(w, fmt.Sprintf("camera %q not found", name), http.StatusNotFound)
	}
	return c
}

// cameraJSON is one camera in /healthz and /api/cameras.
type cameraJSON struct {
	CameraStatus
	Healthy bool   `json:"healthy"`
	Reason  string `json:"reason,omitempty"`
	// SinceProgressS is seconds since LastProgress (or since the start
	// when no frame was processed yet), measured on the monotonic clock.
	SinceProgressS float64 `json:"since_progress_s"`
}

// snapshot reads every camera's status and judges its health at now, a
// monotonic reading of the server's Clock.
func (s *Server) snapshot(now time.Duration) (map[string]cameraJSON, []string) {
	out := make(map[string]cameraJSON, len(s.cams))
	var bad []string
	for i := range s.cams {
		c := &s.cams[i]
		st := c.Status()
		st.LastError = redact.String(st.LastError) // cameras redact too; the page is one more place it shows
		st.CaptureFPS, st.ProcessFPS, st.InferenceMs = finite(st.CaptureFPS), finite(st.ProcessFPS), finite(st.InferenceMs)
		if st.Objects == nil {
			st.Objects = []ObjectCount{}
		}
		since, reason := s.judge(c.Name, st, now)
		out[c.Name] = cameraJSON{CameraStatus: st, Healthy: reason == "", Reason: reason, SinceProgressS: since.Seconds()}
		if reason != "" {
			bad = append(bad, reason)
		}
	}
	return out, bad
}

// judge returns how long the camera has gone without progress and, when
// that is longer than StallAfter, the reason it is unhealthy. Every
// duration is a difference of monotonic readings (now is one): a wall
// clock step neither hides nor fakes a stall.
func (s *Server) judge(name string, st CameraStatus, now time.Duration) (time.Duration, string) {
	stall := s.opts.StallAfter
	var since time.Duration
	var reason string
	if st.LastProgress.IsZero() {
		ref := st.StartedMono
		if st.Started.IsZero() {
			s.mu.Lock()
			ref = s.started
			s.mu.Unlock()
		}
		if ref != 0 || !st.Started.IsZero() {
			since = now - ref
		}
		if since > stall {
			reason = fmt.Sprintf("camera %q: no frame processed since start %s ago (stall_after %s)",
				name, fmtDuration(since), fmtDuration(stall))
		}
	} else {
		since = now - st.LastProgressMono
		if since > stall {
			reason = fmt.Sprintf("camera %q: no frame processed for %s (stall_after %s)",
				name, fmtDuration(since), fmtDuration(stall))
		}
	}
	if reason != "" && st.LastError != "" {
		reason += "; last error: " + st.LastError
	}
	return max(since, 0), reason
}

// fmtDuration rounds d for messages: to seconds from 1s up, to
// milliseconds below.
func fmtDuration(d time.Duration) string {
	if d >= time.Second {
		return d.Round(time.Second).String()
	}
	return d.Round(time.Millisecond).String()
}

// finite maps NaN and ±Inf (a rate over an empty interval) to 0, which JSON
// can carry.
func finite(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	return v
}

type healthJSON struct {
	Status  string                `json:"status"`
	Cameras map[string]cameraJSON `json:"cameras"`
	Errors  []string              `json:"errors,omitempty"`
}

func (s *Server) serveHealth(w http.ResponseWriter, r *http.Request) {
	cams, bad := s.snapshot(s.opts.Clock.Mono())
	h := healthJSON{Status: "ok", Cameras: cams, Errors: bad}
	code := http.StatusOK
	if len(bad) > 0 {
		h.Status = "unhealthy"
		code = http.StatusServiceUnavailable
	}
	s.writeJSON(w, code, h)
}

func (s *Server) serveCameras(w http.ResponseWriter, r *http.Request) {
	cams, _ := s.snapshot(s.opts.Clock.Mono())
	s.writeJSON(w, http.StatusOK, cams)
}

func (s *Server) writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		s.log.Error("encode json response", "err", err)
		http.Error(w, "encode response: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}

type pageCamera struct {
	Name string
	Path string // URL path segment (escaped)
}

func (s *Server) renderPage() ([]byte, error) {
	cams := make([]pageCamera, len(s.cams))
	for i, c := range s.cams {
		cams[i] = pageCamera{Name: c.Name, Path: url.PathEscape(c.Name)}
	}
	var b bytes.Buffer
	if err := pageTmpl.Execute(&b, struct{ Cameras []pageCamera }{cams}); err != nil {
		return nil, fmt.Errorf("web: render live page: %w", err)
	}
	return b.Bytes(), nil
}

func (s *Server) servePage(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(s.page)
}

// freshFor is how old a cached frame may be for a new viewer to get it
// without waiting for the next one.
func freshFor(f *Feed) time.Duration {
	return max(time.Second, 2*f.interval)
}

// viewer resolves the request's camera (answering 404 itself when there
// is none) and registers a viewer of its feed, so the pipeline starts
// offering frames; call done when the response is finished.
func (s *Server) viewer(w http.ResponseWriter, r *http.Request) (*CameraView, func()) {
	c := s.camera(w, r)
	if c == nil {
		return nil, nil
	}
	s.viewers.Add(1)
	stop := c.Feed.watch()
	return c, func() {
		stop()
		s.viewers.Done()
	}
}

// serveStream sends the camera's frames as multipart/x-mixed-replace. Each
// part is the newest frame when the previous one has been written, so a
// slow client skips frames and nothing queues. It ends when the request
// context ends (client gone or Run's ctx done) or a write fails.
func (s *Server) serveStream(w http.ResponseWriter, r *http.Request) {
	c, done := s.viewer(w, r)
	if c == nil {
		return
	}
	defer done()
	f := c.Feed
	log := s.log.With("camera", c.Name, "remote", r.RemoteAddr)
	log.Debug("live stream viewer connected")
	defer log.Debug("live stream viewer gone")

	h := w.Header()
	h.Set("Content-Type", "multipart/x-mixed-replace; boundary="+boundary)
	h.Set("Cache-Control", "no-store, no-cache, must-revalidate")
	h.Set("Pragma", "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	rc := http.NewResponseController(w)
	defer func() { _ = rc.SetWriteDeadline(time.Time{}) }()
	// Each part is followed at once by the next boundary, so a browser
	// shows it without waiting for the next frame.
	if _, err := io.WriteString(w, "--"+boundary+"\r\n"); err != nil {
		return
	}
	if err := rc.Flush(); err != nil {
		return
	}
	ctx := r.Context()
	var seq uint64
	maxAge := freshFor(f)
	for {
		frame, n, err := f.frameAfter(ctx, seq, maxAge)
		if err != nil {
			return
		}
		seq, maxAge = n, 0
		_ = rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
		if err := writePart(w, frame); err != nil {
			log.Debug("live stream write", "err", err)
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
}

// writePart writes one JPEG part and the boundary after it.
func writePart(w http.ResponseWriter, frame []byte) error {
	if _, err := fmt.Fprintf(w, "Content-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n", len(frame)); err != nil {
		return err
	}
	if _, err := w.Write(frame); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\r\n--"+boundary+"\r\n")
	return err
}

// serveLatest answers with one fresh annotated JPEG, waiting up to
// latestWait for the pipeline to offer a frame.
func (s *Server) serveLatest(w http.ResponseWriter, r *http.Request) {
	c, done := s.viewer(w, r)
	if c == nil {
		return
	}
	defer done()
	f := c.Feed
	ctx, cancel := context.WithTimeout(r.Context(), latestWait)
	defer cancel()
	frame, _, err := f.frameAfter(ctx, 0, freshFor(f))
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) && r.Context().Err() == nil {
			http.Error(w, fmt.Sprintf("camera %q: no frame within %s", c.Name, latestWait), http.StatusServiceUnavailable)
		}
		return
	}
	w.Header().Set("Content-Type", "image/jpeg")
	w.Header().Set("Content-Length", strconv.Itoa(len(frame)))
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(frame)
}
