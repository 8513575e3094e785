package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// A long prompt is fed before the first token appears: on a software
// adapter that can be minutes of silence. A note on a terminal's stderr
// shows the time spent so far, from one second in, until the prompt is in
// the KV cache (or generation ends).

// prefillNoteMin is the number of prompt tokens to compute below which no
// note is shown.
const prefillNoteMin = 256

// prefillProgress follows llm's OnPrefill reports: the first says how
// much of the prompt is to be computed (the rest was cached), the last
// that it all is.
type prefillProgress struct {
	w     io.Writer
	tty   bool
	every time.Duration
	end   func()
}

func newPrefillProgress() *prefillProgress {
	return &prefillProgress{w: os.Stderr, tty: isTerminal(os.Stderr), every: time.Second}
}

func (p *prefillProgress) update(done, total int) {
	if done == total {
		p.stop()
		return
	}
	if p.end == nil {
		p.end = prefillNote(p.w, p.tty, total-done, p.every)
	}
}

func (p *prefillProgress) stop() {
	if p.end != nil {
		p.end()
	}
}

func prefillNote(w io.Writer, tty bool, tokens int, every time.Duration) (stop func()) {
	if tokens < prefillNoteMin || !tty {
		return func() {}
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		start := time.Now()
		tick := time.NewTicker(every)
		defer tick.Stop()
		drawn := false
		for {
			select {
			case <-done:
				if drawn {
					fmt.Fprint(w, "\r\033[K")
				}
				return
			case <-tick.C:
				fmt.Fprintf(w, "\r\033[Kprefill of %d tokens: %.0f s", tokens, time.Since(start).Seconds())
				drawn = true
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			close(done)
			<-finished
		})
	}
}
