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

// TestStreamOutlivesReadTimeout: a stream longer than the server's read
// timeout is not cut (net/http's background read must not cancel it).
func TestStreamOutlivesReadTimeout(t *testing.T) {
	fake := newFake()
	s := New(Config{Backend: fake, Log: t.Logf})
	srv := s.HTTPServer(context.Background(), "")
	srv.ReadTimeout = 200 * time.Millisecond
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go srv.Serve(ln)
	defer srv.Close()
	body := `{"stream":true,"max_tokens":30,"messages":[{"role":"user","content":"slow"}]}` // 600 ms
	resp, err := http.Post("http://"+ln.Addr().String()+"/v1/chat/completions", "application/json", strings.NewReader(body))
	require.NoError(t, err)
	defer resp.Body.Close()
	var last string
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if sc.Text() != "" {
			last = sc.Text()
		}
	}
	require.Equal(t, "data: [DONE]", last)
}
