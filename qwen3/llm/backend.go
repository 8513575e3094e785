package llm

import (
	"cmp"
	"fmt"
	"math"
	"slices"

	"github.com/qwgpu/qwgpu/qwen3"
	"github.com/qwgpu/qwgpu/qwen3/engine"
)

// backend is what the scheduler drives: a KV cache of several slots and
// the two kinds of step. The GPU engine is one; the CPU reference, one
// cache per slot, is the other.
type backend interface {
	Config() qwen3.Config
	Context() int
	SlotLen(slot int) int
	Truncate(slot, n int) error
	// FeedRead appends tokens to a slot and reads what want asks of the
	// last one's logits (k candidates for engine.WantTopK).
	FeedRead(slot int, tokens []int, want engine.Want, k int) (engine.Row, error)
	// DecodeRead feeds one token to each of several distinct slots in one
	// step and reads what want asks of each row.
	DecodeRead(slots, tokens []int, want []engine.Want, k int) ([]engine.Row, error)
}

var _ backend = (*engine.Engine)(nil)

// cpuBackend runs the CPU reference model with one cache per slot; a
// "batched" step is one step per slot. It computes every row's logits and
// answers the reads from them on the host, as the GPU's argmax and top-k
// kernels do: the argmax's lowest id on a tie, the candidates ranked by
// logit then id, and NaN or infinities an error of the row.
type cpuBackend struct {
	model  *qwen3.Model
	caches []*qwen3.Cache
	ctx    int
}

func newCPUBackend(m *qwen3.Model, ctx, slots int) *cpuBackend {
	b := &cpuBackend{model: m, ctx: ctx}
	for range slots {
		b.caches = append(b.caches, m.NewCache(ctx))
	}
	return b
}

func (b *cpuBackend) Config() qwen3.Config { return b.model.Config }
func (b *cpuBackend) Context() int         { return b.ctx }
func (b *cpuBackend) SlotLen(slot int) int { return b.caches[slot].Len }

func (b *cpuBackend) Truncate(slot, n int) error {
	if slot < 0 || slot >= len(b.caches) {
		return fmt.Errorf("slot %d outside [0, %d)", slot, len(b.caches))
	}
	if n < 0 || n > b.caches[slot].Len {
		return fmt.Errorf("slot %d holds %d positions, cannot keep %d", slot, b.caches[slot].Len, n)
	}
	b.caches[slot].Len = n
	return nil
}

func (b *cpuBackend) FeedRead(slot int, tokens []int, want engine.Want, k int) (engine.Row, error) {
	o, err := b.model.Prefill(b.caches[slot], tokens, false)
	if err != nil {
		return engine.Row{}, err
	}
	return hostRead(o.LogitsAt(o.T-1), want, k, b.caches[slot].Len-1), nil
}

func (b *cpuBackend) DecodeRead(slots, tokens []int, want []engine.Want, k int) ([]engine.Row, error) {
	out := make([]engine.Row, len(slots))
	for i, s := range slots {
		r, err := b.FeedRead(s, tokens[i:i+1], want[i], k)
		if err != nil {
			return nil, err
		}
		out[i] = r
	}
	return out, nil
}

// hostRead answers a read from a whole row of logits.
func hostRead(logits []float32, want engine.Want, k, pos int) engine.Row {
	best := 0
	for id, v := range logits {
		if f := float64(v); math.IsNaN(f) || math.IsInf(f, 0) {
			return engine.Row{Err: fmt.Errorf("the logits at position %d are not finite (NaN or ±Inf): the weights or the config give values float32 cannot hold", pos)}
		}
		if v > logits[best] {
			best = id
		}
	}
	r := engine.Row{ID: best}
	switch want {
	case engine.WantTopK:
		ids := make([]int, len(logits))
		for i := range ids {
			ids[i] = i
		}
		slices.SortStableFunc(ids, func(a, b int) int { return cmp.Compare(logits[b], logits[a]) })
		for _, id := range ids[:min(k, len(ids))] {
			r.TopK = append(r.TopK, engine.Candidate{ID: id, Logit: logits[id]})
		}
	case engine.WantLogits:
		r.Logits = logits
	}
	return r
}
