package llm

import (
	"context"
	"fmt"

	"github.com/qwgpu/qwgpu/qwen3/engine"
	"github.com/qwgpu/qwgpu/qwen3/sample"
	"github.com/qwgpu/qwgpu/qwen3/tokenizer"
)

// FromEngine runs a Model's scheduler on an engine the caller loaded and
// keeps (Close stops the scheduler and leaves the engine and its device
// open): for benchmarks that load published shapes with random weights.
// Every slot of the engine is a batch slot; eos lists the end tokens
// (nil: none, so that a benchmark's requests run to MaxTokens); sampling
// defaults to Qwen3's generation_config (temperature 0.6, top-k 20,
// top-p 0.95).
func FromEngine(e *engine.Engine, tok *tokenizer.Tokenizer, name string, eos []int, opt Options) (*Model, error) {
	if opt.MaxQueue < 0 {
		return nil, fmt.Errorf("max queue %d: must be >= 0 (0: no bound)", opt.MaxQueue)
	}
	if n := tok.VocabSize(); n > e.Config().VocabSize {
		return nil, fmt.Errorf("the tokenizer has %d tokens, more than the model's vocab_size %d", n, e.Config().VocabSize)
	}
	a := e.Device().Info()
	m := &Model{tok: tok, info: Info{Name: name, Config: e.Config(), Device: "gpu", Ctx: e.Context(), Parallel: e.Slots(),
		EOS: append([]int(nil), eos...), DType: e.WeightDType(), WeightBytes: e.WeightBytes(), Qwen3Template: true,
		Adapter:  fmt.Sprintf("%s (%s, %s)", a.Name, a.Backend, a.Type),
		Sampling: sample.Params{Temperature: 0.6, TopK: 20, TopP: 0.95, RepetitionPenalty: 1}}}
	m.s = newScheduler(gpuBackend{e}, e.Slots(), e.Context())
	m.s.maxQueue = opt.MaxQueue
	go m.s.run()
	return m, nil
}

// GenerateTokens continues a prompt given as token ids, as Generate does
// a Raw one (a load benchmark's prompts of exact lengths).
func (m *Model) GenerateTokens(ctx context.Context, prompt []int, opt GenOptions, onToken func(Token) error) (*Result, error) {
	for _, id := range prompt {
		if id < 0 || id >= m.info.Config.VocabSize {
			return nil, fmt.Errorf("prompt token id %d outside the vocabulary [0, %d)", id, m.info.Config.VocabSize)
		}
	}
	return m.generateIDs(ctx, prompt, false, false, opt, onToken)
}
