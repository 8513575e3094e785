package llm

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// prompts are distinct raw prompts of different lengths, so that batched
// sequences sit at different positions.
func prompts(n int) []string {
	var p []string
	for i := range n {
		p = append(p, fmt.Sprintf("Story %d:%s", i, strings.Repeat(" once upon a time", i%4+1)))
	}
	return p
}

func raw(o GenOptions) GenOptions { o.Raw = true; return o }

// collect runs a generation and returns its streamed text and Result.
func collect(t testing.TB, m *Model, prompt string, opt GenOptions) (string, *Result) {
	var b strings.Builder
	res, err := m.Generate(context.Background(), prompt, opt, func(tk Token) error { b.WriteString(tk.Text); return nil })
	if err != nil {
		t.Error(err)
		return "", res
	}
	return b.String(), res
}

// Sequences decoded together give each the tokens it gets alone (greedy:
// identical), and they really were batched.
func TestBatchEqualsAlone(t *testing.T) {
	const n, steps = 4, 12
	alone := openTest(t, Options{Parallel: 1})
	want := map[string]string{}
	for _, p := range prompts(n) {
		want[p], _ = collect(t, alone, p, raw(greedy(steps)))
	}
	batched := openTest(t, Options{Parallel: n})
	var wg sync.WaitGroup
	got := make([]string, n)
	for i, p := range prompts(n) {
		wg.Go(func() {
			var res *Result
			got[i], res = collect(t, batched, p, raw(greedy(steps)))
			if res != nil && res.CompletionTokens != steps {
				t.Errorf("sequence %d: %d tokens, want %d", i, res.CompletionTokens, steps)
			}
		})
	}
	wg.Wait()
	for i, p := range prompts(n) {
		require.Equal(t, want[p], got[i], "sequence %d", i)
	}
	st := batched.Stats()
	together := uint64(0)
	for b, c := range st.BatchSteps[1:] {
		together += uint64(b+2) * c
	}
	require.Greater(t, together, uint64(0), "no decode step advanced more than one sequence: %v", st.BatchSteps)
	require.Equal(t, 0, st.Active)
	require.Equal(t, uint64(n), st.Requests)
	require.Equal(t, uint64(n*steps), st.CompletionTokens)
}

// Many goroutines on fewer slots: requests queue, each gets its own
// answer (the one it gets alone), and the counters add up.
func TestConcurrentRequests(t *testing.T) {
	const clients, steps = 12, 6
	m := openTest(t, Options{Parallel: 3})
	base := prompts(4)
	var ps []string
	for i := range clients {
		ps = append(ps, base[i%4])
	}
	want := make([]string, 4)
	for i, p := range base {
		want[i], _ = collect(t, m, p, raw(greedy(steps)))
	}
	var wg sync.WaitGroup
	got := make([]string, clients)
	for i, p := range ps {
		wg.Go(func() { got[i], _ = collect(t, m, p, raw(greedy(steps))) })
	}
	wg.Wait()
	for i := range 4 {
		require.Equal(t, want[i], got[i], "client %d", i)
	}
	for i := 4; i < clients; i++ {
		require.Equal(t, got[i%4], got[i], "clients %d and %d have the same prompt", i, i%4)
	}
	st := m.Stats()
	require.Equal(t, uint64(4+clients), st.Requests)
	require.Equal(t, 0, st.Active)
	require.Equal(t, 0, st.Queued)
	require.Equal(t, uint64(4+clients), st.TTFTCount)
}

// A prompt that continues a slot's history reuses its cache and gives
// what a fresh prefill gives.
func TestPrefixCacheReuse(t *testing.T) {
	m := openTest(t, Options{Parallel: 2})
	first := []Message{{Role: "system", Content: "You are terse."}, {Role: "user", Content: "Name a colour."}}
	opt := greedy(6)
	res1, err := m.Chat(context.Background(), first, opt, nil)
	require.NoError(t, err)
	require.Zero(t, res1.CachedTokens)
	second := append(first, Message{Role: "assistant", Content: res1.Text}, Message{Role: "user", Content: "Another one."})
	res2, err := m.Chat(context.Background(), second, opt, nil)
	require.NoError(t, err)
	// At least the system turn and the first question came from the cache.
	require.Greater(t, res2.CachedTokens, 15)
	require.Less(t, res2.CachedTokens, res2.PromptTokens)

	fresh := openTest(t, Options{Parallel: 1})
	res3, err := fresh.Chat(context.Background(), second, opt, nil)
	require.NoError(t, err)
	require.Zero(t, res3.CachedTokens)
	require.Equal(t, res3.Text, res2.Text)
	require.Equal(t, res3.PromptTokens, res2.PromptTokens)
	require.Equal(t, uint64(res2.CachedTokens), m.Stats().CachedTokens)

	// The same prompt again: everything but its last token is cached.
	res4, err := m.Chat(context.Background(), second, opt, nil)
	require.NoError(t, err)
	require.Equal(t, res4.PromptTokens-1, res4.CachedTokens)
	require.Equal(t, res2.Text, res4.Text)
}

// Cancelling between prefill chunks ends the request with ctx's error and
// frees the slot; the next request runs normally.
func TestCancelMidPrefill(t *testing.T) {
	m := openTest(t, Options{Parallel: 1})
	long := strings.Repeat("tick tock ", 700) // > 2 prefill chunks
	ctx, cancel := context.WithCancel(context.Background())
	chunks := 0
	m.s.afterChunk = func(slot, fed int) {
		chunks++
		if chunks == 1 {
			cancel()
		}
	}
	res, err := m.Generate(ctx, long, raw(greedy(4)), func(Token) error {
		t.Error("no token expected")
		return nil
	})
	require.ErrorIs(t, err, context.Canceled)
	require.Equal(t, "cancelled", res.FinishReason)
	require.Zero(t, res.CompletionTokens)
	require.Equal(t, 1, chunks, "prefill went on after the cancellation")
	require.Greater(t, res.PromptTokens, 2*prefillChunk)
	st := m.Stats()
	require.Equal(t, 0, st.Active)
	require.Equal(t, uint64(1), st.Cancelled)

	m.s.afterChunk = nil
	text, res := collect(t, m, "Hello", raw(greedy(3)))
	require.Equal(t, 3, res.CompletionTokens)
	require.NotEmpty(t, text)
}

// Cancelling mid-decode, through ctx or the callback's error, stops at the
// next step and frees the slot for the queued request.
func TestCancelMidDecode(t *testing.T) {
	m := openTest(t, Options{Parallel: 1})
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	res, err := m.Generate(ctx, "Count to a thousand", raw(greedy(0)), func(Token) error {
		if n++; n == 3 {
			cancel()
		}
		return nil
	})
	require.ErrorIs(t, err, context.Canceled)
	require.Equal(t, "cancelled", res.FinishReason)
	require.Less(t, res.CompletionTokens, 40, "decoding went on after the cancellation")

	stop := errors.New("enough")
	res, err = m.Generate(context.Background(), "Count to a thousand", raw(greedy(0)), func(Token) error { return stop })
	require.ErrorIs(t, err, stop)
	require.Equal(t, "cancelled", res.FinishReason)
	require.Equal(t, uint64(2), m.Stats().Cancelled)
	require.Equal(t, 0, m.Stats().Active)

	_, res = collect(t, m, "Hello", raw(greedy(2)))
	require.Equal(t, 2, res.CompletionTokens)
}

// A prompt that cannot fit is refused before it is queued, in the
// library's words.
func TestPromptTooLong(t *testing.T) {
	m := openTest(t, Options{Ctx: 64})
	_, err := m.Generate(context.Background(), strings.Repeat("word ", 100), raw(greedy(1)), nil)
	require.ErrorIs(t, err, ErrPromptTooLong)
	require.NotContains(t, err.Error(), "--")
	require.Equal(t, uint64(0), m.Stats().Requests)
	_, err = m.Generate(context.Background(), "x", GenOptions{TopP: ptr(2.0)}, nil)
	require.EqualError(t, err, "TopP must be in (0, 1], got 2")
}

// Close ends the requests in flight with ErrClosed and refuses new ones.
func TestCloseEndsRequests(t *testing.T) {
	m := openTest(t, Options{Parallel: 1})
	started := make(chan struct{})
	done := make(chan error)
	go func() {
		var once sync.Once
		_, err := m.Generate(context.Background(), "Go on forever", raw(greedy(0)), func(Token) error {
			once.Do(func() { close(started) })
			return nil
		})
		done <- err
	}()
	<-started
	require.NoError(t, m.Close())
	require.ErrorIs(t, <-done, ErrClosed)
	_, err := m.Generate(context.Background(), "x", raw(greedy(1)), nil)
	require.ErrorIs(t, err, ErrClosed)
}

// With MaxQueue requests waiting, one more is refused at once with a
// QueueFullError; the queue then drains and the next request runs.
func TestQueueFull(t *testing.T) {
	m := openTest(t, Options{Parallel: 1, MaxQueue: 1})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	started := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { // holds the only slot until cancelled
		var once sync.Once
		m.Generate(ctx, "Go on forever", raw(greedy(0)), func(Token) error {
			once.Do(func() { close(started) })
			return nil
		})
	})
	<-started
	wg.Go(func() { m.Generate(ctx, "Wait for me", raw(greedy(1)), nil) })
	require.Eventually(t, func() bool { return m.Stats().Queued == 1 }, 30*time.Second, 10*time.Millisecond)
	_, err := m.Generate(context.Background(), "One too many", raw(greedy(1)), nil)
	require.ErrorIs(t, err, ErrQueueFull)
	var qf *QueueFullError
	require.ErrorAs(t, err, &qf)
	require.Equal(t, 1, qf.Queued)
	require.GreaterOrEqual(t, qf.RetryAfter, time.Second)
	require.EqualError(t, err, "the server is busy: 1 requests are waiting for a slot; retry in "+qf.RetryAfter.String())
	cancel()
	wg.Wait()
	_, res := collect(t, m, "Hello", raw(greedy(2)))
	require.Equal(t, 2, res.CompletionTokens)
	_, err = Open(context.Background(), "", Options{Device: "cpu", MaxQueue: -1})
	require.EqualError(t, err, "max queue -1: must be >= 0 (0: no bound)")
}

// Requests with short prompts that are waiting together are all prefilled
// before the next decode step, so that every decode step has them all
// (one step fewer a token than the tokens: the first comes from the
// prefill), rather than one joining a step as before run 16.
func TestShortPromptsStartTogether(t *testing.T) {
	const clients, tokens = 6, 5
	m := openTest(t, Options{Parallel: clients})
	h := useHostOnly(m, &hostOnly{})
	var wg sync.WaitGroup
	done := make([]int, clients)
	errs := make([]error, clients)
	for i := range clients {
		wg.Go(func() {
			res, err := m.GenerateTokens(context.Background(), []int{500 + i, 2, 3}, greedy(tokens), nil)
			if errs[i] = err; err == nil {
				done[i] = res.CompletionTokens
			}
		})
	}
	waitQueued(t, m, clients) // before the scheduler starts
	go m.s.run()
	wg.Wait()
	for i := range clients {
		require.NoError(t, errs[i])
		require.Equal(t, tokens, done[i])
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	require.Equal(t, clients, h.feeds)
	require.Equal(t, tokens-1, h.steps, "decode steps")
	require.Equal(t, clients*(tokens-1), h.rows, "every step decodes every sequence")
}

// A long prompt is still fed a chunk between two decode steps of the
// sequences already decoding, while a short prompt waiting with it is fed
// at once: the order of the backend's calls is pinned.
func TestLongPromptChunksBetweenSteps(t *testing.T) {
	m := openTest(t, Options{Parallel: 2})
	h := useHostOnly(m, &hostOnly{})
	long := make([]int, 2*prefillChunk+10)
	for i := range long {
		long[i] = 600 + i%1000
	}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	wg.Go(func() { _, errs[0] = m.GenerateTokens(context.Background(), []int{500, 2, 3}, greedy(8), nil) })
	waitQueued(t, m, 1)
	wg.Go(func() { _, errs[1] = m.GenerateTokens(context.Background(), long, greedy(3), nil) })
	waitQueued(t, m, 2)
	go m.s.run()
	wg.Wait()
	require.NoError(t, errs[0])
	require.NoError(t, errs[1])
	h.mu.Lock()
	defer h.mu.Unlock()
	chunk := fmt.Sprintf("f%d", prefillChunk)
	// the short prompt, then a chunk of the long one, before the first step;
	// then a chunk a step; 8 tokens: 1 from the prefill, 7 decode steps
	want := []string{"f3", chunk, "d1", chunk, "d1", "f10", "d2", "d2", "d1", "d1", "d1"}
	require.Equal(t, want, h.log)
}
