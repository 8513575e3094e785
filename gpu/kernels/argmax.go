package kernels

import (
	"fmt"

	"github.com/qwgpu/qwgpu/gpu"
)

// Argmax describes out[b] = argmax(x[b, :]) for Rows rows of N logits.
type Argmax struct {
	Out     *gpu.Buffer // [Rows] u32; bit 31 set when the row held NaN or ±Inf
	X       *gpu.Buffer // [Rows, N] f32
	N, Rows int
	Label   string
}

// NonFinite is the flag bit of an argmax answer whose row held a NaN or an
// infinity.
const NonFinite = 0x80000000

// argmaxParams mirrors Params in wgsl/argmax.wgsl.
type argmaxParams struct {
	N      uint32
	Groups uint32 // workgroups per row in the partial pass
	Chunk  uint32 // elements per workgroup in the partial pass
	_      uint32
}

// ArgmaxVars are wgsl/argmax.wgsl's template variables.
type ArgmaxVars struct{ Entry string }

// argmaxChunk is how many elements one workgroup of the partial pass scans:
// 4 per thread, so Qwen3's 151936 logits spread over 149 workgroups, about
// one per SM of an H100 (256 to 4096 measured within noise there).
const argmaxChunk = 1024

// NewArgmax prepares the two ops (a partial pass over chunks, then a final
// pick) that must run in order in one step. Ties go to the lowest index;
// NaN and infinities never win and flag the answer.
func NewArgmax(s *gpu.Scope, a Argmax) ([]*gpu.Op, error) {
	d := s.Device()
	fail := func(err error) ([]*gpu.Op, error) {
		return nil, fmt.Errorf("argmax %s: %w", a.Label, err)
	}
	if a.N <= 0 || a.Rows <= 0 {
		return fail(fmt.Errorf("shape [%d, %d]", a.Rows, a.N))
	}
	if err := need(d, "x", a.X, uint64(a.Rows*a.N)*4); err != nil {
		return fail(err)
	}
	if err := need(d, "out", a.Out, uint64(a.Rows)*4); err != nil {
		return fail(err)
	}
	if err := noAlias([]*gpu.Buffer{a.Out}, a.X, a.Out); err != nil {
		return fail(err)
	}
	chunk := argmaxChunk
	if tune.argmaxChunk > 0 {
		chunk = tune.argmaxChunk
	}
	groups := ceilDiv(a.N, chunk)
	if groups > int(d.Limits().MaxComputeWorkgroupsPerDimension) {
		return fail(fmt.Errorf("%d values need %d workgroups, over the limit", a.N, groups))
	}
	partial, err := d.Kernel("argmax", ArgmaxVars{Entry: "partial"})
	if err != nil {
		return fail(err)
	}
	final, err := d.Kernel("argmax", ArgmaxVars{Entry: "final"})
	if err != nil {
		return fail(err)
	}
	best, err := s.Buffer(a.Label+" argmax partials", uint64(groups*a.Rows)*4)
	if err != nil {
		return fail(err)
	}
	params := argmaxParams{N: uint32(a.N), Groups: uint32(groups), Chunk: uint32(chunk)}
	x := gpu.Binding{Buf: a.X, Size: uint64(a.Rows*a.N) * 4}
	op1, err := s.Op(partial, gpu.Dispatch{Label: a.Label + " partial", Role: "argmax", Params: params,
		Bindings: []gpu.Binding{x, gpu.Bind(best)}, Groups: gpu.Groups{X: uint32(groups), Y: uint32(a.Rows), Z: 1}})
	if err != nil {
		return fail(err)
	}
	op2, err := s.Op(final, gpu.Dispatch{Label: a.Label + " final", Role: "argmax", Params: params,
		Bindings: []gpu.Binding{x, gpu.Bind(best), {Buf: a.Out, Size: uint64(a.Rows) * 4}}, Groups: gpu.Groups{X: 1, Y: uint32(a.Rows), Z: 1}})
	if err != nil {
		return fail(err)
	}
	return []*gpu.Op{op1, op2}, nil
}
