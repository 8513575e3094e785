package main

import "strings"

// Qwen3 reasons between <think> and </think> before it answers. On a
// terminal that part is dimmed so the answer stands apart; --hide-think
// drops it (and the blank lines after it) wherever the output goes.

const (
	thinkOpen  = "<think>"
	thinkClose = "</think>"
	ansiDim    = "\033[2m"
	ansiReset  = "\033[0m"
)

// thinkFilter passes streamed text to emit, marking or dropping the
// thinking block. Text arrives in arbitrary pieces, so a tail that could
// be the start of a tag is held back until the next piece decides it.
type thinkFilter struct {
	emit     func(string)
	dim      bool // wrap the block in the terminal's dim attribute
	hide     bool // drop the block
	inside   bool
	skipNL   bool // after a hidden block: drop the newlines that follow it
	pending  string
	disabled bool // neither dim nor hide: pass everything through
}

func newThinkFilter(emit func(string), dim, hide bool) *thinkFilter {
	return &thinkFilter{emit: emit, dim: dim && !hide, hide: hide, disabled: !dim && !hide}
}

func (f *thinkFilter) write(s string) {
	if f.disabled {
		f.emit(s)
		return
	}
	f.pending += s
	for {
		tag := thinkOpen
		if f.inside {
			tag = thinkClose
		}
		i := strings.Index(f.pending, tag)
		if i < 0 {
			hold := partialSuffix(f.pending, tag)
			f.out(f.pending[:len(f.pending)-hold])
			f.pending = f.pending[len(f.pending)-hold:]
			return
		}
		f.out(f.pending[:i])
		f.pending = f.pending[i+len(tag):]
		if f.inside {
			if !f.hide {
				f.emit(tag)
			}
			if f.dim {
				f.emit(ansiReset)
			}
			f.inside, f.skipNL = false, f.hide
		} else {
			if f.dim {
				f.emit(ansiDim)
			}
			if !f.hide {
				f.emit(tag)
			}
			f.inside = true
		}
	}
}

// out writes text of the current state.
func (f *thinkFilter) out(s string) {
	if f.inside && f.hide {
		return
	}
	if f.skipNL {
		s = strings.TrimLeft(s, "\n")
		if s == "" {
			return
		}
		f.skipNL = false
	}
	if s != "" {
		f.emit(s)
	}
}

// flush ends a reply: the held tail goes out, and an open dim is closed
// so that the terminal's next line is not dimmed.
func (f *thinkFilter) flush() {
	if f.disabled {
		return
	}
	f.out(f.pending)
	f.pending = ""
	if f.inside && f.dim {
		f.emit(ansiReset)
	}
	f.inside, f.skipNL = false, false
}

// partialSuffix is the length of the longest tail of s that is a proper
// prefix of tag.
func partialSuffix(s, tag string) int {
	for k := min(len(tag)-1, len(s)); k > 0; k-- {
		if strings.HasSuffix(s, tag[:k]) {
			return k
		}
	}
	return 0
}
