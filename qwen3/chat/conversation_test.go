package chat

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestConversationDeltasWithThinking(t *testing.T) {
	c := NewConversation("You are terse.", true)

	d1 := c.AppendUser("Hi")
	assert.Equal(t,
		"<|im_start|>system\nYou are terse.<|im_end|>\n"+
			"<|im_start|>user\nHi<|im_end|>\n"+
			"<|im_start|>assistant\n",
		d1)
	assert.Equal(t, Render(c.Messages(), withThinking), d1)

	reply1 := "<think>\nA greeting.\n</think>\n\nHello!"
	c.AppendAssistant(reply1)
	// Up to here the cache holds exactly what the template renders.
	assert.Equal(t, Render(c.Messages(), Options{}), c.Transcript()+"<|im_end|>\n")

	d2 := c.AppendUser("Bye")
	assert.Equal(t,
		"<|im_end|>\n"+
			"<|im_start|>user\nBye<|im_end|>\n"+
			"<|im_start|>assistant\n",
		d2)

	reply2 := "<think>\nA farewell.\n</think>\n\nGoodbye."
	c.AppendAssistant(reply2)

	assert.Equal(t, d1+reply1+d2+reply2, c.Transcript())
	assert.Equal(t, []Message{
		{Role: "system", Content: "You are terse."},
		{Role: "user", Content: "Hi"},
		{Role: "assistant", Content: reply1},
		{Role: "user", Content: "Bye"},
		{Role: "assistant", Content: reply2},
	}, c.Messages())

	// A fresh render drops the first turn's reasoning; the cached session
	// keeps it, because that is what the model saw.
	assert.Equal(t,
		"<|im_start|>system\nYou are terse.<|im_end|>\n"+
			"<|im_start|>user\nHi<|im_end|>\n"+
			"<|im_start|>assistant\nHello!<|im_end|>\n"+
			"<|im_start|>user\nBye<|im_end|>\n"+
			"<|im_start|>assistant\n<think>\nA farewell.\n</think>\n\nGoodbye.<|im_end|>\n",
		Render(c.Messages(), Options{}))
	assert.Contains(t, c.Transcript(), "A greeting.")
}

func TestConversationDeltasWithoutThinking(t *testing.T) {
	c := NewConversation("", false)

	d1 := c.AppendUser("Hi")
	assert.Equal(t,
		"<|im_start|>user\nHi<|im_end|>\n"+
			"<|im_start|>assistant\n<think>\n\n</think>\n\n",
		d1)
	c.AppendAssistant("Hello!")

	d2 := c.AppendUser("Bye")
	assert.Equal(t,
		"<|im_end|>\n"+
			"<|im_start|>user\nBye<|im_end|>\n"+
			"<|im_start|>assistant\n<think>\n\n</think>\n\n",
		d2)
	c.AppendAssistant("Goodbye.")

	assert.Equal(t, d1+"Hello!"+d2+"Goodbye.", c.Transcript())
	// What the model saw, closed, is what the template renders for the first
	// turn with thinking disabled, plus what it renders for the last one.
	assert.Equal(t,
		"<|im_start|>user\nHi<|im_end|>\n"+
			"<|im_start|>assistant\n<think>\n\n</think>\n\nHello!<|im_end|>\n"+
			"<|im_start|>user\nBye<|im_end|>\n"+
			"<|im_start|>assistant\n<think>\n\n</think>\n\nGoodbye.<|im_end|>\n",
		c.Transcript()+"<|im_end|>\n")
}

func TestConversationFedEndToken(t *testing.T) {
	c := NewConversation("", true)
	c.AppendUser("Hi")
	c.AppendAssistant("Hello!<|im_end|>")
	assert.Equal(t, "\n<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\n", c.AppendUser("Bye"))
	assert.Equal(t, "Hello!", c.Messages()[1].Content)
	assert.Equal(t,
		"<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n"+
			"<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\n",
		c.Transcript())
}

func TestConversationInterruptedReply(t *testing.T) {
	c := NewConversation("", true)
	d1 := c.AppendUser("Hi")
	d2 := c.AppendUser("Anyone there?")
	assert.Equal(t, "<|im_end|>\n<|im_start|>user\nAnyone there?<|im_end|>\n<|im_start|>assistant\n", d2)
	assert.Equal(t, d1+d2, c.Transcript())
	require.Len(t, c.Messages(), 3)
	assert.Equal(t, Message{Role: "assistant", Content: ""}, c.Messages()[1])
}

func TestConversationMisuse(t *testing.T) {
	c := NewConversation("", true)
	assert.Panics(t, func() { c.AppendAssistant("unprompted") })
	c.AppendUser("Hi")
	c.AppendAssistant("Hello!")
	assert.Panics(t, func() { c.AppendAssistant("again") })
}

func TestMessagesIsACopy(t *testing.T) {
	c := NewConversation("S", true)
	c.AppendUser("Hi")
	m := c.Messages()
	m[0].Content = "changed"
	assert.Equal(t, "S", c.Messages()[0].Content)
}
