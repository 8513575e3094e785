package llm

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/qwgpu/qwgpu/qwen3/tokenizer"
)

// feedText pushes text through a textOut token by token, as generation
// would, and returns the Tokens handed out and the textOut.
func feedText(t *testing.T, text string, stops []string, splitThink, startInThink, parseTools bool) ([]Token, *textOut, bool) {
	t.Helper()
	tok, err := tokenizer.Qwen3()
	require.NoError(t, err)
	var got []Token
	o := newTextOut(tok, stops, splitThink, startInThink, parseTools, func(tk Token) { got = append(got, tk) })
	stopped := false
	for _, id := range tok.Encode(text) {
		if stopped = o.push(id); stopped {
			break
		}
	}
	o.finish(stopped)
	return got, o, stopped
}

func joined(toks []Token, reasoning bool) string {
	var b strings.Builder
	for _, tk := range toks {
		if tk.ToolCall == nil && tk.Reasoning == reasoning {
			b.WriteString(tk.Text)
		}
	}
	return b.String()
}

// Qwen3's output with thinking: the <think> block's text (without the
// tags and the newlines around it) is reasoning, the rest is the answer;
// streamed pieces add up to the Result's strings.
func TestThinkingSplit(t *testing.T) {
	toks, o, _ := feedText(t, "<think>\nThe user greets me.\nI greet back.\n</think>\n\nHello! How can I help?", nil, true, false, false)
	require.Equal(t, "The user greets me.\nI greet back.", o.reasoning.String())
	require.Equal(t, "Hello! How can I help?", o.text.String())
	require.Equal(t, o.reasoning.String(), joined(toks, true))
	require.Equal(t, o.text.String(), joined(toks, false))
	for _, tk := range toks {
		require.NotContains(t, tk.Text, "think>")
	}

	// A prompt that opened the block already (the model starts inside it).
	_, o, _ = feedText(t, "Thinking.\n</think>\n\nDone.", nil, true, true, false)
	require.Equal(t, "Thinking.", o.reasoning.String())
	require.Equal(t, "Done.", o.text.String())

	// Raw generation splits nothing.
	_, o, _ = feedText(t, "<think>\nx\n</think>\n\ny", nil, false, false, false)
	require.Equal(t, "<think>\nx\n</think>\n\ny", o.text.String())
	require.Empty(t, o.reasoning.String())
}

func TestToolCallParsing(t *testing.T) {
	out := "<think>\nI need the weather.\n</think>\n\nLet me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"unit\": \"celsius\"}}\n</tool_call>\n<tool_call>\n{\"name\": \"get_time\", \"arguments\": {}}\n</tool_call>"
	toks, o, _ := feedText(t, out, nil, true, false, true)
	require.Equal(t, "I need the weather.", o.reasoning.String())
	require.Equal(t, "Let me check.", o.text.String())
	require.Len(t, o.calls, 2)
	require.Equal(t, "get_weather", o.calls[0].Name)
	require.JSONEq(t, `{"city": "Paris", "unit": "celsius"}`, string(o.calls[0].Arguments))
	require.Equal(t, "get_time", o.calls[1].Name)
	require.JSONEq(t, `{}`, string(o.calls[1].Arguments))
	require.NotEqual(t, o.calls[0].ID, o.calls[1].ID)
	require.True(t, strings.HasPrefix(o.calls[0].ID, "call_"))
	var streamed []string
	for _, tk := range toks {
		if tk.ToolCall != nil {
			require.Empty(t, tk.Text)
			streamed = append(streamed, tk.ToolCall.Name)
		}
	}
	require.Equal(t, []string{"get_weather", "get_time"}, streamed)
	require.Equal(t, "Let me check.", joined(toks, false), "no tool-call text is streamed as the answer")

	// A block that is not a call stays text, as written; so does an
	// unfinished one.
	_, o, _ = feedText(t, "A<tool_call>\nnot json\n</tool_call>", nil, true, false, true)
	require.Empty(t, o.calls)
	require.Equal(t, "A<tool_call>\nnot json\n</tool_call>", o.text.String())
	_, o, _ = feedText(t, "B<tool_call>\n{\"name\": \"f\"", nil, true, false, true)
	require.Empty(t, o.calls)
	require.Equal(t, "B<tool_call>\n{\"name\": \"f\"", o.text.String())

	// Without tools in the request, <tool_call> is just text.
	_, o, _ = feedText(t, "<tool_call>\n{\"name\": \"f\", \"arguments\": {}}\n</tool_call>", nil, true, false, false)
	require.Empty(t, o.calls)
	require.Contains(t, o.text.String(), "<tool_call>")
}

func TestParseToolCallArguments(t *testing.T) {
	tc, err := parseToolCall(` {"name": "f", "arguments": {"a": [1, 2]}} `)
	require.NoError(t, err)
	require.Equal(t, "f", tc.Name)
	require.Equal(t, json.RawMessage(`{"a": [1, 2]}`), tc.Arguments)
	_, err = parseToolCall(`{"arguments": {}}`)
	require.Error(t, err)
}

// A stop string ends the text before it, even split across tokens, and
// text that only looked like its start is released.
func TestStopStrings(t *testing.T) {
	toks, o, stopped := feedText(t, "one two three END four", []string{"END"}, false, false, false)
	require.True(t, stopped)
	require.Equal(t, "one two three ", o.text.String())
	require.Equal(t, o.text.String(), joined(toks, false))
	_, o, stopped = feedText(t, "an EN dash", []string{"END"}, false, false, false)
	require.False(t, stopped)
	require.Equal(t, "an EN dash", o.text.String())
}
