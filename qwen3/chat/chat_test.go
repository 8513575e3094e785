package chat

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// The expected strings below are written out by hand from Qwen3's chat
// template in tokenizer_config.json.

var (
	withThinking    = Options{AddGenerationPrompt: true, EnableThinking: true}
	withoutThinking = Options{AddGenerationPrompt: true, EnableThinking: false}
)

func TestSingleUserMessage(t *testing.T) {
	msgs := []Message{{Role: "user", Content: "Hello"}}

	assert.Equal(t,
		"<|im_start|>user\nHello<|im_end|>\n"+
			"<|im_start|>assistant\n",
		Render(msgs, withThinking))

	assert.Equal(t,
		"<|im_start|>user\nHello<|im_end|>\n"+
			"<|im_start|>assistant\n<think>\n\n</think>\n\n",
		Render(msgs, withoutThinking))

	// Without a generation prompt, the thinking switch changes nothing.
	assert.Equal(t, "<|im_start|>user\nHello<|im_end|>\n", Render(msgs, Options{}))
}

func TestSystemAndUser(t *testing.T) {
	msgs := []Message{
		{Role: "system", Content: "You are terse."},
		{Role: "user", Content: "Hi"},
	}
	assert.Equal(t,
		"<|im_start|>system\nYou are terse.<|im_end|>\n"+
			"<|im_start|>user\nHi<|im_end|>\n"+
			"<|im_start|>assistant\n",
		Render(msgs, withThinking))
}

func TestContentIsNotTrimmed(t *testing.T) {
	msgs := []Message{{Role: "user", Content: "  two lines\nhere\n"}}
	assert.Equal(t,
		"<|im_start|>user\n  two lines\nhere\n<|im_end|>\n",
		Render(msgs, Options{}))
}

func TestEarlierReasoningIsDropped(t *testing.T) {
	msgs := []Message{
		{Role: "user", Content: "What is 2+2?"},
		{Role: "assistant", Content: "<think>\nabc\n</think>\n\nanswer"},
		{Role: "user", Content: "And 3+3?"},
	}
	assert.Equal(t,
		"<|im_start|>user\nWhat is 2+2?<|im_end|>\n"+
			"<|im_start|>assistant\nanswer<|im_end|>\n"+
			"<|im_start|>user\nAnd 3+3?<|im_end|>\n"+
			"<|im_start|>assistant\n",
		Render(msgs, withThinking))
}

func TestReasoningAfterLastQueryIsKept(t *testing.T) {
	msgs := []Message{
		{Role: "user", Content: "q"},
		{Role: "assistant", Content: "<think>\nabc\n</think>\n\nanswer"},
	}
	assert.Equal(t,
		"<|im_start|>user\nq<|im_end|>\n"+
			"<|im_start|>assistant\n<think>\nabc\n</think>\n\nanswer<|im_end|>\n",
		Render(msgs, Options{}))

	// The final assistant turn gets a think block even with no reasoning.
	msgs[1].Content = "plain"
	assert.Equal(t,
		"<|im_start|>user\nq<|im_end|>\n"+
			"<|im_start|>assistant\n<think>\n\n</think>\n\nplain<|im_end|>\n",
		Render(msgs, Options{}))
}

func TestReasoningWhitespace(t *testing.T) {
	// Newlines around the reasoning and before the answer are trimmed; the
	// reasoning is taken from the last <think> before the first </think>,
	// and the answer from after the last </think>.
	content := "\n\n<think>\n\nr1\n\n</think>\n\n\nans"
	msgs := []Message{
		{Role: "user", Content: "a"},
		{Role: "assistant", Content: content},
		{Role: "user", Content: "b"},
		{Role: "assistant", Content: content},
	}
	assert.Equal(t,
		"<|im_start|>user\na<|im_end|>\n"+
			"<|im_start|>assistant\nans<|im_end|>\n"+
			"<|im_start|>user\nb<|im_end|>\n"+
			"<|im_start|>assistant\n<think>\nr1\n</think>\n\nans<|im_end|>\n",
		Render(msgs, Options{}))

	msgs = []Message{
		{Role: "user", Content: "a"},
		{Role: "assistant", Content: "x<think>old<think>\nnew\n</think>mid</think>\nend "},
	}
	assert.Equal(t,
		"<|im_start|>user\na<|im_end|>\n"+
			"<|im_start|>assistant\n<think>\nnew\n</think>\n\nend <|im_end|>\n",
		Render(msgs, Options{}))
}

func TestAssistantAfterQueryWithoutReasoning(t *testing.T) {
	// After the last query, a non-final assistant turn keeps a think block
	// only if it has reasoning; tool results join into one user turn and do
	// not count as a query.
	msgs := []Message{
		{Role: "system", Content: "S"},
		{Role: "user", Content: "q"},
		{Role: "assistant", Content: "a1"},
		{Role: "tool", Content: "r1"},
		{Role: "tool", Content: "r2"},
		{Role: "assistant", Content: "<think>\nr\n</think>\n\na2"},
		{Role: "user", Content: "<tool_response>\nr3\n</tool_response>"},
		{Role: "assistant", Content: "a3"},
	}
	assert.Equal(t,
		"<|im_start|>system\nS<|im_end|>\n"+
			"<|im_start|>user\nq<|im_end|>\n"+
			"<|im_start|>assistant\na1<|im_end|>\n"+
			"<|im_start|>user\n<tool_response>\nr1\n</tool_response>\n<tool_response>\nr2\n</tool_response><|im_end|>\n"+
			"<|im_start|>assistant\n<think>\nr\n</think>\n\na2<|im_end|>\n"+
			"<|im_start|>user\n<tool_response>\nr3\n</tool_response><|im_end|>\n"+
			"<|im_start|>assistant\n<think>\n\n</think>\n\na3<|im_end|>\n",
		Render(msgs, Options{}))
}

func TestOddMessages(t *testing.T) {
	// A later system message renders like a user one; unknown roles vanish;
	// with no messages only the prompt is left.
	msgs := []Message{
		{Role: "user", Content: "u"},
		{Role: "system", Content: "s2"},
		{Role: "narrator", Content: "n"},
	}
	assert.Equal(t,
		"<|im_start|>user\nu<|im_end|>\n"+
			"<|im_start|>system\ns2<|im_end|>\n",
		Render(msgs, Options{}))
	assert.Equal(t, "<|im_start|>assistant\n<think>\n\n</think>\n\n", Render(nil, withoutThinking))

	// With no user message at all, no assistant turn counts as after the
	// query, so even the last one is rendered plain.
	assert.Equal(t,
		"<|im_start|>system\ns<|im_end|>\n<|im_start|>assistant\na<|im_end|>\n",
		Render([]Message{{Role: "system", Content: "s"}, {Role: "assistant", Content: "<think>\nr\n</think>\n\na"}}, Options{}))
}
