package serve

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const slowChat = `{"stream":true,"messages":[{"role":"user","content":"slow"}]}`

// TestDisconnectCancels: a client that goes away mid-stream cancels its
// generation, and the server goes on answering others.
func TestDisconnectCancels(t *testing.T) {
	srv, fake := newTestServer(t, Config{})
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "POST", srv.URL+"/v1/chat/completions", strings.NewReader(slowChat))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	require.NoError(t, err)
	require.Contains(t, line, `"role":"assistant"`)
	cancel()
	resp.Body.Close()
	select {
	case err := <-fake.cancelled:
		require.Error(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("the generation went on after its client left")
	}
	m := postJSON(t, srv, "/v1/chat/completions", `{"messages":[{"role":"user","content":"hi"}]}`)
	require.Equal(t, "You said: hi", get(m, "choices", 0, "message", "content"))
}

// serveOn runs Server.Serve on a free port and returns its address and
// the channels that stop it.
func serveOn(t *testing.T, fake *fakeBackend, drain time.Duration) (addr string, stop, hard chan struct{}, done chan error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s := New(Config{Backend: fake, Log: t.Logf})
	stop, hard, done = make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() { done <- s.Serve(ln, stop, hard, drain) }()
	return "http://" + ln.Addr().String(), stop, hard, done
}

// TestShutdownDrains: after the stop signal a stream in flight runs to
// its end ([DONE]), new connections are refused, and Serve returns.
func TestShutdownDrains(t *testing.T) {
	fake := newFake()
	url, stop, _, done := serveOn(t, fake, time.Minute)
	// 25 tokens of 20 ms: still running when stop comes.
	body := `{"stream":true,"max_tokens":25,"messages":[{"role":"user","content":"slow"}]}`
	resp, err := http.Post(url+"/v1/chat/completions", "application/json", strings.NewReader(body))
	require.NoError(t, err)
	rd := bufio.NewReader(resp.Body)
	_, err = rd.ReadString('\n')
	require.NoError(t, err)
	close(stop)
	time.Sleep(50 * time.Millisecond)
	_, err = http.Get(url + "/health")
	require.Error(t, err, "a new connection was taken while draining")
	var last string
	for {
		line, err := rd.ReadString('\n')
		if err != nil {
			break
		}
		if strings.HasPrefix(line, "data: ") {
			last = line
		}
	}
	resp.Body.Close()
	require.Equal(t, "data: [DONE]\n", last, "the stream in flight was cut")
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after draining")
	}
}

// TestShutdownHardStop: a second signal cancels what is still running.
func TestShutdownHardStop(t *testing.T) {
	fake := newFake()
	url, stop, hard, done := serveOn(t, fake, time.Minute)
	resp, err := http.Post(url+"/v1/chat/completions", "application/json", strings.NewReader(slowChat))
	require.NoError(t, err)
	defer resp.Body.Close()
	_, err = bufio.NewReader(resp.Body).ReadString('\n')
	require.NoError(t, err)
	close(stop)
	close(hard)
	select {
	case err := <-fake.cancelled:
		require.Error(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("the endless generation was not cancelled")
	}
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return")
	}
}

// TestHealthWhileDraining: a keep-alive connection that asks during the
// drain hears 503, so a load balancer routes no new work here.
func TestHealthWhileDraining(t *testing.T) {
	s := New(Config{Backend: newFake(), Log: t.Logf})
	s.draining.Store(true)
	rec := &recorder{h: http.Header{}}
	s.ServeHTTP(rec, httptestRequest("GET", "/health"))
	require.Equal(t, 503, rec.status)
	require.JSONEq(t, `{"status":"shutting down"}`, rec.body.String())
}

type recorder struct {
	h      http.Header
	status int
	body   strings.Builder
}

func (r *recorder) Header() http.Header         { return r.h }
func (r *recorder) WriteHeader(c int)           { r.status = c }
func (r *recorder) Write(b []byte) (int, error) { return r.body.Write(b) }

func httptestRequest(method, path string) *http.Request {
	r, _ := http.NewRequest(method, path, nil)
	return r
}
