package serve

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
)

// Config sets up a Server; only Backend is required.
type Config struct {
	Backend Backend
	// APIKey, when set, must come as "Authorization: Bearer KEY" on the
	// /v1/ endpoints; /health, /metrics and the page stay open (a load
	// balancer probes them; the page asks for the key).
	APIKey string
	// MaxBody bounds a request body in bytes (default DefaultMaxBody).
	MaxBody int64
	// Log receives one line per failure worth an operator's look; nil
	// logs through the standard logger.
	Log func(format string, args ...any)
}

// DefaultMaxBody is 8 MiB: far above any prompt that fits a context of
// 40k tokens, with room for large tool schemas.
const DefaultMaxBody = 8 << 20

// Server answers the OpenAI API for one model.
type Server struct {
	backend  Backend
	apiKey   string
	maxBody  int64
	logf     func(string, ...any)
	started  time.Time
	draining atomic.Bool
	metrics  httpMetrics
	mux      *http.ServeMux
}

func New(c Config) *Server {
	s := &Server{backend: c.Backend, apiKey: c.APIKey, maxBody: c.MaxBody, logf: c.Log, started: time.Now()}
	if s.maxBody <= 0 {
		s.maxBody = DefaultMaxBody
	}
	if s.logf == nil {
		s.logf = log.Printf
	}
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("POST /v1/chat/completions", s.auth(s.chatCompletions))
	s.mux.HandleFunc("POST /v1/completions", s.auth(s.completions))
	s.mux.HandleFunc("GET /v1/models", s.auth(s.models))
	s.mux.HandleFunc("GET /health", s.health)
	s.mux.HandleFunc("GET /metrics", s.prometheus)
	s.mux.HandleFunc("GET /{$}", s.page)
	return s
}

// ServeHTTP routes a request, counting it by endpoint and status.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := &statusRecorder{ResponseWriter: w}
	_, pattern := s.mux.Handler(r)
	if pattern == "" {
		// Unknown paths and methods get the OpenAI error shape too.
		h, _ := s.mux.Handler(r)
		probe := &statusRecorder{ResponseWriter: discard{http.Header{}}}
		h.ServeHTTP(probe, r)
		status := probe.status
		msg := fmt.Sprintf("%s %s: no such endpoint", r.Method, r.URL.Path)
		if status == http.StatusMethodNotAllowed {
			rec.Header().Set("Allow", probe.Header().Get("Allow"))
			msg = fmt.Sprintf("%s %s: method not allowed", r.Method, r.URL.Path)
		} else {
			status = http.StatusNotFound
		}
		writeError(rec, &apiError{status: status, Message: msg, Type: "invalid_request_error"})
		s.metrics.count("other", rec.status)
		return
	}
	s.metrics.inFlight.Add(1)
	defer s.metrics.inFlight.Add(-1)
	s.mux.ServeHTTP(rec, r)
	s.metrics.count(strings.TrimPrefix(pattern, r.Method+" "), rec.status)
}

func (s *Server) modelName() string { return s.backend.Info().Name }

func (s *Server) auth(h http.HandlerFunc) http.HandlerFunc {
	if s.apiKey == "" {
		return h
	}
	return func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(s.apiKey)) != 1 {
			writeError(w, withCode(&apiError{status: http.StatusUnauthorized, Message: "missing or wrong API key (Authorization: Bearer KEY)",
				Type: "invalid_request_error"}, "invalid_api_key"))
			return
		}
		h(w, r)
	}
}

func (s *Server) models(w http.ResponseWriter, r *http.Request) {
	info := s.backend.Info()
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": []map[string]any{{
		"id": info.Name, "object": "model", "created": s.started.Unix(), "owned_by": "qwgpu",
		"max_model_len": info.Ctx, "parallel": info.Parallel,
	}}})
}

// health is what a load balancer probes: 200 while serving, 503 once a
// shutdown began, so no new work is routed here while requests drain.
func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	if s.draining.Load() {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "shutting down"})
		return
	}
	st := s.backend.Stats()
	writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "model": s.modelName(),
		"active": st.Active, "queue": st.Queued, "parallel": st.Parallel})
}

// Timeouts of the HTTP server. There is no write timeout: a stream may
// rightly run for minutes; each event's write has its own deadline
// (sseWriteTimeout) instead.
const (
	readHeaderTimeout = 10 * time.Second
	readTimeout       = 60 * time.Second // the whole request, body included
	idleTimeout       = 120 * time.Second
)

// HTTPServer is an http.Server for s with the timeouts set; generations
// run under ctx, so cancelling ctx aborts them all.
func (s *Server) HTTPServer(ctx context.Context, addr string) *http.Server {
	return &http.Server{
		Addr: addr, Handler: s,
		ReadHeaderTimeout: readHeaderTimeout, ReadTimeout: readTimeout, IdleTimeout: idleTimeout,
		BaseContext: func(net.Listener) context.Context { return ctx },
		ErrorLog:    log.New(logWriter(s.logf), "", 0),
	}
}

// Serve answers on ln until stop is closed, then drains: /health turns
// 503, no new connection is taken, requests in flight finish. After
// drainTimeout, or when hardStop is closed, those still running are
// cancelled. It returns once every handler has returned.
func (s *Server) Serve(ln net.Listener, stop, hardStop <-chan struct{}, drainTimeout time.Duration) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv := s.HTTPServer(ctx, ln.Addr().String())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return err
	case <-stop:
	}
	s.draining.Store(true)
	drainCtx, cancelDrain := context.WithTimeout(context.Background(), drainTimeout)
	defer cancelDrain()
	go func() {
		select {
		case <-hardStop:
		case <-drainCtx.Done():
		}
		cancel() // the generations still running end now
	}()
	err := srv.Shutdown(drainCtx)
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		// Streams were cancelled above; give their handlers a moment to
		// return, then close what is left.
		time.Sleep(100 * time.Millisecond)
		srv.Close()
		err = nil
	}
	<-served
	return err
}

type logWriter func(string, ...any)

func (l logWriter) Write(p []byte) (int, error) {
	l("%s", strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// statusRecorder remembers the status a handler wrote, for metrics.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach Flush and deadlines.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// discard is a ResponseWriter that keeps only the headers.
type discard struct{ h http.Header }

func (d discard) Header() http.Header       { return d.h }
func (discard) Write(b []byte) (int, error) { return len(b), nil }
func (discard) WriteHeader(int)             {}
