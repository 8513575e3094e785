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
	// DecodeStart feeds one token to each of several distinct slots in
	// one step and reads what want asks of each row, once waited for; the
	// slots advance at once. tokens nil feeds each row the argmax of the
	// same row of the step started just before, which must have had the
	// same slots in the same order.
	DecodeStart(slots, tokens []int, want []engine.Want, k int) (pendingStep, error)
}

// pendingStep is a decode step started and not yet read.
type pendingStep interface {
	Wait() ([]engine.Row, error)
}

// gpuBackend is the engine as the scheduler drives it.
type gpuBackend struct{ *engine.Engine }

func (g gpuBackend) DecodeStart(slots, tokens []int, want []engine.Want, k int) (pendingStep, error) {
	p, err := g.Engine.DecodeStart(slots, tokens, want, k)
	if err != nil {
		return nil, err
	}
	return p, nil
}

var _ backend = gpuBackend{}

// cpuBackend runs the CPU reference model with one cache per slot; a
// "batched" step is one step per slot. It computes every row's logits and
// answers the reads from them on the host, as the GPU's argmax and top-k
// kernels do: the argmax's lowest id on a tie, the candidates ranked by
// logit then id, and NaN or infinities an error of the row.
type cpuBackend struct {
	model  *qwen3.Model
	caches []*qwen3.Cache
	ctx    int
	// The slots and argmax ids of the last step when it was a
	// DecodeStart, for a chained step; nil after any other step.
	lastSlots, lastIDs []int
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
	b.lastSlots, b.lastIDs = nil, nil
	o, err := b.model.Prefill(b.caches[slot], tokens, false)
	if err != nil {
		return engine.Row{}, err
	}
	return hostRead(o.LogitsAt(o.T-1), want, k, b.caches[slot].Len-1), nil
}

// DecodeStart computes the step at once.
func (b *cpuBackend) DecodeStart(slots, tokens []int, want []engine.Want, k int) (pendingStep, error) {
	if tokens == nil {
		if !slices.Equal(slots, b.lastSlots) {
			return nil, fmt.Errorf("a chained decode step of slots %v after a step of slots %v", slots, b.lastSlots)
		}
		tokens = b.lastIDs
	}
	rows, err := b.decode(slots, tokens, want, k)
	if err != nil {
		return nil, err
	}
	b.lastSlots, b.lastIDs = slices.Clone(slots), make([]int, len(rows))
	for i, r := range rows {
		b.lastIDs[i] = r.ID
	}
	return doneStep(rows), nil
}

// doneStep is a step already computed.
type doneStep []engine.Row

func (d doneStep) Wait() ([]engine.Row, error) { return d, nil }

func (b *cpuBackend) decode(slots, tokens []int, want []engine.Want, k int) ([]engine.Row, error) {
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
			return engine.Row{Err: engine.NonFiniteLogits(pos)}
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
