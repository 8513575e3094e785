package gpu

import "fmt"

// matmulParams mirrors Params in wgsl/matmul.wgsl.
type matmulParams struct {
	T         uint32
	Rows      uint32 // rows of W in this dispatch
	Cols      uint32
	WRow0     uint32 // first row of the dispatch inside the w binding
	URow0     uint32 // same inside the up binding (swiglu)
	Out0      uint32 // first output column
	OutStride uint32 // output row length
	_         uint32
}

// The output tile of one matmul workgroup (wgsl/matmul.wgsl).
const matmulTileT, matmulTileR = 64, 64

// MatMul prepares out[t, r] = Σ_c X[t, c] · W[r, c] for x [T, cols] and out
// [T, rows] (a Linear over T tokens), one op per part of w.
func (d *Device) MatMul(out, x *Buffer, w *Matrix, T int) ([]*Op, error) {
	return d.matmul("matmul", epiStore, out, nil, x, w, nil, T)
}

// MatMulAdd prepares out = res + X · Wᵀ; res may be out itself (the
// residual update h += X · W_oᵀ).
func (d *Device) MatMulAdd(out, res, x *Buffer, w *Matrix, T int) ([]*Op, error) {
	if res == nil {
		return nil, fmt.Errorf("gpu: matmul add: residual buffer is nil")
	}
	if res == out {
		return d.matmul("matmul add", epiAddInPlace, out, nil, x, w, nil, T)
	}
	return d.matmul("matmul add", epiAdd, out, res, x, w, nil, T)
}

// MatMulSwiGLU prepares out[t, i] = SiLU((X·Gᵀ)[t, i]) · (X·Uᵀ)[t, i] for
// gate and up [I, cols] and out [T, I].
func (d *Device) MatMulSwiGLU(out, x *Buffer, gate, up *Matrix, T int) ([]*Op, error) {
	return d.matmul("matmul swiglu", epiSwiGLU, out, nil, x, gate, up, T)
}

func (d *Device) matmul(op string, epi epilogue, out, res, x *Buffer, w, up *Matrix, T int) ([]*Op, error) {
	if T <= 0 {
		return nil, fmt.Errorf("gpu: %s: T = %d", op, T)
	}
	bindings, mats, err := projectionIO(op, epi, out, res, x, nil, w, up, T)
	if err != nil {
		return nil, err
	}
	rows, cols := w.Rows, w.Cols
	if tiles := ceilDiv(T, matmulTileT); tiles > int(d.limits.MaxComputeWorkgroupsPerDimension) {
		return nil, fmt.Errorf("gpu: %s: %d tokens need %d workgroup rows, over the limit", op, T, tiles)
	}
	wt := "f32"
	if w.DType != F32 {
		wt = "u32"
	}
	// 8 columns a step: on the H100, 16 and 32 were no faster for the qkv
	// and down shapes and 15% slower for gate/up SwiGLU, whose three
	// staged tiles then take 24 KiB of workgroup memory (BenchmarkTuneMatMul,
	// docs/PERFORMANCE.md). What bounds the kernel is workgroup-memory
	// traffic of the 4×4 register tile, not the barriers.
	bk := 8
	if tune.matmulBK > 0 {
		bk = tune.matmulBK
	}
	kern, err := d.Kernel("matmul", map[string]any{"DTYPE": w.DType.String(), "EPI": string(epi), "WT": wt, "BK": bk})
	if err != nil {
		return nil, err
	}
	var ops []*Op
	for _, s := range segments(mats...) {
		params := matmulParams{
			T: uint32(T), Rows: uint32(s.n), Cols: uint32(cols),
			WRow0: uint32(s.bufRow[0]), Out0: uint32(s.r0), OutStride: uint32(rows),
		}
		bs := []Binding{Bind(s.bufs[0])}
		if epi == epiSwiGLU {
			params.URow0 = uint32(s.bufRow[1])
			bs = append(bs, Bind(s.bufs[1]))
		}
		groups := Groups{X: uint32(ceilDiv(s.n, matmulTileR)), Y: uint32(ceilDiv(T, matmulTileT)), Z: 1}
		label := fmt.Sprintf("%s %s[%d:%d]", op, w.Label, s.r0, s.r0+s.n)
		o, err := kern.Op(label, params, groups, append(bs, bindings...)...)
		if err != nil {
			ReleaseOps(ops)
			return nil, err
		}
		ops = append(ops, o)
	}
	return ops, nil
}
