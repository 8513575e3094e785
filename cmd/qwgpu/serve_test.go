package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestServeBadFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--port", "70000"}, "--port 70000: want 0 to 65535"},
		{[]string{"--port", "-1"}, "--port -1"},
		{[]string{"--parallel", "0"}, "--parallel 0: must be at least 1"},
		{[]string{"--drain", "-1s"}, "--drain -1s"},
		{[]string{"--max-queue", "0"}, "--max-queue 0: must be at least 1"},
		{[]string{"--max-queue", "-2"}, "--max-queue -2: must be at least 1"},
		{[]string{"--max-body", "10"}, "--max-body 10"},
		{[]string{"--ctx", "0"}, "--ctx 0"},
		{[]string{"--dtype", "int3"}, `--dtype "int3"`},
		{[]string{"extra"}, `unexpected argument "extra"`},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			requireCleanError(t, qwgpu(t, append([]string{"serve"}, c.args...)...), "qwgpu serve: ", c.want)
		})
	}
}

func TestServePortBusy(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	requireCleanError(t, qwgpu(t, "serve", "--port", port), "--port "+port, "address already in use")
}

// Serving beyond this machine without an API key is allowed but said, on
// the first line, before the model loads; loopback hosts and a key are
// quiet.
func TestServeOpenHostWarning(t *testing.T) {
	first := func(env []string, args ...string) string {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, qwgpuBin, append([]string{"serve", "--port", "0"}, args...)...)
		cmd.Env = append(os.Environ(), env...)
		stderr, err := cmd.StderrPipe()
		require.NoError(t, err)
		require.NoError(t, cmd.Start())
		defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
		sc := bufio.NewScanner(stderr)
		require.True(t, sc.Scan(), "no line on stderr")
		return sc.Text()
	}
	line := first(nil, "--host", "0.0.0.0")
	require.Regexp(t, `^qwgpu serve: warning: --host 0\.0\.0\.0 takes connections from other machines and no --api-key is set: anyone who reaches port [1-9][0-9]* can use the model$`, line)
	for _, c := range []struct {
		env  []string
		args []string
	}{
		{nil, []string{"--host", "127.0.0.1"}},
		{nil, []string{"--host", "0.0.0.0", "--api-key", "k"}},
		{[]string{"QWGPU_API_KEY=k"}, []string{"--host", "0.0.0.0"}},
	} {
		require.NotContains(t, first(c.env, c.args...), "warning", "%v %v", c.env, c.args)
	}
}

// TestServeBinary runs `qwgpu serve` on the built-in model: it answers
// chat greedily the same way streamed and not, and SIGTERM stops it
// cleanly.
func TestServeBinary(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, qwgpuBin, append([]string{"serve", "--port", "0", "--parallel", "2"}, testBackend()...)...)
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	defer cmd.Process.Kill()
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	listening := regexp.MustCompile(`listening on (http://\S+)`)
	var base string
	for base == "" {
		line, ok := <-lines
		if !ok {
			break
		}
		t.Logf("stderr: %s", line)
		if m := listening.FindStringSubmatch(line); m != nil {
			base = m[1]
		}
	}
	require.NotEmpty(t, base, "no 'listening on' line")
	needGPU(t)

	resp, err := http.Get(base + "/health")
	require.NoError(t, err)
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)

	chat := func(stream bool) (text string, usage map[string]any) {
		body := `{"messages":[{"role":"user","content":"Name three colours."}],"temperature":0,"max_tokens":12,
			"chat_template_kwargs":{"enable_thinking":false},"stream":` + strconv.FormatBool(stream) + `,"stream_options":{"include_usage":true}}`
		resp, err := http.Post(base+"/v1/chat/completions", "application/json", strings.NewReader(body))
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, 200, resp.StatusCode)
		if !stream {
			var r struct {
				Choices []struct{ Message struct{ Content string } }
				Usage   map[string]any
			}
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&r))
			return r.Choices[0].Message.Content, r.Usage
		}
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			data, ok := strings.CutPrefix(sc.Text(), "data: ")
			if !ok || data == "[DONE]" {
				continue
			}
			var c struct {
				Choices []struct{ Delta struct{ Content string } }
				Usage   map[string]any
			}
			require.NoError(t, json.Unmarshal([]byte(data), &c))
			if len(c.Choices) > 0 {
				text += c.Choices[0].Delta.Content
			}
			if c.Usage != nil {
				usage = c.Usage
			}
		}
		return text, usage
	}
	text, usage := chat(false)
	streamed, streamUsage := chat(true)
	require.Equal(t, text, streamed, "greedy: the stream must say what the whole answer says")
	require.Equal(t, usage["completion_tokens"], streamUsage["completion_tokens"])
	require.LessOrEqual(t, usage["completion_tokens"].(float64), 12.0)

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	var rest []string
	for line := range lines {
		rest = append(rest, line)
	}
	require.NoError(t, cmd.Wait(), "%s", strings.Join(rest, "\n"))
	require.Contains(t, strings.Join(rest, "\n"), "qwgpu serve: stopped")
}
