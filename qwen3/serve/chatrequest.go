package serve

import (
	"bytes"
	"encoding/json"

	"github.com/qwgpu/qwgpu/qwen3/llm"
)

// chatRequest is POST /v1/chat/completions as the openai clients send it.
type chatRequest struct {
	sampling
	Messages            []chatMessage   `json:"messages"`
	MaxCompletionTokens *int            `json:"max_completion_tokens"`
	Tools               []toolDef       `json:"tools"`
	ToolChoice          json.RawMessage `json:"tool_choice"`
	ResponseFormat      *struct {
		Type string `json:"type"`
	} `json:"response_format"`
	// Qwen3's switch as vLLM and SGLang take it.
	ChatTemplateKwargs *struct {
		EnableThinking *bool `json:"enable_thinking"`
	} `json:"chat_template_kwargs"`
}

type chatMessage struct {
	Role             string         `json:"role"`
	Content          messageContent `json:"content"`
	ReasoningContent *string        `json:"reasoning_content"`
	ToolCalls        []toolCallJSON `json:"tool_calls"`
	ToolCallID       string         `json:"tool_call_id"`
	Name             string         `json:"name"`
}

// messageContent is a message's content: a string, null, or an array of
// parts of which only text parts can be read by a text model.
type messageContent string

func (c *messageContent) UnmarshalJSON(b []byte) error {
	switch b = bytes.TrimSpace(b); {
	case bytes.Equal(b, []byte("null")):
		*c = ""
		return nil
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return invalid("messages", "content: %v", err)
		}
		*c = messageContent(s)
		return nil
	}
	var parts []struct {
		Type string  `json:"type"`
		Text *string `json:"text"`
	}
	if err := json.Unmarshal(b, &parts); err != nil {
		return invalid("messages", "content: want a string or an array of content parts")
	}
	var text []byte
	for _, p := range parts {
		if p.Type != "text" || p.Text == nil {
			return invalid("messages", "content part of type %q: this model reads text parts only", p.Type)
		}
		text = append(text, *p.Text...)
	}
	*c = messageContent(text)
	return nil
}

// toolCallJSON is a tool call in OpenAI's shape, arguments a JSON string.
type toolCallJSON struct {
	Index    *int   `json:"index,omitempty"` // streaming deltas only
	ID       string `json:"id"`
	Type     string `json:"type"`
	Function struct {
		Name      string `json:"name"`
		Arguments string `json:"arguments"`
	} `json:"function"`
}

type toolDef struct {
	Type     string `json:"type"`
	Function *struct {
		Name        string          `json:"name"`
		Description string          `json:"description"`
		Parameters  json.RawMessage `json:"parameters"`
	} `json:"function"`
}

// toLLM checks the request and turns it into the backend's terms.
func (req *chatRequest) toLLM() ([]llm.Message, llm.GenOptions, *apiError) {
	maxTokens, maxParam := req.MaxTokens, "max_tokens"
	if req.MaxCompletionTokens != nil {
		maxTokens, maxParam = req.MaxCompletionTokens, "max_completion_tokens"
	}
	opt, err := req.options(maxTokens, maxParam)
	if err != nil {
		return nil, opt, err
	}
	if f := req.ResponseFormat; f != nil && f.Type != "" && f.Type != "text" {
		return nil, opt, invalid("response_format", "response_format %q: not supported (text only)", f.Type)
	}
	if k := req.ChatTemplateKwargs; k != nil {
		opt.Thinking = k.EnableThinking
	}
	if len(req.Messages) == 0 {
		return nil, opt, invalid("messages", "messages: empty, want at least one")
	}
	msgs := make([]llm.Message, len(req.Messages))
	for i, m := range req.Messages {
		role := m.Role
		if role == "developer" { // newer clients' name for system
			role = "system"
		}
		switch role {
		case "system", "user", "assistant", "tool":
		case "":
			return nil, opt, invalid("messages", "messages[%d]: no role", i)
		default:
			return nil, opt, invalid("messages", "messages[%d]: role %q, want system, developer, user, assistant or tool", i, m.Role)
		}
		lm := llm.Message{Role: role, Content: string(m.Content), ToolCallID: m.ToolCallID, Name: m.Name}
		if m.ReasoningContent != nil {
			lm.ReasoningContent = *m.ReasoningContent
		}
		if len(m.ToolCalls) > 0 && role != "assistant" {
			return nil, opt, invalid("messages", "messages[%d]: tool_calls in a %s message", i, role)
		}
		for j, tc := range m.ToolCalls {
			if tc.Function.Name == "" {
				return nil, opt, invalid("messages", "messages[%d].tool_calls[%d]: no function name", i, j)
			}
			lm.ToolCalls = append(lm.ToolCalls, llm.ToolCall{ID: tc.ID, Name: tc.Function.Name, Arguments: argumentsJSON(tc.Function.Arguments)})
		}
		msgs[i] = lm
	}
	if !toolChoiceNone(req.ToolChoice) {
		for i, t := range req.Tools {
			if t.Type != "function" || t.Function == nil || t.Function.Name == "" {
				return nil, opt, invalid("tools", "tools[%d]: want {\"type\":\"function\",\"function\":{\"name\":...}}", i)
			}
			opt.Tools = append(opt.Tools, llm.Tool{Name: t.Function.Name, Description: t.Function.Description, Parameters: t.Function.Parameters})
		}
	}
	return msgs, opt, nil
}

// toolChoiceNone says whether tool_choice forbids tools; "auto",
// "required" and a named function all let the model choose (a template
// cannot force a call).
func toolChoiceNone(raw json.RawMessage) bool {
	var s string
	return json.Unmarshal(raw, &s) == nil && s == "none"
}

// argumentsJSON turns OpenAI's arguments string into the JSON value it
// holds; a string that is not JSON is kept as a JSON string.
func argumentsJSON(s string) json.RawMessage {
	if s == "" {
		return json.RawMessage("{}")
	}
	if json.Valid([]byte(s)) {
		return json.RawMessage(s)
	}
	q, _ := json.Marshal(s)
	return q
}
