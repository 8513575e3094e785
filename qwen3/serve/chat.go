package serve

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"time"

	"github.com/qwgpu/qwgpu/qwen3/llm"
)

type usage struct {
	PromptTokens        int `json:"prompt_tokens"`
	CompletionTokens    int `json:"completion_tokens"`
	TotalTokens         int `json:"total_tokens"`
	PromptTokensDetails struct {
		CachedTokens int `json:"cached_tokens"`
	} `json:"prompt_tokens_details"`
}

func usageOf(r *llm.Result) *usage {
	u := &usage{PromptTokens: r.PromptTokens, CompletionTokens: r.CompletionTokens, TotalTokens: r.PromptTokens + r.CompletionTokens}
	u.PromptTokensDetails.CachedTokens = r.CachedTokens
	return u
}

// chatMessageOut is the assistant's message, whole or as a stream delta.
type chatMessageOut struct {
	Role             string         `json:"role,omitempty"`
	Content          *string        `json:"content,omitempty"`
	ReasoningContent *string        `json:"reasoning_content,omitempty"`
	ToolCalls        []toolCallJSON `json:"tool_calls,omitempty"`
}

type chatChoice struct {
	Index        int             `json:"index"`
	Message      *chatMessageOut `json:"message,omitempty"`
	Delta        *chatMessageOut `json:"delta,omitempty"`
	Logprobs     *struct{}       `json:"logprobs"`
	FinishReason *string         `json:"finish_reason"`
}

type chatResponse struct {
	ID      string       `json:"id"`
	Object  string       `json:"object"`
	Created int64        `json:"created"`
	Model   string       `json:"model"`
	Choices []chatChoice `json:"choices"`
	Usage   *usage       `json:"usage,omitempty"`
}

func newID(prefix string) string {
	b := make([]byte, 12)
	rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// finishReason is OpenAI's name for why the generation ended.
func finishReason(r *llm.Result) string {
	if len(r.ToolCalls) > 0 {
		return "tool_calls"
	}
	switch r.FinishReason {
	case "length", "max_tokens", "ctx", "context":
		return "length"
	}
	return "stop"
}

// toolCallsOut gives calls OpenAI's shape, numbering them for streams.
func toolCallsOut(calls []llm.ToolCall, indexed bool) []toolCallJSON {
	out := make([]toolCallJSON, len(calls))
	for i, c := range calls {
		t := toolCallJSON{ID: c.ID, Type: "function"}
		if t.ID == "" {
			t.ID = newID("call_")
		}
		if indexed {
			t.Index = &i
		}
		t.Function.Name = c.Name
		t.Function.Arguments = string(c.Arguments)
		if t.Function.Arguments == "" {
			t.Function.Arguments = "{}"
		}
		out[i] = t
	}
	return out
}

func ptr[T any](v T) *T { return &v }

func (s *Server) chatCompletions(w http.ResponseWriter, r *http.Request) {
	var req chatRequest
	if e := decodeBody(w, r, s.maxBody, &req); e != nil {
		writeError(w, e)
		return
	}
	msgs, opt, e := req.toLLM()
	if e != nil {
		writeError(w, e)
		return
	}
	base := chatResponse{ID: newID("chatcmpl-"), Created: time.Now().Unix(), Model: s.modelName()}
	if !req.Stream {
		res, err := s.backend.Chat(r.Context(), msgs, opt, func(llm.Token) error { return nil })
		if err != nil {
			s.failed(w, r, err)
			return
		}
		msg := &chatMessageOut{Role: "assistant"}
		if res.Text != "" || len(res.ToolCalls) == 0 {
			msg.Content = ptr(res.Text)
		}
		if res.Reasoning != "" {
			msg.ReasoningContent = ptr(res.Reasoning)
		}
		if len(res.ToolCalls) > 0 {
			msg.ToolCalls = toolCallsOut(res.ToolCalls, false)
		}
		base.Object = "chat.completion"
		base.Choices = []chatChoice{{Message: msg, FinishReason: ptr(finishReason(res))}}
		base.Usage = usageOf(res)
		writeJSON(w, http.StatusOK, base)
		return
	}

	base.Object = "chat.completion.chunk"
	sse := newSSE(w)
	chunk := func(delta *chatMessageOut, finish *string) error {
		c := base
		c.Choices = []chatChoice{{Delta: delta, FinishReason: finish}}
		return sse.send(c)
	}
	var filter *toolFilter
	if len(opt.Tools) > 0 {
		filter = &toolFilter{}
	}
	streamedCalls := 0 // tool calls sent as they were parsed
	onToken := func(t llm.Token) error {
		if !sse.started {
			if err := chunk(&chatMessageOut{Role: "assistant", Content: ptr("")}, nil); err != nil {
				return err
			}
		}
		if t.ToolCall != nil {
			tc := toolCallsOut([]llm.ToolCall{*t.ToolCall}, true)
			*tc[0].Index = streamedCalls
			streamedCalls++
			return chunk(&chatMessageOut{ToolCalls: tc}, nil)
		}
		if t.Reasoning {
			return chunk(&chatMessageOut{ReasoningContent: ptr(t.Text)}, nil)
		}
		text := t.Text
		if filter != nil {
			if text = filter.push(text); text == "" {
				return nil
			}
		}
		return chunk(&chatMessageOut{Content: ptr(text)}, nil)
	}
	res, err := s.backend.Chat(r.Context(), msgs, opt, onToken)
	if err != nil {
		s.streamFailed(w, r, sse, err)
		return
	}
	if !sse.started { // nothing generated: the stream still opens with the role
		if chunk(&chatMessageOut{Role: "assistant", Content: ptr("")}, nil) != nil {
			return
		}
	}
	if filter != nil {
		if rest := filter.flush(len(res.ToolCalls) > 0); rest != "" {
			if chunk(&chatMessageOut{Content: ptr(rest)}, nil) != nil {
				return
			}
		}
	}
	if len(res.ToolCalls) > streamedCalls {
		// A backend that parses calls only at the end: send the rest now.
		tc := toolCallsOut(res.ToolCalls, true)[streamedCalls:]
		if chunk(&chatMessageOut{ToolCalls: tc}, nil) != nil {
			return
		}
	}
	if chunk(&chatMessageOut{}, ptr(finishReason(res))) != nil {
		return
	}
	if req.includeUsage() {
		c := base
		c.Choices = []chatChoice{}
		c.Usage = usageOf(res)
		if sse.send(c) != nil {
			return
		}
	}
	sse.done()
}

// failed answers a request whose generation failed before any output.
// A client that went away gets nothing: it is not listening.
func (s *Server) failed(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil {
		s.logf("%s %s: client gone: %v", r.Method, r.URL.Path, context.Cause(r.Context()))
		return
	}
	e := errorFor(err)
	if e.status >= 500 {
		s.logf("%s %s: %v", r.Method, r.URL.Path, err)
	}
	writeError(w, e)
}

// streamFailed is failed for a stream, which may have started.
func (s *Server) streamFailed(w http.ResponseWriter, r *http.Request, sse *sseWriter, err error) {
	if !sse.started {
		s.failed(w, r, err)
		return
	}
	if r.Context().Err() != nil {
		s.logf("%s %s: client gone mid-stream", r.Method, r.URL.Path)
		return
	}
	s.logf("%s %s: mid-stream: %v", r.Method, r.URL.Path, err)
	sse.fail(errorFor(err))
}
