package kernels

import (
	"fmt"
	"math"
	"slices"

	"github.com/qwgpu/qwgpu/gpu"
	"github.com/qwgpu/qwgpu/weights"
)

// Epilogue is what a projection does with its result y.
type Epilogue string

const (
	Store  Epilogue = "store"  // out = y
	Add    Epilogue = "add"    // out += y (the residual update x += W_o · attn)
	SwiGLU Epilogue = "swiglu" // out = SiLU(x·Gᵀ) · (x·Uᵀ), with Up set
)

// Linear describes a projection out = x · Wᵀ of the rows of a step.
type Linear struct {
	Out *gpu.Buffer // [rows, OutStride] f32; row t of the result starts at t·OutStride
	X   *gpu.Buffer // [rows, W.Cols] f32
	W   *Matrix     // [N, cols]: the gate matrix with SwiGLU
	Up  *Matrix     // [N, cols]: the up matrix (SwiGLU only)
	Epi Epilogue
	// Norm, if set, is an RMSNorm weight [cols] f32 applied to each row of
	// x first, with Eps (MatVec only: each workgroup normalises x itself).
	Norm *gpu.Buffer
	Eps  float32
	// OutStride is the output row length (default: W.Rows).
	OutStride int
	// Step is the step uniform (MatMul: it reads the row count there).
	Step    *gpu.Buffer
	MaxRows int    // the most rows a step has (MatMul; MatVec uses its batch)
	Label   string // names the op in errors, e.g. "layer 3 o_proj"
	Role    string // what it computes, for profiles, e.g. "o_proj"
}

// matvecParams mirrors Params in wgsl/matvec.wgsl.
type matvecParams struct {
	Rows      uint32 // rows in this dispatch
	Cols      uint32
	WRow0     uint32 // first row of the dispatch inside the w binding
	URow0     uint32 // same inside the up binding (swiglu)
	Out0      uint32 // first output element of token 0
	OutStride uint32 // output elements between tokens
	Eps       float32
	_         uint32
}

// MatVecVars are wgsl/matvec.wgsl's template variables.
type MatVecVars struct {
	DType  string // F32, BF16, F16 or a block type (Quant)
	Vec    bool   // 16-byte loads
	Epi    Epilogue
	Norm   bool
	B      int   // tokens per dispatch
	Rows   int   // weight rows per workgroup: R · WG / TPR
	R      int   // rows per thread group
	TPR    int   // threads per group, a power of two
	WG     int   // threads per workgroup, a power of two
	RC     int   // partial sums per thread reduced per round
	Rounds []int // the first partial sum of each round: 0, RC, … < R·B
	// NormRounds are the first token of each round of the norm's sums.
	NormRounds []int
	CPT        int // consecutive quant chunks a thread takes (Quant): 1 or 2
	WT, XT     string
	XW         int
	BX         int
	BNW        int
	BOut       int
	Quant      bool
	QW, QU     QuantFn
	QBS        int // values per block (Quant)
	QBW        int // u32 words per block on the device (Quant)
	// Wide: 16-byte loads of quants (lib_quant's quant_quad: Q4_K and Q5_K,
	// with Quant), the quants at vec4 QOff of a block; Q5 for Q5_K.
	Wide bool
	Q5   bool
	QOff int
	// Q8Sum (Q8_0, one token): each block's d applied to its sums of q·x,
	// quants read without shifts, CPT chunks a run; off with
	// QWGPU_TUNE=matvec_qsum=-1.
	Q8Sum bool
	// XReg (block types, one token): the workgroup's WG threads share its R
	// rows, each thread keeping the x of its units of 32 values in registers
	// for all of them; XG rows' loads are issued together.
	XReg bool
	XG   int
	// XFold (XReg, Q4_K; QWGPU_TUNE=matvec_xfold=1): quants summed unscaled
	// against x scaled to their places, scales applied once a unit.
	XFold bool
	// NRC: the tokens whose sums of x² are reduced per round (NORM): RC, at
	// most B.
	NRC int
	// Red1 (not XReg): each round's partials summed over a group's lanes by
	// one thread an output after one barrier, each thread starting at its
	// own lane (so a warp's reads take 32 banks), instead of through a tree
	// (QWGPU_TUNE=matvec_red1=-1). On the H200 in run 19: 0.6B bf16 x16
	// +41.0% (5,972.8 against 4,236.7 tok/s), Q8_0 tg128 +3.0%, bf16
	// tg128 −0.1% and −0.4% (within its spread).
	Red1 bool
	// PreAdd (Add): each output's old value (the residual) is loaded at the
	// kernel's start by the thread that will write it, not after the
	// reduction: XReg, and Red1 in one round of at most one output a thread.
	PreAdd bool
}

// MaxMatVecBatch is the most tokens one matvec dispatch takes; larger
// batches run through MatMul.
const MaxMatVecBatch = 32

// matvecNormRows is the largest decode batch whose matvecs normalise x
// themselves (Linear.Norm), every workgroup summing each row's x² again;
// larger batches get a standalone rmsnorm dispatch before them instead
// (QWGPU_TUNE=matvec_norm=N moves the line; -1 gives one token standalone
// norms too). At 16 rows the sums read 16
// rows of x a workgroup (64 KiB at 0.6B), as many bytes in all as the
// weights of gate_up: on the H200 in run 17 the standalone norms gave the
// 16-row step +6.9% and +7.0% (two leases), 8 rows +0.2% and 4 rows
// −0.7%, so the line is at 8.
func matvecNormRows() int {
	if tune.matvecNorm > 0 {
		return tune.matvecNorm
	}
	if tune.matvecNorm < 0 {
		return 0 // QWGPU_TUNE=matvec_norm=-1: standalone norms for one token too
	}
	return 8
}

// MatVecFusedNorm says whether a decode step of rows tokens normalises x
// inside its matvecs of dt and cols columns (Linear.Norm) rather than in a standalone
// rmsnorm before them: up to matvecNormRows rows, except one token of the
// x-in-registers layout, whose R rows a workgroup already share each load
// of x and the norm weights, so the dispatch saved costs more than it
// gives (8B Q4_K tg128 on the H200, run 18: 244.2 tok/s with standalone
// norms against 231.9 fused, +5.3%; 0.6B Q8_0 in its own layout lost
// 10.4% by them). QWGPU_TUNE=matvec_norm sets the line for every type.
// (Since run 18 the x-in-registers layout sums x² from its own loads of x
// instead of a pass over the row first; even so the fused norm measured
// −0.4% against standalone norms in run 19, so the line stays.)
func MatVecFusedNorm(dt weights.DType, cols, rows int) bool {
	if tune.matvecNorm == 0 && rows == 1 && xregRows(dt, cols, math.MaxInt) > 0 {
		return false
	}
	return rows <= matvecNormRows()
}

// matvecTargetGroups is the number of workgroups below which the layout
// stops giving a thread group more rows: about two per SM of a large GPU
// (132 on the H200), so that a 1024-row matrix still fills the device; half
// that from 4 tokens on, where each workgroup has B times the work and x
// reads (shared by a group's rows) outnumber weight reads.
const matvecTargetGroups = 256

// matvecLayout picks the layout for a dispatch of rows rows of loads
// loads each (16-byte chunks, quant chunks, quads, Q8_0 groups or
// elements), batch tokens and acc partial sums a row (batch, twice with
// SwiGLU): about per loads per thread (4; fewer for the wide quant loads,
// which carry 16 or 144 bytes), at most 64 threads per row, 256 threads per
// workgroup; a thread group takes two rows (reading x once for both) while
// that leaves at least matvecTargetGroups workgroups and at most 64 partial
// sums a thread, and maxR allows it. With few threads a row (wide loads on
// short rows) the workgroup shrinks, down to 64 threads, until there are
// matvecTargetGroups of them. maxTPR caps the threads a row and wg0 is
// the workgroup's size before that shrinking (matvecVars sets them from
// the H200's measurements). QWGPU_TUNE's matvec_tpr, matvec_rows (R) and
// matvec_wg override.
func matvecLayout(loads, per, maxR, rows, batch, acc, maxTPR, wg0 int) (r, tpr, wg int) {
	tpr = min(maxTPR, nextPow2(ceilDiv(loads, per)))
	if tune.matvecTPR > 0 {
		tpr = tune.matvecTPR
	}
	target := matvecTargetGroups
	if batch >= 4 {
		target /= 2
	}
	wg = wg0
	for per < 4 && wg > 64 && wg > tpr && ceilDiv(rows, wg/tpr) < target {
		wg /= 2
	}
	if tune.matvecWG > 0 {
		wg = tune.matvecWG
	}
	tpr = min(tpr, wg)
	r = 1
	for maxR >= 2*r && 2*r*acc <= 64 && ceilDiv(rows, 2*r*wg/tpr) >= target {
		r *= 2
	}
	if tune.matvecR > 0 {
		r = tune.matvecR
	}
	return r, tpr, wg
}

// matvecRedCap is the most floats the reduction arrays take together: 16
// KiB, the WebGPU default limit (and what most GPUs give a workgroup
// without cutting occupancy), or 256 on GL (smallWorkgroupArrays).
func matvecRedCap(d *gpu.Device) int {
	if smallWorkgroupArrays(d) {
		return 256
	}
	return 4096
}

// checkLinear validates a projection's matrices and activation buffers for
// rows tokens and returns the matrices it reads.
func checkLinear(d *gpu.Device, l *Linear, rows int) ([]*Matrix, error) {
	mats := []*Matrix{l.W}
	if err := l.W.check("weight"); err != nil {
		return nil, err
	}
	switch l.Epi {
	case Store, Add:
		if l.Up != nil {
			return nil, fmt.Errorf("an up matrix needs the swiglu epilogue")
		}
	case SwiGLU:
		if err := l.Up.check("up"); err != nil {
			return nil, err
		}
		if l.Up.Rows != l.W.Rows || l.Up.Cols != l.W.Cols || !slices.Equal(l.Up.Types(), l.W.Types()) {
			return nil, fmt.Errorf("gate [%d, %d] %v and up [%d, %d] %v differ", l.W.Rows, l.W.Cols, l.W.DType, l.Up.Rows, l.Up.Cols, l.Up.DType)
		}
		mats = append(mats, l.Up)
	default:
		return nil, fmt.Errorf("unknown epilogue %q", l.Epi)
	}
	if l.OutStride == 0 {
		l.OutStride = l.W.Rows
	}
	if l.OutStride < l.W.Rows {
		return nil, fmt.Errorf("output stride %d is shorter than the %d rows of %s", l.OutStride, l.W.Rows, l.W.Label)
	}
	if err := need(d, "x", l.X, uint64(rows*l.W.Cols)*4); err != nil {
		return nil, err
	}
	if err := need(d, "out", l.Out, uint64((rows-1)*l.OutStride+l.W.Rows)*4); err != nil {
		return nil, err
	}
	if l.Norm != nil {
		if err := need(d, "norm weight", l.Norm, uint64(l.W.Cols)*4); err != nil {
			return nil, err
		}
	}
	bound := []*gpu.Buffer{l.X, l.Out, l.Norm}
	for _, m := range mats {
		for _, p := range m.Parts {
			bound = append(bound, p.Buf)
		}
	}
	if err := noAlias([]*gpu.Buffer{l.Out}, bound...); err != nil {
		return nil, err
	}
	return mats, nil
}

// MatVec prepares out[b] = epilogue(x[b] · Wᵀ) for the first batch rows of
// x (1 ≤ batch ≤ MaxMatVecBatch), one op per part of W: a decode step's
// projection, reading each weight once for every token of the batch.
func MatVec(s *gpu.Scope, l Linear, batch int) ([]*gpu.Op, error) {
	d := s.Device()
	fail := func(err error) ([]*gpu.Op, error) {
		return nil, fmt.Errorf("matvec %s: %w", l.Label, err)
	}
	if batch < 1 || batch > MaxMatVecBatch {
		return fail(fmt.Errorf("batch of %d tokens, want 1..%d", batch, MaxMatVecBatch))
	}
	mats, err := checkLinear(d, &l, batch)
	if err != nil {
		return fail(err)
	}
	w := l.W
	cols := w.Cols
	var ops []*gpu.Op
	for _, seg := range segments(mats...) {
		if l.Epi == SwiGLU && seg.dts[0] != seg.dts[1] {
			return fail(fmt.Errorf("rows %d… are %v in the gate matrix and %v in the up matrix", seg.r0, seg.dts[0], seg.dts[1]))
		}
		kern, rowsPerGroup, err := matvecKernel(d, seg.dts[0], l.Epi, l.Norm != nil, batch, cols, seg.n)
		if err != nil {
			return fail(err)
		}
		params := matvecParams{Rows: uint32(seg.n), Cols: uint32(cols), WRow0: uint32(seg.bufRow[0]),
			Out0: uint32(seg.r0), OutStride: uint32(l.OutStride), Eps: l.Eps}
		bs := []gpu.Binding{gpu.Bind(seg.bufs[0])}
		if l.Epi == SwiGLU {
			params.URow0 = uint32(seg.bufRow[1])
			bs = append(bs, gpu.Bind(seg.bufs[1]))
		}
		bs = append(bs, gpu.Binding{Buf: l.X, Size: uint64(batch*cols) * 4})
		if l.Norm != nil {
			bs = append(bs, gpu.Binding{Buf: l.Norm, Size: uint64(cols) * 4})
		}
		bs = append(bs, gpu.Binding{Buf: l.Out, Size: uint64((batch-1)*l.OutStride+w.Rows) * 4})
		o, err := s.Op(kern, gpu.Dispatch{
			Label:    fmt.Sprintf("%s[%d:%d]", l.Label, seg.r0, seg.r0+seg.n),
			Role:     l.Role,
			Params:   params,
			Bindings: bs,
			Groups:   gpu.Groups1D(ceilDiv(seg.n, rowsPerGroup)),
		})
		if err != nil {
			return fail(err)
		}
		ops = append(ops, o)
	}
	return ops, nil
}

// matvecKernel builds the matvec kernel for a dispatch of rows rows of dt
// and reports the rows each workgroup takes.
func matvecKernel(d *gpu.Device, dt weights.DType, epi Epilogue, norm bool, batch, cols, rows int) (*gpu.Kernel, int, error) {
	v, err := matvecVars(dt, epi, norm, batch, cols, rows, matvecRedCap(d))
	if err != nil {
		return nil, 0, err
	}
	red := 4 * v.RC * v.WG
	if epi == SwiGLU {
		red *= 2
	}
	if err := checkWorkgroup(d, "matvec", red, v.BOut); err != nil {
		return nil, 0, err
	}
	if uint64(v.WG) > uint64(d.Limits().MaxComputeInvocationsPerWorkgroup) {
		return nil, 0, fmt.Errorf("%d threads a workgroup, the device allows %d", v.WG, d.Limits().MaxComputeInvocationsPerWorkgroup)
	}
	kern, err := d.Kernel("matvec", v)
	return kern, v.Rows, err
}

// matvecWideBatch is the largest batch the wide quant loads (Q4_K and Q5_K
// quads) take: past it the word chunks do, since the wide
// kernels' bodies, written out for every token, take minutes to compile on
// Mesa's GL at B = 20–32, and a batch shares each weight read among its
// tokens anyway.
const matvecWideBatch = 8

// quadLoads reports whether the matvec reads dt's quants 16 bytes at a
// time (lib_quant's quant_quad): Q4_K and Q5_K, whose blocks are whole
// vec4s with their quants aligned, unless QWGPU_TUNE=matvec_wide=-1 asks
// for the word chunks.
func quadLoads(dt weights.DType) bool {
	return (dt == weights.Q4_K || dt == weights.Q5_K) && tune.matvecWide >= 0
}

// setQuads makes v read Q4_K or Q5_K in quads (lib_quant's 16-byte loads),
// their quants from vec4 QOff of a block: after Q4_K's two header vec4s,
// after Q5_K's header and fifth bits.
func (v *MatVecVars) setQuads(dt weights.DType) {
	v.Wide, v.WT, v.Q5, v.QOff = true, "vec4<u32>", dt == weights.Q5_K, 2
	if v.Q5 {
		v.QOff = 3
	}
}

// matvecVars fills wgsl/matvec.wgsl's template for a dispatch of rows
// rows of weights of dt, with reduction arrays of at most redCap floats.
func matvecVars(dt weights.DType, epi Epilogue, norm bool, batch, cols, rows, redCap int) (MatVecVars, error) {
	// Red1 where the reduction arrays hold 16 KiB: with GL's 256 floats a
	// round takes one partial, and Mesa's GL compiler took 270 s over the
	// written-out rounds of a 26-token SwiGLU (104 rounds; the tree's
	// rounds compile in seconds). QWGPU_TUNE=matvec_red1=1 forces it.
	v := MatVecVars{DType: dt.String(), Epi: epi, Norm: norm, B: batch, WT: "f32", XT: "f32", XW: 1, BX: 2,
		Red1: tune.matvecRed1 > 0 || tune.matvecRed1 == 0 && redCap >= 4096}
	loads, per, maxR := cols, 4, 2
	if tune.matvecMaxR > 0 {
		maxR = tune.matvecMaxR
	}
	maxTPR, wg0 := 64, 256
	switch {
	case dt.IsQuantized():
		// chunks of 8 values, one word of quants each
		v.Quant, v.WT, v.XT, v.XW = true, "u32", "vec4<f32>", 4
		v.QBS, v.QBW = quantShape(dt)
		v.QW, v.QU = QuantFn{Fmt: v.DType, Arr: "w"}, QuantFn{Fmt: v.DType, Arr: "wu"}
		if quadLoads(dt) && batch <= matvecWideBatch {
			// quads of 32 values, one vec4<u32> of quants each
			v.setQuads(dt)
			loads, per = cols/32, 2
			if batch == 1 {
				// 128-thread workgroups: on the H200 in run 16, 8B Q4_K tg128
				// +2.6% against 256 (205.3 vs 200.2, one call)
				wg0 = 128
			}
			break
		}
		v.CPT = 1
		if tune.matvecCPT > 0 {
			v.CPT = tune.matvecCPT
		}
		// One-token Q8_0: d applied to each block's sums (on the H200 in run
		// 15, tg128 +1.6% at 0.6B; runs of 2 and 4 chunks lost 6% and 30%).
		v.Q8Sum = dt == weights.Q8_0 && batch == 1 && tune.matvecQSum >= 0
		if v.CPT != 1 && v.CPT != 2 {
			return v, fmt.Errorf("bad layout: %d chunks a thread, want 1 or 2", v.CPT)
		}
		loads = cols / 8 / v.CPT
	case vecLoads(dt, cols) && dt == weights.F32:
		v.Vec, v.WT, v.XT, v.XW = true, "vec4<f32>", "vec4<f32>", 4
		loads = cols / 4
	case vecLoads(dt, cols):
		v.Vec, v.WT, v.XT, v.XW = true, "vec4<u32>", "vec4<f32>", 4
		loads = cols / 8
	case dt != weights.F32:
		v.WT = "u32"
	}
	if v.Vec && batch == 1 && rows >= 4096 {
		// 32 threads a row where there are rows enough to fill the device
		// with them: the 8B bf16 tg128 +6.6% against 64 in runs 14 and 16
		// (164.2 vs 154.0 in run 16; −1.3% in run 13), where the 0.6B shape,
		// whose 1,024-row matrices it would starve, lost 1.0% (run 16)
		maxTPR = 32
	}
	acc, arrays := batch, 1
	if epi == SwiGLU {
		acc, arrays = 2*batch, 2
	}
	if v.Quant && batch == 1 && xregRows(dt, cols, rows) > 0 {
		return matvecXRegVars(v, dt, epi, norm, cols, rows, arrays, redCap)
	}
	v.R, v.TPR, v.WG = matvecLayout(loads, per, maxR, rows, batch, acc, maxTPR, wg0)
	if v.R < 1 || v.R > 8 || v.TPR < 1 || v.TPR&(v.TPR-1) != 0 || v.WG&(v.WG-1) != 0 || v.WG%v.TPR != 0 {
		return v, fmt.Errorf("bad layout: %d rows of %d threads a group, %d threads a workgroup (R ≤ 8; powers of two)", v.R, v.TPR, v.WG)
	}
	v.Rows = v.R * v.WG / v.TPR
	// Partial sums reduced per round: as many as fit in redCap floats (all
	// of a thread's if they do), at least one.
	v.RC = max(1, min(max(v.R*batch, batch), redCap/(v.WG*arrays)))
	for i := 0; i < v.R*batch; i += v.RC {
		v.Rounds = append(v.Rounds, i)
	}
	return matvecBindings(v, epi, norm), nil
}

// matvecBindings completes v with the norm's rounds and the binding numbers.
func matvecBindings(v MatVecVars, epi Epilogue, norm bool) MatVecVars {
	v.PreAdd = epi == Add && (v.XReg || v.Red1 && len(v.Rounds) == 1 && v.RC <= v.TPR)
	v.NRC = min(v.RC, v.B)
	for b := 0; norm && b < v.B; b += v.NRC {
		v.NormRounds = append(v.NormRounds, b)
	}
	if epi == SwiGLU {
		v.BX = 3
	}
	v.BNW, v.BOut = v.BX+1, v.BX+1
	if norm {
		v.BOut++
	}
	return v
}

// xregRows is the rows a workgroup of the x-in-registers matvec
// (MatVecVars.XReg) for one token of dt and rows of cols values, 0 where
// the other layouts serve: Q4_K rows of 2,048 values or more by default,
// 4 rows (on the H200 in run 18, with its quants summed unscaled, XFold,
// and standalone norms: 8B tg128 +16.9% and +16.2% on the quads in two
// leases; R = 8 +10.2%, R = 2 −8%, R = 16 −33%; 1.7B +0.4%, and 0.6B
// −5.9% with its 1,024-wide rows in 32-thread workgroups); other block
// types only through QWGPU_TUNE=matvec_xreg=R, which takes every row
// length (0.6B Q8_0 lost 6.7% at R = 4) and dispatch of rows rows
// (within matvec_mincols and matvec_minrows, past which the default
// holds); matvec_xreg=-1 turns it off.
func xregRows(dt weights.DType, cols, rows int) int {
	switch {
	case tune.matvecXReg > 0 && tuneApplies(cols, rows):
		return tune.matvecXReg
	case tune.matvecXReg >= 0 && dt == weights.Q4_K && cols >= 2048:
		return 4
	}
	return 0
}

// tuneApplies says whether the matvec_xreg override reaches a dispatch of
// rows rows of cols values (matvec_minrows, matvec_mincols).
func tuneApplies(cols, rows int) bool {
	return rows >= tune.matvecMinRows && cols >= tune.matvecMinCols
}

// matvecXRegVars lays out the x-in-registers matvec (MatVecVars.XReg) of a
// block type for one token: xregRows rows a workgroup, of
// 128 threads (fewer for rows of fewer than 128 units of 32 values, or as
// the reduction arrays' redCap floats require), matvec_xg rows' loads
// issued together (4 by default, at most R). Q4_K and Q5_K read quads
// (Wide), Q8_0 applies each block's d to its sums (Q8Sum, unless
// matvec_qsum=-1), the other types read lib_quant's units of 32 values;
// Q4_K sums its quants unscaled (XFold) unless matvec_xfold=-1.
func matvecXRegVars(v MatVecVars, dt weights.DType, epi Epilogue, norm bool, cols, rows, arrays, redCap int) (MatVecVars, error) {
	v.XReg, v.CPT, v.Q8Sum = true, 1, dt == weights.Q8_0 && tune.matvecQSum >= 0
	if quadLoads(dt) {
		v.setQuads(dt)
		v.XFold = dt == weights.Q4_K && tune.matvecXFold >= 0
	}
	units := cols / 32
	v.R, v.WG = xregRows(dt, cols, rows), 128
	for v.WG > 32 && v.WG/2 >= units {
		v.WG /= 2
	}
	if tune.matvecWG > 0 {
		v.WG = tune.matvecWG
	}
	for v.WG > 32 && v.R*v.WG*arrays > redCap {
		v.WG /= 2
	}
	v.XG = min(4, v.R)
	if tune.matvecXG > 0 {
		v.XG = tune.matvecXG
	}
	if v.R*v.WG*arrays > redCap || v.WG&(v.WG-1) != 0 || v.R > v.WG || v.WG%v.R != 0 || v.R%v.XG != 0 {
		return v, fmt.Errorf("bad layout: %d rows of %d threads (%d rows' loads together), reduction arrays of at most %d floats (rows a power of two, at most the threads; a multiple of the rows together)", v.R, v.WG, v.XG, redCap)
	}
	v.TPR, v.Rows, v.RC = v.WG, v.R, v.R
	return matvecBindings(v, epi, norm), nil
}
