package llm

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"math"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/qwgpu/qwgpu/qwen3/chat"
	"github.com/qwgpu/qwgpu/qwen3/sample"
)

// GenOptions controls one generation. The zero value generates until an
// end token or the end of the context, sampling as the model's
// generation_config.json says, with a random seed and thinking on.
type GenOptions struct {
	MaxTokens int // 0: until an end token or the end of the context
	// nil: the model's defaults (Info.Sampling). Temperature 0 is greedy.
	Temperature, TopP, MinP *float64
	TopK                    *int
	Seed                    *uint64 // nil: a random seed (Result.Seed says which)
	// Stop ends generation when the text contains one of these (the stop
	// string and what follows are not handed out).
	Stop []string
	// PresencePenalty and FrequencyPenalty are OpenAI's: subtracted from
	// the logits of tokens already generated, once, and once per
	// occurrence. RepeatPenalty is transformers' repetition_penalty over
	// the prompt and the output (0: the model's default, normally 1 = off).
	PresencePenalty, FrequencyPenalty, RepeatPenalty float64
	// Thinking is Qwen3's enable_thinking. nil: on, unless the last user
	// message contains "/no_think".
	Thinking *bool
	Tools    []Tool // functions the model may call (rendered into the system turn)
	// Raw (Generate only) feeds the prompt as plain text instead of as a
	// user turn of the chat template; the output is then not split into
	// reasoning and text.
	Raw bool
	// OnPrefill, if set, is called on the calling goroutine as the prompt
	// is fed, with the prompt tokens in the KV cache so far (those found
	// cached included) and the prompt's length: a caller can show
	// progress through a long prompt. It is first called when the request
	// gets its slot, before any work, with the cached part; calls may be
	// coalesced; the last one before the first Token has done == total.
	OnPrefill func(done, total int)
}

// Result is a finished (or cancelled) generation.
type Result struct {
	Text      string // the answer: output outside <think> and tool calls
	Reasoning string // inside <think>…</think>, without the tags
	ToolCalls []ToolCall
	// PromptTokens counts the prompt; CachedTokens of them were already in
	// the KV cache (an earlier turn's) and were not computed again.
	PromptTokens, CachedTokens, CompletionTokens int
	// FinishReason: "stop" (an end token or a stop string), "length"
	// (MaxTokens or the context's end), "tool_calls" (stopped after tool
	// calls), "cancelled" (ctx, the callback's error or Close), "error".
	FinishReason string
	PrefillTime  time.Duration // admitted to first token
	DecodeTime   time.Duration // first token to the end
	Seed         uint64        // the seed sampling used
	// StopString is the one of GenOptions.Stop that ended generation
	// (FinishReason "stop"); "" when an end token or anything else did.
	StopString string
}

// Generate continues a prompt: by default the prompt is the user turn of
// a chat (Qwen3's template); with Raw it is fed as plain text. onToken
// (may be nil) receives the text as it is generated, on the calling
// goroutine; an error it returns cancels the request and is returned.
//
// When ctx is done the request stops at the next step boundary (the step
// in flight on the GPU finishes); the partial Result comes back with
// FinishReason "cancelled" and ctx's error.
func (m *Model) Generate(ctx context.Context, prompt string, opt GenOptions, onToken func(Token) error) (*Result, error) {
	if opt.Raw {
		return m.generate(ctx, prompt, false, false, opt, onToken)
	}
	return m.Chat(ctx, []Message{{Role: "user", Content: prompt}}, opt, onToken)
}

// Chat generates the assistant's reply to a conversation, formatted as
// Qwen3's chat template does (tools, tool calls and tool results
// included). Reasoning arrives as Tokens with Reasoning set and in
// Result.Reasoning; tool calls, when opt.Tools is given, as Tokens with
// ToolCall set and in Result.ToolCalls. Otherwise as Generate.
func (m *Model) Chat(ctx context.Context, msgs []Message, opt GenOptions, onToken func(Token) error) (*Result, error) {
	if opt.Raw {
		return nil, errors.New("GenOptions.Raw applies to Generate, not Chat")
	}
	text, err := FormatChat(msgs, opt)
	if err != nil {
		return nil, err
	}
	startInThink := strings.HasSuffix(strings.TrimRight(text, "\n"), chat.ThinkOpen)
	return m.generate(ctx, text, true, startInThink, opt, onToken)
}

// FormatChat is the prompt Chat feeds for a conversation: Qwen3's chat
// template with the opening of the assistant's turn, thinking as
// opt.Thinking says (nil: on unless the last user message contains
// "/no_think"), and opt.Tools. A caller can count its tokens before a
// model is loaded.
func FormatChat(msgs []Message, opt GenOptions) (string, error) {
	thinking := true
	if opt.Thinking != nil {
		thinking = *opt.Thinking
	} else {
		for i := len(msgs) - 1; i >= 0; i-- {
			if msgs[i].Role == "user" {
				thinking = !strings.Contains(msgs[i].Content, "/no_think")
				break
			}
		}
	}
	return renderChat(msgs, opt.Tools, true, thinking)
}

// errStopped ends ChatStream's request when the loop breaks.
var errStopped = errors.New("llm: stream abandoned")

// ChatStream is Chat as an iterator: each Token with a nil error, then,
// if generation failed, one zero Token with the error. Breaking out of
// the loop cancels the request.
func (m *Model) ChatStream(ctx context.Context, msgs []Message, opt GenOptions) iter.Seq2[Token, error] {
	return func(yield func(Token, error) bool) {
		broke := false
		_, err := m.Chat(ctx, msgs, opt, func(t Token) error {
			if !yield(t, nil) {
				broke = true
				return errStopped
			}
			return nil
		})
		if err != nil && !broke {
			yield(Token{}, err)
		}
	}
}

// generate tokenizes a request and generates from it.
func (m *Model) generate(ctx context.Context, text string, split, startInThink bool, opt GenOptions, onToken func(Token) error) (*Result, error) {
	return m.generateIDs(ctx, m.tok.Encode(text), split, startInThink, opt, onToken)
}

// generateIDs checks and queues a request, then hands its Tokens to
// onToken until it ends.
func (m *Model) generateIDs(ctx context.Context, ids []int, split, startInThink bool, opt GenOptions, onToken func(Token) error) (*Result, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	params, err := m.params(opt)
	if err != nil {
		return nil, err
	}
	if len(ids) == 0 {
		return nil, errors.New("empty prompt")
	}
	if len(ids) >= m.info.Ctx {
		return nil, fmt.Errorf("%w: the prompt is %d tokens, which leaves no room to generate in a context of %d positions",
			ErrPromptTooLong, len(ids), m.info.Ctx)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ev := newEvents()
	r := &request{ctx: ctx, prompt: ids, params: params, presence: opt.PresencePenalty, frequency: opt.FrequencyPenalty,
		maxTokens: opt.MaxTokens, eos: m.info.EOS, ev: ev,
		out: newTextOut(m.tok, opt.Stop, split, startInThink, split && len(opt.Tools) > 0, ev.push)}
	if err := m.s.submit(r); err != nil {
		return nil, err
	}
	var cbErr error
	for range ev.signal {
		if done, total, ok := ev.prefill(); ok && opt.OnPrefill != nil && cbErr == nil {
			opt.OnPrefill(done, total)
		}
		toks, done, res, err := ev.take()
		if done && res != nil && r.out.stoppedBy != "" {
			res.StopString = r.out.stoppedBy
		}
		for _, t := range toks {
			if cbErr == nil && onToken != nil {
				if cbErr = onToken(t); cbErr != nil {
					cancel()
				}
			}
		}
		if done {
			if cbErr != nil {
				return res, cbErr
			}
			return res, err
		}
	}
	panic("unreachable: the signal channel is never closed")
}

// params merges a request's options over the model's defaults and checks
// them, naming the GenOptions field at fault.
func (m *Model) params(opt GenOptions) (sample.Params, error) {
	p := m.info.Sampling
	if opt.Temperature != nil {
		p.Temperature = *opt.Temperature
	}
	if opt.TopP != nil {
		p.TopP = *opt.TopP
	}
	if opt.MinP != nil {
		p.MinP = *opt.MinP
	}
	if opt.TopK != nil {
		p.TopK = *opt.TopK
	}
	if opt.RepeatPenalty != 0 {
		p.RepetitionPenalty = opt.RepeatPenalty
	}
	// The output penalties are applied by the scheduler, on the output.
	p.PresencePenalty = 0
	if opt.Seed != nil {
		p.Seed = *opt.Seed
	} else {
		p.Seed = rand.Uint64()
	}
	finite := func(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
	switch {
	case opt.MaxTokens < 0:
		return p, fmt.Errorf("MaxTokens must be >= 0, got %d", opt.MaxTokens)
	case !(p.Temperature >= 0) || !finite(p.Temperature):
		return p, fmt.Errorf("Temperature must be a finite number >= 0, got %g", p.Temperature)
	case p.TopK < 0:
		return p, fmt.Errorf("TopK must be >= 0 (0 keeps every token), got %d", p.TopK)
	case !(p.TopP > 0 && p.TopP <= 1):
		return p, fmt.Errorf("TopP must be in (0, 1], got %g", p.TopP)
	case !(p.MinP >= 0 && p.MinP < 1):
		return p, fmt.Errorf("MinP must be in [0, 1), got %g", p.MinP)
	case !(p.RepetitionPenalty > 0) || !finite(p.RepetitionPenalty):
		return p, fmt.Errorf("RepeatPenalty must be a finite number > 0, got %g", p.RepetitionPenalty)
	case !finite(opt.PresencePenalty):
		return p, fmt.Errorf("PresencePenalty must be finite, got %g", opt.PresencePenalty)
	case !finite(opt.FrequencyPenalty):
		return p, fmt.Errorf("FrequencyPenalty must be finite, got %g", opt.FrequencyPenalty)
	}
	return p, nil
}
