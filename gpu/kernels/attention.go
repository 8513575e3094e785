package kernels

import (
	"fmt"
	"math"

	"github.com/qwgpu/qwgpu/gpu"
	"github.com/qwgpu/qwgpu/weights"
)

// AttentionShape is the attention geometry of one Qwen3 layer (config.json
// names in the comments).
type AttentionShape struct {
	Hidden  int // hidden_size: the length of the layer input (QKVNormRope only)
	NHeads  int // num_attention_heads
	NKV     int // num_key_value_heads
	HeadDim int // head_dim
}

// QDim is the length of one token's query, NHeads·HeadDim.
func (s AttentionShape) QDim() int { return s.NHeads * s.HeadDim }

// KVDim is the length of one cache row, NKV·HeadDim.
func (s AttentionShape) KVDim() int { return s.NKV * s.HeadDim }

// QKVDim is the length of one projected row of q, k and v stacked,
// (NHeads+2·NKV)·HeadDim.
func (s AttentionShape) QKVDim() int { return (s.NHeads + 2*s.NKV) * s.HeadDim }

// maxAttnHeadDim bounds HeadDim (Qwen3 uses 128): qkv_norm_rope's
// 256-thread workgroup holds one thread per value of a head, and a decode
// chunk spans at least HeadDim/4 rows.
const maxAttnHeadDim = 256

// validate checks the head geometry (Hidden is checked by QKVNormRope).
func (s AttentionShape) validate() error {
	switch {
	case s.NHeads <= 0 || s.NKV <= 0 || s.HeadDim <= 0:
		return fmt.Errorf("heads %d, kv heads %d, head_dim %d must be positive", s.NHeads, s.NKV, s.HeadDim)
	case s.NHeads%s.NKV != 0:
		return fmt.Errorf("%d heads are not a multiple of %d kv heads", s.NHeads, s.NKV)
	case s.HeadDim%4 != 0 || s.HeadDim > maxAttnHeadDim:
		return fmt.Errorf("head_dim %d: the kernels need a multiple of 4, at most %d", s.HeadDim, maxAttnHeadDim)
	}
	return nil
}

// KVCache is the key and value cache of one layer: Slots sequences of Ctx
// rows each, a row being the NKV·HeadDim values of one position, kv head
// after kv head ([Slots, Ctx, NKV·HeadDim] per buffer), in DType: F32, or
// F16 or BF16 packed two to a u32 word (element 2i in the low half, as in
// wgsl/lib_kv.wgsl). Kernels find a token's row from its step row's slot
// and position.
type KVCache struct {
	K, V    *gpu.Buffer
	Slots   int
	Ctx     int
	NKV     int
	HeadDim int
	DType   weights.DType
}

// KVDTypes are the cache element types, by the name the engine's options
// and the CLI's --kv-dtype use.
var KVDTypes = map[string]weights.DType{"f32": weights.F32, "f16": weights.F16, "bf16": weights.BF16}

// kvName is the template name of a cache element type (lib_kv's KV).
func kvName(dt weights.DType) string {
	switch dt {
	case weights.F16:
		return "f16"
	case weights.BF16:
		return "bf16"
	}
	return "f32"
}

// kvElemBytes is the size of one cached value.
func kvElemBytes(dt weights.DType) uint64 {
	if dt == weights.F16 || dt == weights.BF16 {
		return 2
	}
	return 4
}

// checkKVDType reports whether dt can hold a cache of head dimension hd.
func checkKVDType(dt weights.DType, hd int) error {
	switch dt {
	case weights.F32, weights.F16, weights.BF16:
	default:
		return fmt.Errorf("kv cache dtype %v: want F32, F16 or BF16", dt)
	}
	if hd <= 0 || hd%4 != 0 {
		return fmt.Errorf("head_dim %d: the cache is read four values at a time", hd)
	}
	return nil
}

// KVCacheBytes is the size of one of a cache's two buffers.
func KVCacheBytes(slots, ctx, nKV, headDim int, dt weights.DType) uint64 {
	return uint64(slots) * uint64(ctx) * uint64(nKV) * uint64(headDim) * kvElemBytes(dt)
}

// NewKVCache allocates a zero-filled cache of dtype dt in s.
func NewKVCache(s *gpu.Scope, label string, slots, ctx, nKV, headDim int, dt weights.DType) (*KVCache, error) {
	if slots <= 0 || ctx <= 0 || nKV <= 0 || headDim <= 0 {
		return nil, fmt.Errorf("kv cache %s: slots %d, ctx %d, kv heads %d, head_dim %d must be positive", label, slots, ctx, nKV, headDim)
	}
	if err := checkKVDType(dt, headDim); err != nil {
		return nil, fmt.Errorf("kv cache %s: %w", label, err)
	}
	size := KVCacheBytes(slots, ctx, nKV, headDim, dt)
	if lim := s.Device().Limits().MaxStorageBufferBindingSize; size > lim {
		return nil, fmt.Errorf("kv cache %s: %d slots of %d positions take %s a buffer, past the device's %s binding limit",
			label, slots, ctx, weights.HumanBytes(int64(size)), weights.HumanBytes(int64(lim)))
	}
	k, err := s.Buffer(label+".k", size)
	if err != nil {
		return nil, err
	}
	v, err := s.Buffer(label+".v", size)
	if err != nil {
		return nil, err
	}
	return &KVCache{K: k, V: v, Slots: slots, Ctx: ctx, NKV: nKV, HeadDim: headDim, DType: dt}, nil
}

// check reports whether c holds the kv heads of shape s on device d.
func (c *KVCache) check(d *gpu.Device, s AttentionShape) error {
	if c == nil {
		return fmt.Errorf("nil kv cache")
	}
	if c.NKV != s.NKV || c.HeadDim != s.HeadDim {
		return fmt.Errorf("kv cache has %d kv heads of %d, want %d of %d", c.NKV, c.HeadDim, s.NKV, s.HeadDim)
	}
	if err := checkKVDType(c.DType, c.HeadDim); err != nil {
		return err
	}
	want := KVCacheBytes(c.Slots, c.Ctx, c.NKV, c.HeadDim, c.DType)
	if err := need(d, "kv cache K", c.K, want); err != nil {
		return err
	}
	return need(d, "kv cache V", c.V, want)
}

// RopeTables are the rotary-embedding tables on the device, one buffer
// [2, MaxPos, HeadDim/2] f32: the cos table, then the sin table. Upload the
// CPU reference's tables so that the GPU rotates by exactly the values the
// reference uses; no kernel computes a cos or sin itself.
type RopeTables struct {
	Buf     *gpu.Buffer
	HeadDim int
	MaxPos  int
}

// UploadRope uploads cos and sin, each [maxPos, headDim/2] f32.
func UploadRope(s *gpu.Scope, label string, headDim, maxPos int, cos, sin []float32) (*RopeTables, error) {
	half := headDim / 2
	if headDim <= 0 || headDim%2 != 0 || maxPos <= 0 {
		return nil, fmt.Errorf("rope %s: head_dim %d must be even and positive, positions %d positive", label, headDim, maxPos)
	}
	if len(cos) != maxPos*half || len(sin) != maxPos*half {
		return nil, fmt.Errorf("rope %s: cos has %d and sin %d values, want %d·%d = %d each", label, len(cos), len(sin), maxPos, half, maxPos*half)
	}
	buf, err := s.Upload(label, weights.F32Bytes(append(append(make([]float32, 0, 2*len(cos)), cos...), sin...)))
	if err != nil {
		return nil, err
	}
	return &RopeTables{Buf: buf, HeadDim: headDim, MaxPos: maxPos}, nil
}

// Decode attention cuts each sequence's cache rows into at most
// decodeSplits splits (workgroups per kv head and sequence) of whole tiles
// of decodeChunk rows, one thread per row of a tile. On an H100 (Qwen3-0.6B
// shape, one tile per workgroup) tiles of 128 rows were the fastest from
// 1024 positions up (4096: 29 µs against 35 µs for 64 and 42 µs for 256,
// both dispatches) and no slower at 512. Bounding the splits keeps the
// combine short at long contexts (32K positions in one tile per workgroup
// made 256 partials per head, which the old combine walked serially): a
// workgroup walks its tiles with an online softmax instead. The default
// aims at about decodeWorkgroups workgroups per step (QWGPU_TUNE=
// attn_splits=N sets the splits per kv head and sequence): 2048 decoded
// 0.6B at depth 32,768 7% faster than 1024 on the H200 (256 splits of one
// tile each instead of 128 of two; PERFORMANCE.md, run 13), and changes
// nothing below 16K positions, where both give one tile a split. GL gets
// 32-row tiles (or HeadDim/4 if more): its workgroup arrays must stay
// small (smallWorkgroupArrays).
//
// The first dispatch reads keys straight from the cache, attn_lanes
// threads a row, with a reduction tree per tile. A layout that staged each
// tile's keys in workgroup memory and gave each thread whole dot products
// (three barriers a tile instead of about twelve) decoded 0.6B at depth
// 32,768 (f16 cache) 13% slower on the H200 (PERFORMANCE.md, run 11) and
// was removed.
//
// Each thread issues a key row's loads, and up to eight rows' value loads,
// before it uses any (AttentionVars.AUNROLL): 1.86× the tokens per second
// at depth 32,768 on the H200 (0.6B, f16 cache), 12% more at depth 0 (1%
// with an f32 cache; run 13), with the same sums. QWGPU_TUNE=attn_unroll=-1
// measures the loads one after another.
const (
	decodeChunk      = 128
	decodeChunkGL    = 32
	decodeWorkgroups = 2048
	decodeLanes      = 4
	combineWG        = 128
	combineWGGL      = 64
)

// attnDecodeChunk returns the rows per decode attention tile on d for
// head dimension hd.
func attnDecodeChunk(d *gpu.Device, hd int) int {
	switch {
	case tune.decodeChunk > 0:
		return tune.decodeChunk
	case smallWorkgroupArrays(d):
		return max(decodeChunkGL, nextPow2(hd/4))
	}
	return decodeChunk
}

// attnDecodeSplits returns the most splits of one sequence's rows for a
// step of batch sequences of shape s.
func attnDecodeSplits(s AttentionShape, batch int) int {
	if tune.decodeSplits > 0 {
		return tune.decodeSplits
	}
	return max(1, decodeWorkgroups/(s.NKV*batch))
}

// attnDecodeLanes returns the threads that read one key row together in
// attention_decode (1: a thread reads its row alone) for du load units a
// row. Four threads read 64 contiguous bytes of a row, so a warp of 32
// touches 8 rows a load instead of 32; GL keeps 1, its workgroup arrays
// small.
func attnDecodeLanes(d *gpu.Device, du int) int {
	lanes := decodeLanes
	switch {
	case tune.decodeLanes > 0:
		lanes = tune.decodeLanes
	case smallWorkgroupArrays(d):
		lanes = 1
	}
	for lanes > du && lanes > 1 { // no more lanes than units; a power of two stays one
		lanes /= 2
	}
	return lanes
}

// attnSplitLen is the rows of one split in a step whose longest row
// attends to keys rows (keys ≥ 1; split_len in wgsl/attention_decode.wgsl):
// whole tiles of chunk rows, at most splits splits (a step of one tile is
// one split: no combine).
func attnSplitLen(keys, chunk, splits int) int {
	return chunk * ceilDiv(ceilDiv(keys, chunk), splits)
}

// Attention describes causal grouped-query attention of a step's query rows
// against the KV cache: query head h reads kv head h / (NHeads/NKV), scores
// are scaled by 1/sqrt(HeadDim), and the softmax runs in float32 with the
// maximum subtracted. Step row t attends to cache rows [0, pos_t] of its
// slot, which must already hold the keys and values of the step's tokens.
type Attention struct {
	Shape AttentionShape
	Q     *gpu.Buffer // [MaxRows, NHeads·HeadDim] f32: queries after norm and RoPE
	Cache *KVCache
	Out   *gpu.Buffer // [MaxRows, NHeads·HeadDim] f32: the attention output (before o_proj)
	Step  *gpu.Buffer // the step uniform
	// MaxRows is the most rows of a step: decode attention runs exactly
	// that many sequences (its batch), prefill up to that many tokens.
	MaxRows int
	// Scratch holds decode attention's per-chunk partials between its two
	// dispatches: AttentionScratchBytes. Layers that run one after another
	// may share one. Prefill does not use it.
	Scratch *gpu.Buffer
	Label   string
}

// AttentionVars are the template variables of wgsl/attention_decode.wgsl,
// attention_combine.wgsl and attention_prefill.wgsl (each uses its own).
type AttentionVars struct {
	D4, G, NQ, KVD4, CTX, MaxRows int
	// KV is the cache's element type (lib_kv), UNIT the WGSL type of one
	// cache load: vec4<f32>, or vec2<u32> / vec4<u32> of packed halves.
	KV, UNIT string
	// decode and combine
	CH, SLICES, SPLITS, MAXSP, SCSIZE, LSIZE, REDSIZE, WG, DU, UW, KVDU, CSL, KLANES, PSIZE int
	// AUNROLL: decode attention issues a row's key loads, and VU rows'
	// value loads, before using any (KU key units a lane); off with
	// QWGPU_TUNE=attn_unroll=-1.
	AUNROLL bool
	KU, VU  int
	// QREG: with AUNROLL and several lanes a key row, a lane keeps the
	// query values of its key units in registers for the whole split
	// (the same sums; off with QWGPU_TUNE=attn_qreg=-1). On the H200 in run
	// 14: 4B at depth 32K +3.3%, tg128 +0.5 to +2.3%, 0.6B at 32K ±0.
	QREG bool
	// prefill
	QD4, BQ, BK, LANES, CPL, KPL, ST, QSSIZE, KVSIZE, SSIZE int
}

// attnParams mirrors Params in wgsl/attention_decode.wgsl and
// attention_prefill.wgsl.
type attnParams struct {
	Scale float32 // 1 / sqrt(head_dim)
	_     [3]uint32
}

// AttentionScratchBytes is the scratch size decode attention on d needs
// for shape s, a cache of ctx positions and a batch of up to batch rows: a
// record per query head and split. A smaller batch gets more splits per
// row, so the size is the largest over every batch up to batch; one buffer
// serves the decode graphs of every batch size.
func AttentionScratchBytes(d *gpu.Device, s AttentionShape, ctx, batch int) uint64 {
	most := 0
	for b := 1; b <= batch; b++ {
		most = max(most, b*attnMaxSplits(d, s, ctx, b))
	}
	return uint64(most) * uint64(s.NHeads) * uint64(s.HeadDim/4+1) * 16
}

// attnMaxSplits is the most splits a row of a cache of ctx positions gets
// in a step of batch rows: at most the split bound, at most one per tile
// (the number of splits of a step of k keys is not monotonic in k).
func attnMaxSplits(d *gpu.Device, s AttentionShape, ctx, batch int) int {
	return min(attnDecodeSplits(s, batch), ceilDiv(ctx, attnDecodeChunk(d, s.HeadDim)))
}

// check validates what both variants share.
func (a *Attention) check(d *gpu.Device) error {
	s := a.Shape
	if err := s.validate(); err != nil {
		return err
	}
	if err := a.Cache.check(d, s); err != nil {
		return err
	}
	if a.MaxRows < 1 || a.MaxRows > a.Cache.Ctx {
		return fmt.Errorf("%d rows outside [1, %d]", a.MaxRows, a.Cache.Ctx)
	}
	rowsBytes := uint64(a.MaxRows*s.QDim()) * 4
	for _, c := range []struct {
		what string
		b    *gpu.Buffer
		size uint64
	}{{"step", a.Step, StepBytes(a.MaxRows)}, {"q", a.Q, rowsBytes}, {"out", a.Out, rowsBytes}} {
		if err := need(d, c.what, c.b, c.size); err != nil {
			return err
		}
	}
	return noAlias([]*gpu.Buffer{a.Out, a.Scratch}, a.Q, a.Cache.K, a.Cache.V, a.Out, a.Scratch)
}

func (a *Attention) baseVars() AttentionVars {
	s := a.Shape
	v := AttentionVars{D4: s.HeadDim / 4, G: s.NHeads / s.NKV, NQ: s.NHeads, KVD4: s.KVDim() / 4,
		CTX: a.Cache.Ctx, MaxRows: a.MaxRows, KV: kvName(a.Cache.DType), UNIT: "vec4<f32>"}
	if v.KV != "f32" {
		v.UNIT = "vec2<u32>"
	}
	return v
}

// AttentionDecode prepares decode attention for a batch of MaxRows
// sequences, one query token each (step row b: slot and position), as two
// ops: attention_decode over splits of cache rows and attention_combine,
// which merges the splits and is skipped in steps whose longest row fits
// one split. The dispatches are sized per step from step.keys.
func AttentionDecode(s *gpu.Scope, a Attention) ([]*gpu.Op, error) {
	d := s.Device()
	fail := func(err error) ([]*gpu.Op, error) {
		return nil, fmt.Errorf("attention decode %s: %w", a.Label, err)
	}
	if err := a.check(d); err != nil {
		return fail(err)
	}
	sh := a.Shape
	scratchBytes := AttentionScratchBytes(d, sh, a.Cache.Ctx, a.MaxRows)
	if err := need(d, "scratch", a.Scratch, scratchBytes); err != nil {
		return fail(err)
	}
	v := a.baseVars()
	splits := attnDecodeSplits(sh, a.MaxRows)
	// Sixteen-byte loads of eight packed values where a head holds whole
	// ones, else eight bytes (four values).
	v.UW = 1
	if v.KV != "f32" && sh.HeadDim%8 == 0 {
		v.UW, v.UNIT = 2, "vec4<u32>"
	}
	v.DU, v.KVDU = v.D4/v.UW, v.KVD4/v.UW
	v.SPLITS, v.MAXSP = splits, attnMaxSplits(d, sh, a.Cache.Ctx, a.MaxRows)
	if err := lanesDecodeVars(d, &v, attnDecodeChunk(d, sh.HeadDim)); err != nil {
		return fail(err)
	}
	kd, err := d.Kernel("attention_decode", v)
	if err != nil {
		return fail(err)
	}
	chunk := v.CH
	rows := uint64(a.MaxRows*sh.QDim()) * 4
	nkv, batch := uint32(sh.NKV), uint32(a.MaxRows)
	decode, err := s.Op(kd, gpu.Dispatch{
		Label:  a.Label,
		Role:   "attention",
		Params: attnParams{Scale: float32(1 / math.Sqrt(float64(sh.HeadDim)))},
		Bindings: []gpu.Binding{gpu.Bind(a.Step), {Buf: a.Q, Size: rows}, gpu.Bind(a.Cache.K), gpu.Bind(a.Cache.V),
			{Buf: a.Scratch, Size: scratchBytes}, {Buf: a.Out, Size: rows}},
		Groups: gpu.Groups{X: uint32(v.MAXSP), Y: nkv, Z: batch},
		Size: func(e gpu.Extent) gpu.Groups {
			if e.Keys <= 0 {
				return gpu.Groups{}
			}
			return gpu.Groups{X: uint32(ceilDiv(e.Keys, attnSplitLen(e.Keys, chunk, splits))), Y: nkv, Z: batch}
		},
	})
	if err != nil {
		return fail(err)
	}
	v.WG = combineWG
	if smallWorkgroupArrays(d) {
		v.WG = combineWGGL
	}
	v.WG = max(v.WG, nextPow2(v.D4))
	v.CSL = v.WG / v.D4
	kc, err := d.Kernel("attention_combine", v)
	if err != nil {
		return fail(err)
	}
	combine, err := s.Op(kc, gpu.Dispatch{
		Label:    a.Label + " combine",
		Role:     "attention",
		Bindings: []gpu.Binding{gpu.Bind(a.Step), {Buf: a.Scratch, Size: scratchBytes}, {Buf: a.Out, Size: rows}},
		Groups:   gpu.Groups{X: uint32(sh.NHeads), Y: batch, Z: 1},
		Size: func(e gpu.Extent) gpu.Groups {
			if e.Keys <= attnSplitLen(e.Keys, chunk, splits) {
				return gpu.Groups{} // attention_decode wrote the output
			}
			return gpu.Groups{X: uint32(sh.NHeads), Y: batch, Z: 1}
		},
	})
	if err != nil {
		return fail(err)
	}
	return []*gpu.Op{decode, combine}, nil
}

// lanesDecodeVars sets the variables of attention_decode.wgsl for tiles of
// chunk rows in v (which holds the load units), or says why the layout
// cannot take them on d.
func lanesDecodeVars(d *gpu.Device, v *AttentionVars, chunk int) error {
	if chunk < v.D4 || chunk&(chunk-1) != 0 {
		return fmt.Errorf("tile of %d rows: want a power of two of at least %d (the vec4 columns)", chunk, v.D4)
	}
	v.CH, v.SLICES = chunk, chunk/v.DU
	v.SCSIZE, v.LSIZE, v.REDSIZE = v.G*chunk, v.G*v.SLICES, chunk*v.UW
	// Lanes per row: a power of two dividing the tile, halved until the
	// partial sums fit the device's workgroup memory.
	v.KLANES = attnDecodeLanes(d, v.DU)
	if v.KLANES < 1 || v.KLANES&(v.KLANES-1) != 0 || v.KLANES > chunk {
		return fmt.Errorf("%d lanes per key row: want a power of two up to the tile's %d rows", v.KLANES, chunk)
	}
	wgBytes := func() int { return 4*v.SCSIZE + 16*v.REDSIZE + 4*v.LSIZE + 4*v.PSIZE }
	for {
		v.PSIZE = 0
		if v.KLANES > 1 {
			v.PSIZE = v.G * chunk * v.KLANES
		}
		if v.KLANES == 1 || uint64(wgBytes()) <= uint64(d.Limits().MaxComputeWorkgroupStorageSize) {
			break
		}
		v.KLANES /= 2
	}
	if tune.decodeUnroll >= 0 {
		v.AUNROLL, v.KU, v.VU = true, ceilDiv(v.DU, v.KLANES), min(8, ceilDiv(chunk, v.SLICES))
		v.QREG = tune.decodeQReg >= 0 && v.KLANES > 1
	}
	return checkWorkgroup(d, "attention_decode", wgBytes(), 5)
}

// prefillTiles is the tiling of attention_prefill: bq query rows (token ×
// head of a kv group) per workgroup, lanes threads per row, bk keys per tile
// in workgroup memory.
type prefillTiles struct{ bq, lanes, bk int }

// prefillTilesFor picks the tiles for head dimension hd: 16 rows of 8
// threads and 16 keys (19 KiB of workgroup memory at hd 128; on an H100 at
// T = 512 3% faster than 16 × 16 × 32 and 16% faster than 4 × 8 × 8), 8
// rows above hd 128 to stay within 32 KiB, and on GL tiny tiles, which
// compile in 4 s instead of 12 s on llvmpipe (compile time, not run time,
// dominates there).
func prefillTilesFor(d *gpu.Device, hd int) prefillTiles {
	switch {
	case tune.prefillTiles.bq > 0:
		return tune.prefillTiles
	case smallWorkgroupArrays(d):
		return prefillTiles{bq: 2, lanes: 4, bk: 4}
	case hd > 128:
		return prefillTiles{bq: 8, lanes: 8, bk: 16}
	}
	return prefillTiles{bq: 16, lanes: 8, bk: 16}
}

// AttentionPrefill prepares attention for the T = step.rows consecutive
// tokens of one sequence (slot and first position from step row 0): token t
// sees cache rows [0, pos0+t]. The softmax is the online (flash) form in
// float32.
func AttentionPrefill(s *gpu.Scope, a Attention) (*gpu.Op, error) {
	d := s.Device()
	fail := func(err error) (*gpu.Op, error) {
		return nil, fmt.Errorf("attention prefill %s: %w", a.Label, err)
	}
	if err := a.check(d); err != nil {
		return fail(err)
	}
	sh := a.Shape
	tl := prefillTilesFor(d, sh.HeadDim)
	v := a.baseVars()
	v.QD4, v.BQ, v.BK, v.LANES = sh.QDim()/4, tl.bq, tl.bk, tl.lanes
	v.CPL, v.WG, v.KPL, v.ST = ceilDiv(v.D4, tl.lanes), tl.bq*tl.lanes, tl.bk/tl.lanes, v.D4+1
	v.QSSIZE, v.KVSIZE, v.SSIZE = tl.bq*(v.D4+1), tl.bk*(v.D4+1), tl.bq*tl.bk
	if err := checkWorkgroup(d, "attention_prefill", 16*v.QSSIZE+16*v.KVSIZE+2*4*v.SSIZE, 4); err != nil {
		return fail(err)
	}
	groups := func(e gpu.Extent) gpu.Groups {
		return gpu.Groups{X: uint32(ceilDiv(e.Rows*v.G, tl.bq)), Y: uint32(sh.NKV), Z: 1}
	}
	k, err := d.Kernel("attention_prefill", v)
	if err != nil {
		return fail(err)
	}
	rows := uint64(a.MaxRows*sh.QDim()) * 4
	return s.Op(k, gpu.Dispatch{
		Label:    a.Label,
		Role:     "attention",
		Params:   attnParams{Scale: float32(1 / math.Sqrt(float64(sh.HeadDim)))},
		Bindings: []gpu.Binding{gpu.Bind(a.Step), {Buf: a.Q, Size: rows}, gpu.Bind(a.Cache.K), gpu.Bind(a.Cache.V), {Buf: a.Out, Size: rows}},
		Groups:   groups(gpu.Extent{Rows: a.MaxRows}),
		Size:     groups,
	})
}
