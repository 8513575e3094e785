package llm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/qwgpu/qwgpu/qwen3/chat"
)

// renderChat formats a conversation as Qwen3's chat template does
// (tokenizer_config.json's chat_template), with tools, tool calls and
// reasoning_content; for text-only messages without tools it gives what
// chat.Render gives. addGeneration ends it with the opening of the
// assistant's turn, with an empty think block when thinking is off.
func renderChat(msgs []Message, tools []Tool, addGeneration, thinking bool) (string, error) {
	var b strings.Builder
	firstSystem := len(msgs) > 0 && msgs[0].Role == "system"
	if len(tools) > 0 {
		b.WriteString(chat.ImStart + "system\n")
		if firstSystem {
			b.WriteString(msgs[0].Content + "\n\n")
		}
		b.WriteString("# Tools\n\nYou may call one or more functions to assist with the user query.\n\n" +
			"You are provided with function signatures within <tools></tools> XML tags:\n<tools>")
		for i, t := range tools {
			js, err := toolJSON(t)
			if err != nil {
				return "", fmt.Errorf("tool %d (%q): %v", i, t.Name, err)
			}
			b.WriteString("\n" + js)
		}
		b.WriteString("\n</tools>\n\nFor each function call, return a json object with function name and arguments within " +
			"<tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call>" +
			chat.ImEnd + "\n")
	} else if firstSystem {
		b.WriteString(chat.ImStart + "system\n" + msgs[0].Content + chat.ImEnd + "\n")
	}
	lastQuery := len(msgs) - 1
	for i := len(msgs) - 1; i >= 0; i-- {
		m := msgs[i]
		if m.Role == "user" && !(strings.HasPrefix(m.Content, "<tool_response>") && strings.HasSuffix(m.Content, "</tool_response>")) {
			lastQuery = i
			break
		}
	}
	for i, m := range msgs {
		switch {
		case m.Role == "user" || (m.Role == "system" && i > 0):
			b.WriteString(chat.ImStart + m.Role + "\n" + m.Content + chat.ImEnd + "\n")
		case m.Role == "assistant":
			content, reasoning := m.Content, m.ReasoningContent
			if reasoning == "" && strings.Contains(content, chat.ThinkClose) {
				content = strings.TrimLeft(content[strings.LastIndex(content, chat.ThinkClose)+len(chat.ThinkClose):], "\n")
				before, _, _ := strings.Cut(m.Content, chat.ThinkClose)
				before = strings.TrimRight(before, "\n")
				if k := strings.LastIndex(before, chat.ThinkOpen); k >= 0 {
					before = before[k+len(chat.ThinkOpen):]
				}
				reasoning = strings.TrimLeft(before, "\n")
			}
			b.WriteString(chat.ImStart + "assistant\n")
			if i > lastQuery && (i == len(msgs)-1 || reasoning != "") {
				b.WriteString(chat.ThinkOpen + "\n" + strings.Trim(reasoning, "\n") + "\n" + chat.ThinkClose + "\n\n" + strings.TrimLeft(content, "\n"))
			} else {
				b.WriteString(content)
			}
			for k, tc := range m.ToolCalls {
				if k > 0 || content != "" {
					b.WriteString("\n")
				}
				args := strings.TrimSpace(string(tc.Arguments))
				if args == "" {
					args = "{}"
				}
				b.WriteString("<tool_call>\n{\"name\": \"" + tc.Name + "\", \"arguments\": " + args + "}\n</tool_call>")
			}
			b.WriteString(chat.ImEnd + "\n")
		case m.Role == "tool":
			if i == 0 || msgs[i-1].Role != "tool" {
				b.WriteString(chat.ImStart + "user")
			}
			b.WriteString("\n<tool_response>\n" + m.Content + "\n</tool_response>")
			if i == len(msgs)-1 || msgs[i+1].Role != "tool" {
				b.WriteString(chat.ImEnd + "\n")
			}
		}
	}
	if addGeneration {
		b.WriteString(chat.ImStart + "assistant\n")
		if !thinking {
			b.WriteString(chat.ThinkOpen + "\n\n" + chat.ThinkClose + "\n\n")
		}
	}
	return b.String(), nil
}

// toolJSON is a tool in the OpenAI form, {"type": "function", "function":
// {...}}, written as the template's tojson writes it (Python's json.dumps:
// ", " and ": " separators, keys in their given order, non-ASCII as is).
func toolJSON(t Tool) (string, error) {
	var b strings.Builder
	b.WriteString(`{"type": "function", "function": {"name": ` + pyString(t.Name))
	if t.Description != "" {
		b.WriteString(`, "description": ` + pyString(t.Description))
	}
	if len(bytes.TrimSpace(t.Parameters)) > 0 {
		p, err := pyJSON(t.Parameters)
		if err != nil {
			return "", fmt.Errorf("parameters: %v", err)
		}
		b.WriteString(`, "parameters": ` + p)
	}
	b.WriteString("}}")
	return b.String(), nil
}

// pyString is s as a JSON string without HTML escaping.
func pyString(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	return strings.TrimSuffix(b.String(), "\n")
}

// pyJSON rewrites a JSON value with Python's default separators, keeping
// its keys' order and its strings as written.
func pyJSON(raw json.RawMessage) (string, error) {
	var c bytes.Buffer
	if err := json.Compact(&c, raw); err != nil {
		return "", err
	}
	var b strings.Builder
	inString, escaped := false, false
	for _, ch := range c.Bytes() {
		b.WriteByte(ch)
		switch {
		case inString && escaped:
			escaped = false
		case inString && ch == '\\':
			escaped = true
		case ch == '"':
			inString = !inString
		case !inString && (ch == ',' || ch == ':'):
			b.WriteByte(' ')
		}
	}
	return b.String(), nil
}
