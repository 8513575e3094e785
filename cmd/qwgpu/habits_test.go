package main

// The habits users bring from llama.cpp and ollama (issue 14): short
// flags, a positional prompt, --version, tokenize without a model, the
// chat's commands and keys, the thinking block set apart.

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/qwgpu/qwgpu/qwen3"
	"github.com/qwgpu/qwgpu/qwen3/generate"
	"github.com/qwgpu/qwgpu/qwen3/sample"
	"github.com/qwgpu/qwgpu/qwen3/tokenizer"
	"github.com/qwgpu/qwgpu/weights"
)

func TestVersion(t *testing.T) {
	// TestMain builds with -X main.commit=clitest.
	want := regexp.MustCompile(`^qwgpu \S+, commit clitest, go1\.\d+\S* ` + runtime.GOOS + "/" + runtime.GOARCH + "\n$")
	for _, arg := range []string{"--version", "version"} {
		r := qwgpu(t, arg)
		requireOK(t, r)
		require.Regexp(t, want, r.stdout)
		require.Empty(t, r.stderr)
	}
}

func TestShortFlags(t *testing.T) {
	dir := microModel(t, nil)
	// Each short flag reaches its long flag's check.
	cases := []struct {
		args  []string
		wants []string
	}{
		{[]string{"run", "-n", "-1"}, []string{"--max-tokens must be >= 0, got -1"}},
		{[]string{"run", "-c", "0"}, []string{"--ctx 0"}},
		{[]string{"run", "--temp", "-2"}, []string{"--temperature must be >= 0, got -2"}},
		{[]string{"run", "-s", "many"}, []string{"seed", "many"}},
		{[]string{"run", "-p", "a", "b"}, []string{`unexpected argument "b"`, "--prompt"}},
		{[]string{"run", "-m", dir, "-c", "50000", "-p", "hi"}, []string{"--ctx 50000", "max_position_embeddings 40960"}},
		{[]string{"run", "-m", filepath.Join(dir, "nope")}, []string{"--model", "nope"}},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			requireCleanError(t, qwgpu(t, c.args...), c.wants...)
		})
	}
	t.Run("positional prompt", func(t *testing.T) {
		// Refused for its length at --ctx 16: so it was read and encoded.
		words := strings.Fields(strings.Repeat("one two three four five ", 6))
		tok, err := tokenizer.Qwen3()
		require.NoError(t, err)
		n := len(tok.Encode(strings.Join(words, " ")))
		r := qwgpu(t, append([]string{"run", "-m", dir, "--raw", "-c", "16"}, words...)...)
		requireCleanError(t, r, "the prompt is "+strconv.Itoa(n)+" tokens", "--ctx 16")
	})
}

func TestSeedDefault(t *testing.T) {
	parse := func(args ...string) sample.Params {
		fs := newFlags("run")
		var sp samplingFlags
		sp.register(fs)
		require.NoError(t, fs.Parse(args))
		p, err := sp.params(fs, sample.GenerationConfig{})
		require.NoError(t, err)
		return p
	}
	require.Equal(t, uint64(42), parse("-s", "42").Seed)
	require.Equal(t, uint64(42), parse("--seed", "42").Seed)
	require.Equal(t, 0.5, parse("--temp", "0.5").Temperature)
	// Unset, the seed is drawn: two runs differ (a 2^-64 chance of not).
	require.NotEqual(t, parse().Seed, parse().Seed)

	var b bytes.Buffer
	res := &generate.Result{PromptTokens: 3, Tokens: []int{1, 2}, StopReason: generate.StopMaxTokens}
	printStats(&b, res, sample.Params{Temperature: 0.7, Seed: 1234}, "GPU (vulkan, discrete)")
	require.Contains(t, b.String(), "| stop: max tokens | seed 1234 | GPU (vulkan, discrete)\n")
	require.Regexp(t, statsRE, strings.TrimSuffix(b.String(), "\n"))
	b.Reset()
	printStats(&b, res, sample.Params{Temperature: 0, Seed: 1234}, "GPU (vulkan, discrete)")
	require.NotContains(t, b.String(), "seed", "greedy decoding uses no seed")
}

func TestTokenizeBuiltin(t *testing.T) {
	b, err := os.ReadFile(repoRoot("testdata", "golden", "tokens.json"))
	require.NoError(t, err)
	var cases []goldenTokens
	require.NoError(t, json.Unmarshal(b, &cases))
	c := cases[0]
	check := func(r result) {
		t.Helper()
		requireOK(t, r)
		var got []int
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &got), r.stdout)
		require.Equal(t, c.IDs, got, "%q", c.Text)
	}
	// No --model: the built-in Qwen3 tokenizer, text on stdin.
	check(qwgpuWith(t, runOpts{stdin: c.Text}, "tokenize", "--json"))
	// Or as -p, or as arguments.
	check(qwgpu(t, "tokenize", "--json", "-p", c.Text))
	if !strings.Contains(c.Text, "  ") {
		check(qwgpu(t, append([]string{"tokenize", "--json"}, strings.Fields(c.Text)...)...))
	}
	ids, _ := json.Marshal(c.IDs)
	r := qwgpuWith(t, runOpts{stdin: string(ids)}, "tokenize", "--decode")
	requireOK(t, r)
	require.Equal(t, c.Text+"\n", r.stdout)
}

func TestMkcheckpointHelp(t *testing.T) {
	bin := filepath.Join(workDir, "mkcheckpoint")
	out, err := exec.Command("go", "build", "-o", bin, "../mkcheckpoint").CombinedOutput()
	require.NoError(t, err, "%s", out)
	cmd := exec.Command(bin, "--help")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Run(), "exit 0 after --help")
	require.Contains(t, stderr.String(), "--shape")
}

func TestRuntimeDir(t *testing.T) {
	t.Run("unset", func(t *testing.T) {
		t.Setenv("XDG_RUNTIME_DIR", "")
		cleanup := ensureRuntimeDir()
		dir := os.Getenv("XDG_RUNTIME_DIR")
		require.True(t, runtimeDirUsable(dir), "%q", dir)
		st, err := os.Stat(dir)
		require.NoError(t, err)
		require.Equal(t, os.FileMode(0o700), st.Mode().Perm())
		cleanup()
		_, err = os.Stat(dir)
		require.True(t, os.IsNotExist(err), "removed on exit")
	})
	t.Run("shared with others", func(t *testing.T) {
		open := t.TempDir()
		require.NoError(t, os.Chmod(open, 0o755))
		t.Setenv("XDG_RUNTIME_DIR", open)
		defer ensureRuntimeDir()()
		require.NotEqual(t, open, os.Getenv("XDG_RUNTIME_DIR"))
	})
	t.Run("valid is kept", func(t *testing.T) {
		priv := t.TempDir()
		require.NoError(t, os.Chmod(priv, 0o700))
		t.Setenv("XDG_RUNTIME_DIR", priv)
		defer ensureRuntimeDir()()
		require.Equal(t, priv, os.Getenv("XDG_RUNTIME_DIR"))
	})
	t.Run("relative", func(t *testing.T) {
		require.False(t, runtimeDirUsable("run/user"))
	})
}

func TestThinkFilter(t *testing.T) {
	const reply = "<think>\nlet me see\n</think>\n\nThe answer is 4."
	run := func(dim, hide bool, pieces []string) string {
		var b strings.Builder
		f := newThinkFilter(func(s string) { b.WriteString(s) }, dim, hide)
		for _, p := range pieces {
			f.write(p)
		}
		f.flush()
		return b.String()
	}
	// Every split of the reply into two pieces, so tags are cut anywhere.
	for i := 0; i <= len(reply); i++ {
		pieces := []string{reply[:i], reply[i:]}
		require.Equal(t, reply, run(false, false, pieces))
		require.Equal(t, ansiDim+"<think>\nlet me see\n</think>"+ansiReset+"\n\nThe answer is 4.", run(true, false, pieces), "split at %d", i)
		require.Equal(t, "The answer is 4.", run(true, true, pieces), "split at %d", i)
	}
	// One character at a time.
	var chars []string
	for _, r := range reply {
		chars = append(chars, string(r))
	}
	require.Equal(t, "The answer is 4.", run(false, true, chars))
	// A reply cut inside its thinking leaves the terminal undimmed.
	require.Equal(t, ansiDim+"<think>\nhmm"+ansiReset, run(true, false, []string{"<think>\nhmm"}))
	// A "<" that starts no tag is not lost.
	require.Equal(t, "a < b", run(true, true, []string{"a <", " b"}))
}

// cpuChat is a chat session on the CPU reference of the micro model, as
// `run --chat` drives the GPU engine.
type cpuChat struct {
	*chatSession
	stdout, info *syncBuffer
	backend      *interruptingBackend
}

// interruptingBackend sends a Ctrl-C after a number of Feed calls.
type interruptingBackend struct {
	*generate.CPU
	feeds, interruptAt int
	interrupts         chan os.Signal
}

func (b *interruptingBackend) Feed(tokens []int) ([]float32, error) {
	b.feeds++
	if b.feeds == b.interruptAt {
		b.interrupts <- os.Interrupt
		// The watcher goroutine cancels before the next token is checked.
		time.Sleep(50 * time.Millisecond)
	}
	return b.CPU.Feed(tokens)
}

func newCPUChat(t *testing.T, maxTokens int) *cpuChat {
	t.Helper()
	cfg := microConfig()
	cfg.MaxPositionEmbeddings = 512
	w, err := qwen3.LoadWeights(cfg, &qwen3.RandomSource{Config: cfg, DType: weights.BF16, Seed: fixtureSeed})
	require.NoError(t, err)
	tok, err := tokenizer.Qwen3()
	require.NoError(t, err)
	b := &interruptingBackend{CPU: generate.NewCPU(qwen3.NewModel(cfg, w, 512), 512)}
	opt := generate.Options{Sampling: sample.Params{Temperature: 0, TopP: 1, RepetitionPenalty: 1}, MaxTokens: maxTokens}
	s := newChatSession(b, tok, opt, "CPU reference", "", true)
	b.interrupts = s.interrupts
	c := &cpuChat{chatSession: s, stdout: &syncBuffer{}, info: &syncBuffer{}, backend: b}
	s.out = &output{w: c.stdout}
	s.show = newThinkFilter(s.out.write, false, false)
	s.info = c.info
	return c
}

func TestChatCommands(t *testing.T) {
	c := newCPUChat(t, 3)
	in := "/help\nhello\n/system Be brief.\n/think off\nhi\n/nonsense\n/exit\nnever read\n"
	require.NoError(t, c.run(strings.NewReader(in), false))
	info := c.info.String()
	require.Contains(t, info, "/system TEXT")
	require.Contains(t, info, "(system prompt set; conversation cleared)")
	require.Contains(t, info, "(thinking off)")
	require.Contains(t, info, "unknown command /nonsense")
	require.Equal(t, 2, strings.Count(info, "qwgpu: prefill "), "two turns reached the model:\n%s", info)
	// After /system the cache holds only the new conversation: its
	// transcript starts with the system turn, and its generation prompt
	// has the empty think block of /think off.
	tr := c.conv.Transcript()
	require.True(t, strings.HasPrefix(tr, "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n"), "%q", tr)
	require.Contains(t, tr, "<think>\n\n</think>\n\n")
	require.NotContains(t, tr, "hello")
	require.NotContains(t, tr, "/help")
	tok, _ := tokenizer.Qwen3()
	// The cache holds the new conversation's first delta and the reply's
	// first two tokens (the third, the last of --max-tokens 3, is unfed).
	delta := "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
	require.True(t, strings.HasPrefix(tr, delta))
	require.Equal(t, len(tok.Encode(delta))+2, c.backend.Len())
	require.Len(t, c.unfed, 1)

	c = newCPUChat(t, 3)
	require.NoError(t, c.run(strings.NewReader("hello\n/clear\n"), false))
	require.Equal(t, 0, c.backend.Len(), "/clear empties the cache")
	require.Empty(t, c.conv.Transcript())
}

func TestChatInterrupt(t *testing.T) {
	c := newCPUChat(t, 40)
	c.backend.interruptAt = 4 // the prefill, then the third decode step
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- c.run(pr, false) }()
	_, err := pw.Write([]byte("hello\n"))
	require.NoError(t, err)
	// The reply stops early; the conversation goes on with a second turn.
	require.Eventually(t, func() bool { return strings.Contains(c.infoText(), "(reply stopped") }, 30*time.Second, 10*time.Millisecond)
	first := c.backend.Len()
	require.Less(t, first, 40)
	time.Sleep(doubleInterrupt) // a later Ctrl-C is not "twice quickly"
	_, err = pw.Write([]byte("again\n"))
	require.NoError(t, err)
	require.Eventually(t, func() bool { return strings.Count(c.infoText(), "qwgpu: prefill ") == 2 }, 30*time.Second, 10*time.Millisecond)
	require.Greater(t, c.backend.Len(), first, "the second turn extends the same cache")
	require.Contains(t, c.infoText(), "stop: interrupted")
	require.Contains(t, c.infoText(), "stop: max tokens")
	// At the prompt: one Ctrl-C warns, a second within 2 s leaves.
	c.interrupts <- os.Interrupt
	require.Eventually(t, func() bool { return strings.Contains(c.infoText(), "Ctrl-C again") }, 5*time.Second, 10*time.Millisecond)
	c.interrupts <- os.Interrupt
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("a second Ctrl-C did not end the chat")
	}
	pw.Close()
}

func (c *cpuChat) infoText() string { return c.info.String() }

func TestDecodeLossy(t *testing.T) {
	tok, err := tokenizer.Qwen3()
	require.NoError(t, err)
	ids := tok.Encode("hi there")
	// 151900 is past the tokenizer's 151669 tokens, inside Qwen3's 151936 rows.
	got := decodeLossy(tok, append(append(append([]int{}, ids...), 151900), ids...))
	require.Equal(t, "hi there\uFFFDhi there", got)
}

// syncBuffer is a bytes.Buffer the chat goroutine writes while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestPrefillNote(t *testing.T) {
	var b syncBuffer
	stop := prefillNote(&b, true, 300, 10*time.Millisecond)
	require.Eventually(t, func() bool { return strings.Contains(b.String(), "prefill of 300 tokens: 0 s") }, 5*time.Second, 5*time.Millisecond)
	stop()
	stop() // twice is harmless
	require.True(t, strings.HasSuffix(b.String(), "\r\033[K"), "the line is cleared for the text: %q", b.String())
	n := len(b.String())
	time.Sleep(30 * time.Millisecond)
	require.Len(t, b.String(), n, "nothing after stop")

	var quiet syncBuffer
	prefillNote(&quiet, true, 20, time.Millisecond)()
	prefillNote(&quiet, false, 5000, time.Millisecond)()
	time.Sleep(20 * time.Millisecond)
	require.Empty(t, quiet.String(), "short prompts and non-terminals get no note")
}
