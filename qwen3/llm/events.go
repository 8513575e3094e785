package llm

import "sync"

// events carries one request's Tokens from the scheduler goroutine to the
// goroutine that made the request, without ever blocking the scheduler:
// a slow consumer (a client on a slow network) must not stall the batch.
type events struct {
	mu     sync.Mutex
	toks   []Token
	done   bool
	res    *Result
	err    error
	signal chan struct{} // one pending wake-up at most
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
