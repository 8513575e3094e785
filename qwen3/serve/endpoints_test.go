package serve

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func readAll(t *testing.T, resp *http.Response) []byte {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return b
}

func getJSON(t *testing.T, url string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	b := readAll(t, resp)
	require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m), "%s", b)
	return resp.StatusCode, m
}

func TestCompletions(t *testing.T) {
	srv, fake := newTestServer(t, Config{})
	m := postJSON(t, srv, "/v1/completions", `{"model":"x","prompt":"one two three","max_tokens":2,"seed":5,"stop":"never"}`)
	require.Equal(t, "text_completion", m["object"])
	require.True(t, strings.HasPrefix(m["id"].(string), "cmpl-"))
	require.Equal(t, " three two", get(m, "choices", 0, "text"))
	require.Equal(t, "length", get(m, "choices", 0, "finish_reason"))
	require.Equal(t, 3.0, get(m, "usage", "prompt_tokens"))
	require.Equal(t, 2.0, get(m, "usage", "completion_tokens"))
	_, opt, raw := fake.last()
	require.True(t, opt.Raw)
	require.Equal(t, "one two three", raw)
	require.Equal(t, uint64(5), *opt.Seed)
	require.Equal(t, []string{"never"}, opt.Stop)

	m = postJSON(t, srv, "/v1/completions", `{"prompt":["a b"]}`)
	require.Equal(t, " b a", get(m, "choices", 0, "text"))
	require.Equal(t, "stop", get(m, "choices", 0, "finish_reason"))

	cs := chunks(t, events(t, srv, "/v1/completions", `{"prompt":"a b c","stream":true,"stream_options":{"include_usage":true}}`))
	require.Len(t, cs, 3+1+1)
	var text string
	for _, c := range cs[:3] {
		require.Equal(t, "text_completion", c["object"])
		require.Nil(t, get(c, "choices", 0, "finish_reason"))
		text += get(c, "choices", 0, "text").(string)
	}
	require.Equal(t, " c b a", text)
	require.Equal(t, "stop", get(cs[3], "choices", 0, "finish_reason"))
	require.Equal(t, 6.0, get(cs[4], "usage", "total_tokens"))
}

func TestModelsHealth(t *testing.T) {
	srv, _ := newTestServer(t, Config{})
	status, m := getJSON(t, srv.URL+"/v1/models")
	require.Equal(t, 200, status)
	require.Equal(t, "list", m["object"])
	require.Equal(t, "fake-qwen3", get(m, "data", 0, "id"))
	require.Equal(t, "model", get(m, "data", 0, "object"))
	require.Equal(t, 4096.0, get(m, "data", 0, "max_model_len"))
	status, m = getJSON(t, srv.URL+"/health")
	require.Equal(t, 200, status)
	require.Equal(t, map[string]any{"status": "ok", "model": "fake-qwen3", "active": 3.0, "queue": 0.0, "parallel": 4.0}, m)
}

func TestMetrics(t *testing.T) {
	srv, fake := newTestServer(t, Config{})
	fake.queue = 2
	postJSON(t, srv, "/v1/chat/completions", `{"messages":[{"role":"user","content":"hi"}]}`)
	postJSON(t, srv, "/v1/completions", `{"prompt":"hi"}`)
	post(t, srv, "/v1/chat/completions", `{`)
	resp, err := http.Get(srv.URL + "/metrics")
	require.NoError(t, err)
	body := string(readAll(t, resp))
	require.Equal(t, "text/plain; version=0.0.4; charset=utf-8", resp.Header.Get("Content-Type"))
	samples := map[string]string{}
	types := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(body), "\n") {
		if f, ok := strings.CutPrefix(line, "# TYPE "); ok {
			p := strings.Fields(f)
			types[p[0]] = p[1]
			continue
		}
		if strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		require.Positive(t, i, line)
		samples[line[:i]] = line[i+1:]
	}
	want := map[string]string{
		"qwgpu_requests_total":                                                  "2", // the bad JSON never reached the model
		"qwgpu_prompt_tokens_total":                                             "100",
		"qwgpu_completion_tokens_total":                                         "250",
		"qwgpu_cached_prompt_tokens_total":                                      "40",
		"qwgpu_cancelled_requests_total":                                        "2",
		"qwgpu_failed_requests_total":                                           "1",
		`qwgpu_batch_steps_total{sequences="1"}`:                                "10",
		`qwgpu_batch_steps_total{sequences="2"}`:                                "0",
		`qwgpu_batch_steps_total{sequences="3"}`:                                "5",
		"qwgpu_queue_length":                                                    "2",
		"qwgpu_active_sequences":                                                "3",
		"qwgpu_parallel_slots":                                                  "4",
		"qwgpu_batch_occupancy":                                                 "0.75",
		"qwgpu_time_to_first_token_seconds_sum":                                 "1.5",
		"qwgpu_time_to_first_token_seconds_count":                               "6",
		"qwgpu_http_requests_in_flight":                                         "1", // this scrape
		`qwgpu_http_requests_total{endpoint="/v1/chat/completions",code="200"}`: "1",
		`qwgpu_http_requests_total{endpoint="/v1/chat/completions",code="400"}`: "1",
		`qwgpu_http_requests_total{endpoint="/v1/completions",code="200"}`:      "1",
	}
	for k, v := range want {
		require.Equal(t, v, samples[k], "%s in\n%s", k, body)
	}
	require.Equal(t, "summary", types["qwgpu_time_to_first_token_seconds"])
	require.Equal(t, "counter", types["qwgpu_requests_total"])
	require.Equal(t, "gauge", types["qwgpu_batch_occupancy"])
}

func TestChatPage(t *testing.T) {
	srv, _ := newTestServer(t, Config{})
	resp, err := http.Get(srv.URL + "/")
	require.NoError(t, err)
	body := string(readAll(t, resp))
	require.Equal(t, 200, resp.StatusCode)
	require.Equal(t, "text/html; charset=utf-8", resp.Header.Get("Content-Type"))
	require.Contains(t, body, `fetch("v1/chat/completions"`) // relative: works behind a path prefix
	resp, err = http.Get(srv.URL + "/index.html")
	require.NoError(t, err)
	readAll(t, resp)
	require.Equal(t, 404, resp.StatusCode)
}
