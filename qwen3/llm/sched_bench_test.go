package llm

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/qwgpu/qwgpu/qwen3/engine"
)

// BenchmarkSchedulerDecode drives the scheduler with clients concurrent
// greedy requests on the built-in model (lavapipe here): for profiling the
// host side of a step (go test -bench SchedulerDecode -cpuprofile).
func BenchmarkSchedulerDecode(b *testing.B) {
	const clients, tokens = 8, 24
	m := openTest(b, Options{Parallel: clients})
	ps := prompts(clients)
	benchClients(b, clients, tokens, func(i int) error {
		_, err := m.Generate(context.Background(), ps[i], raw(greedy(tokens)), nil)
		return err
	})
}

// benchClients runs b.N rounds of clients requests of tokens tokens each
// at once (request i by gen(i)), reports the tokens a second and returns
// the time of the rounds.
func benchClients(b *testing.B, clients, tokens int, gen func(i int) error) time.Duration {
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		var wg sync.WaitGroup
		for i := range clients {
			wg.Go(func() {
				if err := gen(i); err != nil {
					b.Error(err)
				}
			})
		}
		wg.Wait()
	}
	el := time.Since(start)
	b.ReportMetric(float64(b.N*clients*tokens)/el.Seconds(), "tok/s")
	return el
}

// useHostOnly gives a fresh Model a scheduler, not yet running, on h in
// front of its backend, with a position for each of its slots.
func useHostOnly(m *Model, h *hostOnly) *hostOnly {
	replaceBackend(m, func(old backend) backend {
		h.backend, h.pos = old, make([]int, m.info.Parallel)
		return h
	})
	return h
}

// hostOnly is a backend whose steps cost no device time: every row reads
// the same ordinary token, so that the scheduler driven through it spends
// only its own host work a step (drawing, events, bookkeeping).
type hostOnly struct {
	backend // Config and Context from the model it replaces
	mu      sync.Mutex
	pos     []int
	// steps and rows of the decode steps, chained: those fed the
	// previous step's argmax on the device, feeds: the prefills
	steps, rows, chained, feeds int
	// log records each call: "f<n>" a prefill of n tokens, "d<n>" a
	// decode step of n rows
	log []string
	// With timed set, the steps take device time on a timeline of their
	// own (one step at a time, in submission order), modelled on the
	// H200's 0.6B figures of run 16: a decode step stepBase + stepRow a
	// row, a prefill feedTime, each unchained step hostTime of recording
	// first (the host's share that chaining hides). Not a GPU measurement:
	// a model to compare scheduling policies by.
	timed                                       bool
	stepBase, stepRow, feedTime, hostTime, free time.Duration
	now                                         func() time.Duration
}

// occupy puts a step of d on the device timeline and returns when it ends.
func (h *hostOnly) occupy(d time.Duration) time.Duration {
	start := max(h.now(), h.free)
	h.free = start + d
	return h.free
}

type donePending struct {
	rows []engine.Row
	h    *hostOnly
	end  time.Duration
}

func (d donePending) Wait() ([]engine.Row, error) {
	if d.h != nil && d.h.timed {
		time.Sleep(d.end - d.h.now())
	}
	return d.rows, nil
}

// hostToken is an ordinary token of Qwen3's vocabulary (not a stop token).
const hostToken = 1000

func (h *hostOnly) SlotLen(slot int) int { h.mu.Lock(); defer h.mu.Unlock(); return h.pos[slot] }

func (h *hostOnly) Truncate(slot, n int) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.pos[slot] = n
	return nil
}

func (h *hostOnly) FeedRead(slot int, tokens []int, want engine.Want, k int) (engine.Row, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.pos[slot] += len(tokens)
	h.feeds++
	h.log = append(h.log, fmt.Sprintf("f%d", len(tokens)))
	if h.timed {
		end := h.occupy(h.feedTime)
		h.mu.Unlock()
		time.Sleep(end - h.now())
		h.mu.Lock()
	}
	return engine.Row{ID: hostToken}, nil
}

func (h *hostOnly) DecodeStart(slots, tokens []int, want []engine.Want, k int) (pendingStep, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	p := donePending{rows: make([]engine.Row, len(slots)), h: h}
	h.steps, h.rows = h.steps+1, h.rows+len(slots)
	h.log = append(h.log, fmt.Sprintf("d%d", len(slots)))
	if tokens == nil {
		h.chained++
	} else if h.timed {
		time.Sleep(h.hostTime)
	}
	for i, s := range slots {
		h.pos[s]++
		p.rows[i] = engine.Row{ID: hostToken}
	}
	if h.timed {
		p.end = h.occupy(h.stepBase + time.Duration(len(slots))*h.stepRow)
	}
	return p, nil
}

// BenchmarkSchedulerHostOnly measures the scheduler's host time a decode
// step of 16 greedy sequences, the GPU's part taken away (hostOnly): run
// 16 on the H200 found the server's loop at 0.6B 37% below the chained
// bench (2,537 against 4,004 tok/s, whose GPU step is ~4 ms); a host time
// a step near that would explain it.
func BenchmarkSchedulerHostOnly(b *testing.B) {
	benchScheduler(b, &hostOnly{})
}

// BenchmarkSchedulerModelled runs the same requests on hostOnly's model
// of the H200's 0.6B step times: what a scheduling policy gives the
// server's 16 streams (steps a run, rows a step, chained steps) when the
// device, not the host, takes the time. The engine's chained bench (16
// rows in every step, all chained) is the bound: 128 steps of 4 ms.
func BenchmarkSchedulerModelled(b *testing.B) {
	t0 := time.Now()
	benchScheduler(b, &hostOnly{timed: true, stepBase: 900 * time.Microsecond, stepRow: 195 * time.Microsecond,
		feedTime: 2 * time.Millisecond, hostTime: 1700 * time.Microsecond, now: func() time.Duration { return time.Since(t0) }})
}

func benchScheduler(b *testing.B, h *hostOnly) {
	const clients, tokens = 16, 128
	m := openTest(b, Options{Parallel: clients})
	useHostOnly(m, h)
	go m.s.run()
	el := benchClients(b, clients, tokens, func(i int) error {
		res, err := m.GenerateTokens(context.Background(), []int{500 + i, 2, 3, 4, 5, 6, 7, 8}, greedy(tokens), nil)
		if err == nil && res.CompletionTokens != tokens {
			err = fmt.Errorf("%d of %d tokens (%s)", res.CompletionTokens, tokens, res.FinishReason)
		}
		return err
	})
	b.ReportMetric(float64(el.Microseconds())/float64(h.steps), "µs/step")
	b.ReportMetric(float64(h.steps)/float64(b.N), "steps/op")
	b.ReportMetric(float64(h.rows)/float64(h.steps), "rows/step")
	b.ReportMetric(float64(h.chained)/float64(h.steps), "chained/step")
}
