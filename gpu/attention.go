package gpu

import (
	"fmt"
	"math"
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

// KVCache is the key and value cache of one layer: two buffers of Ctx rows,
// each row the NKV·HeadDim float32 values of one position, kv head after kv
// head ([Ctx, NKV·HeadDim] f32, row-major). One buffer per layer and kind
// keeps every binding small (Qwen3-0.6B at 4096 positions: 16 MiB each) and
// needs no offset alignment.
type KVCache struct {
	K, V    *Buffer
	Ctx     int
	NKV     int
	HeadDim int
}

// NewKVCache allocates a zero-filled cache of ctx positions.
func (d *Device) NewKVCache(label string, ctx, nKV, headDim int) (*KVCache, error) {
	if ctx <= 0 || nKV <= 0 || headDim <= 0 {
		return nil, fmt.Errorf("gpu: kv cache %q: ctx %d, kv heads %d, head_dim %d must be positive", label, ctx, nKV, headDim)
	}
	size := uint64(ctx) * uint64(nKV*headDim) * 4
	if lim := d.limits.MaxStorageBufferBindingSize; size > lim {
		return nil, fmt.Errorf("gpu: kv cache %q: %d positions take %d bytes a buffer, past the device's %d-byte binding limit", label, ctx, size, lim)
	}
	k, err := d.NewBuffer(label+".k", size)
	if err != nil {
		return nil, err
	}
	v, err := d.NewBuffer(label+".v", size)
	if err != nil {
		k.Release()
		return nil, err
	}
	return &KVCache{K: k, V: v, Ctx: ctx, NKV: nKV, HeadDim: headDim}, nil
}

// Release frees the cache's buffers.
func (c *KVCache) Release() {
	if c == nil {
		return
	}
	c.K.Release()
	c.V.Release()
}

// check reports whether c holds the kv heads of shape s on device d.
func (c *KVCache) check(d *Device, s AttentionShape) error {
	if c == nil {
		return fmt.Errorf("nil kv cache")
	}
	if c.NKV != s.NKV || c.HeadDim != s.HeadDim {
		return fmt.Errorf("kv cache has %d kv heads of %d, want %d of %d", c.NKV, c.HeadDim, s.NKV, s.HeadDim)
	}
	if c.Ctx <= 0 {
		return fmt.Errorf("kv cache of %d positions", c.Ctx)
	}
	want := uint64(c.Ctx) * uint64(s.KVDim()) * 4
	if err := attnCheckBuf(d, c.K, want, "kv cache K"); err != nil {
		return err
	}
	return attnCheckBuf(d, c.V, want, "kv cache V")
}

// attnCheckBuf reports why b cannot serve as a binding of at least size bytes.
func attnCheckBuf(d *Device, b *Buffer, size uint64, what string) error {
	if err := b.usable(d); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if b.Size() < size {
		return fmt.Errorf("%s %q: %d bytes, want at least %d", what, b.Label(), b.Size(), size)
	}
	if lim := d.limits.MaxStorageBufferBindingSize; size > lim {
		return fmt.Errorf("%s: %d bytes past the device's %d-byte binding limit", what, size, lim)
	}
	return nil
}

// attnNoAlias refuses a written buffer that is also bound elsewhere in the
// same dispatch (WebGPU forbids a writable binding aliasing another one);
// read-only bindings may share a buffer.
func attnNoAlias(written []*Buffer, bound ...*Buffer) error {
	for _, w := range written {
		n := 0
		for _, b := range bound {
			if b == w {
				n++
			}
		}
		if n > 1 {
			return fmt.Errorf("buffer %q is written and bound %d times; an output may not alias another binding", w.Label(), n)
		}
	}
	return nil
}

// attnCheckWorkgroup reports whether a kernel's workgroup arrays and
// storage-buffer count fit the device.
func attnCheckWorkgroup(d *Device, kernel string, wgBytes, storageBuffers int) error {
	if lim := d.limits.MaxComputeWorkgroupStorageSize; uint64(wgBytes) > uint64(lim) {
		return fmt.Errorf("%s needs %d bytes of workgroup memory, the device has %d", kernel, wgBytes, lim)
	}
	if lim := d.limits.MaxStorageBuffersPerShaderStage; uint64(storageBuffers) > uint64(lim) {
		return fmt.Errorf("%s binds %d storage buffers, the device allows %d", kernel, storageBuffers, lim)
	}
	return nil
}

// attnParams mirrors Params in wgsl/attention_decode.wgsl and
// wgsl/attention_combine.wgsl.
type attnParams struct {
	N       uint32  // cache rows to attend to
	NChunks uint32  // ⌈N / chunk⌉
	Scale   float32 // 1 / sqrt(head_dim)
	Pad     uint32
}

// Decode attention splits the cache rows into chunks, one workgroup of one
// thread per row for each chunk and kv head. On an H100 (Qwen3-0.6B shape)
// chunks of 128 rows were the fastest from 1024 positions up (4096: 29 µs
// against 35 µs for 64 and 42 µs for 256, both dispatches) and no slower at
// 512; the partials the combine step reads are under 1% of the cache bytes.
// GL gets 32 (or HeadDim/4 if more): its workgroup arrays must stay small
// (attnSmallWorkgroupArrays).
const (
	decodeChunk   = 128
	decodeChunkGL = 32
	combineWG     = 64
)

// attnTune overrides the layouts of this file's kernels and of qkv.go's for
// benchmarks that sweep them; zero values keep the defaults.
var attnTune struct {
	decodeChunk int          // rows per attention_decode workgroup
	qkvTPR      int          // threads per weight row in qkv_norm_rope decode
	qkvWG       int          // qkv_norm_rope decode workgroup size
	prefill     prefillTiles // attention_prefill tiles
}

// attnDecodeChunk returns the rows per decode attention workgroup on d for
// head dimension hd.
func attnDecodeChunk(d *Device, hd int) int {
	switch {
	case attnTune.decodeChunk > 0:
		return attnTune.decodeChunk
	case attnSmallWorkgroupArrays(d):
		return max(decodeChunkGL, nextPow2(hd/4))
	}
	return decodeChunk
}

// AttentionDecodeArgs are the buffers of decode attention.
type AttentionDecodeArgs struct {
	Q     *Buffer  // [NHeads·HeadDim] f32: the token's query (after norm and RoPE)
	Cache *KVCache // the layer's cache; rows [0, n) are read
	Out   *Buffer  // [NHeads·HeadDim] f32: the attention output (before o_proj)
	// Scratch holds the per-chunk partial results between the two
	// dispatches: at least Device.AttentionDecodeScratchBytes bytes. Layers
	// that run one after another in a step may share one. nil allocates one
	// for the op.
	Scratch *Buffer
}

// AttentionDecodeScratchBytes is the scratch size decode attention on d
// needs for shape s and a cache of ctx positions.
func (d *Device) AttentionDecodeScratchBytes(s AttentionShape, ctx int) uint64 {
	chunk := attnDecodeChunk(d, s.HeadDim)
	chunks := (ctx + chunk - 1) / chunk
	return uint64(s.NHeads) * uint64(chunks) * uint64(s.HeadDim/4+1) * 16
}

// AttentionDecodeOp is prepared decode attention for one layer: two
// dispatches, attention_decode (per chunk of cache rows) and
// attention_combine. SetLen before each step; record both with
// Recorder.Run(op.Ops()...).
type AttentionDecodeOp struct {
	decode, combine *Op
	scratch         *Buffer // owned, when the caller gave none
	nKV             int
	ctx             int
	chunk           int // rows per workgroup of the first dispatch
	params          attnParams
}

// AttentionDecode prepares causal grouped-query attention of one query
// token against the first n rows of a.Cache (n is set per step with
// SetLen): query head h reads kv head h / (NHeads/NKV), scores are scaled
// by 1/sqrt(HeadDim), and the softmax runs in float32 with the maximum
// subtracted.
func (d *Device) AttentionDecode(s AttentionShape, a AttentionDecodeArgs) (*AttentionDecodeOp, error) {
	fail := func(err error) (*AttentionDecodeOp, error) {
		return nil, fmt.Errorf("gpu: attention decode: %w", err)
	}
	if err := s.validate(); err != nil {
		return fail(err)
	}
	if err := a.Cache.check(d, s); err != nil {
		return fail(err)
	}
	qBytes := uint64(s.QDim()) * 4
	if err := attnCheckBuf(d, a.Q, qBytes, "q"); err != nil {
		return fail(err)
	}
	if err := attnCheckBuf(d, a.Out, qBytes, "out"); err != nil {
		return fail(err)
	}
	ctx := a.Cache.Ctx
	scratchBytes := d.AttentionDecodeScratchBytes(s, ctx)
	g := s.NHeads / s.NKV
	d4 := s.HeadDim / 4
	chunk := attnDecodeChunk(d, s.HeadDim)
	if chunk < d4 || chunk&(chunk-1) != 0 {
		return fail(fmt.Errorf("chunk of %d rows: want a power of two of at least %d (the vec4 columns)", chunk, d4))
	}
	vars := map[string]any{
		"D4": d4, "G": g, "KVD4": s.KVDim() / 4, "CH": chunk, "SLICES": chunk / d4,
		"MAXCH": (ctx + chunk - 1) / chunk, "SCSIZE": g * chunk, "LSIZE": g * (chunk / d4),
	}
	wgBytes := 4*g*chunk + 16*chunk + 4*g*(chunk/d4)
	if err := attnCheckWorkgroup(d, "attention_decode", wgBytes, 4); err != nil {
		return fail(err)
	}

	if err := attnNoAlias([]*Buffer{a.Out, a.Scratch}, a.Q, a.Cache.K, a.Cache.V, a.Out, a.Scratch); err != nil {
		return fail(err)
	}
	op := &AttentionDecodeOp{nKV: s.NKV, ctx: ctx, chunk: chunk}
	scratch := a.Scratch
	if scratch == nil {
		var err error
		if scratch, err = d.NewBuffer("attention.scratch", scratchBytes); err != nil {
			return fail(err)
		}
		op.scratch = scratch
	}
	if err := attnCheckBuf(d, scratch, scratchBytes, "scratch"); err != nil {
		op.Release()
		return fail(err)
	}

	op.params = attnParams{N: 1, NChunks: 1, Scale: float32(1 / math.Sqrt(float64(s.HeadDim)))}
	k, err := d.Kernel("attention_decode", vars)
	if err != nil {
		op.Release()
		return fail(err)
	}
	op.decode, err = k.Op("attention_decode", op.params, Groups{X: 1, Y: uint32(s.NKV), Z: 1},
		Bind(a.Q), Bind(a.Cache.K), Bind(a.Cache.V), Bind(scratch))
	if err != nil {
		op.Release()
		return fail(err)
	}
	kc, err := d.Kernel("attention_combine", map[string]any{"D4": d4, "MAXCH": vars["MAXCH"], "WG": combineWG})
	if err != nil {
		op.Release()
		return fail(err)
	}
	op.combine, err = kc.Op("attention_combine", op.params, Groups{X: uint32(s.NHeads), Y: 1, Z: 1},
		Bind(scratch), Bind(a.Out))
	if err != nil {
		op.Release()
		return fail(err)
	}
	return op, nil
}

// SetLen sets the number of cache rows the next step attends to: the
// position of the current token plus one, 1 ≤ n ≤ the cache's Ctx. It
// writes both params uniforms and sizes the first dispatch to ⌈n/chunk⌉
// workgroups per kv head. Sizing the dispatch per step costs nothing, since
// the recorder encodes each step anew; a fixed grid of ⌈Ctx/chunk⌉ with
// early exits would only add idle workgroups (a 40960-position cache at 100
// tokens: 320 per kv head launched for 1 used).
func (o *AttentionDecodeOp) SetLen(n int) error {
	if n < 1 || n > o.ctx {
		return fmt.Errorf("gpu: attention decode: length %d outside [1, %d]", n, o.ctx)
	}
	o.params.N = uint32(n)
	o.params.NChunks = uint32((n + o.chunk - 1) / o.chunk)
	if err := o.decode.SetParams(o.params); err != nil {
		return err
	}
	if err := o.combine.SetParams(o.params); err != nil {
		return err
	}
	return o.decode.SetGroups(Groups{X: o.params.NChunks, Y: uint32(o.nKV), Z: 1})
}

// Ops returns the two dispatches in the order they must run.
func (o *AttentionDecodeOp) Ops() []*Op { return []*Op{o.decode, o.combine} }

// Release frees the ops and the scratch buffer the op allocated itself.
func (o *AttentionDecodeOp) Release() {
	if o == nil {
		return
	}
	if o.decode != nil {
		o.decode.Release()
	}
	if o.combine != nil {
		o.combine.Release()
	}
	if o.scratch != nil {
		o.scratch.Release()
	}
}

// prefillParams mirrors Params in wgsl/attention_prefill.wgsl.
type prefillParams struct {
	Pos0  uint32  // position of the first query token
	T     uint32  // query tokens
	Scale float32 // 1 / sqrt(head_dim)
	Pad   uint32
}

// attnSmallWorkgroupArrays reports whether kernels on d must keep their
// workgroup arrays to a few hundred elements. naga 0.13's GLSL backend
// zero-initialises each workgroup array with a constructor of one argument
// per element, which Mesa compiles in time growing with the square of the
// length (llvmpipe, at the first dispatch: 256 floats 0.2 s, 1024 floats
// 2.9 s, 2048 floats 18 s). SPIR-V, MSL and HLSL zero them in one step.
func attnSmallWorkgroupArrays(d *Device) bool { return d.info.Backend == "gl" }

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
func prefillTilesFor(d *Device, hd int) prefillTiles {
	switch {
	case attnTune.prefill.bq > 0:
		return attnTune.prefill
	case attnSmallWorkgroupArrays(d):
		return prefillTiles{bq: 2, lanes: 4, bk: 4}
	case hd > 128:
		return prefillTiles{bq: 8, lanes: 8, bk: 16}
	}
	return prefillTiles{bq: 16, lanes: 8, bk: 16}
}

// AttentionPrefillArgs are the buffers of prefill attention.
type AttentionPrefillArgs struct {
	Q     *Buffer  // [MaxT, NHeads·HeadDim] f32: the tokens' queries (after norm and RoPE)
	Cache *KVCache // the layer's cache, rows [0, pos0+T) already written
	Out   *Buffer  // [MaxT, NHeads·HeadDim] f32
	MaxT  int      // the most tokens one Set may ask for
}

// AttentionPrefillOp is prepared prefill attention for one layer. Set
// before each step; record with Recorder.Run(op.Op()).
type AttentionPrefillOp struct {
	op     *Op
	s      AttentionShape
	ctx    int
	maxT   int
	bq     int // query rows per workgroup
	params prefillParams
}

// AttentionPrefill prepares causal grouped-query attention for T query
// tokens at positions pos0 .. pos0+T-1 (set per step with Set) against
// cache rows [0, pos0+T): token t sees rows [0, pos0+t]. The softmax is
// the online (flash) form in float32.
func (d *Device) AttentionPrefill(s AttentionShape, a AttentionPrefillArgs) (*AttentionPrefillOp, error) {
	fail := func(err error) (*AttentionPrefillOp, error) {
		return nil, fmt.Errorf("gpu: attention prefill: %w", err)
	}
	if err := s.validate(); err != nil {
		return fail(err)
	}
	if err := a.Cache.check(d, s); err != nil {
		return fail(err)
	}
	if a.MaxT <= 0 || a.MaxT > a.Cache.Ctx {
		return fail(fmt.Errorf("MaxT %d outside [1, %d]", a.MaxT, a.Cache.Ctx))
	}
	rowBytes := uint64(a.MaxT) * uint64(s.QDim()) * 4
	if err := attnCheckBuf(d, a.Q, rowBytes, "q"); err != nil {
		return fail(err)
	}
	if err := attnCheckBuf(d, a.Out, rowBytes, "out"); err != nil {
		return fail(err)
	}
	if err := attnNoAlias([]*Buffer{a.Out}, a.Q, a.Cache.K, a.Cache.V, a.Out); err != nil {
		return fail(err)
	}
	d4 := s.HeadDim / 4
	tl := prefillTilesFor(d, s.HeadDim)
	vars := map[string]any{
		"D4": d4, "G": s.NHeads / s.NKV, "QD4": s.QDim() / 4, "KVD4": s.KVDim() / 4,
		"BQ": tl.bq, "BK": tl.bk, "LANES": tl.lanes, "CPL": (d4 + tl.lanes - 1) / tl.lanes,
		"WG": tl.bq * tl.lanes, "KPL": tl.bk / tl.lanes, "ST": d4 + 1,
		"QSSIZE": tl.bq * (d4 + 1), "KVSIZE": tl.bk * (d4 + 1), "SSIZE": tl.bq * tl.bk,
	}
	wgBytes := 16*tl.bq*(d4+1) + 16*tl.bk*(d4+1) + 2*4*tl.bq*tl.bk
	if err := attnCheckWorkgroup(d, "attention_prefill", wgBytes, 4); err != nil {
		return fail(err)
	}
	k, err := d.Kernel("attention_prefill", vars)
	if err != nil {
		return fail(err)
	}
	o := &AttentionPrefillOp{s: s, ctx: a.Cache.Ctx, maxT: a.MaxT, bq: tl.bq}
	if x := o.groups(a.MaxT).X; x > d.limits.MaxComputeWorkgroupsPerDimension {
		return fail(fmt.Errorf("MaxT %d needs %d workgroups along x, past the device's %d", a.MaxT, x, d.limits.MaxComputeWorkgroupsPerDimension))
	}
	o.params = prefillParams{Pos0: 0, T: 1, Scale: float32(1 / math.Sqrt(float64(s.HeadDim)))}
	o.op, err = k.Op("attention_prefill", o.params, o.groups(1),
		Bind(a.Q), Bind(a.Cache.K), Bind(a.Cache.V), Bind(a.Out))
	if err != nil {
		return fail(err)
	}
	return o, nil
}

func (o *AttentionPrefillOp) groups(t int) Groups {
	rows := t * (o.s.NHeads / o.s.NKV)
	return Groups{X: uint32((rows + o.bq - 1) / o.bq), Y: uint32(o.s.NKV), Z: 1}
}

// Set sets the next step's tokens: t tokens at positions pos0 .. pos0+t-1,
// 1 ≤ t ≤ MaxT and pos0+t ≤ the cache's Ctx.
func (o *AttentionPrefillOp) Set(pos0, t int) error {
	if t < 1 || t > o.maxT || pos0 < 0 || pos0+t > o.ctx {
		return fmt.Errorf("gpu: attention prefill: %d tokens at position %d (at most %d tokens, %d positions)", t, pos0, o.maxT, o.ctx)
	}
	o.params.Pos0, o.params.T = uint32(pos0), uint32(t)
	if err := o.op.SetParams(o.params); err != nil {
		return err
	}
	return o.op.SetGroups(o.groups(t))
}

// Op returns the dispatch.
func (o *AttentionPrefillOp) Op() *Op { return o.op }

// Release frees the op.
func (o *AttentionPrefillOp) Release() {
	if o != nil && o.op != nil {
		o.op.Release()
	}
}
