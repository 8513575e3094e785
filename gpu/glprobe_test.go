package gpu

import (
	"errors"
	"testing"
)

// probeFailure turns what the probe child printed into a few words: the
// Rust panic's message and its place in wgpu-hal, else the exit status.
func TestProbeFailure(t *testing.T) {
	panicked := "thread '<unnamed>' panicked at 'called `Option::unwrap()` on a `None` value', " +
		"/home/runner/.cargo/git/checkouts/wgpu-53e70f8674b08dd4/21098cd/wgpu-hal/src/gles/egl.rs:813:77\nstack backtrace:\n"
	for _, c := range []struct {
		out  string
		err  error
		want string
	}{
		{panicked, errors.New("signal: aborted"), "called `Option::unwrap()` on a `None` value at wgpu-hal/src/gles/egl.rs:813:77"},
		{"some log\n", errors.New("exit status 3"), "the probe process: exit status 3"},
		{"", nil, "the probe process printed no result"},
	} {
		if got := probeFailure([]byte(c.out), c.err); got != c.want {
			t.Errorf("probeFailure(%q, %v) = %q, want %q", c.out, c.err, got, c.want)
		}
	}
}
