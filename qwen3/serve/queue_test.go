package serve

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/qwgpu/qwgpu/qwen3/llm"
)

// requireTooMany checks a 429 in OpenAI's shape with a Retry-After.
func requireTooMany(t *testing.T, resp *http.Response, body []byte, retryAfter string) {
	t.Helper()
	requireAPIError(t, resp.StatusCode, http.StatusTooManyRequests, resp.Header.Get("Content-Type"), body, "", "requests are waiting for a slot")
	require.Equal(t, retryAfter, resp.Header.Get("Retry-After"))
	var e struct{ Error apiError }
	require.NoError(t, json.Unmarshal(body, &e))
	require.Equal(t, "rate_limit_error", e.Error.Type)
	require.Equal(t, "rate_limit_exceeded", *e.Error.Code)
}

// A full queue (llm.ErrQueueFull) answers 429 with Retry-After in whole
// seconds rounded up, streamed or not, on both endpoints.
func TestQueueFullIs429(t *testing.T) {
	srv, _ := newTestServer(t, Config{})
	for _, c := range []struct{ path, body string }{
		{"/v1/chat/completions", `{"messages":[{"role":"user","content":"busy"}]}`},
		{"/v1/chat/completions", `{"stream":true,"messages":[{"role":"user","content":"busy"}]}`},
		{"/v1/completions", `{"prompt":"busy"}`},
		{"/v1/completions", `{"prompt":"busy","stream":true}`},
	} {
		resp, err := http.Post(srv.URL+c.path, "application/json", strings.NewReader(c.body))
		require.NoError(t, err)
		body := readAll(t, resp)
		requireTooMany(t, resp, body, "3") // 2.5 s
	}
}

// The real scheduler (the CPU reference, no GPU needed) behind the
// server: with the only slot busy and llm.Options.MaxQueue requests
// waiting, the next request gets a 429 while the others go on.
func TestQueueFullRealModel(t *testing.T) {
	m, err := llm.Open(context.Background(), "", llm.Options{Device: "cpu", Ctx: 256, Parallel: 1, MaxQueue: 1})
	require.NoError(t, err)
	defer m.Close()
	srv, _ := newTestServer(t, Config{Backend: m})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	send := func(body string) {
		req, _ := http.NewRequestWithContext(ctx, "POST", srv.URL+"/v1/completions", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		// These two clients only occupy the slot and the queue; the test
		// cancels them at the end, so a read cut short by that is expected.
		if resp, err := http.DefaultClient.Do(req); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
	wg.Go(func() { send(`{"prompt":"Hold the slot","max_tokens":200,"stream":true}`) })
	require.Eventually(t, func() bool { return m.Stats().Active == 1 }, time.Minute, 10*time.Millisecond)
	wg.Go(func() { send(`{"prompt":"Wait in the queue","max_tokens":1}`) })
	require.Eventually(t, func() bool { return m.Stats().Queued == 1 }, time.Minute, 10*time.Millisecond)
	resp, err := http.Post(srv.URL+"/v1/completions", "application/json", strings.NewReader(`{"prompt":"One too many","max_tokens":1}`))
	require.NoError(t, err)
	body := readAll(t, resp)
	requireTooMany(t, resp, body, "1")
	require.Equal(t, 1, m.Stats().Queued)
	cancel()
	wg.Wait()
}
