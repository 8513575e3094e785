package llm

// reportPrefill is the scheduler's afterChunk hook outside tests: it
// hands the progress through a prompt (the slot's cached positions, which
// include a reused prefix, out of the prompt's length) to the request's
// events. It runs on the scheduler goroutine, which owns the slots.
func (s *scheduler) reportPrefill(slot, fed int) {
	if q := s.slots[slot].seq; q != nil {
		q.req.ev.prefilled(min(fed, len(q.req.prompt)), len(q.req.prompt))
	}
}
