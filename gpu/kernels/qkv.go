package kernels

import (
	"fmt"

	"github.com/qwgpu/qwgpu/gpu"
	"github.com/qwgpu/qwgpu/weights"
)

// QKVNormRope describes Qwen3 attention's input stage for the rows of a
// step: per head, q and k are RMS-normalised over head_dim with q_norm and
// k_norm and then rotated (RoPE, rotate-half form) at the row's position;
// q goes to Q, k and v to the row's (slot, position) in Cache.
//
// Two variants:
//   - decode (QKVDecode): one token; the kernel also projects x with
//     W = [q_proj; k_proj; v_proj], one workgroup per head, so that the
//     norm needs no second pass.
//   - rows (QKVRows): the step's rows, already projected into QKV (by a
//     matmul in prefill or a batched matvec in batched decode).
type QKVNormRope struct {
	Shape AttentionShape
	// X is the layer input [Hidden] f32 after input_layernorm, or with
	// XNorm set the raw layer input (decode only).
	X *gpu.Buffer
	// XNorm, if set, is input_layernorm's weight [Hidden] f32: the decode
	// kernel normalises X itself (every workgroup sums X², a few KiB from
	// cache), which saves the rmsnorm dispatch in front. It binds a ninth
	// storage buffer, above WebGPU's guaranteed 8: devices with 8 get an
	// error and keep the rmsnorm.
	XNorm *gpu.Buffer
	// W is [q_proj; k_proj; v_proj] stacked by rows (decode only), in one
	// part (Qwen3-8B's is 50 MB in bf16; Slice views are accepted).
	W *Matrix
	// QKV is [MaxRows, QKVDim] f32: the projected rows (rows variant only).
	QKV   *gpu.Buffer
	QNorm *gpu.Buffer // [HeadDim] f32
	KNorm *gpu.Buffer // [HeadDim] f32
	Rope  *RopeTables
	Q     *gpu.Buffer // [MaxRows, NHeads·HeadDim] f32, written
	Cache *KVCache
	Step  *gpu.Buffer
	// MaxRows is the most rows of a step (decode: 1).
	MaxRows int
	Eps     float32
	Label   string
	Role    string
}

// QKVVars are wgsl/qkv_norm_rope.wgsl's template variables.
type QKVVars struct {
	HD, HALF, NQ, NKV, NH3, KVDIM, SINOFF, P2, CTX, WG, MaxRows int
	PREFILL, NORM                                               bool
	// KV is the cache's element type (lib_kv), KVWORD the WGSL type of
	// one cache word: f32, or u32 holding two 16-bit values.
	KV, KVWORD string
	// decode only
	TPR, RPP, RPT, UPR, RS, ROW0, REDSIZE, XW, HIDDEN int
	UNIT, WTYPE, XTYPE, XOP                           string
}

// qkvParams mirrors Params in wgsl/qkv_norm_rope.wgsl.
type qkvParams struct {
	Eps float32 // rms_norm_eps
	_   [3]uint32
}

// qkvWG is the decode kernel's workgroup size: 512 threads a head (on the
// H200 in run 14, tg128 +1.0% against 256, and 1,024 −9%), 256 on GL
// (qkvWGGL), whose big workgroup arrays compile slowly. qkvMaxTPR bounds
// the threads that share one weight row (32 of them read 512 contiguous
// bytes a step; their partial sums take HeadDim·33 floats of workgroup
// memory, so GL gets 2).
const (
	qkvWG       = 512
	qkvWGGL     = 256
	qkvMaxTPR   = 32
	qkvMaxTPRGL = 2
)

// common checks what both variants share and fills the norm and RoPE
// stage's variables.
func (a *QKVNormRope) common(d *gpu.Device) (QKVVars, error) {
	s := a.Shape
	if err := s.validate(); err != nil {
		return QKVVars{}, err
	}
	if a.Rope == nil {
		return QKVVars{}, fmt.Errorf("nil rope tables")
	}
	if a.Rope.HeadDim != s.HeadDim {
		return QKVVars{}, fmt.Errorf("rope tables for head_dim %d, want %d", a.Rope.HeadDim, s.HeadDim)
	}
	if err := a.Cache.check(d, s); err != nil {
		return QKVVars{}, err
	}
	if a.MaxRows < 1 {
		return QKVVars{}, fmt.Errorf("%d rows", a.MaxRows)
	}
	hdBytes := uint64(s.HeadDim) * 4
	for _, c := range []struct {
		what string
		b    *gpu.Buffer
		size uint64
	}{{"q_norm", a.QNorm, hdBytes}, {"k_norm", a.KNorm, hdBytes}, {"rope", a.Rope.Buf, uint64(a.Rope.MaxPos) * hdBytes},
		{"q", a.Q, uint64(a.MaxRows*s.QDim()) * 4}, {"step", a.Step, StepBytes(a.MaxRows)}} {
		if err := need(d, c.what, c.b, c.size); err != nil {
			return QKVVars{}, err
		}
	}
	half := s.HeadDim / 2
	return QKVVars{HD: s.HeadDim, HALF: half, NQ: s.NHeads, NKV: s.NKV, NH3: s.NHeads + 2*s.NKV, KVDIM: s.KVDim(),
		SINOFF: a.Rope.MaxPos * half, P2: nextPow2(half), CTX: a.Cache.Ctx, MaxRows: a.MaxRows,
		KV: kvName(a.Cache.DType), KVWORD: map[bool]string{false: "f32", true: "u32"}[a.Cache.DType != weights.F32]}, nil
}

// qkvUnit is how the decode variant loads weights: one unit of bytes bytes
// (WGSL type wtype) a load, against x declared as array<xtype> and read as
// one xop per unit.
type qkvUnit struct {
	name, wtype, xtype, xop string
	bytes                   int
}

// qkvUnitFor picks 16-byte units where a row of hidden values of dt is a
// whole number of them, else one word.
func qkvUnitFor(dt weights.DType, hidden int) qkvUnit {
	switch {
	case dt == weights.F32 && hidden%4 == 0:
		return qkvUnit{"f32x4", "vec4<f32>", "vec4<f32>", "vec4<f32>", 16}
	case dt == weights.F32:
		return qkvUnit{"f32", "f32", "f32", "f32", 4}
	case dt == weights.BF16 && hidden%8 == 0:
		return qkvUnit{"bf16x8", "vec4<u32>", "vec4<f32>", "X8", 16}
	case dt == weights.BF16:
		return qkvUnit{"bf16x2", "u32", "f32", "vec2<f32>", 4}
	case hidden%8 == 0:
		return qkvUnit{"f16x8", "vec4<u32>", "vec4<f32>", "X8", 16}
	}
	return qkvUnit{"f16x2", "u32", "f32", "vec2<f32>", 4}
}

// QKVDecode prepares the fused decode stage for one token (step row 0):
// the projections (float32 sums), the head norms and RoPE in one dispatch
// of one workgroup per head of q, k and v.
func QKVDecode(s *gpu.Scope, a QKVNormRope) (*gpu.Op, error) {
	d := s.Device()
	fail := func(err error) (*gpu.Op, error) {
		return nil, fmt.Errorf("qkv_norm_rope %s: %w", a.Label, err)
	}
	if a.MaxRows != 1 {
		return fail(fmt.Errorf("the decode variant takes one row, got %d", a.MaxRows))
	}
	v, err := a.common(d)
	if err != nil {
		return fail(err)
	}
	sh, w := a.Shape, a.W
	if sh.Hidden <= 0 {
		return fail(fmt.Errorf("hidden size %d", sh.Hidden))
	}
	if err := need(d, "x", a.X, uint64(sh.Hidden)*4); err != nil {
		return fail(err)
	}
	switch {
	case w == nil:
		return fail(fmt.Errorf("nil weight matrix"))
	case w.Rows != sh.QKVDim() || w.Cols != sh.Hidden:
		return fail(fmt.Errorf("weight %s is [%d, %d], want [%d, %d]", w.Label, w.Rows, w.Cols, sh.QKVDim(), sh.Hidden))
	case w.DType == 0 || w.DType.IsQuantized():
		return fail(fmt.Errorf("weight %s: the fused kernel reads f32, bf16 or f16, not %v: project with MatVec and use QKVRows", w.Label, w.Types()))
	case len(w.Parts) != 1:
		return fail(fmt.Errorf("weight %s is in %d parts; the kernel binds one", w.Label, len(w.Parts)))
	case w.DType != weights.F32 && sh.Hidden%2 != 0:
		return fail(fmt.Errorf("weight %s: %s rows of odd length %d do not start on a u32", w.Label, w.DType, sh.Hidden))
	}
	if err := w.check("weight"); err != nil {
		return fail(err)
	}
	part := w.Parts[0]
	written := []*gpu.Buffer{a.Q, a.Cache.K, a.Cache.V}
	if err := noAlias(written, a.X, part.Buf, a.QNorm, a.KNorm, a.Rope.Buf, a.Q, a.Cache.K, a.Cache.V, a.XNorm); err != nil {
		return fail(err)
	}
	storage := 8
	if a.XNorm != nil {
		storage = 9
		if err := need(d, "x norm weight", a.XNorm, uint64(sh.Hidden)*4); err != nil {
			return fail(err)
		}
	}
	rb := uint64(rowBytes(w.DType, sh.Hidden))
	lu := qkvUnitFor(w.DType, sh.Hidden)
	v.UPR = int(rb) / lu.bytes
	maxTPR := qkvMaxTPR
	switch {
	case tune.qkvTPR > 0:
		maxTPR = tune.qkvTPR
	case smallWorkgroupArrays(d):
		maxTPR = qkvMaxTPRGL
	}
	// The partial sums take HeadDim·(tpr+1) floats: halve tpr until they
	// fit next to the head's values (head_dim 256 with 32 KiB: 16).
	tpr := 1
	for tpr*2 <= min(v.UPR, maxTPR) && 4*(sh.HeadDim*(tpr*2+1)+sh.HeadDim+v.P2) <= int(d.Limits().MaxComputeWorkgroupStorageSize) {
		tpr *= 2
	}
	// A Slice view starts BufRow rows into its buffer.
	if uint64(part.BufRow)*rb%uint64(lu.bytes) != 0 {
		return fail(fmt.Errorf("weight %s: a view starting at row %d is not aligned to the %d-byte loads", w.Label, part.BufRow, lu.bytes))
	}
	wg := qkvWG
	switch {
	case tune.qkvWG > 0:
		wg = tune.qkvWG
	case smallWorkgroupArrays(d):
		wg = qkvWGGL
	default:
		for wg > 256 && uint64(wg) > uint64(d.Limits().MaxComputeInvocationsPerWorkgroup) {
			wg /= 2 // a power of two, as the x norm's tree needs
		}
	}
	if wg < sh.HeadDim || uint64(wg) > uint64(d.Limits().MaxComputeInvocationsPerWorkgroup) {
		return fail(fmt.Errorf("workgroup of %d threads: want at least head_dim %d and at most the device's %d", wg, sh.HeadDim, d.Limits().MaxComputeInvocationsPerWorkgroup))
	}
	if a.XNorm != nil && wg&(wg-1) != 0 {
		return fail(fmt.Errorf("the x norm needs a power-of-two workgroup, got %d", wg))
	}
	rpp := wg / tpr
	v.UNIT, v.WTYPE, v.XTYPE, v.XOP = lu.name, lu.wtype, lu.xtype, lu.xop
	v.TPR, v.WG, v.RPP, v.RPT, v.RS = tpr, wg, rpp, ceilDiv(sh.HeadDim, rpp), tpr+1
	v.ROW0 = part.BufRow
	v.REDSIZE = max(sh.HeadDim*(tpr+1), wg) // the x norm's tree uses it too
	v.NORM, v.HIDDEN, v.XW = a.XNorm != nil, sh.Hidden, 1
	if lu.xtype == "vec4<f32>" {
		v.XW = 4
	}
	if err := checkWorkgroup(d, "qkv_norm_rope", 4*(v.REDSIZE+sh.HeadDim+v.P2), storage); err != nil {
		return fail(err)
	}
	k, err := d.Kernel("qkv_norm_rope", v)
	if err != nil {
		return fail(err)
	}
	bs := []gpu.Binding{{Buf: a.X, Size: uint64(sh.Hidden) * 4}, gpu.Bind(part.Buf), gpu.Bind(a.QNorm), gpu.Bind(a.KNorm),
		gpu.Bind(a.Rope.Buf), {Buf: a.Q, Size: uint64(sh.QDim()) * 4}, gpu.Bind(a.Cache.K), gpu.Bind(a.Cache.V)}
	if a.XNorm != nil {
		bs = append(bs, gpu.Binding{Buf: a.XNorm, Size: uint64(sh.Hidden) * 4})
	}
	bs = append(bs, gpu.Bind(a.Step))
	return s.Op(k, gpu.Dispatch{
		Label:    a.Label,
		Role:     a.Role,
		Params:   qkvParams{Eps: a.Eps},
		Bindings: bs,
		Groups:   gpu.Groups{X: uint32(v.NH3), Y: 1, Z: 1},
	})
}

// QKVRows prepares the rows variant: the norms and RoPE of the step's
// already projected rows, one workgroup per (row, head).
func QKVRows(s *gpu.Scope, a QKVNormRope) (*gpu.Op, error) {
	d := s.Device()
	fail := func(err error) (*gpu.Op, error) {
		return nil, fmt.Errorf("qkv_norm_rope rows %s: %w", a.Label, err)
	}
	v, err := a.common(d)
	if err != nil {
		return fail(err)
	}
	qkvBytes := uint64(a.MaxRows*a.Shape.QKVDim()) * 4
	if err := need(d, "qkv", a.QKV, qkvBytes); err != nil {
		return fail(err)
	}
	if err := noAlias([]*gpu.Buffer{a.Q, a.Cache.K, a.Cache.V},
		a.QKV, a.QNorm, a.KNorm, a.Rope.Buf, a.Q, a.Cache.K, a.Cache.V); err != nil {
		return fail(err)
	}
	v.PREFILL, v.WG = true, v.P2
	if err := checkWorkgroup(d, "qkv_norm_rope", 4*(a.Shape.HeadDim+v.P2), 7); err != nil {
		return fail(err)
	}
	k, err := d.Kernel("qkv_norm_rope", v)
	if err != nil {
		return fail(err)
	}
	nh3 := v.NH3
	return s.Op(k, gpu.Dispatch{
		Label:  a.Label,
		Role:   a.Role,
		Params: qkvParams{Eps: a.Eps},
		Bindings: []gpu.Binding{{Buf: a.QKV, Size: qkvBytes}, gpu.Bind(a.QNorm), gpu.Bind(a.KNorm), gpu.Bind(a.Rope.Buf),
			{Buf: a.Q, Size: uint64(a.MaxRows*a.Shape.QDim()) * 4}, gpu.Bind(a.Cache.K), gpu.Bind(a.Cache.V), gpu.Bind(a.Step)},
		Groups: gpu.Groups1D(a.MaxRows * nh3),
		Size:   func(e gpu.Extent) gpu.Groups { return gpu.Groups1D(e.Rows * nh3) },
	})
}
