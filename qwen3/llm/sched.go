package llm

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/qwgpu/qwgpu/gpu/kernels"
	"github.com/qwgpu/qwgpu/qwen3/engine"
	"github.com/qwgpu/qwgpu/qwen3/sample"
)

// prefillChunk is the most prompt tokens fed in one step: a long prompt is
// fed in chunks with the other sequences' decode steps between them, and
// its cancellation is seen between chunks.
const prefillChunk = engine.DefaultChunk

// request is one generation as the scheduler sees it. Everything the
// scheduler writes is read by the requester only after events.finish.
type request struct {
	ctx       context.Context
	prompt    []int
	params    sample.Params // penalties on the prompt and output (repetition)
	presence  float64       // OpenAI's, on the output tokens only
	frequency float64
	maxTokens int
	eos       []int
	out       *textOut
	ev        *events
	queued    time.Time
}

// sequence is a request holding a slot.
type sequence struct {
	req      *request
	slot     int
	feed     []int // prompt tokens still to prefill
	pending  int   // the token drawn and not fed yet; -1 while prefilling
	seen     []int // prompt and output, for the repetition penalty
	counts   map[int]int
	sampler  *sample.Sampler
	want     engine.Want // what a step reads back for this sequence (readFor)
	res      Result
	started  time.Time // admitted
	first    time.Time // first token drawn
	finished bool
}

// slotState is what a KV cache slot holds and who uses it.
type slotState struct {
	history []int // the tokens in the cache, in order
	seq     *sequence
	used    uint64 // when last admitted (a counter), for LRU reuse
}

// ErrQueueFull is returned, as a *QueueFullError, for a request that
// finds Options.MaxQueue requests already waiting for a slot: a server
// answers it with 429 and the client retries later, instead of waiting
// behind a queue that would outlast its timeout.
var ErrQueueFull = errors.New("llm: the queue is full")

// QueueFullError is ErrQueueFull with what a client needs to retry.
type QueueFullError struct {
	Queued int // requests waiting for a slot
	// RetryAfter estimates when a slot frees up for it: the requests
	// ahead, spread over the slots, times the mean time a request has
	// held a slot (at least a second).
	RetryAfter time.Duration
}

func (e *QueueFullError) Error() string {
	return fmt.Sprintf("the server is busy: %d requests are waiting for a slot; retry in %v", e.Queued, e.RetryAfter)
}

func (e *QueueFullError) Is(target error) bool { return target == ErrQueueFull }

type scheduler struct {
	b        backend
	ctxLen   int
	vocab    int
	maxQueue int // 0: no bound

	mu     sync.Mutex
	queue  []*request
	closed bool
	stats  Stats
	// held sums the time finished requests held a slot, for RetryAfter.
	held      time.Duration
	heldCount int
	wake      chan struct{}
	done      chan struct{}

	// Owned by the scheduler goroutine.
	slots []slotState
	clock uint64
	// afterChunk, when set (tests), runs after each prefill chunk.
	afterChunk func(slot, fed int)
	// wholeRows (tests) reads every row whole: the reference that the
	// smaller reads must match token for token.
	wholeRows bool
}

func newScheduler(b backend, slots, ctxLen int) *scheduler {
	s := &scheduler{b: b, ctxLen: ctxLen, vocab: b.Config().VocabSize, slots: make([]slotState, slots),
		wake: make(chan struct{}, 1), done: make(chan struct{})}
	s.stats.Parallel = slots
	s.stats.BatchSteps = make([]uint64, slots)
	return s
}

// submit queues a request.
func (s *scheduler) submit(r *request) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if s.maxQueue > 0 && len(s.queue) >= s.maxQueue {
		return &QueueFullError{Queued: len(s.queue), RetryAfter: s.retryAfter()}
	}
	r.queued = time.Now()
	s.queue = append(s.queue, r)
	s.stats.Requests++
	s.stats.Queued = len(s.queue)
	s.poke()
	return nil
}

// retryAfter estimates when a request queued now would get a slot.
func (s *scheduler) retryAfter() time.Duration {
	wait := time.Second
	if s.heldCount > 0 {
		mean := s.held / time.Duration(s.heldCount)
		wait = max(wait, mean*time.Duration(len(s.queue)+1)/time.Duration(len(s.slots)))
	}
	return wait.Round(time.Second)
}

func (s *scheduler) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// stop ends the scheduler and waits for it: every request still running
// or queued ends with ErrClosed.
func (s *scheduler) stop() {
	s.mu.Lock()
	s.closed = true
	s.poke()
	s.mu.Unlock()
	<-s.done
}

func (s *scheduler) run() {
	defer close(s.done)
	for {
		s.mu.Lock()
		closed := s.closed
		s.mu.Unlock()
		if closed {
			s.shutdown()
			return
		}
		s.admit()
		if s.active() == 0 {
			<-s.wake
			continue
		}
		// Prompt chunks, oldest sequence first, until a chunk's worth of
		// tokens is fed: requests with short prompts that arrive together
		// all start decoding in the next step (so that they decode in full,
		// chained steps and end together: run 16 on the H200 found the
		// server's 16 streams at 2,537 tok/s, one prefill between steps,
		// against 4,004 for 16 rows in every step), while a long prompt
		// still takes one chunk between two decode steps.
		for fed := 0; fed < prefillChunk; {
			n := s.prefillStep()
			if n == 0 {
				break
			}
			fed += n
		}
		s.decodeStep()
	}
}

func (s *scheduler) active() int {
	n := 0
	for _, sl := range s.slots {
		if sl.seq != nil {
			n++
		}
	}
	return n
}

func (s *scheduler) shutdown() {
	for i := range s.slots {
		if q := s.slots[i].seq; q != nil {
			s.finish(q, "cancelled", ErrClosed)
		}
	}
	s.mu.Lock()
	queue := s.queue
	s.queue = nil
	s.stats.Queued = 0
	s.mu.Unlock()
	for _, r := range queue {
		r.ev.finish(&Result{FinishReason: "cancelled"}, ErrClosed)
	}
}

// admit moves queued requests into free slots, the slot chosen for the
// longest cached prefix of the prompt; requests cancelled while queued
// leave the queue.
func (s *scheduler) admit() {
	s.mu.Lock()
	defer s.mu.Unlock()
	kept := s.queue[:0]
	for _, r := range s.queue {
		if err := r.ctx.Err(); err != nil {
			r.ev.finish(&Result{PromptTokens: len(r.prompt), FinishReason: "cancelled"}, err)
			continue
		}
		slot, common := s.pick(r.prompt)
		if slot < 0 {
			kept = append(kept, r)
			continue
		}
		s.start(r, slot, common)
	}
	clear(s.queue[len(kept):])
	s.queue = kept
	s.stats.Queued = len(kept)
	s.stats.Active = s.active()
}

// pick chooses a free slot for a prompt: the one sharing its longest
// prefix, else the least recently used (keeping the others' caches for
// longer). It returns -1 when every slot is busy.
func (s *scheduler) pick(prompt []int) (slot, common int) {
	slot = -1
	for i := range s.slots {
		sl := &s.slots[i]
		if sl.seq != nil {
			continue
		}
		n := commonPrefix(sl.history, prompt)
		if slot < 0 || n > common || (n == common && sl.used < s.slots[slot].used) {
			slot, common = i, n
		}
	}
	return slot, common
}

func commonPrefix(a, b []int) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}

// start gives a request its slot: the cache keeps the common prefix (at
// most all but the prompt's last token, whose logits are needed).
func (s *scheduler) start(r *request, slot, common int) {
	keep := min(common, len(r.prompt)-1)
	sl := &s.slots[slot]
	if err := s.b.Truncate(slot, keep); err != nil {
		// The history and the cache disagree: start the slot afresh.
		keep = 0
		_ = s.b.Truncate(slot, 0)
	}
	sl.history = sl.history[:keep]
	s.clock++
	sl.used = s.clock
	q := &sequence{req: r, slot: slot, feed: r.prompt[keep:], pending: -1, seen: slices.Clone(r.prompt),
		counts: map[int]int{}, sampler: sample.New(r.params), want: s.readFor(r), started: time.Now()}
	q.res.PromptTokens, q.res.CachedTokens, q.res.Seed = len(r.prompt), keep, r.params.Seed
	sl.seq = q
	s.stats.PromptTokens += uint64(len(r.prompt))
	s.stats.CachedTokens += uint64(keep)
}

// prefillStep feeds one chunk of the prompt of the sequence admitted
// first among those still prefilling, and returns its tokens (0: none fed).
func (s *scheduler) prefillStep() int {
	var q *sequence
	for i := range s.slots {
		if c := s.slots[i].seq; c != nil && c.pending < 0 && (q == nil || c.started.Before(q.started)) {
			q = c
		}
	}
	if q == nil {
		return 0
	}
	if err := q.req.ctx.Err(); err != nil {
		s.finish(q, "cancelled", err)
		return 0
	}
	part := q.feed[:min(prefillChunk, len(q.feed))]
	want, k := engine.WantID, 0 // nothing is drawn after a chunk that is not the last
	if len(part) == len(q.feed) {
		want, k = q.want, q.req.params.TopK
	}
	row, err := s.b.FeedRead(q.slot, part, want, k)
	if err != nil {
		s.fail(q, err)
		return 0
	}
	sl := &s.slots[q.slot]
	sl.history = append(sl.history, part...)
	q.feed = q.feed[len(part):]
	if s.afterChunk != nil {
		s.afterChunk(q.slot, len(sl.history))
	}
	if len(q.feed) > 0 {
		return len(part)
	}
	q.first = time.Now()
	q.res.PrefillTime = q.first.Sub(q.started)
	s.mu.Lock()
	s.stats.TTFTSum += q.first.Sub(q.req.queued)
	s.stats.TTFTCount++
	s.mu.Unlock()
	s.draw(q, row)
	return len(part)
}

// decodeStep feeds every decoding sequence its pending token in one
// batched step and draws each one's next token from its row. While the
// batch can chain (canChain: every row greedy, so that the token it will
// draw is the argmax the GPU already holds), the next step is submitted
// before this one is read, so that the GPU does not wait for the host
// between steps; the tokens are the same as step by step.
func (s *scheduler) decodeStep() {
	var batch []*sequence
	var slots, tokens []int
	var want []engine.Want
	k := 0 // the most candidates a top-k row asks for
	for i := range s.slots {
		q := s.slots[i].seq
		if q == nil || q.pending < 0 {
			continue
		}
		if err := q.req.ctx.Err(); err != nil {
			s.finish(q, "cancelled", err)
			continue
		}
		batch = append(batch, q)
		slots, tokens, want = append(slots, q.slot), append(tokens, q.pending), append(want, q.want)
		if q.want == engine.WantTopK {
			k = max(k, q.req.params.TopK)
		}
	}
	if len(batch) == 0 {
		return
	}
	step, err := s.b.DecodeStart(slots, tokens, want, k)
	for err == nil {
		var next pendingStep
		if s.canChain(batch) {
			// Not chaining is always correct: a failure to start here
			// shows again, and is reported, when the step is made unchained.
			if next, err = s.b.DecodeStart(slots, nil, want, k); err != nil {
				next = nil
			}
		}
		var rows []engine.Row
		if rows, err = step.Wait(); err != nil {
			if next != nil {
				_, _ = next.Wait() // the slots are failed below
			}
			break
		}
		s.countStep(len(batch))
		s.drawRows(batch, rows)
		if next == nil {
			return
		}
		if s.goesOn(batch) {
			step = next
			continue
		}
		// Some sequences ended: the step in flight fed the others the
		// tokens just drawn, and computed one position past the history
		// of the rest, which their slots forget.
		rows, err = next.Wait()
		s.countStep(len(batch))
		for i, q := range batch {
			if s.slots[q.slot].seq == q && q.pending >= 0 {
				if err == nil {
					s.drawRows([]*sequence{q}, rows[i:i+1])
				}
				continue
			}
			if terr := s.b.Truncate(q.slot, len(s.slots[q.slot].history)); terr != nil {
				s.slots[q.slot].history = nil
				_ = s.b.Truncate(q.slot, 0)
			}
		}
		if err == nil {
			return
		}
		break
	}
	for _, q := range batch {
		if s.slots[q.slot].seq == q {
			s.fail(q, err)
		}
	}
}

// countStep counts a decode step of n sequences (the occupancy histogram).
func (s *scheduler) countStep(n int) {
	s.mu.Lock()
	s.stats.BatchSteps[n-1]++
	s.mu.Unlock()
}

// drawRows records that each sequence's pending token was fed and draws
// its next one from its row.
func (s *scheduler) drawRows(batch []*sequence, rows []engine.Row) {
	for i, q := range batch {
		sl := &s.slots[q.slot]
		sl.history = append(sl.history, q.pending)
		q.pending = -1
		s.draw(q, rows[i])
	}
}

// canChain reports whether the step after the one in flight can be
// submitted before reading it: every row is greedy (WantID: the token it
// draws is the argmax the chained step is fed), every slot has room for
// one more position, no row ends at this step by its token budget (the
// chained step would be waste), and nothing waits for the scheduler: no
// prompt being prefilled, no request that a free slot could take, no
// Close.
func (s *scheduler) canChain(batch []*sequence) bool {
	for _, q := range batch {
		r := q.req
		if q.want != engine.WantID || s.b.SlotLen(q.slot)+1 > s.ctxLen ||
			(r.maxTokens > 0 && q.res.CompletionTokens+1 >= r.maxTokens) {
			return false
		}
	}
	free := 0
	for _, sl := range s.slots {
		switch {
		case sl.seq == nil:
			free++
		case sl.seq.pending < 0 && !slices.Contains(batch, sl.seq):
			return false // prefilling
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.closed && (free == 0 || len(s.queue) == 0)
}

// goesOn reports whether every sequence of the batch is still decoding
// after its draw and not cancelled (a cancelled one ends here).
func (s *scheduler) goesOn(batch []*sequence) bool {
	all := true
	for _, q := range batch {
		if s.slots[q.slot].seq != q || q.pending < 0 {
			all = false
			continue
		}
		if err := q.req.ctx.Err(); err != nil {
			s.finish(q, "cancelled", err)
			all = false
		}
	}
	return all
}

// readFor chooses what a step reads back for a request's next token: as
// little as its sampler needs to draw exactly the token it would draw
// from the whole row.
func (s *scheduler) readFor(r *request) engine.Want {
	switch {
	case s.wholeRows:
		return engine.WantLogits
	case r.presence != 0 || r.frequency != 0 || r.params.Penalised():
		// Penalties change the logits of tokens already seen, which may
		// lie outside any set of candidates computed before them: only
		// the whole row gives the exact distribution.
		return engine.WantLogits
	case r.params.Greedy():
		return engine.WantID // the GPU's argmax: the lowest id on a tie, as the sampler's
	case r.params.TopKSuffices(kernels.MaxTopK, s.vocab):
		return engine.WantTopK
	}
	// Top-k off (or above what the kernel returns): top-p and min-p need
	// every token's probability.
	return engine.WantLogits
}

// draw picks a sequence's next token from what its step read back and
// hands it on.
func (s *scheduler) draw(q *sequence, row engine.Row) {
	if row.Err != nil {
		// The argmax and top-k kernels flag non-finite logits; every read
		// checks them.
		s.fail(q, row.Err)
		return
	}
	r := q.req
	var id int
	var err error
	switch q.want {
	case engine.WantID:
		id = row.ID
	case engine.WantTopK:
		ids, logits := make([]int, len(row.TopK)), make([]float32, len(row.TopK))
		for i, c := range row.TopK {
			ids[i], logits[i] = c.ID, c.Logit
		}
		id, err = q.sampler.SampleTopK(ids, logits)
	default:
		logits := row.Logits
		pos := len(s.slots[q.slot].history) - 1
		for id, v := range logits {
			if f := float64(v); math.IsNaN(f) || math.IsInf(f, 0) {
				s.fail(q, fmt.Errorf("the model's logits are not finite at position %d (token id %d is %v): the weights or the config make the computation overflow", pos, id, v))
				return
			}
		}
		if r.presence != 0 || r.frequency != 0 {
			for id, n := range q.counts {
				logits[id] -= float32(r.presence + r.frequency*float64(n))
			}
		}
		id, err = q.sampler.Sample(logits, q.seen)
	}
	if err != nil {
		s.fail(q, err)
		return
	}
	if slices.Contains(r.eos, id) {
		s.finish(q, "stop", nil)
		return
	}
	q.res.CompletionTokens++
	q.seen = append(q.seen, id)
	q.counts[id]++
	s.mu.Lock()
	s.stats.CompletionTokens++
	s.mu.Unlock()
	switch {
	case r.out.push(id):
		q.finished = true // by a stop string
		s.finish(q, "stop", nil)
	case r.maxTokens > 0 && q.res.CompletionTokens >= r.maxTokens:
		s.finish(q, "length", nil)
	// The history, not the backend's length: a chained step in flight
	// is already one position further.
	case len(s.slots[q.slot].history) >= s.ctxLen:
		s.finish(q, "length", nil)
	default:
		q.pending = id
	}
}

// fail ends a sequence on an error of the backend; the slot's cache is
// then not trusted.
func (s *scheduler) fail(q *sequence, err error) {
	s.slots[q.slot].history = nil
	_ = s.b.Truncate(q.slot, 0)
	s.finish(q, "error", err)
}

// finish ends a sequence and frees its slot.
func (s *scheduler) finish(q *sequence, reason string, err error) {
	q.req.out.finish(q.finished)
	o := q.req.out
	q.res.Text, q.res.Reasoning, q.res.ToolCalls = o.text.String(), o.reasoning.String(), o.calls
	if reason == "stop" && len(o.calls) > 0 {
		reason = "tool_calls"
	}
	q.res.FinishReason = reason
	if !q.first.IsZero() {
		q.res.DecodeTime = time.Since(q.first)
	} else {
		q.res.PrefillTime = time.Since(q.started)
	}
	s.slots[q.slot].seq = nil
	s.mu.Lock()
	s.held += time.Since(q.started)
	s.heldCount++
	s.stats.Active = s.active()
	switch reason {
	case "cancelled":
		s.stats.Cancelled++
	case "error":
		s.stats.Errors++
	}
	s.mu.Unlock()
	res := q.res
	q.req.ev.finish(&res, err)
}
