// Package llm is the engine's serving interface: chat and raw generation
// over a model loaded once, with many requests decoded together.
//
// This file is the serve branch's stand-in for the package's types only, so
// the HTTP server can be written and tested before the package lands; the
// real package's declarations replace it at merge (its names and fields, as
// on branch llm at fbbf6ad; a subset of Info's).
package llm

import (
	"encoding/json"
	"errors"
	"time"
)

// ErrClosed is returned for requests made on, or still queued at, a
// closed model.
var ErrClosed = errors.New("llm: the model is closed")

// ErrPromptTooLong is returned (wrapped) when a prompt leaves no room to
// generate in the context.
var ErrPromptTooLong = errors.New("prompt too long")

// Message is one chat turn; Role is system, user, assistant or tool.
type Message struct {
	Role, Content, ReasoningContent string
	ToolCalls                       []ToolCall
	ToolCallID, Name                string
}

// Tool is a function the model may call; Parameters is its JSON schema.
type Tool struct {
	Name, Description string
	Parameters        json.RawMessage
}

// ToolCall is a call the model made; Arguments is a JSON value.
type ToolCall struct {
	ID, Name  string
	Arguments json.RawMessage
}

// GenOptions steer one generation; nil pointers take the model's defaults.
type GenOptions struct {
	MaxTokens                                        int
	Temperature, TopP, MinP                          *float64
	TopK                                             *int
	Seed                                             *uint64
	Stop                                             []string
	PresencePenalty, FrequencyPenalty, RepeatPenalty float64
	Thinking                                         *bool
	Tools                                            []Tool
	Raw                                              bool
}

// Token is one generated token as it is decoded.
type Token struct {
	Text      string
	Reasoning bool // inside <think>
	ID        int
	// ToolCall, when set, is a complete call parsed from a
	// <tool_call>…</tool_call> block (Text is then empty).
	ToolCall *ToolCall
}

// Result is a finished generation.
type Result struct {
	Text, Reasoning                              string
	ToolCalls                                    []ToolCall
	PromptTokens, CachedTokens, CompletionTokens int
	FinishReason                                 string
	PrefillTime, DecodeTime                      time.Duration
}

// Info describes the loaded model (the real package has more fields).
type Info struct {
	Name          string
	Adapter       string // the GPU: "name (backend, type)"
	DType         string
	Ctx, Parallel int
}

// Stats are counters since the model was opened, and the batch now.
type Stats struct {
	Requests, PromptTokens, CachedTokens, CompletionTokens, Cancelled, Errors uint64
	Queued, Active, Parallel                                                  int
	// BatchSteps[i] counts decode steps that advanced i+1 sequences.
	BatchSteps []uint64
	TTFTSum    time.Duration
	TTFTCount  uint64
}
