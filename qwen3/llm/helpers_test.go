package llm

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/qwgpu/qwgpu/gpu/gputest"
	"github.com/stretchr/testify/require"
)

// openTest opens the built-in model on the test GPU: skipped without an
// adapter, failed when QWGPU_REQUIRE_GPU=1 (gputest's rule).
func openTest(t testing.TB, opt Options) *Model {
	t.Helper()
	gputest.Open(t).Close() // skips or fails the test without an adapter
	opt.Backend = os.Getenv("QWGPU_TEST_BACKEND")
	m, err := Open(context.Background(), "", opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func ptr[T any](v T) *T { return &v }

// replaceBackend stops a fresh Model's scheduler and gives it a new one,
// not yet running, on the backend wrap makes of the old one (before any
// request, so nothing races).
func replaceBackend(m *Model, wrap func(old backend) backend) {
	m.s.stop()
	m.s = newScheduler(wrap(m.s.b), m.info.Parallel, m.info.Ctx)
}

// waitQueued waits until n requests wait in the queue of m's scheduler.
func waitQueued(t testing.TB, m *Model, n int) {
	t.Helper()
	require.Eventually(t, func() bool {
		m.s.mu.Lock()
		defer m.s.mu.Unlock()
		return len(m.s.queue) == n
	}, 10*time.Second, time.Millisecond, "%d requests queued", n)
}

// greedy is deterministic decoding of n tokens.
func greedy(n int) GenOptions {
	return GenOptions{MaxTokens: n, Temperature: ptr(0.0), Thinking: ptr(false)}
}
