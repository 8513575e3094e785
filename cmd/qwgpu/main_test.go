package main

// The CLI is tested as its users meet it: the binary is built once in
// TestMain and every test runs it as a subprocess, checking its exit code,
// stdout and stderr. Tests that need a GPU adapter fail (not skip) under
// QWGPU_REQUIRE_GPU=1 when none exists.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var (
	// qwgpuBin is the binary under test, built by TestMain.
	qwgpuBin string
	// workDir holds the binary and the fixtures shared by tests.
	workDir string
)

func TestMain(m *testing.M) {
	code, err := testMain(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "cmd/qwgpu tests:", err)
		code = 1
	}
	os.Exit(code)
}

func testMain(m *testing.M) (int, error) {
	dir, err := os.MkdirTemp("", "qwgpu-cli-test-")
	if err != nil {
		return 1, err
	}
	defer os.RemoveAll(dir)
	workDir = dir
	qwgpuBin = filepath.Join(dir, "qwgpu")
	if os.Getenv("QWGPU_TEST_CHILD") != "" {
		return m.Run(), nil // a long test re-run in a child: no binary needed
	}
	// -ldflags sets the commit field that bench reports.
	build := exec.Command("go", "build", "-ldflags", "-X main.commit=clitest", "-o", qwgpuBin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		return 1, fmt.Errorf("go build: %v\n%s", err, out)
	}
	// Mesa's software drivers warn on stderr without a runtime directory.
	if os.Getenv("XDG_RUNTIME_DIR") == "" {
		xdg := filepath.Join(dir, "xdg")
		if err := os.Mkdir(xdg, 0o700); err != nil {
			return 1, err
		}
		os.Setenv("XDG_RUNTIME_DIR", xdg)
	}
	return m.Run(), nil
}

// result is what one run of the binary gave.
type result struct {
	args           []string
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("qwgpu %s\nexit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(r.args, " "), r.code, r.stdout, r.stderr)
}

// runOpts are the less common ways to run the binary.
type runOpts struct {
	timeout time.Duration // default 2 minutes
	env     []string      // added to the environment
	stdin   string
	shell   string // run through sh -c with this prefix (e.g. "ulimit -v N;")
}

// qwgpu runs the binary with args and waits for it, failing the test if it
// does not finish in time.
func qwgpu(t *testing.T, args ...string) result {
	t.Helper()
	return qwgpuWith(t, runOpts{}, args...)
}

func qwgpuWith(t *testing.T, o runOpts, args ...string) result {
	t.Helper()
	if o.timeout == 0 {
		o.timeout = 2 * time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	var cmd *exec.Cmd
	if o.shell != "" {
		quoted := make([]string, len(args))
		for i, a := range args {
			quoted[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		cmd = exec.CommandContext(ctx, "sh", "-c", o.shell+" exec "+qwgpuBin+" "+strings.Join(quoted, " "))
	} else {
		cmd = exec.CommandContext(ctx, qwgpuBin, args...)
	}
	cmd.Env = append(os.Environ(), o.env...)
	cmd.Stdin = strings.NewReader(o.stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{args: args, stdout: stdout.String(), stderr: stderr.String()}
	if ctx.Err() != nil {
		t.Fatalf("timed out after %v:\n%v", o.timeout, r)
	}
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		r.code = exit.ExitCode()
		if r.code < 0 {
			t.Fatalf("killed by a signal (%v):\n%v", exit, r)
		}
	default:
		t.Fatalf("running qwgpu: %v", err)
	}
	return r
}

// lines splits output into its non-empty lines.
func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.TrimSpace(l) != "" {
			out = append(out, l)
		}
	}
	return out
}

// requireOK fails unless the run exited 0.
func requireOK(t *testing.T, r result) {
	t.Helper()
	require.Equal(t, 0, r.code, "%v", r)
}

// requireCleanError checks the contract for bad input: a non-zero exit, a
// stderr of exactly one line (no driver noise), containing every one of
// wants, and no trace of a crash.
func requireCleanError(t *testing.T, r result, wants ...string) string {
	t.Helper()
	require.NotEqual(t, 0, r.code, "%v", r)
	var ls []string
	for _, l := range lines(r.stderr) {
		// wgpu-native's own log (warnings while probing backends): the
		// gpu package should silence it; until then it is not ours.
		if strings.HasPrefix(l, "[wgpu] ") {
			t.Logf("ignored on stderr: %s", l)
			continue
		}
		ls = append(ls, l)
	}
	require.Len(t, ls, 1, "stderr must be exactly one line\n%v", r)
	msg := ls[0]
	for _, bad := range []string{"panic", "goroutine", "SIGSEGV", "internal error", "[wgpu]"} {
		require.NotContains(t, msg, bad, "%v", r)
	}
	require.True(t, strings.HasPrefix(msg, "qwgpu "), "errors start with the command: %q", msg)
	for _, w := range wants {
		require.Contains(t, msg, w, "%v", r)
	}
	t.Logf("stderr: %s", msg)
	return msg
}

var (
	adaptersOnce sync.Once
	adapters     []struct {
		Name, Backend, Type string
		Limits              struct{ MaxStorageBufferBindingSize uint64 }
	}
	adaptersErr error
)

// testBackend is the backend GPU tests ask for (QWGPU_TEST_BACKEND, else
// whatever the platform prefers).
func testBackend() []string {
	if b := os.Getenv("QWGPU_TEST_BACKEND"); b != "" {
		return []string{"--backend", b}
	}
	return nil
}

// needGPU skips a test when no adapter exists, or fails it under
// QWGPU_REQUIRE_GPU=1. It asks the binary itself (qwgpu info --json).
func needGPU(t *testing.T) {
	t.Helper()
	adaptersOnce.Do(func() {
		cmd := exec.Command(qwgpuBin, append([]string{"info", "--json"}, testBackend()...)...)
		out, err := cmd.Output()
		if err != nil {
			adaptersErr = fmt.Errorf("qwgpu info --json: %v", err)
			return
		}
		adaptersErr = json.Unmarshal(out, &adapters)
		if adaptersErr == nil && len(adapters) == 0 {
			adaptersErr = errors.New("no adapter listed")
		}
	})
	if adaptersErr != nil {
		if os.Getenv("QWGPU_REQUIRE_GPU") == "1" {
			t.Fatalf("QWGPU_REQUIRE_GPU=1 but no GPU adapter: %v", adaptersErr)
		}
		t.Skipf("no GPU adapter: %v", adaptersErr)
	}
}

// repoRoot is the module root, from this package's directory.
func repoRoot(parts ...string) string {
	return filepath.Join(append([]string{"..", ".."}, parts...)...)
}
