package main

// The habits users bring from llama.cpp and ollama (issue 14): short
// flags, a positional prompt, --version, tokenize without a model, the
// chat's commands and keys, the thinking block set apart.

import (
	"bytes"
	"context"
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

	"github.com/qwgpu/qwgpu/qwen3/llm"
	"github.com/qwgpu/qwgpu/qwen3/sample"
	"github.com/qwgpu/qwgpu/qwen3/tokenizer"
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
		p, err := sp.params(fs, sample.GenerationConfig{}.Defaults())
		require.NoError(t, err)
		return p
	}
	require.Equal(t, uint64(42), parse("-s", "42").Seed)
	require.Equal(t, uint64(42), parse("--seed", "42").Seed)
	require.Equal(t, 0.5, parse("--temp", "0.5").Temperature)
	// Unset, the seed is drawn: two runs differ (a 2^-64 chance of not).
	require.NotEqual(t, parse().Seed, parse().Seed)

	var b bytes.Buffer
	res := &llm.Result{PromptTokens: 3, CompletionTokens: 2, FinishReason: "length", Seed: 1234}
	printStats(&b, res, llm.GenOptions{MaxTokens: 2, Temperature: ptrTo(0.7)}, "GPU (vulkan, discrete)")
	require.Contains(t, b.String(), "qwgpu: prefill 3 tokens in ")
	require.Contains(t, b.String(), "| stop: max tokens | seed 1234 | GPU (vulkan, discrete)\n")
	require.Regexp(t, statsRE, strings.TrimSuffix(b.String(), "\n"))
	b.Reset()
	printStats(&b, res, llm.GenOptions{MaxTokens: 2, Temperature: ptrTo(0.0)}, "GPU (vulkan, discrete)")
	require.NotContains(t, b.String(), "seed", "greedy decoding uses no seed")
	// A chat turn counts the prompt tokens computed, not those cached.
	b.Reset()
	res = &llm.Result{PromptTokens: 30, CachedTokens: 26, CompletionTokens: 5, FinishReason: "stop", StopString: "\n\n"}
	printStats(&b, res, llm.GenOptions{MaxTokens: 8, Temperature: ptrTo(0.0)}, "CPU reference (vulkan, cpu)")
	require.Contains(t, b.String(), "qwgpu: prefill 4 tokens in ")
	require.Contains(t, b.String(), "| decode 5 tokens in ")
	require.Contains(t, b.String(), "| stop: stop string |")
	// Stop reasons in the stats line's words.
	for _, c := range []struct {
		res  llm.Result
		max  int
		want string
	}{
		{llm.Result{FinishReason: "stop"}, 0, stopEOS},
		{llm.Result{FinishReason: "stop", StopString: "x"}, 0, stopString},
		{llm.Result{FinishReason: "length", CompletionTokens: 4}, 4, stopMaxTokens},
		{llm.Result{FinishReason: "length", CompletionTokens: 3}, 4, stopContext},
		{llm.Result{FinishReason: "length", CompletionTokens: 3}, 0, stopContext},
		{llm.Result{FinishReason: "cancelled"}, 0, stopInterrupted},
	} {
		require.Equal(t, c.want, stopReason(&c.res, c.max), "%+v", c.res)
	}
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

func TestReplyPrinter(t *testing.T) {
	reasoning := []string{"let", " me", " see"}
	run := func(dim, hide bool, reasoning []string, text ...string) string {
		var b strings.Builder
		p := newReplyPrinter(func(s string) { b.WriteString(s) }, dim, hide)
		for _, r := range reasoning {
			require.NoError(t, p.token(llm.Token{Text: r, Reasoning: true}))
		}
		for _, s := range text {
			require.NoError(t, p.token(llm.Token{Text: s}))
		}
		p.flush()
		return b.String()
	}
	// As Qwen3 writes it: the tags, a newline inside each, a blank line
	// before the answer.
	require.Equal(t, "<think>\nlet me see\n</think>\n\nThe answer is 4.", run(false, false, reasoning, "The answer", " is 4."))
	require.Equal(t, ansiDim+"<think>\nlet me see\n</think>"+ansiReset+"\n\nThe answer is 4.", run(true, false, reasoning, "The answer is 4."))
	require.Equal(t, "The answer is 4.", run(true, true, reasoning, "The answer is 4."))
	require.Equal(t, "The answer is 4.", run(false, true, reasoning, "The answer is 4."))
	// No reasoning (thinking off): the answer alone.
	require.Equal(t, "4", run(true, false, nil, "4"))
	// A reply cut inside its thinking leaves the terminal undimmed.
	require.Equal(t, ansiDim+"<think>\nhmm"+ansiReset, run(true, false, []string{"hmm"}))
}

// openCPUModel opens the micro model through llm on the CPU reference.
func openCPUModel(t *testing.T, ctx int) *llm.Model {
	t.Helper()
	m, err := llm.Open(context.Background(), microModel(t, nil), llm.Options{Device: "cpu", Ctx: ctx})
	require.NoError(t, err)
	t.Cleanup(func() { m.Close() })
	return m
}

func ptrTo[T any](v T) *T { return &v }

// cpuChat is a chat session on the CPU reference of the micro model, as
// `run --chat` drives the GPU.
type cpuChat struct {
	*chatSession
	stdout, info *syncBuffer
	model        *interruptingModel
}

// interruptingModel sends a Ctrl-C at a reply's interruptAt-th Token.
type interruptingModel struct {
	*llm.Model
	tokens, interruptAt int
	interrupts          chan os.Signal
}

func (m *interruptingModel) Chat(ctx context.Context, msgs []llm.Message, opt llm.GenOptions, onToken func(llm.Token) error) (*llm.Result, error) {
	return m.Model.Chat(ctx, msgs, opt, func(tk llm.Token) error {
		m.tokens++
		if m.tokens == m.interruptAt {
			m.interrupts <- os.Interrupt
			// The watcher goroutine cancels before the next step.
			time.Sleep(50 * time.Millisecond)
		}
		return onToken(tk)
	})
}

func newCPUChat(t *testing.T, maxTokens int) *cpuChat {
	t.Helper()
	m := &interruptingModel{Model: openCPUModel(t, 512)}
	gen := llm.GenOptions{MaxTokens: maxTokens, Temperature: ptrTo(0.0), Thinking: ptrTo(true)}
	s := newChatSession(m, gen, "CPU reference", 512, "")
	m.interrupts = s.interrupts
	c := &cpuChat{chatSession: s, stdout: &syncBuffer{}, info: &syncBuffer{}, model: m}
	s.out = &output{w: c.stdout}
	s.show = newReplyPrinter(s.out.write, false, false)
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
	// After /system the conversation is the system prompt and the one
	// turn; the prompt fed had the empty think block of /think off.
	conv := c.conversation()
	require.Len(t, conv, 3)
	require.Equal(t, llm.Message{Role: "system", Content: "Be brief."}, conv[0])
	require.Equal(t, llm.Message{Role: "user", Content: "hi"}, conv[1])
	require.Equal(t, "assistant", conv[2].Role)
	tok, _ := tokenizer.Qwen3()
	prompt := "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
	require.Equal(t, len(tok.Encode(prompt)), c.last.PromptTokens)
	// Of the cleared conversation only the opening <|im_start|> is shared.
	require.LessOrEqual(t, c.last.CachedTokens, 1)
	require.Equal(t, 3, c.last.CompletionTokens)

	c = newCPUChat(t, 3)
	require.NoError(t, c.run(strings.NewReader("hello\n/clear\n"), false))
	require.Empty(t, c.conversation(), "/clear forgets the conversation")
}

func TestChatInterrupt(t *testing.T) {
	c := newCPUChat(t, 40)
	c.model.interruptAt = 3
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- c.run(pr, false) }()
	_, err := pw.Write([]byte("hello\n"))
	require.NoError(t, err)
	// The reply stops early; the conversation goes on with a second turn.
	require.Eventually(t, func() bool { return strings.Contains(c.infoText(), "(reply stopped") }, 30*time.Second, 10*time.Millisecond)
	first := *c.last
	require.Equal(t, "cancelled", first.FinishReason)
	require.Less(t, first.CompletionTokens, 40)
	require.GreaterOrEqual(t, first.CompletionTokens, 3)
	time.Sleep(doubleInterrupt) // a later Ctrl-C is not "twice quickly"
	_, err = pw.Write([]byte("again\n"))
	require.NoError(t, err)
	require.Eventually(t, func() bool { return strings.Count(c.infoText(), "qwgpu: prefill ") == 2 }, 30*time.Second, 10*time.Millisecond)
	require.Len(t, c.conversation(), 4, "the stopped reply stays in the conversation")
	// The second turn continues the first's cache: its prompt (the whole
	// conversation) is computed only from the first reply on.
	require.GreaterOrEqual(t, c.last.CachedTokens, first.PromptTokens-1)
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

	// From llm's reports: the first says what is left to compute, the
	// note ends when the prompt is all in the cache.
	b = syncBuffer{}
	p := &prefillProgress{w: &b, tty: true, every: 10 * time.Millisecond}
	p.update(100, 400)
	p.update(356, 400)
	require.Eventually(t, func() bool { return strings.Contains(b.String(), "prefill of 300 tokens: 0 s") }, 5*time.Second, 5*time.Millisecond)
	p.update(400, 400)
	require.True(t, strings.HasSuffix(b.String(), "\r\033[K"), "%q", b.String())
	p.stop() // and again when generation ends: harmless
	quiet = syncBuffer{}
	p = &prefillProgress{w: &quiet, tty: true, every: time.Millisecond}
	p.update(200, 400) // 200 left to compute: no note
	time.Sleep(20 * time.Millisecond)
	p.update(400, 400)
	require.Empty(t, quiet.String())
}
