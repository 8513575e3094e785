package gpu

import "fmt"

// argmaxParams mirrors Params in wgsl/argmax.wgsl.
type argmaxParams struct {
	N      uint32
	Groups uint32 // workgroups of the partial pass
	Chunk  uint32 // elements per workgroup in the partial pass
	_      uint32
}

// argmaxChunk is how many elements one workgroup of the partial pass scans:
// 4 per thread, so Qwen3's 151936 logits spread over 149 workgroups, about
// one per SM of an H100 (256 to 4096 measured within noise there).
const argmaxChunk = 1024

// Argmax prepares out[0] = the lowest index of the largest of x[0..n) as a
// u32, in two ops (a partial pass over chunks, then a final pick) that must
// run in order in one step. NaN never wins. The ops own a small scratch
// buffer, released with the first op.
func (d *Device) Argmax(out *Buffer, x *Buffer, n int) ([]*Op, error) {
	const op = "argmax"
	bx, err := needF32(op, "x", x, n)
	if err != nil {
		return nil, err
	}
	bo, err := needF32(op, "out", out, 1)
	if err != nil {
		return nil, err
	}
	if err := distinct(op, map[string]*Buffer{"out": out, "x": x}); err != nil {
		return nil, err
	}
	chunk := argmaxChunk
	if tune.argmaxChunk > 0 {
		chunk = tune.argmaxChunk
	}
	groups := ceilDiv(n, chunk)
	if groups > int(d.limits.MaxComputeWorkgroupsPerDimension) {
		return nil, fmt.Errorf("gpu: %s: %d values need %d workgroups, over the limit", op, n, groups)
	}
	partial, err := d.Kernel("argmax", map[string]any{"ENTRY": "partial"})
	if err != nil {
		return nil, err
	}
	final, err := d.Kernel("argmax", map[string]any{"ENTRY": "final"})
	if err != nil {
		return nil, err
	}
	best, err := d.NewBuffer("argmax scratch", uint64(groups)*4)
	if err != nil {
		return nil, err
	}
	params := argmaxParams{N: uint32(n), Groups: uint32(groups), Chunk: uint32(chunk)}
	op1, err := partial.Op("argmax partial", params, Groups{X: uint32(groups), Y: 1, Z: 1}, bx, Bind(best))
	if err != nil {
		best.Release()
		return nil, err
	}
	op1.owned = append(op1.owned, best)
	op2, err := final.Op("argmax final", params, Groups{X: 1, Y: 1, Z: 1}, bx, Bind(best), bo)
	if err != nil {
		op1.Release()
		return nil, err
	}
	return []*Op{op1, op2}, nil
}
