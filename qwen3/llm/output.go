package llm

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/qwgpu/qwgpu/qwen3/chat"
	"github.com/qwgpu/qwgpu/qwen3/tokenizer"
)

// Token is a piece of generated text, handed out as soon as it is
// printable: never half of a UTF-8 character, never the start of a stop
// string or of a tag that may follow.
type Token struct {
	Text string
	// Reasoning is set for text inside <think>…</think> (the tags
	// themselves are not handed out).
	Reasoning bool
	// ID is the id of the token whose arrival released this text.
	ID int
	// ToolCall, when set, is a complete call parsed from a
	// <tool_call>…</tool_call> block (Text is then empty). Only requests
	// with Tools parse calls; the block's text is not handed out as Text.
	ToolCall *ToolCall
}

// textOut turns one sequence's token ids into Tokens: UTF-8 reassembly,
// stop strings, then the split into reasoning, content and tool calls.
type textOut struct {
	dec   *tokenizer.StreamDecoder
	stops []string
	held  string // text that may be the start of a stop string
	// stoppedBy is the stop string that ended the output, once one has.
	stoppedBy string
	emit      func(Token)

	splitThink, parseTools bool
	inThink, inTool        bool
	tag                    string // text that may be the start of a tag
	toolBody               strings.Builder
	trimLead               bool   // drop newlines opening the current section
	newlines               string // newlines ending the section so far, held
	lastID                 int

	text, reasoning strings.Builder
	calls           []ToolCall
}

func newTextOut(tok *tokenizer.Tokenizer, stops []string, splitThink, startInThink, parseTools bool, emit func(Token)) *textOut {
	o := &textOut{dec: tok.NewStreamDecoder(), splitThink: splitThink, parseTools: parseTools, emit: emit,
		inThink: splitThink && startInThink, trimLead: splitThink && startInThink}
	for _, s := range stops {
		if s != "" {
			o.stops = append(o.stops, s)
		}
	}
	return o
}

// push handles one generated token and reports whether a stop string was
// reached (the text from it on is dropped).
func (o *textOut) push(id int) bool {
	o.lastID = id
	o.held += o.dec.Push(id)
	cut := -1
	for _, st := range o.stops {
		if i := strings.Index(o.held, st); i >= 0 && (cut < 0 || i < cut) {
			cut, o.stoppedBy = i, st
		}
	}
	if cut >= 0 {
		o.split(o.held[:cut])
		o.held = ""
		return true
	}
	hold := 0
	for _, st := range o.stops {
		for k := min(len(st)-1, len(o.held)); k > hold; k-- {
			if strings.HasSuffix(o.held, st[:k]) {
				hold = k
				break
			}
		}
	}
	o.split(o.held[:len(o.held)-hold])
	o.held = o.held[len(o.held)-hold:]
	return false
}

// finish releases everything held back at the end of generation.
// stopped says a stop string ended it (nothing after it is released).
func (o *textOut) finish(stopped bool) {
	if !stopped {
		o.held += o.dec.Flush()
		o.split(o.held)
		o.held = ""
	}
	rest := o.tag
	o.tag = ""
	if o.inTool {
		// An unfinished call is text, as the model wrote it.
		o.inTool = false
		o.section("<tool_call>" + o.toolBody.String() + rest)
	} else {
		o.section(rest)
	}
	if !o.inThink && len(o.calls) == 0 && o.newlines != "" {
		o.out(o.newlines)
	}
	o.newlines = ""
}

// tags are the markers the current state looks for.
func (o *textOut) tags() []string {
	switch {
	case o.inThink:
		return []string{chat.ThinkClose}
	case o.inTool:
		return []string{"</tool_call>"}
	}
	var t []string
	if o.splitThink {
		t = append(t, chat.ThinkOpen)
	}
	if o.parseTools {
		t = append(t, "<tool_call>")
	}
	return t
}

// split routes released text by the tags in it.
func (o *textOut) split(s string) {
	s = o.tag + s
	o.tag = ""
	for s != "" {
		tags := o.tags()
		at, which := -1, ""
		for _, t := range tags {
			if i := strings.Index(s, t); i >= 0 && (at < 0 || i < at) {
				at, which = i, t
			}
		}
		if at < 0 {
			hold := 0
			for _, t := range tags {
				for k := min(len(t)-1, len(s)); k > hold; k-- {
					if strings.HasSuffix(s, t[:k]) {
						hold = k
						break
					}
				}
			}
			o.section(s[:len(s)-hold])
			o.tag = s[len(s)-hold:]
			return
		}
		o.section(s[:at])
		s = s[at+len(which):]
		switch which {
		case chat.ThinkOpen:
			o.endSection()
			o.inThink, o.trimLead = true, true
		case chat.ThinkClose:
			o.newlines = "" // the reasoning's closing newlines
			o.inThink, o.trimLead = false, true
		case "<tool_call>":
			o.endSection()
			o.inTool = true
			o.toolBody.Reset()
		case "</tool_call>":
			o.inTool = false
			o.toolCall(o.toolBody.String())
			o.trimLead = true
		}
	}
}

// endSection drops the newlines held at the end of a content section
// that a tag closes.
func (o *textOut) endSection() { o.newlines = "" }

// section hands out text of the current section, with its opening
// newlines dropped and its trailing ones held until more text follows.
func (o *textOut) section(s string) {
	if s == "" {
		return
	}
	if o.inTool {
		o.toolBody.WriteString(s)
		return
	}
	if !o.splitThink && !o.parseTools {
		o.out(s)
		return
	}
	if o.trimLead {
		s = strings.TrimLeft(s, "\n")
		if s == "" {
			return
		}
		o.trimLead = false
	}
	body := strings.TrimRight(s, "\n")
	if body == "" {
		o.newlines += s
		return
	}
	o.out(o.newlines + body)
	o.newlines = s[len(body):]
}

func (o *textOut) out(s string) {
	if o.inThink {
		o.reasoning.WriteString(s)
	} else {
		o.text.WriteString(s)
	}
	o.emit(Token{Text: s, Reasoning: o.inThink, ID: o.lastID})
}

// toolCall parses a <tool_call> body, {"name": ..., "arguments": ...}; a
// body that is not one is handed out as text, as the model wrote it.
func (o *textOut) toolCall(body string) {
	tc, err := parseToolCall(body)
	if err != nil {
		o.section("<tool_call>" + body + "</tool_call>")
		return
	}
	o.calls = append(o.calls, tc)
	o.emit(Token{ID: o.lastID, ToolCall: &tc})
}

func parseToolCall(body string) (ToolCall, error) {
	var c struct {
		Name      string          `json:"name"`
		Arguments json.RawMessage `json:"arguments"`
	}
	if err := json.Unmarshal([]byte(strings.TrimSpace(body)), &c); err != nil {
		return ToolCall{}, err
	}
	if c.Name == "" {
		return ToolCall{}, fmt.Errorf("tool call without a name")
	}
	args := c.Arguments
	if len(args) == 0 || string(args) == "null" {
		args = json.RawMessage("{}")
	}
	return ToolCall{ID: fmt.Sprintf("call_%016x", rand.Uint64()), Name: c.Name, Arguments: args}, nil
}
