package main

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/qwgpu/qwgpu/qwen3/engine"
	"github.com/qwgpu/qwgpu/qwen3/llm"
	"github.com/qwgpu/qwgpu/qwen3/tokenizer"
)

// servePrompt is the prompt length of benchServe's decode requests.
const servePrompt = 8

// benchServe measures the serving path: llm's scheduler (what `qwgpu
// serve` runs, without HTTP) on the benchmark's engine. For each client
// count n, n requests of gen tokens each start at once from short
// distinct prompts; t/s is every token generated over the time until the
// last request ends (prefills and the ramp included). Then the time to
// first token of a prompt of pp tokens on the idle scheduler: one token
// generated, the whole request timed. temperature 0 is greedy decoding;
// above it, Qwen3's top-k 20 and top-p 0.95 (the GPU top-k path).
func benchServe(e *engine.Engine, tok *tokenizer.Tokenizer, name string, clients []int, gen, pp, reps int, temperature float64,
	rng *rand.Rand, row func(benchResult)) ([]benchResult, error) {
	m, err := llm.FromEngine(e, tok, name, nil, llm.Options{})
	if err != nil {
		return nil, err
	}
	defer m.Close()
	vocab := e.Config().VocabSize
	prompt := func(n int) []int {
		ids := make([]int, n)
		for i := range ids {
			ids[i] = rng.IntN(vocab)
		}
		return ids
	}
	seed := uint64(1)
	opt := func(n int) llm.GenOptions {
		seed++
		o := llm.GenOptions{MaxTokens: n, Temperature: &temperature, Seed: &seed}
		if temperature > 0 {
			k, p := 20, 0.95
			o.TopK, o.TopP = &k, &p
		}
		return o
	}
	mode := "" // greedy
	if temperature > 0 {
		mode = fmt.Sprintf(" t%.1f", temperature)
	}
	var out []benchResult
	for _, n := range clients {
		test := fmt.Sprintf("serve tg%d x%d%s", gen, n, mode)
		r, err := measureShown(test, reps, n*gen, func() (time.Duration, error) {
			// Distinct prompts each run: no request finds its prompt cached.
			prompts := make([][]int, n)
			opts := make([]llm.GenOptions, n)
			for i := range prompts {
				prompts[i], opts[i] = prompt(servePrompt), opt(gen)
			}
			errs := make([]error, n)
			var wg sync.WaitGroup
			start := time.Now()
			for i := range n {
				wg.Go(func() {
					res, err := m.GenerateTokens(context.Background(), prompts[i], opts[i], nil)
					if err == nil && res.CompletionTokens != gen {
						err = fmt.Errorf("request %d: %d of %d tokens (%s)", i, res.CompletionTokens, gen, res.FinishReason)
					}
					errs[i] = err
				})
			}
			wg.Wait()
			d := time.Since(start)
			for _, err := range errs {
				if err != nil {
					return 0, err
				}
			}
			return d, nil
		})
		if err != nil {
			return out, fmt.Errorf("%s: %w", test, err)
		}
		r.Test = test
		out = append(out, r)
		row(r)
	}
	if pp > 0 {
		test := fmt.Sprintf("serve ttft pp%d", pp)
		r, err := measureShown(test, reps, pp, func() (time.Duration, error) {
			p := prompt(pp)
			start := time.Now()
			res, err := m.GenerateTokens(context.Background(), p, opt(1), nil)
			if err == nil && res.CompletionTokens != 1 {
				err = fmt.Errorf("%d tokens generated, want 1 (%s)", res.CompletionTokens, res.FinishReason)
			}
			return time.Since(start), err
		})
		if err != nil {
			return out, fmt.Errorf("%s: %w", test, err)
		}
		// Shown in milliseconds: each sample is pp tokens over one request.
		r.Test, r.Unit = test, "ms"
		var sum float64
		ms := make([]float64, len(r.Samples))
		for i, s := range r.Samples {
			ms[i] = 1e3 * float64(pp) / s
			sum += ms[i]
		}
		r.Millis = sum / float64(len(ms))
		if len(ms) > 1 {
			var ss float64
			for _, v := range ms {
				ss += (v - r.Millis) * (v - r.Millis)
			}
			r.MillisStdDev = math.Sqrt(ss / float64(len(ms)-1))
		}
		out = append(out, r)
		row(r)
	}
	return out, nil
}
