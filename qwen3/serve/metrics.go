package serve

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
)

// httpMetrics counts requests by endpoint and status.
type httpMetrics struct {
	mu       sync.Mutex
	byRoute  map[[2]string]int64 // {endpoint, status} → count
	inFlight atomic.Int64
}

func (m *httpMetrics) count(endpoint string, status int) {
	if status == 0 {
		status = http.StatusOK // a handler that wrote nothing
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.byRoute == nil {
		m.byRoute = map[[2]string]int64{}
	}
	m.byRoute[[2]string{endpoint, fmt.Sprint(status)}]++
}

// prometheus writes the metrics in Prometheus' text format (0.0.4).
func (s *Server) prometheus(w http.ResponseWriter, r *http.Request) {
	st := s.backend.Stats()
	var b strings.Builder
	metric := func(name, typ, help string, samples ...string) {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
		for _, s := range samples {
			b.WriteString(s)
			b.WriteByte('\n')
		}
	}
	v := func(name string, value any) string { return fmt.Sprintf("%s %v", name, value) }
	metric("qwgpu_requests_total", "counter", "Generation requests the model has taken.", v("qwgpu_requests_total", st.Requests))
	metric("qwgpu_prompt_tokens_total", "counter", "Prompt tokens of those requests.", v("qwgpu_prompt_tokens_total", st.PromptTokens))
	metric("qwgpu_cached_prompt_tokens_total", "counter", "Prompt tokens found in the KV cache, not computed again.", v("qwgpu_cached_prompt_tokens_total", st.CachedTokens))
	metric("qwgpu_completion_tokens_total", "counter", "Tokens generated.", v("qwgpu_completion_tokens_total", st.CompletionTokens))
	metric("qwgpu_cancelled_requests_total", "counter", "Requests ended by cancellation (client gone, stop).", v("qwgpu_cancelled_requests_total", st.Cancelled))
	metric("qwgpu_failed_requests_total", "counter", "Requests ended by an error of the model.", v("qwgpu_failed_requests_total", st.Errors))
	metric("qwgpu_queue_length", "gauge", "Requests waiting for a batch slot.", v("qwgpu_queue_length", st.Queued))
	metric("qwgpu_active_sequences", "gauge", "Sequences in the decoding batch.", v("qwgpu_active_sequences", st.Active))
	metric("qwgpu_parallel_slots", "gauge", "Batch slots (--parallel).", v("qwgpu_parallel_slots", st.Parallel))
	occupancy := 0.0
	if st.Parallel > 0 {
		occupancy = float64(st.Active) / float64(st.Parallel)
	}
	metric("qwgpu_batch_occupancy", "gauge", "Active sequences over batch slots, 0 to 1.", v("qwgpu_batch_occupancy", occupancy))
	var steps []string
	for i, n := range st.BatchSteps {
		steps = append(steps, fmt.Sprintf("qwgpu_batch_steps_total{sequences=\"%d\"} %d", i+1, n))
	}
	metric("qwgpu_batch_steps_total", "counter", "Decode steps by how many sequences they advanced together (batch occupancy).", steps...)
	metric("qwgpu_time_to_first_token_seconds", "summary", "Time from a request's arrival to its first token.",
		v("qwgpu_time_to_first_token_seconds_sum", st.TTFTSum.Seconds()), v("qwgpu_time_to_first_token_seconds_count", st.TTFTCount))
	metric("qwgpu_http_requests_in_flight", "gauge", "HTTP requests being answered.", v("qwgpu_http_requests_in_flight", s.metrics.inFlight.Load()))

	s.metrics.mu.Lock()
	keys := make([][2]string, 0, len(s.metrics.byRoute))
	for k := range s.metrics.byRoute {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i][0]+" "+keys[i][1] < keys[j][0]+" "+keys[j][1] })
	var samples []string
	for _, k := range keys {
		samples = append(samples, fmt.Sprintf("qwgpu_http_requests_total{endpoint=%q,code=%q} %d", k[0], k[1], s.metrics.byRoute[k]))
	}
	s.metrics.mu.Unlock()
	metric("qwgpu_http_requests_total", "counter", "HTTP requests answered, by endpoint and status.", samples...)

	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	w.Write([]byte(b.String()))
}
