// Package generate turns a model backend (the GPU engine or the CPU
// reference), a tokenizer and a sampler into streamed text: the loop every
// qwgpu command that generates shares.
package generate

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/qwgpu/qwgpu/qwen3"
	"github.com/qwgpu/qwgpu/qwen3/sample"
	"github.com/qwgpu/qwgpu/qwen3/tokenizer"
)

// Backend runs the model forward over a KV cache it owns.
type Backend interface {
	Config() qwen3.Config
	// Context is the number of positions the KV cache holds.
	Context() int
	// Len is the number of positions filled.
	Len() int
	// Feed appends tokens at positions Len().. and returns the logits of
	// the last one.
	Feed(tokens []int) ([]float32, error)
	// Reset empties the cache.
	Reset()
}

// ArgmaxBackend is a Backend that can also pick the most likely next
// token itself (on the GPU), so that greedy decoding reads back one id
// instead of a vocabulary of logits.
type ArgmaxBackend interface {
	Backend
	FeedArgmax(tokens []int) (int, error)
}

// GreedyDecoder is an ArgmaxBackend that can also run greedy decoding
// with the host off the critical path (the GPU engine's DecodeGreedy):
// it feeds token, then its own argmax, yielding each new token until
// yield returns false or n tokens were yielded. The cache then holds
// token and every yielded token but the last.
type GreedyDecoder interface {
	ArgmaxBackend
	DecodeGreedy(token, n int, yield func(int) bool) error
}

// Options controls one generation.
type Options struct {
	Sampling  sample.Params
	MaxTokens int      // 0: until an end token or the end of the context
	Stop      []string // stop when the text contains one of these (not printed)
	EOS       []int    // end-of-sequence ids (not printed)
	// OnText receives the generated text as it becomes printable: never
	// half of a multi-byte character, never the start of a stop string.
	OnText func(string)
	// Context, when set, stops generation once it is done: checked after
	// every token, so the step in flight finishes and the cache stays
	// consistent (the result says StopInterrupted). The prompt's prefill
	// itself is not interrupted.
	Context context.Context
	// OnPrefilled, when set, is called once the prompt has been fed and
	// the first token drawn (a caller showing progress stops there).
	OnPrefilled func()
}

// Stop reasons.
const (
	StopEOS       = "eos"
	StopString    = "stop string"
	StopMaxTokens = "max tokens"
	StopContext   = "context full"
	// StopInterrupted: Options.Context was done (Ctrl-C, a closed output).
	StopInterrupted = "interrupted"
)

// Result describes a finished generation.
type Result struct {
	PromptTokens int
	Tokens       []int // generated (no end token)
	// Unfed is the tail of Tokens that the backend has not been fed (the
	// last token when generation stopped for a stop string, MaxTokens or
	// a full context); a chat feeds it before its next turn.
	Unfed       []int
	Text        string // the text handed to OnText
	StopReason  string
	PrefillTime time.Duration // feeding the prompt, up to the first token
	DecodeTime  time.Duration // every later step
}

// DecodeTokensPerSecond is the decode speed, counting steps after the first token.
func (r *Result) DecodeTokensPerSecond() float64 {
	steps := len(r.Tokens) - 1
	if r.StopReason == StopEOS || r.StopReason == StopString {
		steps = len(r.Tokens) // the step that produced the end token counts too
	}
	if steps <= 0 || r.DecodeTime <= 0 {
		return 0
	}
	return float64(steps) / r.DecodeTime.Seconds()
}

// PrefillTokensPerSecond is the prompt processing speed.
func (r *Result) PrefillTokensPerSecond() float64 {
	if r.PrefillTime <= 0 {
		return 0
	}
	return float64(r.PromptTokens) / r.PrefillTime.Seconds()
}

// ErrPromptTooLong is returned (wrapped) when a prompt cannot fit the context.
var ErrPromptTooLong = errors.New("prompt too long")

// Generate feeds prompt after whatever the backend's cache holds and
// generates until an end token, a stop string, MaxTokens or the end of the
// context. history is what the penalties look back over besides this
// prompt and the new tokens (earlier turns of a chat); it may be nil.
func Generate(b Backend, tok *tokenizer.Tokenizer, prompt, history []int, opt Options) (*Result, error) {
	if err := opt.Sampling.Validate(); err != nil {
		return nil, err
	}
	if len(prompt) == 0 {
		return nil, fmt.Errorf("empty prompt")
	}
	if b.Len()+len(prompt) >= b.Context() {
		return nil, fmt.Errorf("%w: %d prompt tokens after %d in the cache leave no room in a context of %d (raise --ctx)",
			ErrPromptTooLong, len(prompt), b.Len(), b.Context())
	}
	res := &Result{PromptTokens: len(prompt)}
	startLen := b.Len()
	sampler := sample.New(opt.Sampling)
	greedy, canArgmax := b.(ArgmaxBackend)
	useArgmax := canArgmax && opt.Sampling.Greedy() && opt.Sampling.RepetitionPenalty == 1 && opt.Sampling.PresencePenalty == 0
	seen := slices.Concat(history, prompt)

	vocab := b.Config().VocabSize
	next := func(feed []int) (int, error) {
		if useArgmax {
			id, err := greedy.FeedArgmax(feed)
			if err == nil && (id < 0 || id >= vocab) {
				err = fmt.Errorf("the backend's argmax gave token %d, outside the vocabulary of %d: its logits were probably not finite", id, vocab)
			}
			return id, err
		}
		logits, err := b.Feed(feed)
		if err != nil {
			return 0, err
		}
		if err := CheckLogits(logits, b.Len()-1); err != nil {
			return 0, err
		}
		return sampler.Sample(logits, seen)
	}

	out := newStopFilter(opt.Stop, opt.OnText)
	dec := tok.NewStreamDecoder()
	start := time.Now()
	id, err := next(prompt)
	if err != nil {
		return nil, err
	}
	res.PrefillTime = time.Since(start)
	if opt.OnPrefilled != nil {
		opt.OnPrefilled()
	}
	start = time.Now()
	defer func() { res.DecodeTime = time.Since(start) }()
	// accept handles a drawn token and reports whether generation stops.
	accept := func(id int) bool {
		if slices.Contains(opt.EOS, id) {
			res.StopReason = StopEOS
			return true
		}
		res.Tokens = append(res.Tokens, id)
		seen = append(seen, id)
		if out.push(dec.Push(id)) {
			res.StopReason = StopString
			return true
		}
		if opt.MaxTokens > 0 && len(res.Tokens) >= opt.MaxTokens {
			res.StopReason = StopMaxTokens
			return true
		}
		if b.Len() >= b.Context() {
			res.StopReason = StopContext
			return true
		}
		if opt.Context != nil && opt.Context.Err() != nil {
			res.StopReason = StopInterrupted
			return true
		}
		return false
	}
	if streamer, ok := b.(GreedyDecoder); ok && useArgmax {
		if !accept(id) {
			err := streamer.DecodeGreedy(id, b.Context()-b.Len(), func(next int) bool { return !accept(next) })
			if err != nil {
				return res, err
			}
			if res.StopReason == "" {
				res.StopReason = StopContext
			}
		}
	} else {
		for !accept(id) {
			if id, err = next([]int{id}); err != nil {
				return res, err
			}
		}
	}
	if n := len(res.Tokens); n > 0 && b.Len() < res.PromptTokens+n+startLen {
		// The last token was printed but not fed: a caller continuing the
		// conversation feeds it first.
		res.Unfed = res.Tokens[n-1:]
	}
	if res.StopReason != StopString {
		out.push(dec.Flush())
		out.flush()
	}
	res.Text = out.text.String()
	return res, nil
}

// CheckLogits refuses logits holding NaN or an infinity: text drawn from
// them (greedy decoding would pick whatever compares largest) would be
// garbage presented as output. pos is the position they predict from.
func CheckLogits(logits []float32, pos int) error {
	for id, v := range logits {
		if f := float64(v); math.IsNaN(f) || math.IsInf(f, 0) {
			return fmt.Errorf("the model's logits are not finite at position %d (token id %d is %v): the weights or the config "+
				"make the computation overflow; 'qwgpu validate' shows the first layer that does", pos, id, v)
		}
	}
	return nil
}

// stopFilter passes text on, holding back any tail that could be the
// start of a stop string until it is known not to be.
type stopFilter struct {
	stops   []string
	onText  func(string)
	pending string
	text    strings.Builder
}

func newStopFilter(stops []string, onText func(string)) *stopFilter {
	var nonEmpty []string
	for _, s := range stops {
		if s != "" {
			nonEmpty = append(nonEmpty, s)
		}
	}
	return &stopFilter{stops: nonEmpty, onText: onText}
}

// push adds text and reports whether a stop string was reached.
func (f *stopFilter) push(s string) bool {
	f.pending += s
	cut, hit := -1, false
	for _, st := range f.stops {
		if i := strings.Index(f.pending, st); i >= 0 && (cut < 0 || i < cut) {
			cut, hit = i, true
		}
	}
	if hit {
		f.emit(f.pending[:cut])
		f.pending = ""
		return true
	}
	hold := 0
	for _, st := range f.stops {
		for k := min(len(st)-1, len(f.pending)); k > hold; k-- {
			if strings.HasSuffix(f.pending, st[:k]) {
				hold = k
				break
			}
		}
	}
	f.emit(f.pending[:len(f.pending)-hold])
	f.pending = f.pending[len(f.pending)-hold:]
	return false
}

func (f *stopFilter) flush() {
	f.emit(f.pending)
	f.pending = ""
}

func (f *stopFilter) emit(s string) {
	if s == "" {
		return
	}
	f.text.WriteString(s)
	if f.onText != nil {
		f.onText(s)
	}
}

// CPU adapts the CPU reference model to Backend.
type CPU struct {
	Model *qwen3.Model
	cache *qwen3.Cache
}

// NewCPU makes a CPU backend with a context of ctx positions.
func NewCPU(m *qwen3.Model, ctx int) *CPU {
	return &CPU{Model: m, cache: m.NewCache(ctx)}
}

func (c *CPU) Config() qwen3.Config { return c.Model.Config }
func (c *CPU) Context() int         { return c.cache.Max }
func (c *CPU) Len() int             { return c.cache.Len }
func (c *CPU) Reset()               { c.cache.Len = 0 }

func (c *CPU) Feed(tokens []int) ([]float32, error) {
	o, err := c.Model.Prefill(c.cache, tokens, false)
	if err != nil {
		return nil, err
	}
	return o.LogitsAt(o.T - 1), nil
}
