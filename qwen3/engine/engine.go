// Package engine runs Qwen3 on a GPU through the kernels of package gpu.
//
// Everything is allocated when the model loads: weights (packed as in the
// checkpoint unless asked otherwise), every activation, the KV cache, and
// the prepared dispatches of a decode step. A decode step is then one
// compute pass of a fixed list of dispatches, one small write of the token
// id and position uniforms, and a read-back of the chosen token id (or of
// the logits when the caller samples on the CPU).
package engine

import (
	"fmt"
	"strings"

	"github.com/qwgpu/qwgpu/gpu"
	"github.com/qwgpu/qwgpu/qwen3"
)

// Options controls how a model is loaded.
type Options struct {
	// Ctx is the number of positions the KV cache holds (0: 4096, bounded
	// by max_position_embeddings).
	Ctx int
	// DType stores the weight matrices as "f32", "bf16" or "f16"; "" or
	// "auto" keeps each tensor's checkpoint dtype.
	DType string
	// PrefillChunk is the most tokens one prefill pass takes (0: 512).
	// Longer prompts run in several passes.
	PrefillChunk int
	// Progress, if set, is called after each tensor is uploaded with the
	// bytes done and the total.
	Progress func(done, total int64)
}

// DefaultCtx is the KV cache length when Options.Ctx is 0.
const DefaultCtx = 4096

// layer holds one decoder layer's weights, cache and prepared dispatches.
type layer struct {
	attnNorm *gpu.Buffer // [hidden] f32, input_layernorm
	qNorm    *gpu.Buffer // [head_dim] f32
	kNorm    *gpu.Buffer // [head_dim] f32
	mlpNorm  *gpu.Buffer // [hidden] f32, post_attention_layernorm
	wqkv     *gpu.Matrix // [(heads+2·kv_heads)·head_dim, hidden]: q_proj, k_proj, v_proj stacked
	wo       *gpu.Matrix // [hidden, heads·head_dim]
	wgateUp  *gpu.Matrix // [2·intermediate, hidden]: gate_proj then up_proj
	gate, up *gpu.Matrix // views of wgateUp
	wdown    *gpu.Matrix // [hidden, intermediate]
	cache    *gpu.KVCache

	qkv       *gpu.QKVDecodeOp
	attention *gpu.AttentionDecodeOp
}

// Engine is a loaded Qwen3 model on one GPU device.
type Engine struct {
	dev   *gpu.Device
	cfg   qwen3.Config
	ctx   int
	chunk int
	pos   int // positions filled in the KV cache
	shape gpu.AttentionShape
	dtype string // what the matrices are stored as, for reports

	embed     *gpu.Matrix // [vocab, hidden]
	lmHead    *gpu.Matrix // [vocab, hidden]; embed itself when tied
	finalNorm *gpu.Buffer // [hidden]
	layers    []layer
	rope      *gpu.RopeTables

	// Decode activations, one token.
	token   *gpu.Buffer // [1] u32: the token being fed
	x       *gpu.Buffer // [hidden] residual stream
	normed  *gpu.Buffer // [hidden] RMSNorm output
	q       *gpu.Buffer // [heads·head_dim]
	attnOut *gpu.Buffer // [heads·head_dim]
	act     *gpu.Buffer // [intermediate] SiLU(gate)·up
	logits  *gpu.Buffer // [vocab]
	next    *gpu.Buffer // [1] u32: argmax of logits
	scratch *gpu.Buffer // decode attention partials, shared by the layers

	// Prefill activations, up to chunk tokens.
	pTokens *gpu.Buffer // [chunk] u32
	px      *gpu.Buffer // [chunk, hidden]
	pNormed *gpu.Buffer // [chunk, hidden]
	pQKV    *gpu.Buffer // [chunk, (heads+2·kv_heads)·head_dim]
	pQ      *gpu.Buffer // [chunk, heads·head_dim]
	pAttn   *gpu.Buffer // [chunk, heads·head_dim]
	pAct    *gpu.Buffer // [chunk, intermediate]

	decodeOps []*gpu.Op // the whole decode step, in order
	nEmbed    int       // decodeOps starts with this many embedding ops
	// chainedEmbed replaces them when the token comes from the previous
	// step's argmax (DecodeGreedy).
	chainedEmbed []*gpu.Op
	decodeRoles  []string  // what each of decodeOps computes
	headOps      []*gpu.Op // final norm, LM head, argmax: shared by decode and prefill
	headRoles    []string
	lastTimings  []gpu.OpTiming // of the last decode step, on a profiling device
	// lastPrefillTimings collects the prefill passes' timings on a
	// profiling device (ProfilePrefill).
	lastPrefillTimings []gpu.OpTiming
	plans              []*prefill // prepared prefill passes by token count, most recent last
	owned              []*gpu.Op  // every op made at load, for Close
	buffers            []*gpu.Buffer
	matrices           []*gpu.Matrix
	uploaded           int64 // weight bytes on the GPU
}

// Load uploads a model to dev and prepares its decode step.
func Load(dev *gpu.Device, cfg qwen3.Config, src qwen3.Source, opt Options) (e *Engine, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ctx := opt.Ctx
	if ctx == 0 {
		ctx = min(DefaultCtx, cfg.MaxPositionEmbeddings)
	}
	if ctx < 1 || ctx > cfg.MaxPositionEmbeddings {
		return nil, fmt.Errorf("--ctx %d outside [1, %d] (max_position_embeddings)", ctx, cfg.MaxPositionEmbeddings)
	}
	chunk := opt.PrefillChunk
	if chunk == 0 {
		chunk = 512
	}
	chunk = min(chunk, ctx)
	dtype := strings.ToLower(opt.DType)
	switch dtype {
	case "", "auto", "f32", "bf16", "f16":
	default:
		return nil, fmt.Errorf("--dtype %q: want auto, f32, bf16 or f16", opt.DType)
	}
	e = &Engine{dev: dev, cfg: cfg, ctx: ctx, chunk: chunk, dtype: dtype,
		shape: gpu.AttentionShape{Hidden: cfg.HiddenSize, NHeads: cfg.NumAttentionHeads, NKV: cfg.NumKeyValueHeads, HeadDim: cfg.HeadDim}}
	defer func() {
		if err != nil {
			e.Close()
			_ = dev.Submit() // let wgpu free the staging copies of what was uploaded
			e = nil
		}
	}()
	if err := e.checkLimits(); err != nil {
		return nil, err
	}
	if err := e.uploadWeights(src, opt.Progress); err != nil {
		return nil, err
	}
	if err := e.allocate(); err != nil {
		return nil, err
	}
	if err := e.prepareDecode(); err != nil {
		return nil, err
	}
	// wgpu keeps the staging copies of buffers created with data until a
	// submission follows; an empty one lets it free them now.
	if err := dev.Submit(); err != nil {
		return nil, err
	}
	return e, nil
}

// Config returns the model's configuration.
func (e *Engine) Config() qwen3.Config { return e.cfg }

// Context is the KV cache length in positions.
func (e *Engine) Context() int { return e.ctx }

// Len is the number of positions filled.
func (e *Engine) Len() int { return e.pos }

// Reset empties the KV cache (its contents are overwritten as it refills).
func (e *Engine) Reset() { e.pos = 0 }

// Device is the GPU the engine runs on.
func (e *Engine) Device() *gpu.Device { return e.dev }

// WeightDType names how the matrices are stored ("bf16", ...; "auto"
// resolved per tensor is reported as the embedding's dtype).
func (e *Engine) WeightDType() string { return e.embed.DType.String() }

// WeightBytes is the size of the uploaded weights.
func (e *Engine) WeightBytes() int64 { return e.uploaded }

// UntiedEmbedBytes is the size of the embedding matrix when it is not
// also the LM head (0 when tied): a decode step reads one row of it.
func (e *Engine) UntiedEmbedBytes() int64 {
	if e.embed == e.lmHead {
		return 0
	}
	return int64(e.embed.Bytes())
}

// Close frees every GPU object the engine made. The device stays open.
func (e *Engine) Close() {
	if e == nil {
		return
	}
	for _, p := range e.plans {
		p.release()
	}
	e.plans = nil
	gpu.ReleaseOps(e.owned)
	e.owned = nil
	for _, l := range e.layers {
		l.qkv.Release()
		l.attention.Release()
		if l.cache != nil {
			l.cache.Release()
		}
	}
	if e.rope != nil {
		e.rope.Release()
	}
	for _, m := range e.matrices {
		m.Release()
	}
	e.matrices = nil
	for _, b := range e.buffers {
		b.Release()
	}
	e.buffers = nil
	e.layers = nil
}
