package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// A long prompt is fed in one prefill before the first token appears: on
// a software adapter that can be minutes of silence. startPrefillNote
// shows the time spent so far on a terminal's stderr, from one second in,
// until stop is called (at the first token, or when generation fails).

// prefillNoteMin is the prompt length below which no note is shown.
const prefillNoteMin = 256

func startPrefillNote(tokens int) (stop func()) {
	return prefillNote(os.Stderr, isTerminal(os.Stderr), tokens, time.Second)
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
