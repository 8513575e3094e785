package serve

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestChatNonStream(t *testing.T) {
	srv, fake := newTestServer(t, Config{})
	m := postJSON(t, srv, "/v1/chat/completions", `{"model":"whatever","messages":[
		{"role":"system","content":"Be brief."},{"role":"user","content":"hello there"}]}`)
	require.Equal(t, "chat.completion", m["object"])
	require.Equal(t, "fake-qwen3", m["model"]) // one model: its name, whatever was asked
	require.True(t, strings.HasPrefix(m["id"].(string), "chatcmpl-"))
	require.Equal(t, "assistant", get(m, "choices", 0, "message", "role"))
	require.Equal(t, "You said: hello there", get(m, "choices", 0, "message", "content"))
	require.Equal(t, "Thinking about hello there.", get(m, "choices", 0, "message", "reasoning_content"))
	require.Equal(t, "stop", get(m, "choices", 0, "finish_reason"))
	// Prompt: 2 + 2 words; completion: 4 reasoning + 4 answer tokens.
	require.Equal(t, map[string]any{"prompt_tokens": 4.0, "completion_tokens": 8.0, "total_tokens": 12.0,
		"prompt_tokens_details": map[string]any{"cached_tokens": 2.0}}, m["usage"])
	msgs, opt, _ := fake.last()
	require.Len(t, msgs, 2)
	require.Equal(t, "system", msgs[0].Role)
	require.Equal(t, "Be brief.", msgs[0].Content)
	require.Nil(t, opt.Thinking)
	require.False(t, opt.Raw)
}

func TestChatThinkingOff(t *testing.T) {
	srv, fake := newTestServer(t, Config{})
	m := postJSON(t, srv, "/v1/chat/completions", `{"messages":[{"role":"user","content":"hi"}],
		"chat_template_kwargs":{"enable_thinking":false}}`)
	require.Equal(t, "You said: hi", get(m, "choices", 0, "message", "content"))
	require.NotContains(t, get(m, "choices", 0, "message").(map[string]any), "reasoning_content")
	_, opt, _ := fake.last()
	require.NotNil(t, opt.Thinking)
	require.False(t, *opt.Thinking)
}

func TestChatSamplingReachesBackend(t *testing.T) {
	srv, fake := newTestServer(t, Config{})
	postJSON(t, srv, "/v1/chat/completions", `{"messages":[{"role":"user","content":"hi"}],
		"temperature":0.7,"top_p":0.8,"top_k":20,"min_p":0.05,"seed":-1,"stop":["x","yz"],
		"presence_penalty":1.5,"frequency_penalty":-0.5,"repetition_penalty":1.1,
		"max_tokens":7,"max_completion_tokens":9,"n":1,"logprobs":false,"unknown_field":{"a":[1,2]}}`)
	_, opt, _ := fake.last()
	require.Equal(t, 0.7, *opt.Temperature)
	require.Equal(t, 0.8, *opt.TopP)
	require.Equal(t, 20, *opt.TopK)
	require.Equal(t, 0.05, *opt.MinP)
	require.Equal(t, ^uint64(0), *opt.Seed) // -1 as 64 bits
	require.Equal(t, []string{"x", "yz"}, opt.Stop)
	require.Equal(t, 1.5, opt.PresencePenalty)
	require.Equal(t, -0.5, opt.FrequencyPenalty)
	require.Equal(t, 1.1, opt.RepeatPenalty)
	require.Equal(t, 9, opt.MaxTokens) // max_completion_tokens wins, as OpenAI documents
	require.Nil(t, opt.Tools)

	postJSON(t, srv, "/v1/chat/completions", `{"messages":[{"role":"user","content":"hi"}],"stop":"END","top_k":-1}`)
	_, opt, _ = fake.last()
	require.Equal(t, []string{"END"}, opt.Stop)
	require.Equal(t, 0, *opt.TopK)
	require.Nil(t, opt.Temperature) // unset stays the model's default
	require.Zero(t, opt.MaxTokens)
}

func TestChatLengthAndStop(t *testing.T) {
	srv, _ := newTestServer(t, Config{})
	m := postJSON(t, srv, "/v1/chat/completions", `{"messages":[{"role":"user","content":"one two three"}],
		"max_tokens":6,"chat_template_kwargs":{"enable_thinking":false}}`)
	require.Equal(t, "You said: one two three", get(m, "choices", 0, "message", "content"))
	require.Equal(t, "stop", get(m, "choices", 0, "finish_reason"))
	m = postJSON(t, srv, "/v1/chat/completions", `{"messages":[{"role":"user","content":"one two three"}],
		"max_tokens":3,"chat_template_kwargs":{"enable_thinking":false}}`)
	require.Equal(t, "You said: one", get(m, "choices", 0, "message", "content"))
	require.Equal(t, "length", get(m, "choices", 0, "finish_reason"))
	require.Equal(t, 3.0, get(m, "usage", "completion_tokens"))
	m = postJSON(t, srv, "/v1/chat/completions", `{"messages":[{"role":"user","content":"one two three"}],
		"stop":"two","chat_template_kwargs":{"enable_thinking":false}}`)
	require.Equal(t, "You said: one ", get(m, "choices", 0, "message", "content"))
}

func TestChatContentParts(t *testing.T) {
	srv, fake := newTestServer(t, Config{})
	postJSON(t, srv, "/v1/chat/completions", `{"messages":[{"role":"developer","content":[{"type":"text","text":"A"},{"type":"text","text":"B"}]},
		{"role":"user","content":"hi"},{"role":"assistant","content":null,"reasoning_content":"hmm"},{"role":"user","content":"again"}]}`)
	msgs, _, _ := fake.last()
	require.Equal(t, "system", msgs[0].Role)
	require.Equal(t, "AB", msgs[0].Content)
	require.Equal(t, "", msgs[2].Content)
	require.Equal(t, "hmm", msgs[2].ReasoningContent)
}

// streamText joins a chat stream's deltas: content and reasoning.
func streamText(cs []map[string]any) (content, reasoning string) {
	for _, c := range cs {
		if s, ok := get(c, "choices", 0, "delta", "content").(string); ok {
			content += s
		}
		if s, ok := get(c, "choices", 0, "delta", "reasoning_content").(string); ok {
			reasoning += s
		}
	}
	return
}

func TestChatStream(t *testing.T) {
	srv, _ := newTestServer(t, Config{})
	cs := chunks(t, events(t, srv, "/v1/chat/completions", `{"stream":true,"stream_options":{"include_usage":true},
		"messages":[{"role":"user","content":"hello there"}]}`))
	require.Equal(t, "assistant", get(cs[0], "choices", 0, "delta", "role"))
	id := cs[0]["id"]
	for _, c := range cs {
		require.Equal(t, "chat.completion.chunk", c["object"])
		require.Equal(t, id, c["id"])
		require.Equal(t, "fake-qwen3", c["model"])
	}
	content, reasoning := streamText(cs)
	require.Equal(t, "You said: hello there", content)
	require.Equal(t, "Thinking about hello there.", reasoning)
	// 1 role chunk, 8 token chunks, the finish chunk, the usage chunk.
	require.Len(t, cs, 11)
	require.Equal(t, "stop", get(cs[9], "choices", 0, "finish_reason"))
	require.Nil(t, get(cs[8], "choices", 0, "finish_reason"))
	require.Equal(t, []any{}, cs[10]["choices"])
	require.Equal(t, 10.0, get(cs[10], "usage", "total_tokens")) // 2 prompt + 8 generated

	// Without include_usage no chunk carries usage.
	cs = chunks(t, events(t, srv, "/v1/chat/completions", `{"stream":true,"messages":[{"role":"user","content":"hi"}]}`))
	require.Len(t, cs, 1+6+1) // 3 reasoning and 3 answer tokens
	for _, c := range cs {
		require.NotContains(t, c, "usage")
	}
}

const weatherTools = `"tools":[{"type":"function","function":{"name":"get_weather","description":"Weather in a city",
	"parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}}]`

func TestChatToolCall(t *testing.T) {
	srv, fake := newTestServer(t, Config{})
	m := postJSON(t, srv, "/v1/chat/completions", `{"messages":[{"role":"user","content":"weather in Paris? /no_think"}],`+weatherTools+`}`)
	msg := get(m, "choices", 0, "message")
	require.Equal(t, "Let me check.", get(msg, "content"))
	require.Equal(t, "tool_calls", get(m, "choices", 0, "finish_reason"))
	require.Equal(t, "function", get(msg, "tool_calls", 0, "type"))
	require.Equal(t, "get_weather", get(msg, "tool_calls", 0, "function", "name"))
	require.JSONEq(t, `{"city":"Paris"}`, get(msg, "tool_calls", 0, "function", "arguments").(string))
	require.True(t, strings.HasPrefix(get(msg, "tool_calls", 0, "id").(string), "call_"))
	require.Nil(t, get(msg, "tool_calls", 0, "index")) // index belongs to stream deltas
	_, opt, _ := fake.last()
	require.Len(t, opt.Tools, 1)
	require.Equal(t, "get_weather", opt.Tools[0].Name)
	require.Equal(t, "Weather in a city", opt.Tools[0].Description)
	require.JSONEq(t, `{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}`, string(opt.Tools[0].Parameters))

	// The round trip: the call and its result go back as messages.
	m = postJSON(t, srv, "/v1/chat/completions", `{"messages":[{"role":"user","content":"weather in Paris?"},
		{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\": \"Paris\"}"}}]},
		{"role":"tool","tool_call_id":"call_1","content":"22C"}],`+weatherTools+`}`)
	require.Equal(t, "The tool said: 22C", get(m, "choices", 0, "message", "content"))
	msgs, _, _ := fake.last()
	require.Len(t, msgs[1].ToolCalls, 1)
	require.Equal(t, "call_1", msgs[1].ToolCalls[0].ID)
	require.Equal(t, "get_weather", msgs[1].ToolCalls[0].Name)
	require.JSONEq(t, `{"city":"Paris"}`, string(msgs[1].ToolCalls[0].Arguments))
	require.Equal(t, "tool", msgs[2].Role)
	require.Equal(t, "call_1", msgs[2].ToolCallID)

	// tool_choice "none" keeps the tools out of the prompt.
	postJSON(t, srv, "/v1/chat/completions", `{"messages":[{"role":"user","content":"weather?"}],"tool_choice":"none",`+weatherTools+`}`)
	_, opt, _ = fake.last()
	require.Empty(t, opt.Tools)
}

func TestChatToolCallStream(t *testing.T) {
	// Calls parsed as they come (package llm's way) and calls known only
	// at the end, their text streamed: the client sees the same.
	for _, ask := range []string{"weather? /no_think", "tagged weather? /no_think"} {
		t.Run(ask, func(t *testing.T) { testToolCallStream(t, ask) })
	}
}

func testToolCallStream(t *testing.T, ask string) {
	srv, _ := newTestServer(t, Config{})
	cs := chunks(t, events(t, srv, "/v1/chat/completions", `{"stream":true,"messages":[{"role":"user","content":"`+ask+`"}],`+weatherTools+`}`))
	content, _ := streamText(cs)
	require.Equal(t, "Let me check.", content) // the <tool_call> text never streams
	var calls []any
	for _, c := range cs {
		if tc, ok := get(c, "choices", 0, "delta", "tool_calls").([]any); ok {
			calls = append(calls, tc...)
		}
	}
	require.Len(t, calls, 1)
	require.Equal(t, 0.0, get(calls[0], "index"))
	require.Equal(t, "get_weather", get(calls[0], "function", "name"))
	require.JSONEq(t, `{"city":"Paris"}`, get(calls[0], "function", "arguments").(string))
	require.Equal(t, "tool_calls", get(cs[len(cs)-1], "choices", 0, "finish_reason"))
}

func TestToolFilter(t *testing.T) {
	// Tokens split the tag anywhere; what could be its start is held.
	f := &toolFilter{}
	var out string
	for _, tok := range []string{"a <", "to", "ol_", "call>{", "x}", "</tool_call>"} {
		out += f.push(tok)
	}
	require.Equal(t, "a ", out)
	require.Equal(t, "", f.flush(true))
	require.Equal(t, "<tool_call>{x}</tool_call>", f.flush(false)) // unparsed: not lost

	f = &toolFilter{}
	require.Equal(t, "x ", f.push("x <t"))
	require.Equal(t, "<tx", f.push("x"))
	require.Equal(t, "a", f.push("a<"))
	require.Equal(t, "<", f.flush(false))
}

func TestChatStreamErrors(t *testing.T) {
	srv, _ := newTestServer(t, Config{})
	// Before any token the answer is still an ordinary error, not a stream.
	status, ctype, body := post(t, srv, "/v1/chat/completions", `{"stream":true,"messages":[{"role":"user","content":"too long"}]}`)
	requireAPIError(t, status, http.StatusBadRequest, ctype, body, "", "prompt too long: 5000 tokens do not fit the context")
	// Mid-stream the error comes as an event, and no [DONE].
	evs := events(t, srv, "/v1/chat/completions", `{"stream":true,"messages":[{"role":"user","content":"fail mid"}]}`)
	require.Len(t, evs, 4) // role, "Half", " way", the error
	var e map[string]any
	require.NoError(t, json.Unmarshal([]byte(evs[3]), &e))
	require.Equal(t, "device lost", get(e, "error", "message"))
	require.Equal(t, "server_error", get(e, "error", "type"))
}
