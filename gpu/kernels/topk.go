package kernels

import (
	"fmt"

	"github.com/qwgpu/qwgpu/gpu"
)

// TopK describes out[b] = the K largest values of x[b, :] with their
// indices, best first (larger value, then lower index), for Rows rows of
// N logits: what a top-k sampler needs, without the whole row.
type TopK struct {
	// Out is [Rows, K] pairs of u32: a value's bits, then its index, with
	// NonFinite set on the indices when the row held NaN or ±Inf, and
	// index NoCandidate past the end of a row shorter than K.
	Out     *gpu.Buffer
	X       *gpu.Buffer // [Rows, N] f32
	N, Rows int
	K       int // 1 to MaxTopK
	Label   string
}

// MaxTopK bounds TopK.K: each winner costs the kernel one reduction round,
// and samplers ask for far fewer (Qwen3's generation_config: 20;
// llama.cpp's default: 40).
const MaxTopK = 64

// NoCandidate is the index of an empty top-k entry.
const NoCandidate = 0xffffffff

// TopKBytes is the size of TopK.Out for rows rows of k candidates.
func TopKBytes(rows, k int) uint64 { return uint64(rows*k) * 8 }

// topkParams mirrors Params in wgsl/topk.wgsl.
type topkParams struct {
	N      uint32
	Groups uint32 // workgroups per row in the partial pass
	Chunk  uint32 // values per workgroup in the partial pass
	K      uint32
}

// TopKVars are wgsl/topk.wgsl's template variables.
type TopKVars struct{ Entry string }

// topkChunk is how many values one workgroup of the partial pass ranks:
// Qwen3's 151936 logits spread over 38 workgroups per row, whose 38·K
// candidates the final pass ranks again (16 values per thread in each
// pass, every round re-reading them from cache).
const topkChunk = 4096

// NewTopK prepares the two ops (a partial pass over chunks, then a final
// pass over their candidates) that must run in order in one step.
func NewTopK(s *gpu.Scope, a TopK) ([]*gpu.Op, error) {
	d := s.Device()
	fail := func(err error) ([]*gpu.Op, error) {
		return nil, fmt.Errorf("top-k %s: %w", a.Label, err)
	}
	if a.N <= 0 || a.Rows <= 0 {
		return fail(fmt.Errorf("shape [%d, %d]", a.Rows, a.N))
	}
	if a.K < 1 || a.K > MaxTopK {
		return fail(fmt.Errorf("k = %d outside [1, %d]", a.K, MaxTopK))
	}
	if err := need(d, "x", a.X, uint64(a.Rows*a.N)*4); err != nil {
		return fail(err)
	}
	if err := need(d, "out", a.Out, TopKBytes(a.Rows, a.K)); err != nil {
		return fail(err)
	}
	if err := noAlias([]*gpu.Buffer{a.Out}, a.X, a.Out); err != nil {
		return fail(err)
	}
	groups := ceilDiv(a.N, topkChunk)
	if groups > int(d.Limits().MaxComputeWorkgroupsPerDimension) {
		return fail(fmt.Errorf("%d values need %d workgroups, over the limit", a.N, groups))
	}
	partial, err := d.Kernel("topk", TopKVars{Entry: "partial"})
	if err != nil {
		return fail(err)
	}
	final, err := d.Kernel("topk", TopKVars{Entry: "final"})
	if err != nil {
		return fail(err)
	}
	candBytes := TopKBytes(groups*a.Rows, a.K)
	cand, err := s.Buffer(a.Label+" top-k candidates", candBytes)
	if err != nil {
		return fail(err)
	}
	params := topkParams{N: uint32(a.N), Groups: uint32(groups), Chunk: topkChunk, K: uint32(a.K)}
	op1, err := s.Op(partial, gpu.Dispatch{Label: a.Label + " partial", Role: "topk", Params: params,
		Bindings: []gpu.Binding{{Buf: a.X, Size: uint64(a.Rows*a.N) * 4}, gpu.Bind(cand)},
		Groups:   gpu.Groups{X: uint32(groups), Y: uint32(a.Rows), Z: 1}})
	if err != nil {
		return fail(err)
	}
	op2, err := s.Op(final, gpu.Dispatch{Label: a.Label + " final", Role: "topk", Params: params,
		Bindings: []gpu.Binding{gpu.Bind(cand), {Buf: a.Out, Size: TopKBytes(a.Rows, a.K)}},
		Groups:   gpu.Groups{X: 1, Y: uint32(a.Rows), Z: 1}})
	if err != nil {
		return fail(err)
	}
	return []*gpu.Op{op1, op2}, nil
}
