package llm

import "time"

// Stats are a model's counters since Open, for monitoring (Prometheus).
type Stats struct {
	Requests         uint64 // requests queued in all
	PromptTokens     uint64 // prompt tokens of admitted requests
	CachedTokens     uint64 // of those, found in a slot's cache
	CompletionTokens uint64 // tokens generated
	Cancelled        uint64 // requests ended by cancellation or Close
	Errors           uint64 // requests ended by an error of the model
	Queued           int    // waiting for a slot now
	Active           int    // holding a slot now
	Parallel         int    // slots
	// BatchSteps[i] counts decode steps that advanced i+1 sequences
	// together (the batch occupancy histogram).
	BatchSteps []uint64
	// TTFTSum / TTFTCount is the mean time from queueing to first token.
	TTFTSum   time.Duration
	TTFTCount uint64
}

// Stats returns the counters now.
func (m *Model) Stats() Stats {
	m.s.mu.Lock()
	defer m.s.mu.Unlock()
	st := m.s.stats
	st.BatchSteps = append([]uint64(nil), st.BatchSteps...)
	return st
}
