package serve

import (
	"bytes"
	"encoding/json"
	"net/http"
	"time"

	"github.com/qwgpu/qwgpu/qwen3/llm"
)

// completionRequest is POST /v1/completions: a raw prompt, no template.
type completionRequest struct {
	sampling
	Prompt json.RawMessage `json:"prompt"`
	Echo   bool            `json:"echo"`
	Suffix *string         `json:"suffix"`
	BestOf *int            `json:"best_of"`
}

// prompt reads the prompt: a string, or an array holding one string.
func (req *completionRequest) prompt() (string, *apiError) {
	p := bytes.TrimSpace(req.Prompt)
	if len(p) == 0 || bytes.Equal(p, []byte("null")) {
		return "", invalid("prompt", "prompt: missing")
	}
	var s string
	if json.Unmarshal(p, &s) == nil {
		return s, nil
	}
	var list []string
	if json.Unmarshal(p, &list) == nil {
		if len(list) != 1 {
			return "", invalid("prompt", "prompt: %d prompts, only one per request is supported", len(list))
		}
		return list[0], nil
	}
	return "", invalid("prompt", "prompt: want a string (token id arrays are not supported)")
}

type completionChoice struct {
	Text         string    `json:"text"`
	Index        int       `json:"index"`
	Logprobs     *struct{} `json:"logprobs"`
	FinishReason *string   `json:"finish_reason"`
}

type completionResponse struct {
	ID      string             `json:"id"`
	Object  string             `json:"object"`
	Created int64              `json:"created"`
	Model   string             `json:"model"`
	Choices []completionChoice `json:"choices"`
	Usage   *usage             `json:"usage,omitempty"`
}

func (s *Server) completions(w http.ResponseWriter, r *http.Request) {
	var req completionRequest
	if e := decodeBody(w, r, s.maxBody, &req); e != nil {
		writeError(w, e)
		return
	}
	prompt, e := req.prompt()
	if e != nil {
		writeError(w, e)
		return
	}
	switch {
	case req.Echo:
		e = invalid("echo", "echo: not supported")
	case req.Suffix != nil && *req.Suffix != "":
		e = invalid("suffix", "suffix: not supported")
	case req.BestOf != nil && *req.BestOf != 1:
		e = invalid("best_of", "best_of %d: only 1 is supported", *req.BestOf)
	}
	if e != nil {
		writeError(w, e)
		return
	}
	opt, e := req.options(req.MaxTokens, "max_tokens")
	if e != nil {
		writeError(w, e)
		return
	}
	opt.Raw = true
	base := completionResponse{ID: newID("cmpl-"), Object: "text_completion", Created: time.Now().Unix(), Model: s.modelName()}
	if !req.Stream {
		res, err := s.backend.Generate(r.Context(), prompt, opt, func(llm.Token) error { return nil })
		if err != nil {
			s.failed(w, r, err)
			return
		}
		// A raw prompt has no <think> of its own; whatever the backend
		// split off as reasoning is still text the model wrote.
		base.Choices = []completionChoice{{Text: res.Reasoning + res.Text, FinishReason: ptr(finishReason(res))}}
		base.Usage = usageOf(res)
		writeJSON(w, http.StatusOK, base)
		return
	}
	sse := newSSE(w)
	chunk := func(text string, finish *string) error {
		c := base
		c.Choices = []completionChoice{{Text: text, FinishReason: finish}}
		return sse.send(c)
	}
	res, err := s.backend.Generate(r.Context(), prompt, opt, func(t llm.Token) error { return chunk(t.Text, nil) })
	if err != nil {
		s.streamFailed(w, r, sse, err)
		return
	}
	if chunk("", ptr(finishReason(res))) != nil {
		return
	}
	if req.includeUsage() {
		c := base
		c.Choices = []completionChoice{}
		c.Usage = usageOf(res)
		if sse.send(c) != nil {
			return
		}
	}
	sse.done()
}
