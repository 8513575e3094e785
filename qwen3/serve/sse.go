package serve

import (
	"encoding/json"
	"net/http"
	"time"
)

// sseWriter sends server-sent events. The headers go out with the first
// event, so an error found before any token (a prompt longer than the
// context) can still be an ordinary 4xx JSON answer.
type sseWriter struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	started bool
}

// sseWriteTimeout bounds one event's write: a client that stops reading
// fails the write and its generation is cancelled, instead of holding a
// batch slot forever. The server itself has no write timeout, since a
// stream may rightly last minutes.
const sseWriteTimeout = 30 * time.Second

func newSSE(w http.ResponseWriter) *sseWriter {
	return &sseWriter{w: w, rc: http.NewResponseController(w)}
}

func (s *sseWriter) start() {
	if s.started {
		return
	}
	s.started = true
	h := s.w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	s.w.WriteHeader(http.StatusOK)
}

func (s *sseWriter) send(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return s.raw(b)
}

func (s *sseWriter) raw(data []byte) error {
	s.start()
	s.rc.SetWriteDeadline(time.Now().Add(sseWriteTimeout))
	buf := make([]byte, 0, len(data)+8)
	buf = append(append(append(buf, "data: "...), data...), "\n\n"...)
	if _, err := s.w.Write(buf); err != nil {
		return err
	}
	return s.rc.Flush()
}

func (s *sseWriter) done() error { return s.raw([]byte("[DONE]")) }

// fail ends a stream that has started with an error event, which the
// openai clients raise as an APIError.
func (s *sseWriter) fail(e *apiError) {
	s.send(map[string]*apiError{"error": e})
}
