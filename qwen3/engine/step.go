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
// whose logits (those of the last token, at position pos) are in row 0.
func (e *Engine) run(slot int, tokens []int, read func(r *gpu.Recorder, pos int)) error {
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
		read(r, e.pos[slot])
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
			read(r, e.pos[slot]+len(part)-1)
		}
		if err := e.submit(r, fmt.Sprintf("prefill of %d tokens at position %d", len(part), e.pos[slot])); err != nil {
			return err
		}
		e.pos[slot] += len(part)
	}
	return nil
}

// Feed appends tokens to slot 0 and returns the logits of the last: FeedRead
// of the whole row, for callers that compare logits (validate, tests).
func (e *Engine) Feed(tokens []int) ([]float32, error) {
	row, err := e.FeedRead(0, tokens, WantLogits, 0)
	if err == nil {
		err = row.Err
	}
	return row.Logits, err
}
