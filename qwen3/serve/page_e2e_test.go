package serve

import (
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestChatPageInChromium loads the chat page in Debian's headless
// Chromium through playwright-core (testdata/e2e/page.mjs): it sends a
// message, shows the streamed answer and folded thinking, and the stop
// button ends a stream, which the server sees as a cancellation.
func TestChatPageInChromium(t *testing.T) {
	browser := os.Getenv("CHROMIUM")
	if browser == "" {
		for _, name := range []string{"chromium", "chromium-browser"} {
			if p, err := exec.LookPath(name); err == nil {
				browser = p
				break
			}
		}
	}
	if browser == "" {
		unavailable(t, "no chromium (apt-get install chromium, or set CHROMIUM)")
	}
	srv, fake := newTestServer(t, Config{})
	out := runNode(t, "page.mjs", 2*time.Minute, "BASE_URL="+srv.URL, "CHROMIUM="+browser)
	for _, step := range []string{"loads", "streams", "stop", "continues"} {
		require.Contains(t, out, "ok "+step+"\n")
	}
	select {
	case err := <-fake.cancelled:
		require.Error(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("the stop button did not cancel the generation")
	}
	msgs, opt, _ := fake.last()
	require.Equal(t, "/no_think again", msgs[len(msgs)-1].Content)
	require.Equal(t, "You said: hello there", msgs[1].Content) // the history went back
	require.NotNil(t, opt.Thinking)
	require.True(t, *opt.Thinking) // the page's checkbox, on by default
}
