package llm

import "github.com/qwgpu/qwgpu/qwen3/engine"

// progressBackend reports each prompt's prefill to its request: before a
// chunk is fed (the first report says how much of the prompt was found
// cached, before any work) and after. It wraps the backend rather than
// the scheduler so that the scheduler stays as it is; it runs on the
// scheduler goroutine, which owns the slots it reads.
type progressBackend struct {
	backend
	s *scheduler
}

func (p *progressBackend) FeedRead(slot int, tokens []int, want engine.Want, k int) (engine.Row, error) {
	p.report(slot)
	row, err := p.backend.FeedRead(slot, tokens, want, k)
	if err == nil {
		p.report(slot)
	}
	return row, err
}

// report hands the slot's cached positions (a reused prefix included)
// out of the prompt's length to the request prefilling it.
func (p *progressBackend) report(slot int) {
	if p.s == nil || slot < 0 || slot >= len(p.s.slots) {
		return
	}
	if q := p.s.slots[slot].seq; q != nil && q.pending < 0 {
		n := len(q.req.prompt)
		q.req.ev.prefilled(min(p.backend.SlotLen(slot), n), n)
	}
}
