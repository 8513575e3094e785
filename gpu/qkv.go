package gpu

import (
	"fmt"
)

// RopeTables are the rotary-embedding tables on the device, one buffer
// [2, MaxPos, HeadDim/2] f32: the cos table, then the sin table. Upload the
// CPU reference's tables (qwen3.NewRope's Cos and Sin) so that the GPU
// rotates by exactly the values the reference uses; no kernel computes a
// cos or sin itself.
type RopeTables struct {
	Buf     *Buffer
	HeadDim int
	MaxPos  int
}

// UploadRope uploads cos and sin, each [maxPos, headDim/2] f32.
func (d *Device) UploadRope(label string, headDim, maxPos int, cos, sin []float32) (*RopeTables, error) {
	half := headDim / 2
	if headDim <= 0 || headDim%2 != 0 || maxPos <= 0 {
		return nil, fmt.Errorf("gpu: rope %q: head_dim %d must be even and positive, positions %d positive", label, headDim, maxPos)
	}
	if len(cos) != maxPos*half || len(sin) != maxPos*half {
		return nil, fmt.Errorf("gpu: rope %q: cos has %d and sin %d values, want %d·%d = %d each", label, len(cos), len(sin), maxPos, half, maxPos*half)
	}
	buf, err := d.UploadF32(label, append(append(make([]float32, 0, 2*len(cos)), cos...), sin...))
	if err != nil {
		return nil, err
	}
	return &RopeTables{Buf: buf, HeadDim: headDim, MaxPos: maxPos}, nil
}

// Release frees the tables' buffer.
func (r *RopeTables) Release() {
	if r != nil {
		r.Buf.Release()
	}
}

// qkvParams mirrors Params in wgsl/qkv_norm_rope.wgsl.
type qkvParams struct {
	Pos uint32  // decode: the token's position; prefill: the first row's
	T   uint32  // prefill: rows; decode: 1
	Eps float32 // rms_norm_eps
	Pad uint32
}

// qkvWG is the decode kernel's workgroup size; qkvMaxTPR bounds the threads
// that share one weight row (32 of them read 512 contiguous bytes a step;
// their partial sums take HeadDim·33 floats of workgroup memory, so GL,
// where big workgroup arrays compile slowly, gets 2).
const (
	qkvWG       = 256
	qkvMaxTPR   = 32
	qkvMaxTPRGL = 2
)

// qkvCommon checks what both variants share and returns the template
// variables of the norm and RoPE stage.
func qkvCommon(d *Device, s AttentionShape, qnorm, knorm *Buffer, rope *RopeTables, cache *KVCache) (map[string]any, int, error) {
	if err := s.validate(); err != nil {
		return nil, 0, err
	}
	hdBytes := uint64(s.HeadDim) * 4
	if err := attnCheckBuf(d, qnorm, hdBytes, "q_norm"); err != nil {
		return nil, 0, err
	}
	if err := attnCheckBuf(d, knorm, hdBytes, "k_norm"); err != nil {
		return nil, 0, err
	}
	if rope == nil {
		return nil, 0, fmt.Errorf("nil rope tables")
	}
	if rope.HeadDim != s.HeadDim {
		return nil, 0, fmt.Errorf("rope tables for head_dim %d, want %d", rope.HeadDim, s.HeadDim)
	}
	if err := attnCheckBuf(d, rope.Buf, uint64(rope.MaxPos)*hdBytes, "rope"); err != nil {
		return nil, 0, err
	}
	if err := cache.check(d, s); err != nil {
		return nil, 0, err
	}
	half := s.HeadDim / 2
	p2 := 1
	for p2 < half {
		p2 *= 2
	}
	vars := map[string]any{
		"HD": s.HeadDim, "HALF": half, "NQ": s.NHeads, "NKV": s.NKV,
		"NH3": s.NHeads + 2*s.NKV, "KVDIM": s.KVDim(), "SINOFF": rope.MaxPos * half, "P2": p2,
	}
	// Positions are bounded by both the cache and the tables.
	return vars, min(cache.Ctx, rope.MaxPos), nil
}

// qkvUnit is how qkv_norm_rope decode loads weights: one unit of bytes
// bytes (WGSL type wtype) a load, against x declared as array<xtype> and
// read as one xop per unit.
type qkvUnit struct {
	name, wtype, xtype, xop string
	bytes                   int
}

// qkvUnitFor picks 16-byte units where a row of hidden values of dt is a
// whole number of them, else one word.
func qkvUnitFor(dt DType, hidden int) qkvUnit {
	switch {
	case dt == F32 && hidden%4 == 0:
		return qkvUnit{"f32x4", "vec4<f32>", "vec4<f32>", "vec4<f32>", 16}
	case dt == F32:
		return qkvUnit{"f32", "f32", "f32", "f32", 4}
	case hidden%8 == 0:
		return qkvUnit{dt.String() + "x8", "vec4<u32>", "vec4<f32>", "X8", 16}
	}
	return qkvUnit{dt.String() + "x2", "u32", "f32", "vec2<f32>", 4}
}

// QKVDecodeArgs are the buffers of the fused decode stage.
type QKVDecodeArgs struct {
	// X is [Hidden] f32: the layer input after input_layernorm, or, with
	// XNorm set, the layer input itself.
	X *Buffer
	// XNorm, if set, is input_layernorm's weight [Hidden] f32: the kernel
	// then RMS-normalises X itself (every workgroup sums X², a few KiB from
	// cache), which saves the standalone rmsnorm dispatch in front. It
	// binds a ninth storage buffer, above WebGPU's guaranteed 8; devices
	// that allow only 8 get an error and the caller keeps the rmsnorm.
	XNorm *Buffer
	// W is q_proj, k_proj and v_proj stacked by rows,
	// [(NHeads+2·NKV)·HeadDim, Hidden], F32, BF16 or F16, in a single part
	// (Qwen3-8B's is 50 MB in bf16; Slice views are accepted). Hidden must
	// be even for BF16 and F16.
	W     *Matrix
	QNorm *Buffer // [HeadDim] f32: q_norm weight
	KNorm *Buffer // [HeadDim] f32: k_norm weight
	Rope  *RopeTables
	Q     *Buffer  // [NHeads·HeadDim] f32, written
	Cache *KVCache // row pos of K and V written
	Eps   float64  // rms_norm_eps
}

// QKVDecodeOp is the prepared qkv_norm_rope decode dispatch of one layer.
// SetPos before each step; record with Recorder.Run(op.Op()).
type QKVDecodeOp struct {
	op     *Op
	maxPos int
	params qkvParams
}

// QKVNormRope prepares the fused attention input stage for one token: the
// projections q = Wq·x, k = Wk·x, v = Wv·x (float32 sums), the per-head
// RMSNorm of q and k with q_norm and k_norm, RoPE at the position given to
// SetPos, q written to a.Q and k, v to row pos of a.Cache. One workgroup
// owns one head, so the norm needs no second pass.
func (d *Device) QKVNormRope(s AttentionShape, a QKVDecodeArgs) (*QKVDecodeOp, error) {
	fail := func(err error) (*QKVDecodeOp, error) {
		return nil, fmt.Errorf("gpu: qkv_norm_rope: %w", err)
	}
	vars, maxPos, err := qkvCommon(d, s, a.QNorm, a.KNorm, a.Rope, a.Cache)
	if err != nil {
		return fail(err)
	}
	if s.Hidden <= 0 {
		return fail(fmt.Errorf("hidden size %d", s.Hidden))
	}
	if err := attnCheckBuf(d, a.X, uint64(s.Hidden)*4, "x"); err != nil {
		return fail(err)
	}
	if err := attnCheckBuf(d, a.Q, uint64(s.QDim())*4, "q"); err != nil {
		return fail(err)
	}
	w := a.W
	switch {
	case w == nil:
		return fail(fmt.Errorf("nil weight matrix"))
	case w.Rows != s.QKVDim() || w.Cols != s.Hidden:
		return fail(fmt.Errorf("weight %q is [%d, %d], want [%d, %d]", w.Label, w.Rows, w.Cols, s.QKVDim(), s.Hidden))
	case len(w.Parts) != 1:
		return fail(fmt.Errorf("weight %q is in %d parts; the kernel binds one", w.Label, len(w.Parts)))
	case w.DType != F32 && s.Hidden%2 != 0:
		return fail(fmt.Errorf("weight %q: %s rows of odd length %d do not start on a u32", w.Label, w.DType, s.Hidden))
	}
	part := w.Parts[0]
	if err := attnNoAlias([]*Buffer{a.Q, a.Cache.K, a.Cache.V},
		a.X, part.Buf, a.QNorm, a.KNorm, a.Rope.Buf, a.Q, a.Cache.K, a.Cache.V); err != nil {
		return fail(err)
	}
	storage := 8
	if a.XNorm != nil {
		storage = 9
		if err := attnCheckBuf(d, a.XNorm, uint64(s.Hidden)*4, "x norm weight"); err != nil {
			return fail(err)
		}
		if err := attnNoAlias([]*Buffer{a.Q, a.Cache.K, a.Cache.V}, a.XNorm); err != nil {
			return fail(err)
		}
	}
	rowBytes := uint64(s.Hidden) * uint64(w.DType.Size())
	if err := attnCheckBuf(d, part.Buf, uint64(part.BufRow+part.Rows)*rowBytes, "weight"); err != nil {
		return fail(err)
	}

	lu := qkvUnitFor(w.DType, s.Hidden)
	upr := int(rowBytes) / lu.bytes
	maxTPR := qkvMaxTPR
	switch {
	case attnTune.qkvTPR > 0:
		maxTPR = attnTune.qkvTPR
	case attnSmallWorkgroupArrays(d):
		maxTPR = qkvMaxTPRGL
	}
	// The partial sums take HeadDim·(tpr+1) floats: halve tpr until they
	// fit next to the head's values (head_dim 256 with 32 KiB: 16).
	p2 := vars["P2"].(int)
	tpr := 1
	for tpr*2 <= min(upr, maxTPR) && 4*(s.HeadDim*(tpr*2+1)+s.HeadDim+p2) <= int(d.limits.MaxComputeWorkgroupStorageSize) {
		tpr *= 2
	}
	// A Slice view starts BufRow rows into its buffer.
	if uint64(part.BufRow)*rowBytes%uint64(lu.bytes) != 0 {
		return fail(fmt.Errorf("weight %q: a view starting at row %d is not aligned to the %d-byte loads", w.Label, part.BufRow, lu.bytes))
	}
	vars["PREFILL"] = false
	vars["UNIT"], vars["WTYPE"], vars["XTYPE"], vars["XOP"] = lu.name, lu.wtype, lu.xtype, lu.xop
	wg := qkvWG
	if attnTune.qkvWG > 0 {
		wg = attnTune.qkvWG
	}
	if wg < s.HeadDim || uint64(wg) > uint64(d.limits.MaxComputeInvocationsPerWorkgroup) {
		return fail(fmt.Errorf("workgroup of %d threads: want at least head_dim %d and at most the device's %d", wg, s.HeadDim, d.limits.MaxComputeInvocationsPerWorkgroup))
	}
	vars["UPR"], vars["TPR"], vars["WG"] = upr, tpr, wg
	rpp := wg / tpr
	vars["RPP"], vars["RPT"], vars["RS"] = rpp, (s.HeadDim+rpp-1)/rpp, tpr+1
	vars["ROW0"] = part.BufRow
	vars["REDSIZE"] = max(s.HeadDim*(tpr+1), wg) // the x norm's tree uses it too
	wgBytes := 4 * (vars["REDSIZE"].(int) + s.HeadDim + p2)
	if err := attnCheckWorkgroup(d, "qkv_norm_rope", wgBytes, storage); err != nil {
		return fail(err)
	}
	vars["NORM"] = a.XNorm != nil
	vars["XW"] = 1
	if lu.xtype == "vec4<f32>" {
		vars["XW"] = 4
	}
	vars["HIDDEN"] = s.Hidden
	if a.XNorm != nil && wg&(wg-1) != 0 {
		return fail(fmt.Errorf("the x norm needs a power-of-two workgroup, got %d", wg))
	}
	k, err := d.Kernel("qkv_norm_rope", vars)
	if err != nil {
		return fail(err)
	}
	o := &QKVDecodeOp{maxPos: maxPos, params: qkvParams{T: 1, Eps: float32(a.Eps)}}
	bindings := []Binding{Bind(a.X), Bind(part.Buf), Bind(a.QNorm), Bind(a.KNorm), Bind(a.Rope.Buf), Bind(a.Q), Bind(a.Cache.K), Bind(a.Cache.V)}
	if a.XNorm != nil {
		bindings = append(bindings, Bind(a.XNorm))
	}
	o.op, err = k.Op("qkv_norm_rope", o.params, Groups{X: uint32(s.NHeads + 2*s.NKV), Y: 1, Z: 1}, bindings...)
	if err != nil {
		return fail(err)
	}
	return o, nil
}

// SetPos sets the position of the next step's token, 0 ≤ pos < min(cache
// Ctx, rope MaxPos).
func (o *QKVDecodeOp) SetPos(pos int) error {
	if pos < 0 || pos >= o.maxPos {
		return fmt.Errorf("gpu: qkv_norm_rope: position %d outside [0, %d)", pos, o.maxPos)
	}
	o.params.Pos = uint32(pos)
	return o.op.SetParams(o.params)
}

// Op returns the dispatch.
func (o *QKVDecodeOp) Op() *Op { return o.op }

// Release frees the op.
func (o *QKVDecodeOp) Release() {
	if o != nil && o.op != nil {
		o.op.Release()
	}
}

// QKVPrefillArgs are the buffers of the prefill variant.
type QKVPrefillArgs struct {
	QKV   *Buffer // [MaxT, (NHeads+2·NKV)·HeadDim] f32: x·[Wq; Wk; Wv]ᵀ, e.g. from a tiled matmul
	QNorm *Buffer // [HeadDim] f32
	KNorm *Buffer // [HeadDim] f32
	Rope  *RopeTables
	Q     *Buffer  // [MaxT, NHeads·HeadDim] f32, written
	Cache *KVCache // rows pos0 .. pos0+T-1 of K and V written
	MaxT  int      // the most rows one Set may ask for
	Eps   float64  // rms_norm_eps
}

// QKVPrefillOp is the prepared qkv_norm_rope prefill dispatch of one layer.
// Set before each step; record with Recorder.Run(op.Op()).
type QKVPrefillOp struct {
	op     *Op
	nh3    int
	maxPos int
	maxT   int
	params qkvParams
}

// QKVNormRopePrefill prepares the prefill variant of QKVNormRope: it takes
// already projected rows and applies the per-head norms and RoPE at
// positions pos0 .. pos0+T-1, writing q rows and cache rows pos0 ...
func (d *Device) QKVNormRopePrefill(s AttentionShape, a QKVPrefillArgs) (*QKVPrefillOp, error) {
	fail := func(err error) (*QKVPrefillOp, error) {
		return nil, fmt.Errorf("gpu: qkv_norm_rope prefill: %w", err)
	}
	vars, maxPos, err := qkvCommon(d, s, a.QNorm, a.KNorm, a.Rope, a.Cache)
	if err != nil {
		return fail(err)
	}
	if a.MaxT <= 0 || a.MaxT > maxPos {
		return fail(fmt.Errorf("MaxT %d outside [1, %d]", a.MaxT, maxPos))
	}
	if err := attnCheckBuf(d, a.QKV, uint64(a.MaxT)*uint64(s.QKVDim())*4, "qkv"); err != nil {
		return fail(err)
	}
	if err := attnCheckBuf(d, a.Q, uint64(a.MaxT)*uint64(s.QDim())*4, "q"); err != nil {
		return fail(err)
	}
	if err := attnNoAlias([]*Buffer{a.Q, a.Cache.K, a.Cache.V},
		a.QKV, a.QNorm, a.KNorm, a.Rope.Buf, a.Q, a.Cache.K, a.Cache.V); err != nil {
		return fail(err)
	}
	vars["PREFILL"] = true
	vars["NORM"] = false
	vars["WG"] = vars["P2"]
	wgBytes := 4 * (s.HeadDim + vars["P2"].(int))
	if err := attnCheckWorkgroup(d, "qkv_norm_rope", wgBytes, 7); err != nil {
		return fail(err)
	}
	k, err := d.Kernel("qkv_norm_rope", vars)
	if err != nil {
		return fail(err)
	}
	o := &QKVPrefillOp{nh3: s.NHeads + 2*s.NKV, maxPos: maxPos, maxT: a.MaxT, params: qkvParams{T: 1, Eps: float32(a.Eps)}}
	o.op, err = k.Op("qkv_norm_rope.prefill", o.params, Groups1D(o.nh3),
		Bind(a.QKV), Bind(a.QNorm), Bind(a.KNorm), Bind(a.Rope.Buf), Bind(a.Q), Bind(a.Cache.K), Bind(a.Cache.V))
	if err != nil {
		return fail(err)
	}
	return o, nil
}

// Set sets the next step's rows: t tokens at positions pos0 .. pos0+t-1,
// 1 ≤ t ≤ MaxT, pos0+t ≤ min(cache Ctx, rope MaxPos).
func (o *QKVPrefillOp) Set(pos0, t int) error {
	if t < 1 || t > o.maxT || pos0 < 0 || pos0+t > o.maxPos {
		return fmt.Errorf("gpu: qkv_norm_rope prefill: %d rows at position %d (at most %d rows, %d positions)", t, pos0, o.maxT, o.maxPos)
	}
	o.params.Pos, o.params.T = uint32(pos0), uint32(t)
	if err := o.op.SetParams(o.params); err != nil {
		return err
	}
	return o.op.SetGroups(Groups1D(t * o.nh3))
}

// Op returns the dispatch.
func (o *QKVPrefillOp) Op() *Op { return o.op }

// Release frees the op.
func (o *QKVPrefillOp) Release() {
	if o != nil && o.op != nil {
		o.op.Release()
	}
}
