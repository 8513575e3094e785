// Package chat formats conversations the way Qwen3's chat template does
// (the Jinja template shipped in its tokenizer_config.json), for text
// messages without tool definitions, and tracks a multi-turn session whose
// KV cache is kept between turns.
package chat

import "strings"

// The ChatML markers Qwen3 is trained with. Each is a single special token.
const (
	ImStart    = "<|im_start|>"
	ImEnd      = "<|im_end|>"
	ThinkOpen  = "<think>"
	ThinkClose = "</think>"
)

// emptyThink is what the template appends to the generation prompt when
// thinking is disabled: an already-closed reasoning block, so the model
// answers straight away.
const emptyThink = "<think>\n\n</think>\n\n"

// Message is one turn of a conversation. Role is "system", "user",
// "assistant" or "tool"; the template renders nothing for any other role.
type Message struct {
	Role, Content string
}

// Options are the template variables Render honours.
type Options struct {
	// AddGenerationPrompt ends the text with the opening of an assistant
	// turn, for the model to continue.
	AddGenerationPrompt bool
	// EnableThinking lets the model reason in a <think> block before it
	// answers. When false (the zero value) and AddGenerationPrompt is set,
	// the prompt ends with an empty think block. Note that the template's
	// own default, with enable_thinking undefined, is thinking enabled.
	EnableThinking bool
}

// Render formats msgs exactly as Qwen3's chat template does when given no
// tools:
//
//   - A system message at the start opens the text; system messages later
//     on are rendered like user messages.
//   - Each message becomes "<|im_start|>role\ncontent<|im_end|>\n", with the
//     content as given (the template does not trim it).
//   - An assistant message whose content contains "</think>" is split into
//     reasoning (between the "<think>" and the first "</think>", trimmed of
//     newlines) and answer (after the last "</think>", leading newlines
//     trimmed). For turns before the last user query the reasoning is
//     dropped; after it, the reasoning is kept as
//     "<think>\nreasoning\n</think>\n\nanswer", and the last message, when
//     it is an assistant turn after that query, gets the block even when
//     the reasoning is empty.
//   - Consecutive tool messages are wrapped, each in
//     "<tool_response>...</tool_response>", into one user turn; a user
//     message that is wholly such a wrapper does not count as a query.
//
// The template itself fails on an empty list of messages; Render then
// returns just the generation prompt, if asked for.
func Render(msgs []Message, opt Options) string {
	var b strings.Builder
	if len(msgs) > 0 && msgs[0].Role == "system" {
		writeTurn(&b, "system", msgs[0].Content)
	}
	lastQuery := lastQueryIndex(msgs)
	for i, m := range msgs {
		switch m.Role {
		case "system":
			if i > 0 {
				writeTurn(&b, m.Role, m.Content)
			}
		case "user":
			writeTurn(&b, m.Role, m.Content)
		case "assistant":
			writeAssistant(&b, m.Content, i > lastQuery, i == len(msgs)-1)
		case "tool":
			if i == 0 || msgs[i-1].Role != "tool" {
				b.WriteString(ImStart + "user")
			}
			b.WriteString("\n<tool_response>\n" + m.Content + "\n</tool_response>")
			if i == len(msgs)-1 || msgs[i+1].Role != "tool" {
				b.WriteString(ImEnd + "\n")
			}
		}
	}
	if opt.AddGenerationPrompt {
		b.WriteString(generationPrompt(opt.EnableThinking))
	}
	return b.String()
}

func writeTurn(b *strings.Builder, role, content string) {
	b.WriteString(ImStart + role + "\n" + content + ImEnd + "\n")
}

func generationPrompt(enableThinking bool) string {
	if enableThinking {
		return ImStart + "assistant\n"
	}
	return ImStart + "assistant\n" + emptyThink
}

// lastQueryIndex is the index of the last user message that is a real
// query rather than a wrapped tool response; with none, the template falls
// back to the last index, so that no assistant turn counts as after it.
func lastQueryIndex(msgs []Message) int {
	for i := len(msgs) - 1; i >= 0; i-- {
		m := msgs[i]
		toolResponse := strings.HasPrefix(m.Content, "<tool_response>") &&
			strings.HasSuffix(m.Content, "</tool_response>")
		if m.Role == "user" && !toolResponse {
			return i
		}
	}
	return len(msgs) - 1
}

// writeAssistant renders one assistant turn. afterQuery says whether it
// follows the last user query, isLast whether it ends the conversation.
func writeAssistant(b *strings.Builder, content string, afterQuery, isLast bool) {
	answer, reasoning := content, ""
	if strings.Contains(content, ThinkClose) {
		answer = strings.TrimLeft(content[strings.LastIndex(content, ThinkClose)+len(ThinkClose):], "\n")
		before, _, _ := strings.Cut(content, ThinkClose)
		reasoning = strings.TrimRight(before, "\n")
		if i := strings.LastIndex(reasoning, ThinkOpen); i >= 0 {
			reasoning = reasoning[i+len(ThinkOpen):]
		}
		reasoning = strings.TrimLeft(reasoning, "\n")
	}
	b.WriteString(ImStart + "assistant\n")
	if afterQuery && (isLast || reasoning != "") {
		b.WriteString(ThinkOpen + "\n" + strings.Trim(reasoning, "\n") + "\n" + ThinkClose + "\n\n" +
			strings.TrimLeft(answer, "\n"))
	} else {
		b.WriteString(answer)
	}
	b.WriteString(ImEnd + "\n")
}
