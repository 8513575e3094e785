package serve

import "strings"

const toolCallOpen = "<tool_call>"

// toolFilter holds back streamed content from the first "<tool_call>" on:
// a tool call is sent as tool_calls deltas once the backend has parsed it,
// never as text. Text that might be the start of the tag is held until the
// next token tells.
type toolFilter struct {
	held   string // a tail that may begin "<tool_call>"
	inCall bool
	call   strings.Builder // everything from "<tool_call>" on
}

// push takes a token's text and returns what may be sent as content now.
func (f *toolFilter) push(text string) string {
	if f.inCall {
		f.call.WriteString(text)
		return ""
	}
	s := f.held + text
	if i := strings.Index(s, toolCallOpen); i >= 0 {
		f.inCall, f.held = true, ""
		f.call.WriteString(s[i:])
		return s[:i]
	}
	keep := partialSuffix(s, toolCallOpen)
	f.held = s[len(s)-keep:]
	return s[:len(s)-keep]
}

// flush returns what is left to send as content when generation ends:
// the held tail, or the whole unparsed call when the backend found no
// tool call in it (so no text is lost).
func (f *toolFilter) flush(parsedCalls bool) string {
	if f.inCall {
		if parsedCalls {
			return ""
		}
		return f.call.String()
	}
	s := f.held
	f.held = ""
	return s
}

// partialSuffix is the length of the longest suffix of s that is a
// proper prefix of tag.
func partialSuffix(s, tag string) int {
	for n := min(len(s), len(tag)-1); n > 0; n-- {
		if strings.HasSuffix(s, tag[:n]) {
			return n
		}
	}
	return 0
}
