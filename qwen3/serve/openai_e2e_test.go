package serve

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestOpenAIClient drives the server with the official openai npm client
// (testdata/e2e/openai.mjs): chat, thinking off, streaming, tools (plain,
// round trip and streamed through the client's helper), completions,
// errors, and an abort the server must see.
func TestOpenAIClient(t *testing.T) {
	srv, fake := newTestServer(t, Config{APIKey: "test-key"})
	out := runNode(t, "openai.mjs", 2*time.Minute, "BASE_URL="+srv.URL)
	for _, name := range []string{"models", "chat", "thinking-off", "stream", "tools", "tools-stream", "completions", "errors", "abort"} {
		require.Contains(t, out, "ok "+name+"\n")
	}
	require.NotContains(t, out, "FAIL")
	// The abort case's generation was cancelled, not left running.
	select {
	case err := <-fake.cancelled:
		require.Error(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("the aborted stream's generation was not cancelled")
	}
}
