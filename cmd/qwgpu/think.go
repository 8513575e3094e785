package main

import "github.com/qwgpu/qwgpu/qwen3/llm"

// Qwen3 reasons between <think> and </think> before it answers; llm hands
// that part out as Tokens marked Reasoning, without the tags. It is printed
// inside the tags, dimmed on a terminal so the answer stands apart;
// --hide-think drops it wherever the output goes.

const (
	thinkOpen  = "<think>"
	thinkClose = "</think>"
	ansiDim    = "\033[2m"
	ansiReset  = "\033[0m"
)

// replyPrinter writes a reply's Tokens to emit.
type replyPrinter struct {
	emit   func(string)
	dim    bool // wrap the reasoning in the terminal's dim attribute
	hide   bool // drop the reasoning
	inside bool // the reasoning is open
}

func newReplyPrinter(emit func(string), dim, hide bool) *replyPrinter {
	return &replyPrinter{emit: emit, dim: dim && !hide, hide: hide}
}

// token prints one Token; it is llm's onToken.
func (p *replyPrinter) token(t llm.Token) error {
	if t.Reasoning {
		if p.hide {
			return nil
		}
		if !p.inside {
			if p.dim {
				p.emit(ansiDim)
			}
			p.emit(thinkOpen + "\n")
			p.inside = true
		}
		p.emit(t.Text)
		return nil
	}
	if p.inside {
		p.emit("\n" + thinkClose)
		if p.dim {
			p.emit(ansiReset)
		}
		p.emit("\n\n")
		p.inside = false
	}
	p.emit(t.Text)
	return nil
}

// flush ends a reply: one cut inside its reasoning leaves the terminal
// undimmed, so that its next line is not dimmed.
func (p *replyPrinter) flush() {
	if p.inside && p.dim {
		p.emit(ansiReset)
	}
	p.inside = false
}
