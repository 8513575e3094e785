// Package llm is the engine's serving interface: chat and raw generation
// over a model loaded once, with many requests decoded together.
//
// This file is the serve branch's stand-in for the package's types only, so
// the HTTP server can be written and tested before the package lands; the
// real package's declarations replace it at merge (same names and fields).
package llm

import (
	"encoding/json"
	"time"
)

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
}

// Result is a finished generation.
type Result struct {
	Text, Reasoning                              string
	ToolCalls                                    []ToolCall
	PromptTokens, CachedTokens, CompletionTokens int
	FinishReason                                 string
	PrefillTime, DecodeTime                      time.Duration
}

// Info describes the loaded model.
type Info struct {
	Name          string
	Ctx, Parallel int
}

// Stats are counters since the model was opened, and the batch now.
type Stats struct {
	Requests, PromptTokens, CompletionTokens int64
	Queue, Active, Parallel                  int
	TTFTSum                                  time.Duration
	TTFTCount                                int64
}
