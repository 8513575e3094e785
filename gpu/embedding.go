package gpu

import "fmt"

// embeddingParams mirrors Params in wgsl/embedding.wgsl.
type embeddingParams struct {
	T       uint32
	Cols    uint32
	Row0    uint32 // first matrix row of this part
	Rows    uint32 // rows in this part
	BufRow0 uint32 // Row0's row inside the part's buffer
	Vocab   uint32 // rows of the whole matrix
	ZeroOOV uint32 // 1: write zeros for ids ≥ Vocab
	_       uint32
}

// Embedding prepares out[t, :] = E[ids[t], :] for ids [T] u32 and out
// [T, E.Cols] f32, one op per part of emb. An id ≥ emb.Rows gives a row of
// zeros rather than reading out of bounds.
func (d *Device) Embedding(out *Buffer, emb *Matrix, ids *Buffer, T int) ([]*Op, error) {
	const op = "embedding"
	if err := checkMatrix(op, "embedding", emb); err != nil {
		return nil, err
	}
	if T <= 0 || T > int(d.limits.MaxComputeWorkgroupsPerDimension) {
		return nil, fmt.Errorf("gpu: %s: T = %d, want 1..%d", op, T, d.limits.MaxComputeWorkgroupsPerDimension)
	}
	bi, err := needF32(op, "ids", ids, T)
	if err != nil {
		return nil, err
	}
	bo, err := needF32(op, "out", out, T*emb.Cols)
	if err != nil {
		return nil, err
	}
	if err := distinct(op, map[string]*Buffer{"out": out, "ids": ids}); err != nil {
		return nil, err
	}
	if err := notIn(op, out, emb); err != nil {
		return nil, err
	}
	et := "f32"
	if emb.DType != F32 {
		et = "u32"
	}
	kern, err := d.Kernel("embedding", map[string]any{"DTYPE": emb.DType.String(), "ET": et})
	if err != nil {
		return nil, err
	}
	var ops []*Op
	for i, p := range emb.Parts {
		params := embeddingParams{
			T: uint32(T), Cols: uint32(emb.Cols), Row0: uint32(p.Row0), Rows: uint32(p.Rows),
			BufRow0: uint32(p.BufRow), Vocab: uint32(emb.Rows),
		}
		if i == 0 {
			params.ZeroOOV = 1
		}
		groups := Groups{X: uint32(ceilDiv(emb.Cols, 256)), Y: uint32(T), Z: 1}
		label := fmt.Sprintf("%s %s[%d:%d]", op, emb.Label, p.Row0, p.Row0+p.Rows)
		o, err := kern.Op(label, params, groups, Bind(p.Buf), bi, bo)
		if err != nil {
			ReleaseOps(ops)
			return nil, err
		}
		ops = append(ops, o)
	}
	return ops, nil
}
