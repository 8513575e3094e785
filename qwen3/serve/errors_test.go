package serve

import (
	"net/http"
	"strings"
	"testing"
)

func TestRequestErrors(t *testing.T) {
	srv, _ := newTestServer(t, Config{MaxBody: 4096})
	hi := `"messages":[{"role":"user","content":"hi"}]`
	for _, c := range []struct {
		name, path, body string
		status           int
		param, msg       string
	}{
		{"bad JSON", "/v1/chat/completions", `{"messages":[`, 400, "", "JSON ends early"},
		{"syntax", "/v1/chat/completions", `{"messages":}`, 400, "", "invalid JSON at byte 13"},
		{"empty body", "/v1/chat/completions", ``, 400, "", "empty"},
		{"not an object", "/v1/chat/completions", `[1,2]`, 400, "", "want a JSON object"},
		{"two values", "/v1/chat/completions", `{` + hi + `} {}`, 400, "", "more than one JSON value"},
		{"wrong type", "/v1/chat/completions", `{"temperature":"hot",` + hi + `}`, 400, "temperature", "temperature: want a number, got string"},
		{"wrong nested type", "/v1/chat/completions", `{"messages":[{"role":7,"content":"x"}]}`, 400, "messages.role", "want a string, got number"},
		{"stream not bool", "/v1/chat/completions", `{"stream":"yes",` + hi + `}`, 400, "stream", "want a boolean"},
		{"stop of numbers", "/v1/chat/completions", `{"stop":[1],` + hi + `}`, 400, "stop", "string or an array of strings"},
		{"too many stops", "/v1/chat/completions", `{"stop":["a","b","c","d","e"],` + hi + `}`, 400, "stop", "at most 4"},
		{"image part", "/v1/chat/completions", `{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}}]}]}`, 400, "messages", `"image_url"`},
		{"no messages", "/v1/chat/completions", `{"model":"m"}`, 400, "messages", "empty"},
		{"bad role", "/v1/chat/completions", `{"messages":[{"role":"wizard","content":"x"}]}`, 400, "messages", `role "wizard"`},
		{"n=2", "/v1/chat/completions", `{"n":2,` + hi + `}`, 400, "n", "only n=1"},
		{"logprobs", "/v1/chat/completions", `{"logprobs":true,` + hi + `}`, 400, "logprobs", "not supported"},
		{"temperature range", "/v1/chat/completions", `{"temperature":-1,` + hi + `}`, 400, "temperature", "want 0 to 2"},
		{"top_p range", "/v1/chat/completions", `{"top_p":0,` + hi + `}`, 400, "top_p", "more than 0"},
		{"max_tokens 0", "/v1/chat/completions", `{"max_tokens":0,` + hi + `}`, 400, "max_tokens", "at least 1"},
		{"max_completion_tokens", "/v1/chat/completions", `{"max_completion_tokens":-3,` + hi + `}`, 400, "max_completion_tokens", "at least 1"},
		{"penalty range", "/v1/chat/completions", `{"presence_penalty":3,` + hi + `}`, 400, "presence_penalty", "want -2 to 2"},
		{"bad tool", "/v1/chat/completions", `{"tools":[{"type":"retrieval"}],` + hi + `}`, 400, "tools", "tools[0]"},
		{"json_schema", "/v1/chat/completions", `{"response_format":{"type":"json_schema"},` + hi + `}`, 400, "response_format", "not supported"},
		{"oversized", "/v1/chat/completions", `{"messages":[{"role":"user","content":"` + strings.Repeat("x", 5000) + `"}]}`, 413, "", "larger than 4096 bytes"},
		{"prompt too long", "/v1/chat/completions", `{"messages":[{"role":"user","content":"too long"}]}`, 400, "", "prompt too long: 5000 tokens do not fit the context of 4096"},
		{"queue full", "/v1/chat/completions", `{"messages":[{"role":"user","content":"queue full"}]}`, 503, "", "queue full"},
		{"backend failure", "/v1/chat/completions", `{"messages":[{"role":"user","content":"boom"}]}`, 500, "", "device lost"},
		{"no prompt", "/v1/completions", `{"max_tokens":3}`, 400, "prompt", "missing"},
		{"token prompt", "/v1/completions", `{"prompt":[1,2,3]}`, 400, "prompt", "token id arrays"},
		{"two prompts", "/v1/completions", `{"prompt":["a","b"]}`, 400, "prompt", "only one"},
		{"echo", "/v1/completions", `{"prompt":"a","echo":true}`, 400, "echo", "not supported"},
		{"best_of", "/v1/completions", `{"prompt":"a","best_of":3}`, 400, "best_of", "only 1"},
		{"raw too long", "/v1/completions", `{"prompt":"too long","stream":true}`, 400, "", "do not fit"},
	} {
		t.Run(c.name, func(t *testing.T) {
			status, ctype, body := post(t, srv, c.path, c.body)
			requireAPIError(t, status, c.status, ctype, body, c.param, c.msg)
		})
	}
}

func TestUnknownEndpointAndMethod(t *testing.T) {
	srv, _ := newTestServer(t, Config{})
	resp, err := http.Get(srv.URL + "/v1/engines")
	if err != nil {
		t.Fatal(err)
	}
	body := readAll(t, resp)
	requireAPIError(t, resp.StatusCode, 404, resp.Header.Get("Content-Type"), body, "", "GET /v1/engines: no such endpoint")

	resp, err = http.Get(srv.URL + "/v1/chat/completions")
	if err != nil {
		t.Fatal(err)
	}
	body = readAll(t, resp)
	requireAPIError(t, resp.StatusCode, 405, resp.Header.Get("Content-Type"), body, "", "method not allowed")
	if got := resp.Header.Get("Allow"); !strings.Contains(got, "POST") {
		t.Fatalf("Allow %q, want POST in it", got)
	}
}

func TestAPIKey(t *testing.T) {
	srv, _ := newTestServer(t, Config{APIKey: "sekrit"})
	req := func(key string) (int, []byte, string) {
		r, _ := http.NewRequest("GET", srv.URL+"/v1/models", nil)
		if key != "" {
			r.Header.Set("Authorization", "Bearer "+key)
		}
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, readAll(t, resp), resp.Header.Get("Content-Type")
	}
	status, body, ctype := req("")
	requireAPIError(t, status, 401, ctype, body, "", "API key")
	status, body, ctype = req("wrong")
	requireAPIError(t, status, 401, ctype, body, "", "API key")
	if status, body, _ := req("sekrit"); status != 200 {
		t.Fatalf("with the key: %d %s", status, body)
	}
	// The probes a load balancer uses stay open.
	for _, p := range []string{"/health", "/metrics", "/"} {
		resp, err := http.Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		readAll(t, resp)
		if resp.StatusCode != 200 {
			t.Fatalf("%s without a key: %d", p, resp.StatusCode)
		}
	}
}
