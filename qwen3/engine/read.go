package engine

import (
	"fmt"
	"math"
	"slices"

	"github.com/qwgpu/qwgpu/gpu"
	"github.com/qwgpu/qwgpu/gpu/kernels"
)

// Want is what a step reads back of one row's next-token logits: as
// little as its sampler needs, since a whole row is vocab_size floats
// (0.6 MB for Qwen3) to copy, convert and scan on the host.
type Want uint8

const (
	// WantID reads the most likely token's id only (greedy decoding).
	WantID Want = iota
	// WantTopK reads the k largest logits and their ids, computed on the
	// GPU (a top-k sampler with top_k ≤ k draws from them exactly).
	WantTopK
	// WantLogits reads the whole row.
	WantLogits
)

// Candidate is one of a row's most likely next tokens.
type Candidate struct {
	ID    int
	Logit float32
}

// Row is what a step read back for one row. ID, the argmax, is always
// there; TopK (best first: larger logit, then lower id) and Logits are
// there when asked for. Err is set, and nothing else is, when the row's
// logits held NaN or infinities (the argmax and top-k kernels flag them,
// so every kind of read checks).
type Row struct {
	ID     int
	TopK   []Candidate
	Logits []float32
	Err    error
}

// FeedRead appends tokens to a slot and reads what want asks of the last
// one's logits (k: the candidates of WantTopK, 1 to kernels.MaxTopK).
func (e *Engine) FeedRead(slot int, tokens []int, want Want, k int) (Row, error) {
	var read func() []Row
	if err := e.checkWant([]Want{want}, k); err != nil {
		return Row{}, err
	}
	if err := e.run(slot, tokens, func(r *gpu.Recorder, pos int) { read = e.recordReads(r, []Want{want}, k, []int{pos}) }); err != nil {
		return Row{}, err
	}
	return read()[0], nil
}

// DecodeRead feeds one token to each of several distinct slots in one
// step (a batched decode: each weight is read once for all of them) and
// reads back what want asks of each row (k as for FeedRead): DecodeStart
// and Wait.
func (e *Engine) DecodeRead(slots, tokens []int, want []Want, k int) ([]Row, error) {
	if tokens == nil {
		return nil, fmt.Errorf("decode of %d slots without tokens", len(slots))
	}
	p, err := e.DecodeStart(slots, tokens, want, k)
	if err != nil {
		return nil, err
	}
	return p.Wait()
}

func (e *Engine) checkWant(want []Want, k int) error {
	for _, w := range want {
		switch w {
		case WantID, WantLogits:
		case WantTopK:
			if k < 1 || k > kernels.MaxTopK {
				return fmt.Errorf("top-k read of %d candidates: want 1 to %d", k, kernels.MaxTopK)
			}
		default:
			return fmt.Errorf("unknown read %d", w)
		}
	}
	return nil
}

// recordReads appends to a step, after its graph, the top-k pass when a
// row wants it and the readbacks; the function it returns decodes them
// once the step has run (pos: each row's position, for the error of a row
// whose logits are not finite).
func (e *Engine) recordReads(r *gpu.Recorder, want []Want, k int, pos []int) func() []Row {
	n, V := len(want), e.cfg.VocabSize
	// The pass ranks a multiple of topkStep candidates, so that requests
	// asking for any top-k share a few passes (they are made per rows and
	// k, and kept); the first k are the answer.
	kPass := min(kernels.MaxTopK, (k+topkStep-1)/topkStep*topkStep)
	ids := r.Read(e.a.next, 0, uint64(4*n))
	var topk *gpu.Readback
	var topkErr error
	logits := make([]*gpu.Readback, n)
	for i, w := range want {
		switch w {
		case WantTopK:
			if topk != nil || topkErr != nil {
				continue
			}
			var ops []*gpu.Op
			if ops, topkErr = e.topkOps(n, kPass); topkErr == nil {
				r.Run(ops...)
				topk = r.Read(e.topkOut, 0, kernels.TopKBytes(n, kPass))
			}
		case WantLogits:
			logits[i] = r.Read(e.a.logits, uint64(i*V)*4, uint64(V)*4)
		}
	}
	return func() []Row {
		out := make([]Row, n)
		var pairs []uint32
		if topk != nil {
			pairs = topk.U32()
		}
		for i, v := range ids.U32() {
			row := &out[i]
			if v&kernels.NonFinite != 0 {
				row.Err = NonFiniteLogits(pos[i])
				continue
			}
			row.ID = int(v)
			switch want[i] {
			case WantTopK:
				if topkErr != nil {
					row.Err = topkErr
					continue
				}
				for j := range k {
					bits, id := pairs[2*(i*kPass+j)], pairs[2*(i*kPass+j)+1]
					if id == kernels.NoCandidate {
						break
					}
					if id&kernels.NonFinite != 0 {
						row.Err = NonFiniteLogits(pos[i])
						break
					}
					row.TopK = append(row.TopK, Candidate{ID: int(id), Logit: math.Float32frombits(bits)})
				}
			case WantLogits:
				row.Logits = logits[i].F32()
			}
		}
		return out
	}
}

// topkStep rounds the candidates a top-k pass ranks.
const topkStep = 16

// NonFiniteLogits is a row's error when its logits at position pos hold
// NaN or infinities (the argmax and top-k kernels flag them).
func NonFiniteLogits(pos int) error {
	return fmt.Errorf("the logits at position %d are not finite (NaN or ±Inf): the weights or the config give values float32 cannot hold", pos)
}

// topkOps returns the top-k pass over the first rows rows of logits,
// making it (and the buffer it writes) on first use.
func (e *Engine) topkOps(rows, k int) ([]*gpu.Op, error) {
	key := [2]int{rows, k}
	if ops := e.topk[key]; ops != nil {
		return ops, nil
	}
	if e.topkOut == nil {
		b, err := e.scope.Buffer("top-k", kernels.TopKBytes(len(e.pos), kernels.MaxTopK))
		if err != nil {
			return nil, err
		}
		e.topkOut = b
	}
	ops, err := kernels.NewTopK(e.scope, kernels.TopK{Out: e.topkOut, X: e.a.logits, N: e.cfg.VocabSize, Rows: rows, K: k,
		Label: fmt.Sprintf("top-%d of %d rows", k, rows)})
	if err != nil {
		return nil, err
	}
	if e.topk == nil {
		e.topk = map[[2]int][]*gpu.Op{}
	}
	e.topk[key] = ops
	return ops, nil
}

// PendingDecode is a decode step submitted and not yet waited for.
type PendingDecode struct {
	e    *Engine
	r    *gpu.Recorder
	p    *gpu.Pending
	rows int
	read func() []Row
}

// DecodeStart submits a decode step (one token to each of several distinct
// slots) and returns without waiting, so that the host can submit the next
// step while the GPU runs this one. tokens nil chains the step: each row
// is fed the argmax of the same row of the step submitted just before,
// which must have been a DecodeStart of the same slots in the same order:
// greedy decoding with the host off the critical path, step k+1 submitted
// before step k's tokens are read back. Each slot advances at once; Wait
// gives the rows.
func (e *Engine) DecodeStart(slots, tokens []int, want []Want, k int) (*PendingDecode, error) {
	n := len(slots)
	if len(want) != n || n == 0 || n > len(e.pos) || (tokens != nil && len(tokens) != n) {
		return nil, fmt.Errorf("decode of %d slots with %d tokens and %d reads (at most %d slots)", n, len(tokens), len(want), len(e.pos))
	}
	if err := e.checkWant(want, k); err != nil {
		return nil, err
	}
	chained := tokens == nil
	if chained && !slices.Equal(e.chainable, slots) {
		return nil, fmt.Errorf("a chained decode step of slots %v after a step of slots %v: only the argmax of the same rows can feed it", slots, e.chainable)
	}
	rows := make([]kernels.StepRow, n)
	seen := map[int]bool{}
	for i, s := range slots {
		t := 0 // a chained row's token is checked by the argmax that made it
		if !chained {
			t = tokens[i]
		}
		if err := e.checkTokens(s, []int{t}); err != nil {
			return nil, err
		}
		if seen[s] {
			return nil, fmt.Errorf("slot %d twice in one step", s)
		}
		seen[s] = true
		rows[i] = kernels.StepRow{Slot: s, Pos: e.pos[s]}
	}
	g, err := e.decodeGraph(n)
	if err != nil {
		return nil, err
	}
	r, err := e.begin(rows, tokens)
	if err != nil {
		return nil, err
	}
	g.record(r, chained)
	pos := make([]int, n) // each row's position, before the step advances it
	for i, s := range slots {
		pos[i] = e.pos[s]
	}
	read := e.recordReads(r, want, k, pos)
	p, err := r.Start()
	if err != nil {
		e.chainable = nil
		return nil, fmt.Errorf("decode step of %d sequences: %w", n, err)
	}
	for _, s := range slots {
		e.pos[s]++
	}
	e.chainable = slices.Clone(slots)
	return &PendingDecode{e: e, r: r, p: p, rows: n, read: read}, nil
}

// Wait waits for the step and returns its rows, as DecodeRead does.
func (p *PendingDecode) Wait() ([]Row, error) {
	if err := p.p.Wait(); err != nil {
		return nil, fmt.Errorf("decode step of %d sequences: %w", p.rows, err)
	}
	if p.e.dev.Profiling() {
		p.e.timings = append(p.e.timings, p.r.Timings()...)
	}
	return p.read(), nil
}
