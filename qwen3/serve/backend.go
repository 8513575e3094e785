// Package serve is qwgpu's OpenAI-compatible HTTP server: chat and text
// completions (streamed as server-sent events), models, health, Prometheus
// metrics and a small chat page, in front of a Backend that generates.
package serve

import (
	"context"

	"github.com/qwgpu/qwgpu/qwen3/llm"
)

// Backend generates text; *llm.Model is the real one, tests use a fake.
// Calls come from many requests at once: the backend queues and batches.
type Backend interface {
	Chat(ctx context.Context, msgs []llm.Message, opt llm.GenOptions, onToken func(llm.Token) error) (*llm.Result, error)
	Generate(ctx context.Context, prompt string, opt llm.GenOptions, onToken func(llm.Token) error) (*llm.Result, error)
	Info() llm.Info
	Stats() llm.Stats
}

// StatusError is an error from the backend that knows which HTTP status it
// deserves: 400 for a request the model cannot take (a prompt longer than
// the context), 429 or 503 for a full queue. Any other backend error is a
// 500. The server finds it with errors.As, so wrapping keeps it.
type StatusError interface {
	error
	HTTPStatus() int
}
