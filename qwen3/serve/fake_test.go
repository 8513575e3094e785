package serve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/qwgpu/qwgpu/qwen3/llm"
)

// fakeBackend answers in a way a test can predict by hand: the reply to
// a chat is "You said: " and the last message, word by word; thinking is
// "Thinking about X."; a prompt naming the weather with tools gets a tool
// call; key words in the last message pick failures ("too long", "queue
// full", "boom", "fail mid") or a slow endless reply ("slow").
type fakeBackend struct {
	mu        sync.Mutex
	lastMsgs  []llm.Message
	lastOpt   llm.GenOptions
	lastRaw   string
	cancelled chan error // gets ctx's error when a slow reply is cancelled
	requests  atomic.Int64
	queue     int
}

func newFake() *fakeBackend { return &fakeBackend{cancelled: make(chan error, 16)} }

// statusErr is a backend error with its HTTP status, as llm's are.
type statusErr struct {
	status int
	msg    string
}

func (e statusErr) Error() string   { return e.msg }
func (e statusErr) HTTPStatus() int { return e.status }

// words splits text into tokens, each space going with the word after it.
func words(s string) []string {
	var out []string
	for i, w := range strings.Split(s, " ") {
		if i > 0 {
			w = " " + w
		}
		if w != "" {
			out = append(out, w)
		}
	}
	return out
}

func (f *fakeBackend) Info() llm.Info { return llm.Info{Name: "fake-qwen3", Ctx: 4096, Parallel: 4} }

func (f *fakeBackend) Stats() llm.Stats {
	f.mu.Lock()
	defer f.mu.Unlock()
	return llm.Stats{Requests: uint64(f.requests.Load()), PromptTokens: 100, CachedTokens: 40, CompletionTokens: 250, Cancelled: 2, Errors: 1,
		Queued: f.queue, Active: 3, Parallel: 4, BatchSteps: []uint64{10, 0, 5}, TTFTSum: 1500 * time.Millisecond, TTFTCount: 6}
}

// emit streams tokens and builds the result, applying MaxTokens and Stop.
func (f *fakeBackend) emit(ctx context.Context, promptTokens int, opt llm.GenOptions, reasoning, text []string, onToken func(llm.Token) error) (*llm.Result, error) {
	res := &llm.Result{PromptTokens: promptTokens, CachedTokens: promptTokens / 2, FinishReason: "stop"}
	var all strings.Builder
	for i, t := range append(reasoning, text...) {
		if opt.MaxTokens > 0 && res.CompletionTokens == opt.MaxTokens {
			res.FinishReason = "length"
			break
		}
		isReasoning := i < len(reasoning)
		if !isReasoning {
			all.WriteString(t)
			if stop := firstStop(all.String(), opt.Stop); stop >= 0 {
				res.Text = all.String()[:stop]
				return res, nil
			}
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := onToken(llm.Token{Text: t, Reasoning: isReasoning, ID: i}); err != nil {
			return nil, err
		}
		res.CompletionTokens++
		if isReasoning {
			res.Reasoning += t
		} else {
			res.Text += t
		}
	}
	return res, nil
}

func firstStop(s string, stops []string) int {
	for _, st := range stops {
		if i := strings.Index(s, st); i >= 0 {
			return i
		}
	}
	return -1
}

func (f *fakeBackend) trouble(ctx context.Context, last string, opt llm.GenOptions, onToken func(llm.Token) error) (*llm.Result, bool, error) {
	switch {
	case strings.Contains(last, "too long"):
		return nil, true, fmt.Errorf("%w: 5000 tokens do not fit the context of 4096", llm.ErrPromptTooLong)
	case strings.Contains(last, "busy"):
		return nil, true, fmt.Errorf("chat: %w", &llm.QueueFullError{Queued: 64, RetryAfter: 2500 * time.Millisecond})
	case strings.Contains(last, "queue full"):
		return nil, true, statusErr{http.StatusServiceUnavailable, "queue full"}
	case strings.Contains(last, "boom"):
		return nil, true, errors.New("device lost")
	case strings.Contains(last, "fail mid"):
		onToken(llm.Token{Text: "Half"})
		onToken(llm.Token{Text: " way"})
		return nil, true, errors.New("device lost")
	case strings.Contains(last, "slow"):
		// Endless unless MaxTokens bounds it.
		for i := 0; opt.MaxTokens == 0 || i < opt.MaxTokens; i++ {
			select {
			case <-ctx.Done():
				f.cancelled <- ctx.Err()
				return nil, true, ctx.Err()
			case <-time.After(20 * time.Millisecond):
			}
			if err := onToken(llm.Token{Text: fmt.Sprintf(" tick%d", i)}); err != nil {
				f.cancelled <- err
				return nil, true, err
			}
		}
		return &llm.Result{CompletionTokens: opt.MaxTokens, FinishReason: "length"}, true, nil
	}
	return nil, false, nil
}

func (f *fakeBackend) Chat(ctx context.Context, msgs []llm.Message, opt llm.GenOptions, onToken func(llm.Token) error) (*llm.Result, error) {
	f.requests.Add(1)
	f.mu.Lock()
	f.lastMsgs, f.lastOpt = msgs, opt
	f.mu.Unlock()
	last := msgs[len(msgs)-1]
	if res, done, err := f.trouble(ctx, last.Content, opt, onToken); done {
		return res, err
	}
	prompt := 0
	for _, m := range msgs {
		prompt += len(words(m.Content))
	}
	var reasoning []string
	if (opt.Thinking == nil || *opt.Thinking) && !strings.Contains(last.Content, "/no_think") {
		reasoning = words("Thinking about " + last.Content + ".")
	}
	if last.Role == "tool" {
		return f.emit(ctx, prompt, opt, reasoning, words("The tool said: "+last.Content), onToken)
	}
	if len(opt.Tools) > 0 && strings.Contains(last.Content, "weather") {
		// As package llm does, the call comes as one token once parsed;
		// with "tagged" its text streams instead and the call is only in
		// the result, as a backend parsing at the end would do.
		call := llm.ToolCall{Name: "get_weather", Arguments: json.RawMessage(`{"city":"Paris"}`)}
		text := words("Let me check.")
		if strings.Contains(last.Content, "tagged") {
			text = append(text, words(`<tool_call> {"name": "get_weather", "arguments": {"city": "Paris"}} </tool_call>`)...)
		}
		res, err := f.emit(ctx, prompt, opt, reasoning, text, onToken)
		if err != nil {
			return nil, err
		}
		if !strings.Contains(last.Content, "tagged") {
			if err := onToken(llm.Token{ToolCall: &call}); err != nil {
				return nil, err
			}
		}
		res.Text = "Let me check."
		res.ToolCalls = []llm.ToolCall{call}
		res.FinishReason = "tool_calls"
		return res, nil
	}
	return f.emit(ctx, prompt, opt, reasoning, words("You said: "+last.Content), onToken)
}

// Generate continues a raw prompt with its words in reverse order.
func (f *fakeBackend) Generate(ctx context.Context, prompt string, opt llm.GenOptions, onToken func(llm.Token) error) (*llm.Result, error) {
	f.requests.Add(1)
	f.mu.Lock()
	f.lastRaw, f.lastOpt = prompt, opt
	f.mu.Unlock()
	if res, done, err := f.trouble(ctx, prompt, opt, onToken); done {
		return res, err
	}
	w := strings.Fields(prompt)
	var text []string
	for i := len(w) - 1; i >= 0; i-- {
		text = append(text, " "+w[i])
	}
	return f.emit(ctx, len(w), opt, nil, text, onToken)
}

func (f *fakeBackend) last() ([]llm.Message, llm.GenOptions, string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lastMsgs, f.lastOpt, f.lastRaw
}
