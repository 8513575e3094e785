package llm

import (
	"context"
	"errors"
	"maps"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/qwgpu/qwgpu/qwen3/engine"
	"github.com/stretchr/testify/require"
)

// countingBackend counts the rows read back by kind.
type countingBackend struct {
	backend
	mu      sync.Mutex
	reads   map[engine.Want]int
	chained int // steps fed the previous step's argmax on the GPU
}

func (c *countingBackend) count(w ...engine.Want) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, w := range w {
		c.reads[w]++
	}
}

func (c *countingBackend) FeedRead(slot int, tokens []int, want engine.Want, k int) (engine.Row, error) {
	c.count(want)
	return c.backend.FeedRead(slot, tokens, want, k)
}

func (c *countingBackend) DecodeStart(slots, tokens []int, want []engine.Want, k int) (pendingStep, error) {
	c.count(want...)
	if tokens == nil {
		c.mu.Lock()
		c.chained++
		c.mu.Unlock()
	}
	return c.backend.DecodeStart(slots, tokens, want, k)
}

// withCounter restarts a fresh Model's scheduler on a counting backend
// (before any request, so nothing races).
func withCounter(m *Model, wholeRows bool) *countingBackend {
	var c *countingBackend
	replaceBackend(m, func(old backend) backend {
		c = &countingBackend{backend: old, reads: map[engine.Want]int{}}
		return c
	})
	m.s.wholeRows = wholeRows
	go m.s.run()
	return c
}

// The reads a step makes (the GPU's argmax id for greedy rows, its top-k
// candidates for top-k sampling) give the very tokens that reading every
// row whole and sampling on the host gives, with the same seeds, for
// sequences batched together; penalties read the whole row.
func TestReadsMatchWholeRows(t *testing.T) {
	const n, steps = 4, 12
	opts := []GenOptions{
		raw(greedy(steps)),
		raw(GenOptions{MaxTokens: steps, Temperature: ptr(0.6), TopK: ptr(20), TopP: ptr(0.95), Seed: ptr(uint64(1))}),
		raw(GenOptions{MaxTokens: steps, Temperature: ptr(1.3), TopK: ptr(64), TopP: ptr(1.0), MinP: ptr(0.0), Seed: ptr(uint64(2))}),
		raw(GenOptions{MaxTokens: steps, Temperature: ptr(1.0), TopK: ptr(5), PresencePenalty: 0.5, Seed: ptr(uint64(3))}),
	}
	var greedyText []string
	run := func(wholeRows bool) ([]string, map[engine.Want]int) {
		m := openTest(t, Options{Parallel: n})
		defer func() {
			if wholeRows { // what the sampled sequences would be, greedy
				for _, p := range prompts(3)[1:] {
					text, _ := collect(t, m, p, raw(greedy(steps)))
					greedyText = append(greedyText, text)
				}
			}
		}()
		c := withCounter(m, wholeRows)
		got := make([]string, n)
		var wg sync.WaitGroup
		for i, p := range prompts(n) {
			wg.Go(func() { got[i], _ = collect(t, m, p, opts[i]) })
		}
		wg.Wait()
		c.mu.Lock()
		defer c.mu.Unlock()
		return got, maps.Clone(c.reads)
	}
	want, whole := run(true)
	got, reads := run(false)
	require.Equal(t, want, got)
	require.Equal(t, map[engine.Want]int{engine.WantLogits: n * steps}, whole)
	// Each sequence: its prefill's last read, then one read per step
	// but the last token (drawn, not fed).
	require.Equal(t, map[engine.Want]int{engine.WantID: steps, engine.WantTopK: 2 * steps, engine.WantLogits: steps}, reads)
	require.NotEqual(t, greedyText[0], want[1], "top-k sampling gave the greedy text: the test shows nothing")
	require.NotEqual(t, greedyText[1], want[2], "top-k sampling gave the greedy text: the test shows nothing")
}

// Greedy batches chain their steps (each submitted before the previous
// one is read, fed its argmax on the GPU) and give the tokens of decoding
// alone, also when one sequence stops mid-chain on a stop string while
// the other goes on; the step computed past its end is dropped.
func TestChainedGreedyMatchesAlone(t *testing.T) {
	const steps = 16
	ps := prompts(2)
	alone := openTest(t, Options{Parallel: 1})
	var want []string
	for _, p := range ps {
		text, res := collect(t, alone, p, raw(greedy(steps)))
		require.Equal(t, steps, res.CompletionTokens)
		want = append(want, text)
	}
	// A stop string from the middle of the first text ends it there.
	r := []rune(want[0])
	require.Greater(t, len(r), 6, "%q", want[0])
	stop := string(r[len(r)/2 : len(r)/2+2])
	cut := strings.Index(want[0], stop)

	m := openTest(t, Options{Parallel: 2})
	c := withCounter(m, false)
	got := make([]string, 2)
	var wg sync.WaitGroup
	wg.Go(func() {
		o := raw(greedy(steps))
		o.Stop = []string{stop}
		got[0], _ = collect(t, m, ps[0], o)
	})
	wg.Go(func() { got[1], _ = collect(t, m, ps[1], raw(greedy(steps))) })
	wg.Wait()
	require.Equal(t, want[0][:cut], got[0])
	require.Equal(t, want[1], got[1])
	c.mu.Lock()
	chained := c.chained
	c.mu.Unlock()
	require.Greater(t, chained, 0, "no step was chained")
	// The slots stay usable: the same requests again give the same text.
	require.Equal(t, want[1], func() string { s, _ := collect(t, m, ps[1], raw(greedy(steps))); return s }())
	require.Equal(t, 0, m.Stats().Active)
}

// nanBackend spoils every read: an id or top-k read comes back flagged
// (Row.Err, as the GPU's argmax and top-k kernels flag NaN or ±Inf), a
// whole row with token 7 NaN.
type nanBackend struct{ backend }

func spoil(rows []engine.Row, want []engine.Want) []engine.Row {
	for i := range rows {
		if want[i] == engine.WantLogits {
			rows[i].Logits = slices.Clone(rows[i].Logits)
			rows[i].Logits[7] = float32(math.NaN())
		} else {
			rows[i] = engine.Row{Err: errors.New("the logits at position 1 are not finite (flagged)")}
		}
	}
	return rows
}

func (b nanBackend) FeedRead(slot int, tokens []int, want engine.Want, k int) (engine.Row, error) {
	r, err := b.backend.FeedRead(slot, tokens, want, k)
	return spoil([]engine.Row{r}, []engine.Want{want})[0], err
}

type nanStep struct {
	pendingStep
	want []engine.Want
}

func (p nanStep) Wait() ([]engine.Row, error) {
	rows, err := p.pendingStep.Wait()
	return spoil(rows, p.want), err
}

func (b nanBackend) DecodeStart(slots, tokens []int, want []engine.Want, k int) (pendingStep, error) {
	p, err := b.backend.DecodeStart(slots, tokens, want, k)
	if err != nil {
		return nil, err
	}
	return nanStep{p, want}, nil
}

// Non-finite logits end the request with an error naming them, whatever
// the read (the argmax's flag, top-k's, a whole row checked on the host),
// instead of a token picked from garbage.
func TestNonFiniteLogitsFailTheRequest(t *testing.T) {
	m := openTest(t, Options{})
	replaceBackend(m, func(clean backend) backend { return nanBackend{clean} })
	go m.s.run()
	for _, c := range []struct {
		opt  GenOptions
		want string
	}{
		{raw(greedy(4)), "the logits at position 1 are not finite (flagged)"},
		{raw(GenOptions{MaxTokens: 4, Temperature: ptr(0.7), TopK: ptr(20), Seed: ptr(uint64(1))}), "the logits at position 1 are not finite (flagged)"},
		{raw(GenOptions{MaxTokens: 4, Temperature: ptr(0.7), PresencePenalty: 0.5, Seed: ptr(uint64(1))}), "logits are not finite at position 0 (token id 7 is NaN)"},
	} {
		_, err := m.Generate(context.Background(), "Hello", c.opt, nil)
		require.ErrorContains(t, err, c.want)
	}
}
