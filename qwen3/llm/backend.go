package llm

import (
	"fmt"

	"github.com/qwgpu/qwgpu/qwen3"
	"github.com/qwgpu/qwgpu/qwen3/engine"
)

// backend is what the scheduler drives: a KV cache of several slots and
// the two kinds of step. The GPU engine is one; the CPU reference, one
// cache per slot, is the other.
type backend interface {
	Context() int
	SlotLen(slot int) int
	Truncate(slot, n int) error
	// FeedSlot appends tokens to a slot and returns the last one's logits.
	FeedSlot(slot int, tokens []int) ([]float32, error)
	// Decode feeds one token to each of several distinct slots in one step.
	Decode(slots, tokens []int) ([][]float32, error)
}

var _ backend = (*engine.Engine)(nil)

// cpuBackend runs the CPU reference model with one cache per slot; a
// "batched" step is one step per slot.
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

func (b *cpuBackend) FeedSlot(slot int, tokens []int) ([]float32, error) {
	o, err := b.model.Prefill(b.caches[slot], tokens, false)
	if err != nil {
		return nil, err
	}
	return o.LogitsAt(o.T - 1), nil
}

func (b *cpuBackend) Decode(slots, tokens []int) ([][]float32, error) {
	out := make([][]float32, len(slots))
	for i, s := range slots {
		l, err := b.FeedSlot(s, tokens[i:i+1])
		if err != nil {
			return nil, err
		}
		out[i] = l
	}
	return out, nil
}
