package llm

import (
	"context"
	"os"
	"testing"

	"github.com/qwgpu/qwgpu/gpu/gputest"
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

// greedy is deterministic decoding of n tokens.
func greedy(n int) GenOptions {
	return GenOptions{MaxTokens: n, Temperature: ptr(0.0), Thinking: ptr(false)}
}
