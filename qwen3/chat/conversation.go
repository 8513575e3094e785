package chat

import "strings"

// Conversation tracks an interactive session that keeps the model's KV
// cache between turns, and hands out exactly the text to feed next: the
// delta since everything fed so far.
//
// The transcript it builds is what the model actually saw, which is not
// always what Render would produce for the same messages. The template
// drops the reasoning of assistant turns before the last user query (and
// renders an earlier reply from a thinking-disabled turn without its empty
// think block), so a fresh Render of the history differs from the cached
// text once a second user turn arrives. Like llama.cpp and ollama, the
// session keeps what was generated rather than re-rendering, because
// re-rendering would invalidate the cache from the first changed token on.
// A caller that wants the template's exact text (say, after dropping the
// cache) can use Render(c.Messages(), ...).
//
// The turns must alternate: AppendUser, then AppendAssistant with the
// reply, then AppendUser again.
type Conversation struct {
	enableThinking bool
	msgs           []Message
	transcript     strings.Builder
	// awaitingReply is set between AppendUser and AppendAssistant.
	awaitingReply bool
	// replyClosed says the last reply's <|im_end|> was already fed.
	replyClosed bool
}

// NewConversation starts a session. A non-empty system prompt opens the
// first delta. enableThinking has the meaning of Options.EnableThinking for
// every generation prompt of the session.
func NewConversation(system string, enableThinking bool) *Conversation {
	c := &Conversation{enableThinking: enableThinking}
	if system != "" {
		c.msgs = append(c.msgs, Message{Role: "system", Content: system})
	}
	return c
}

// AppendUser records a user message and returns the text to tokenize and
// feed next. It closes the previous assistant turn (whose generated tokens
// were fed already, without the <|im_end|> that stopped generation), adds
// the user turn, and opens the assistant's reply, with an empty think block
// when thinking is disabled. The first delta also carries the system
// prompt, and equals Render of the messages so far with a generation
// prompt.
//
// Called again before AppendAssistant, it records an empty reply first, as
// when generation was interrupted before producing anything.
func (c *Conversation) AppendUser(content string) string {
	if c.awaitingReply {
		c.AppendAssistant("")
	}
	var d strings.Builder
	if c.transcript.Len() == 0 {
		if len(c.msgs) > 0 && c.msgs[0].Role == "system" {
			writeTurn(&d, "system", c.msgs[0].Content)
		}
	} else {
		if !c.replyClosed {
			d.WriteString(ImEnd)
		}
		d.WriteString("\n")
	}
	writeTurn(&d, "user", content)
	d.WriteString(generationPrompt(c.enableThinking))

	c.msgs = append(c.msgs, Message{Role: "user", Content: content})
	c.transcript.WriteString(d.String())
	c.awaitingReply = true
	return d.String()
}

// AppendAssistant records the reply to the last user message. generated
// must be the text of exactly the tokens that went through the model after
// the last delta: normally everything sampled except the <|im_end|> that
// ended generation, since that token is not fed. If the caller did feed it,
// generated ends with "<|im_end|>" and the next delta starts after it.
//
// It panics when no user message is waiting for a reply.
func (c *Conversation) AppendAssistant(generated string) {
	if !c.awaitingReply {
		panic("chat: AppendAssistant called without a user message awaiting a reply")
	}
	content, closed := strings.CutSuffix(generated, ImEnd)
	c.msgs = append(c.msgs, Message{Role: "assistant", Content: content})
	c.transcript.WriteString(generated)
	c.awaitingReply = false
	c.replyClosed = closed
}

// Transcript returns everything fed to the model so far: the concatenation
// of the deltas and the generated replies.
func (c *Conversation) Transcript() string { return c.transcript.String() }

// Messages returns a copy of the conversation so far, the system prompt
// first if there is one. Assistant contents are the generated text, without
// a trailing <|im_end|>.
func (c *Conversation) Messages() []Message {
	return append([]Message(nil), c.msgs...)
}

// SetThinking changes Options.EnableThinking for the generation prompts
// of the turns that follow; what was fed already stays as it was.
func (c *Conversation) SetThinking(enable bool) { c.enableThinking = enable }
