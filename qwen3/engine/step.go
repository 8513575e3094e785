package engine

import (
	"encoding/binary"
	"fmt"

	"github.com/qwgpu/qwgpu/gpu"
	"github.com/qwgpu/qwgpu/gpu/kernels"
)

// checkTokens refuses an unknown slot, ids outside the vocabulary and a
// cache overflow.
func (e *Engine) checkTokens(slot int, tokens []int) error {
	if slot < 0 || slot >= len(e.pos) {
		return fmt.Errorf("slot %d outside [0, %d)", slot, len(e.pos))
	}
	if len(tokens) == 0 {
		return fmt.Errorf("no tokens to feed")
	}
	if e.pos[slot]+len(tokens) > e.ctx {
		return fmt.Errorf("%d tokens after %d in the cache exceed the context of %d positions", len(tokens), e.pos[slot], e.ctx)
	}
	for _, id := range tokens {
		if id < 0 || id >= e.cfg.VocabSize {
			return fmt.Errorf("token id %d outside the vocabulary [0, %d)", id, e.cfg.VocabSize)
		}
	}
	return nil
}

// begin writes a step's uniform and token ids (tokens may be nil when they
// come from the previous step's argmax) and returns a recorder sized for it.
func (e *Engine) begin(rows []kernels.StepRow, tokens []int) (*gpu.Recorder, error) {
	e.chainable = nil // this step overwrites the argmax rows
	step, err := kernels.EncodeStep(rows)
	if err != nil {
		return nil, err
	}
	if err := e.dev.Write(e.a.step, 0, step); err != nil {
		return nil, err
	}
	if tokens != nil {
		ids := make([]byte, 4*len(tokens))
		for i, t := range tokens {
			binary.LittleEndian.PutUint32(ids[4*i:], uint32(t))
		}
		if err := e.dev.Write(e.a.tokens, 0, ids); err != nil {
			return nil, err
		}
	}
	return e.dev.NewRecorder(gpu.Extent{Rows: len(rows), Keys: kernels.Keys(rows)}), nil
}

// submit runs a recorded step and keeps its timings on a profiling device.
func (e *Engine) submit(r *gpu.Recorder, what string) error {
	if err := r.Submit(); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if e.dev.Profiling() {
		e.timings = append(e.timings, r.Timings()...)
	}
	return nil
}

// run feeds tokens to a slot, then reads what read asks of the final step,
// whose logits are in row 0.
func (e *Engine) run(slot int, tokens []int, read func(r *gpu.Recorder)) error {
	if err := e.checkTokens(slot, tokens); err != nil {
		return err
	}
	if len(tokens) == 1 {
		g, err := e.decodeGraph(1)
		if err != nil {
			return err
		}
		r, err := e.begin([]kernels.StepRow{{Slot: slot, Pos: e.pos[slot]}}, tokens)
		if err != nil {
			return err
		}
		g.record(r, false)
		read(r)
		if err := e.submit(r, fmt.Sprintf("decode step at position %d", e.pos[slot])); err != nil {
			return err
		}
		e.pos[slot]++
		return nil
	}
	for start := 0; start < len(tokens); start += e.chunk {
		part := tokens[start:min(start+e.chunk, len(tokens))]
		rows := make([]kernels.StepRow, len(part))
		for i := range rows {
			rows[i] = kernels.StepRow{Slot: slot, Pos: e.pos[slot] + i}
		}
		r, err := e.begin(rows, part)
		if err != nil {
			return err
		}
		e.prefill.record(r, false)
		if start+len(part) == len(tokens) {
			read(r)
		}
		if err := e.submit(r, fmt.Sprintf("prefill of %d tokens at position %d", len(part), e.pos[slot])); err != nil {
			return err
		}
		e.pos[slot] += len(part)
	}
	return nil
}

// readLogits reads rows of logits.
func (e *Engine) readLogits(r *gpu.Recorder, rows int) *gpu.Readback {
	return r.Read(e.a.logits, 0, uint64(rows*e.cfg.VocabSize)*4)
}

// token turns an argmax answer into a token id, refusing logits that held
// NaN or infinities (the argmax flags them) rather than returning a token
// picked from garbage.
func (e *Engine) token(v uint32, pos int) (int, error) {
	if v&kernels.NonFinite != 0 {
		return 0, fmt.Errorf("the logits at position %d are not finite (NaN or ±Inf): the weights or the config give values float32 cannot hold", pos)
	}
	return int(v), nil
}

// Feed appends tokens to slot 0 and returns the logits of the last.
func (e *Engine) Feed(tokens []int) ([]float32, error) { return e.FeedSlot(0, tokens) }

// FeedSlot appends tokens to a slot and returns the logits of the last.
func (e *Engine) FeedSlot(slot int, tokens []int) ([]float32, error) {
	var rb *gpu.Readback
	if err := e.run(slot, tokens, func(r *gpu.Recorder) { rb = e.readLogits(r, 1) }); err != nil {
		return nil, err
	}
	return rb.F32(), nil
}

// FeedArgmax appends tokens to slot 0 and returns the most likely next
// token, computed on the GPU: only its id is read back.
func (e *Engine) FeedArgmax(tokens []int) (int, error) {
	var rb *gpu.Readback
	if err := e.run(0, tokens, func(r *gpu.Recorder) { rb = r.Read(e.a.next, 0, 4) }); err != nil {
		return 0, err
	}
	return e.token(rb.U32()[0], e.pos[0]-1)
}

// Decode feeds one token to each of several slots in one step (a batched
// decode: each weight is read once for all of them) and returns each
// row's logits. Slots must be distinct.
func (e *Engine) Decode(slots, tokens []int) ([][]float32, error) {
	var rb *gpu.Readback
	n := len(slots)
	if err := e.decodeBatch(slots, tokens, func(r *gpu.Recorder) { rb = e.readLogits(r, n) }); err != nil {
		return nil, err
	}
	all, V := rb.F32(), e.cfg.VocabSize
	out := make([][]float32, n)
	for i := range out {
		out[i] = all[i*V : (i+1)*V]
	}
	return out, nil
}

// DecodeArgmax is Decode for greedy sequences: it returns each row's most
// likely next token, computed on the GPU, and reads back only the ids (a
// row of logits is vocab_size floats: 0.6 MB for Qwen3).
func (e *Engine) DecodeArgmax(slots, tokens []int) ([]int, error) {
	var rb *gpu.Readback
	n := len(slots)
	if err := e.decodeBatch(slots, tokens, func(r *gpu.Recorder) { rb = r.Read(e.a.next, 0, uint64(4*n)) }); err != nil {
		return nil, err
	}
	out := make([]int, n)
	for i, v := range rb.U32() {
		var err error
		if out[i], err = e.token(v, e.pos[slots[i]]-1); err != nil {
			return nil, fmt.Errorf("slot %d: %w", slots[i], err)
		}
	}
	return out, nil
}

// decodeBatch runs one batched decode step and advances each slot.
func (e *Engine) decodeBatch(slots, tokens []int, read func(r *gpu.Recorder)) error {
	if len(slots) != len(tokens) || len(slots) == 0 || len(slots) > len(e.pos) {
		return fmt.Errorf("decode of %d slots with %d tokens (at most %d slots)", len(slots), len(tokens), len(e.pos))
	}
	rows := make([]kernels.StepRow, len(slots))
	seen := map[int]bool{}
	for i, s := range slots {
		if err := e.checkTokens(s, tokens[i:i+1]); err != nil {
			return err
		}
		if seen[s] {
			return fmt.Errorf("slot %d twice in one step", s)
		}
		seen[s] = true
		rows[i] = kernels.StepRow{Slot: s, Pos: e.pos[s]}
	}
	g, err := e.decodeGraph(len(rows))
	if err != nil {
		return err
	}
	r, err := e.begin(rows, tokens)
	if err != nil {
		return err
	}
	g.record(r, false)
	read(r)
	if err := e.submit(r, fmt.Sprintf("decode step of %d sequences", len(rows))); err != nil {
		return err
	}
	for _, s := range slots {
		e.pos[s]++
	}
	return nil
}

// DecodeGreedy feeds token at slot 0's next position and then keeps
// feeding the model's own most likely token, handing each new token to
// yield until yield returns false or n tokens have been yielded. It is
// greedy decoding with the host off the critical path: each step takes
// its input token from the previous step's argmax on the GPU, and step
// k+1 is submitted before step k's token is read back, so the GPU does
// not wait for the host between tokens. Afterwards the cache holds token
// and every yielded token but the last (which is returned to the caller
// unfed, like any token drawn but not yet fed). One step may be computed
// past the point yield stops at; its cache row is simply overwritten
// later.
func (e *Engine) DecodeGreedy(token, n int, yield func(int) bool) error {
	if n <= 0 {
		return nil
	}
	if err := e.checkTokens(0, []int{token}); err != nil {
		return err
	}
	g, err := e.decodeGraph(1)
	if err != nil {
		return err
	}
	pos := e.pos[0]
	start := func(k int) (*gpu.Pending, *gpu.Readback, error) {
		var tokens []int
		if k == 0 {
			tokens = []int{token}
		}
		r, err := e.begin([]kernels.StepRow{{Slot: 0, Pos: pos + k}}, tokens)
		if err != nil {
			return nil, nil, err
		}
		g.record(r, k > 0)
		rb := r.Read(e.a.next, 0, 4)
		p, err := r.Start()
		if err != nil {
			return nil, nil, fmt.Errorf("decode step at position %d: %w", pos+k, err)
		}
		return p, rb, nil
	}
	pending, rb, err := start(0)
	if err != nil {
		return err
	}
	for k := 0; k < n; k++ {
		// Step k+1 feeds the token step k is computing; submit it now.
		var nextPending *gpu.Pending
		var nextRB *gpu.Readback
		if k+1 < n && pos+k+1 < e.ctx {
			if nextPending, nextRB, err = start(k + 1); err != nil {
				_ = pending.Wait()
				return err
			}
		}
		if err := pending.Wait(); err != nil {
			if nextPending != nil {
				_ = nextPending.Wait()
			}
			return fmt.Errorf("decode step at position %d: %w", pos+k, err)
		}
		e.pos[0] = pos + k + 1
		tok, err := e.token(rb.U32()[0], pos+k)
		if err != nil || !yield(tok) || nextPending == nil {
			if nextPending != nil {
				if werr := nextPending.Wait(); err == nil {
					err = werr
				}
			}
			return err
		}
		pending, rb = nextPending, nextRB
	}
	return nil
}
