package llm

import "sync"

// events carries one request's Tokens from the scheduler goroutine to the
// goroutine that made the request, without ever blocking the scheduler:
// a slow consumer (a client on a slow network) must not stall the batch.
type events struct {
	mu   sync.Mutex
	toks []Token
	done bool
	res  *Result
	err  error
	// The prompt's prefill progress, and whether it changed since read.
	fed, promptLen int
	fedChanged     bool
	signal         chan struct{} // one pending wake-up at most
}

func newEvents() *events { return &events{signal: make(chan struct{}, 1)} }

func (e *events) wake() {
	select {
	case e.signal <- struct{}{}:
	default:
	}
}

func (e *events) push(t Token) {
	e.mu.Lock()
	e.toks = append(e.toks, t)
	e.mu.Unlock()
	e.wake()
}

func (e *events) finish(res *Result, err error) {
	e.mu.Lock()
	e.done, e.res, e.err = true, res, err
	e.mu.Unlock()
	e.wake()
}

// take returns the Tokens so far and, once the request is over, its
// outcome (every Token pushed before finish is in the same or an earlier
// take).
func (e *events) take() (toks []Token, done bool, res *Result, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	toks, e.toks = e.toks, nil
	return toks, e.done, e.res, e.err
}

// prefilled records that done of the prompt's total tokens are in the
// KV cache.
func (e *events) prefilled(done, total int) {
	e.mu.Lock()
	if e.fed == done && e.promptLen == total {
		e.mu.Unlock()
		return // said already (after one chunk, before the next)
	}
	e.fed, e.promptLen, e.fedChanged = done, total, true
	e.mu.Unlock()
	e.wake()
}

// prefill returns the latest prefill progress if it changed since the
// last call.
func (e *events) prefill() (done, total int, changed bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	changed, e.fedChanged = e.fedChanged, false
	return e.fed, e.promptLen, changed
}
