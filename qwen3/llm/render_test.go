package llm

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/qwgpu/qwgpu/qwen3/chat"
)

// Without tools, the renderer gives exactly what chat.Render (tested
// against the template's own output) gives.
func TestRenderMatchesChatRender(t *testing.T) {
	convs := [][]Message{
		{{Role: "user", Content: "Hi"}},
		{{Role: "system", Content: "Be brief."}, {Role: "user", Content: "Hi"}},
		{{Role: "user", Content: "Hi"}, {Role: "assistant", Content: "<think>\nhm\n</think>\n\nHello"}, {Role: "user", Content: "Again"}},
		{{Role: "user", Content: "Hi"}, {Role: "assistant", Content: "<think>\nhm\n</think>\n\nHello"}},
		{{Role: "user", Content: "q"}, {Role: "tool", Content: "r1"}, {Role: "tool", Content: "r2"}, {Role: "assistant", Content: "a"}},
	}
	for i, msgs := range convs {
		var cm []chat.Message
		for _, m := range msgs {
			cm = append(cm, chat.Message{Role: m.Role, Content: m.Content})
		}
		for _, think := range []bool{true, false} {
			got, err := renderChat(msgs, nil, true, think)
			require.NoError(t, err)
			require.Equal(t, chat.Render(cm, chat.Options{AddGenerationPrompt: true, EnableThinking: think}), got, "conversation %d", i)
		}
	}
}

// Tools, an assistant's tool call and the tool's answer, written out by
// hand from the template (tokenizer_config.json's chat_template).
func TestRenderTools(t *testing.T) {
	tools := []Tool{{Name: "get_weather", Description: "Weather in a city",
		Parameters: json.RawMessage(`{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}`)}}
	msgs := []Message{
		{Role: "system", Content: "You help."},
		{Role: "user", Content: "Weather in Paris?"},
		{Role: "assistant", Content: "", ReasoningContent: "Call it.", ToolCalls: []ToolCall{{Name: "get_weather", Arguments: json.RawMessage(`{"city": "Paris"}`)}}},
		{Role: "tool", Content: `{"temp": 21}`, ToolCallID: "call_1"},
	}
	got, err := renderChat(msgs, tools, true, false)
	require.NoError(t, err)
	want := "<|im_start|>system\nYou help.\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n" +
		"You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n" +
		`{"type": "function", "function": {"name": "get_weather", "description": "Weather in a city", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}` +
		"\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n" +
		"<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n" +
		"<|im_start|>user\nWeather in Paris?<|im_end|>\n" +
		// After the last query, not last, with reasoning: the think block stays.
		"<|im_start|>assistant\n<think>\nCall it.\n</think>\n\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call><|im_end|>\n" +
		"<|im_start|>user\n<tool_response>\n{\"temp\": 21}\n</tool_response><|im_end|>\n" +
		"<|im_start|>assistant\n<think>\n\n</think>\n\n"
	require.Equal(t, want, got)

	_, err = renderChat(msgs, []Tool{{Name: "f", Parameters: json.RawMessage(`{bad`)}}, true, true)
	require.ErrorContains(t, err, `tool 0 ("f")`)
}
