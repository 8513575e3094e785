package kernels

import (
	"fmt"

	"github.com/qwgpu/qwgpu/gpu"
	"github.com/qwgpu/qwgpu/weights"
)

// matmulParams mirrors Params in wgsl/matmul.wgsl.
type matmulParams struct {
	Rows      uint32 // rows of W in this dispatch
	Cols      uint32
	WRow0     uint32 // first row of the dispatch inside the w binding
	URow0     uint32 // same inside the up binding (swiglu)
	Out0      uint32 // first output column
	OutStride uint32 // output row length
	_         [2]uint32
}

// matmulTile is the tiling of wgsl/matmul.wgsl: each workgroup computes a
// BT × BR tile of the output (tokens × rows) with (BT/TT)·(BR/TR) threads,
// each accumulating TT tokens × TR rows in registers.
type matmulTile struct{ BT, BR, TT, TR int }

func (m matmulTile) String() string { return fmt.Sprintf("%dx%d-%dx%d", m.BT, m.BR, m.TT, m.TR) }

func (m matmulTile) threads() int { return (m.BT / m.TT) * (m.BR / m.TR) }

// matmulTiles are the tilings TestMatMulTiles covers: the defaults, the
// tile narrowed for matmuls of few workgroups (matmul_narrow, removed
// after run 13: +0.6% at pp512 on the H200) and those swept on the H100
// and H200.
var matmulTiles = []matmulTile{
	{64, 64, 4, 4},  // 256 threads: run 4's layout, GL's default
	{64, 64, 8, 4},  // 128 threads: the default
	{64, 32, 8, 4},  // 64 threads: the default narrowed
	{64, 64, 8, 8},  // 64 threads
	{128, 64, 8, 4}, // 256 threads
	{128, 64, 8, 8}, // 128 threads
	{32, 64, 4, 4},  // 128 threads
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
func matmulTileFor(d *gpu.Device) (matmulTile, int, int) {
	tile, bk, pad := matmulTile{64, 64, 8, 4}, 16, 1
	if d.Info().Backend == "gl" {
		tile, bk, pad = matmulTile{64, 64, 4, 4}, 8, 0
	}
	if tune.matmulTile != (matmulTile{}) {
		tile = tune.matmulTile
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

// MatMulVars are wgsl/matmul.wgsl's template variables (the upper-case
// names the template was written with).
type MatMulVars struct {
	DTYPE, EPI, WT string
	MaxRows        int
	BK             int
	BT, BR, TT, TR int
	NT             int
	XS, RS         int
	XVEC, WVEC     bool
	EPV            int
	XSLOTS         []int
	XGUARD         bool
	XN, XUNITS     int
	WSLOTS         []int
	WGUARD         bool
	WN, WUNITS     int
	AV, BV         []matmulVec
	ACC            []matmulAcc
	MATS, COMPS    []string
	QUANT          bool
	QBS, QBW       int
	QW, QU         QuantFn
}

// matmulVars fills the template of wgsl/matmul.wgsl.
func matmulVars(dt weights.DType, epi Epilogue, cols, maxRows int, tile matmulTile, bk, pad int) (MatMulVars, error) {
	if tile.TT%4 != 0 || tile.TR%4 != 0 || tile.TT <= 0 || tile.TR <= 0 ||
		tile.BT%tile.TT != 0 || tile.BR%tile.TR != 0 || tile.threads() > 256 || bk <= 0 || bk%8 != 0 || pad < 0 {
		return MatMulVars{}, fmt.Errorf("bad tiling %v with %d columns a step", tile, bk)
	}
	nt := tile.threads()
	wt := "f32"
	epv := 4 // elements of W per vec4 load
	if dt != weights.F32 && !dt.IsQuantized() {
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
		if epi == SwiGLU {
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
	if epi == SwiGLU {
		mats = append(mats, "us")
	}
	v := MatMulVars{
		DTYPE: dt.String(), EPI: string(epi), WT: wt, MaxRows: maxRows, BK: bk,
		BT: tile.BT, BR: tile.BR, TT: tile.TT, TR: tile.TR, NT: nt,
		XS: tile.BT/4 + pad, RS: tile.BR/4 + pad,
		XVEC: xvec, WVEC: wvec, EPV: epv,
		XSLOTS: xslots, XGUARD: xguard, XN: len(xslots), XUNITS: xunits,
		WSLOTS: wslots, WGUARD: wguard, WN: len(wslots), WUNITS: wunits,
		AV: av, BV: bv, ACC: acc, MATS: mats, COMPS: []string{"x", "y", "z", "w"},
	}
	if dt.IsQuantized() {
		v.QUANT = true
		v.QBS, v.QBW = quantShape(dt)
		v.QW, v.QU = QuantFn{Fmt: v.DTYPE, Arr: "w"}, QuantFn{Fmt: v.DTYPE, Arr: "wu"}
	}
	return v, nil
}

// matmulShared is the workgroup memory the tiling takes, in bytes.
func matmulShared(epi Epilogue, tile matmulTile, bk, pad int) int {
	n := bk * (tile.BT/4 + pad + tile.BR/4 + pad)
	if epi == SwiGLU {
		n += bk * (tile.BR/4 + pad)
	}
	return 16 * n
}

// MatMul prepares out[t] = epilogue(x[t] · Wᵀ) for the rows t of a step
// (step.rows of them, at most l.MaxRows), one op per part of W: a prefill
// chunk's projection, with tiles of tokens × rows in workgroup memory.
func MatMul(s *gpu.Scope, l Linear) ([]*gpu.Op, error) {
	d := s.Device()
	fail := func(err error) ([]*gpu.Op, error) {
		return nil, fmt.Errorf("matmul %s: %w", l.Label, err)
	}
	if l.MaxRows <= 0 {
		return fail(fmt.Errorf("MaxRows = %d", l.MaxRows))
	}
	if l.Norm != nil {
		return fail(fmt.Errorf("matmul has no fused norm: run RMSNorm first"))
	}
	if err := need(d, "step", l.Step, StepBytes(l.MaxRows)); err != nil {
		return fail(err)
	}
	mats, err := checkLinear(d, &l, l.MaxRows)
	if err != nil {
		return fail(err)
	}
	w := l.W
	cols := w.Cols
	tile, bk, pad := matmulTileFor(d)
	if tiles := ceilDiv(l.MaxRows, tile.BT); tiles > int(d.Limits().MaxComputeWorkgroupsPerDimension) {
		return fail(fmt.Errorf("%d tokens need %d workgroup rows, over the limit", l.MaxRows, tiles))
	}
	if n := matmulShared(l.Epi, tile, bk, pad); n > int(d.Limits().MaxComputeWorkgroupStorageSize) {
		return fail(fmt.Errorf("tiling %v with %d columns a step needs %d bytes of workgroup memory, over the limit %d",
			tile, bk, n, d.Limits().MaxComputeWorkgroupStorageSize))
	}
	var ops []*gpu.Op
	for _, seg := range segments(mats...) {
		if l.Epi == SwiGLU && seg.dts[0] != seg.dts[1] {
			return fail(fmt.Errorf("rows %d… are %v in the gate matrix and %v in the up matrix", seg.r0, seg.dts[0], seg.dts[1]))
		}
		vars, err := matmulVars(seg.dts[0], l.Epi, cols, l.MaxRows, tile, bk, pad)
		if err != nil {
			return fail(err)
		}
		kern, err := d.Kernel("matmul", vars)
		if err != nil {
			return fail(err)
		}
		params := matmulParams{
			Rows: uint32(seg.n), Cols: uint32(cols),
			WRow0: uint32(seg.bufRow[0]), Out0: uint32(seg.r0), OutStride: uint32(l.OutStride),
		}
		bs := []gpu.Binding{gpu.Bind(l.Step), gpu.Bind(seg.bufs[0])}
		if l.Epi == SwiGLU {
			params.URow0 = uint32(seg.bufRow[1])
			bs = append(bs, gpu.Bind(seg.bufs[1]))
		}
		bs = append(bs, gpu.Binding{Buf: l.X, Size: uint64(l.MaxRows*cols) * 4},
			gpu.Binding{Buf: l.Out, Size: uint64((l.MaxRows-1)*l.OutStride+w.Rows) * 4})
		x := uint32(ceilDiv(seg.n, tile.BR))
		o, err := s.Op(kern, gpu.Dispatch{
			Label:    fmt.Sprintf("%s[%d:%d]", l.Label, seg.r0, seg.r0+seg.n),
			Role:     l.Role,
			Params:   params,
			Bindings: bs,
			Groups:   gpu.Groups{X: x, Y: uint32(ceilDiv(l.MaxRows, tile.BT)), Z: 1},
			Size: func(e gpu.Extent) gpu.Groups {
				return gpu.Groups{X: x, Y: uint32(ceilDiv(max(e.Rows, 1), tile.BT)), Z: 1}
			},
		})
		if err != nil {
			return fail(err)
		}
		ops = append(ops, o)
	}
	return ops, nil
}
