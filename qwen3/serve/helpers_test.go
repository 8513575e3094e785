package serve

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func newTestServer(t *testing.T, c Config) (*httptest.Server, *fakeBackend) {
	t.Helper()
	fake := newFake()
	if c.Backend == nil {
		c.Backend = fake
	}
	c.Log = t.Logf
	srv := httptest.NewServer(New(c))
	t.Cleanup(srv.Close)
	return srv, fake
}

// post sends a JSON body and returns the status, Content-Type and body.
func post(t *testing.T, srv *httptest.Server, path, body string) (int, string, []byte) {
	t.Helper()
	resp, err := http.Post(srv.URL+path, "application/json", strings.NewReader(body))
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, resp.Header.Get("Content-Type"), b
}

// postJSON posts and decodes a 200 answer.
func postJSON(t *testing.T, srv *httptest.Server, path, body string) map[string]any {
	t.Helper()
	status, _, b := post(t, srv, path, body)
	require.Equal(t, http.StatusOK, status, "%s", b)
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m), "%s", b)
	return m
}

// events posts a streaming request and returns its SSE data payloads.
func events(t *testing.T, srv *httptest.Server, path, body string) []string {
	t.Helper()
	resp, err := http.Post(srv.URL+path, "application/json", strings.NewReader(body))
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	var out []string
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		data, ok := strings.CutPrefix(line, "data: ")
		require.True(t, ok, "line %q is not an SSE data line", line)
		out = append(out, data)
	}
	require.NoError(t, sc.Err())
	return out
}

// chunks decodes every event but the final [DONE], which must be there.
func chunks(t *testing.T, evs []string) []map[string]any {
	t.Helper()
	require.NotEmpty(t, evs)
	require.Equal(t, "[DONE]", evs[len(evs)-1])
	var out []map[string]any
	for _, e := range evs[:len(evs)-1] {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(e), &m), e)
		out = append(out, m)
	}
	return out
}

// get walks a decoded JSON value by keys and indexes: get(m, "choices", 0, "message").
func get(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		case int:
			a, ok := v.([]any)
			if !ok || k >= len(a) {
				return nil
			}
			v = a[k]
		}
	}
	return v
}

// requireAPIError checks an OpenAI-style error answer.
func requireAPIError(t *testing.T, status int, wantStatus int, ctype string, body []byte, wantParam, wantMsg string) {
	t.Helper()
	require.Equal(t, wantStatus, status, "%s", body)
	require.Equal(t, "application/json", ctype)
	var e struct {
		Error struct {
			Message string  `json:"message"`
			Type    string  `json:"type"`
			Param   *string `json:"param"`
			Code    *string `json:"code"`
		} `json:"error"`
	}
	require.NoError(t, json.Unmarshal(body, &e), "%s", body)
	require.Contains(t, e.Error.Message, wantMsg)
	require.NotEmpty(t, e.Error.Type)
	if wantParam == "" {
		require.Nil(t, e.Error.Param, "%s", body)
	} else {
		require.NotNil(t, e.Error.Param, "%s", body)
		require.Equal(t, wantParam, *e.Error.Param)
	}
	// Every field of the shape is present, even when null.
	var raw map[string]map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(body, &raw))
	for _, k := range []string{"message", "type", "param", "code"} {
		require.Contains(t, raw["error"], k)
	}
}
