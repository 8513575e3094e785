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

// matmulTile is the tiling of wgsl/matmul.wgsl: each workgroup computes a
// BT × BR tile of the output (tokens × rows) with (BT/TT)·(BR/TR) threads,
// each accumulating TT tokens × TR rows in registers.
type matmulTile struct{ BT, BR, TT, TR int }

func (m matmulTile) String() string { return fmt.Sprintf("%dx%d-%dx%d", m.BT, m.BR, m.TT, m.TR) }

func (m matmulTile) threads() int { return (m.BT / m.TT) * (m.BR / m.TR) }

// tuneMatMulTile overrides the tiling for BenchmarkTuneMatMul and the tests
// (like tune in ops.go; the zero value means the automatic choice).
var tuneMatMulTile matmulTile

// matmulTiles are the tilings BenchmarkTuneMatMul and TestMatMulTiles cover.
var matmulTiles = []matmulTile{
	{64, 64, 4, 4},  // 256 threads: run 4's layout
	{64, 64, 8, 4},  // 128 threads
	{64, 64, 8, 8},  // 64 threads
	{128, 64, 8, 4}, // 256 threads
	{128, 64, 8, 8}, // 128 threads
}

// matmulTileFor picks the tiling and the columns staged per step.
//
// The default is 64 × 64 with 8 tokens × 4 rows a thread (128 threads): a
// step of the inner loop reads two vec4s of X and one of W from workgroup
// memory (48 B) for 32 FMAs, where run 4's 4 × 4 read 32 B for 16, and a
// 64 × 64 tile keeps 512 workgroups for qkv at T = 512 (128 for down, which
// a larger tile would starve). 16 columns a step: the register prefetch then
// has 16 inner steps (512 FMAs a thread) to hide each step's global loads
// behind, and a packed bf16 row's 16 columns are one 32-byte sector.
//
// GL keeps run 4's 64 × 64 / 4 × 4 with 8 columns and no padding: its staged
// arrays stay at 128 vec4s (Mesa's compile time grows with their length).
func (d *Device) matmulTileFor() (matmulTile, int, int) {
	tile, bk, pad := matmulTile{64, 64, 8, 4}, 16, 1
	if d.info.Backend == "gl" {
		tile, bk, pad = matmulTile{64, 64, 4, 4}, 8, 0
	}
	if tuneMatMulTile != (matmulTile{}) {
		tile = tuneMatMulTile
	}
	if tune.matmulBK > 0 {
		bk = tune.matmulBK
	}
	return tile, bk, pad
}

// matmulSlots returns the thread offsets of the load slots that spread units
// load units over n threads, and whether the last slot is partial.
func matmulSlots(units, n int) ([]int, bool) {
	var s []int
	for o := 0; o < units; o += n {
		s = append(s, o)
	}
	return s, units%n != 0
}

type matmulVec struct{ I, Off int }

type matmulAcc struct {
	N, A, B  int
	C        string
	Tok, Row int
}

// matmulVars fills the template of wgsl/matmul.wgsl.
func matmulVars(dt DType, epi epilogue, cols int, tile matmulTile, bk, pad int) (map[string]any, error) {
	if tile.TT%4 != 0 || tile.TR%4 != 0 || tile.TT <= 0 || tile.TR <= 0 ||
		tile.BT%tile.TT != 0 || tile.BR%tile.TR != 0 || tile.threads() > 256 || bk <= 0 || bk%8 != 0 || pad < 0 {
		return nil, fmt.Errorf("gpu: matmul: bad tiling %v with %d columns a step", tile, bk)
	}
	nt := tile.threads()
	wt := "f32"
	epv := 4 // elements of W per vec4 load
	if dt != F32 {
		wt, epv = "u32", 8
	}
	xvec := cols%4 == 0
	wvec := cols%epv == 0
	xunits := tile.BT * bk
	if xvec {
		xunits /= 4
	}
	wunits := tile.BR * bk // per matrix
	wtotal := wunits
	if wvec {
		wunits /= epv
		wtotal = wunits
		if epi == epiSwiGLU {
			wtotal *= 2 // one index space over gate and up
		}
	}
	xslots, xguard := matmulSlots(xunits, nt)
	wslots, wguard := matmulSlots(wtotal, nt)
	var av, bv []matmulVec
	for i := 0; i < tile.TT/4; i++ {
		av = append(av, matmulVec{i, i * tile.BT / tile.TT})
	}
	for i := 0; i < tile.TR/4; i++ {
		bv = append(bv, matmulVec{i, i * tile.BR / tile.TR})
	}
	var acc []matmulAcc
	for _, a := range av {
		for c, comp := range []string{"x", "y", "z", "w"} {
			for _, b := range bv {
				acc = append(acc, matmulAcc{N: len(acc), A: a.I, B: b.I, C: comp, Tok: 4*a.Off + c, Row: 4 * b.Off})
			}
		}
	}
	mats := []string{"ws"}
	if epi == epiSwiGLU {
		mats = append(mats, "us")
	}
	return map[string]any{
		"DTYPE": dt.String(), "EPI": string(epi), "WT": wt, "BK": bk,
		"BT": tile.BT, "BR": tile.BR, "TT": tile.TT, "TR": tile.TR, "NT": nt,
		"XS": tile.BT/4 + pad, "RS": tile.BR/4 + pad,
		"XVEC": xvec, "WVEC": wvec, "EPV": epv,
		"XSLOTS": xslots, "XGUARD": xguard, "XN": len(xslots), "XUNITS": xunits,
		"WSLOTS": wslots, "WGUARD": wguard, "WN": len(wslots), "WUNITS": wunits,
		"AV": av, "BV": bv, "ACC": acc, "MATS": mats, "COMPS": []string{"x", "y", "z", "w"},
	}, nil
}

// matmulShared is the workgroup memory the tiling takes, in bytes.
func matmulShared(epi epilogue, tile matmulTile, bk, pad int) int {
	n := bk * (tile.BT/4 + pad + tile.BR/4 + pad)
	if epi == epiSwiGLU {
		n += bk * (tile.BR/4 + pad)
	}
	return 16 * n
}

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
	tile, bk, pad := d.matmulTileFor()
	if tiles := ceilDiv(T, tile.BT); tiles > int(d.limits.MaxComputeWorkgroupsPerDimension) {
		return nil, fmt.Errorf("gpu: %s: %d tokens need %d workgroup rows, over the limit", op, T, tiles)
	}
	if n := matmulShared(epi, tile, bk, pad); n > int(d.limits.MaxComputeWorkgroupStorageSize) {
		return nil, fmt.Errorf("gpu: %s: tiling %v with %d columns a step needs %d bytes of workgroup memory, over the limit %d",
			op, tile, bk, n, d.limits.MaxComputeWorkgroupStorageSize)
	}
	vars, err := matmulVars(w.DType, epi, cols, tile, bk, pad)
	if err != nil {
		return nil, err
	}
	kern, err := d.Kernel("matmul", vars)
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
		groups := Groups{X: uint32(ceilDiv(s.n, tile.BR)), Y: uint32(ceilDiv(T, tile.BT)), Z: 1}
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
