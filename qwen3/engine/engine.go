// Package engine runs Qwen3 on a GPU through the kernels of gpu/kernels.
//
// Where things are:
//   - load.go uploads the weights (layer, below) and allocates the KV cache
//     and the activations (acts), all in the engine's one gpu.Scope, which
//     Close frees.
//   - graph.go is the model: one description of a decoder layer, lowered
//     to dispatches for a decode step of B sequences or a prefill chunk.
//   - step.go runs steps: the host writes the step uniform (each row's
//     cache slot and position) and the token ids, records a graph, and
//     reads back logits or argmax ids.
//
// A Qwen3 layer on the GPU, as in qwen3/model.go on the CPU:
//
//	h = input_layernorm(x); q, k, v = qkv(h); q, k = q_norm(q), k_norm(k); q, k = rope(q, k)
//	x += o_proj(attention(q, K, V))
//	x += down_proj(SiLU(gate_proj(n)) · up_proj(n)),  n = post_attention_layernorm(x)
//
// An Engine is used by one goroutine at a time.
package engine

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/qwgpu/qwgpu/gpu"
	"github.com/qwgpu/qwgpu/gpu/kernels"
	"github.com/qwgpu/qwgpu/qwen3"
	"github.com/qwgpu/qwgpu/weights"
)

// Options controls how a model is loaded.
type Options struct {
	// Ctx is the number of positions the KV cache holds per sequence (0:
	// DefaultCtx, bounded by max_position_embeddings).
	Ctx int
	// DType stores the weight matrices as "f32", "bf16" or "f16" (block
	// types dequantized); "" or "auto" keeps each tensor's own type, block
	// types included. "q8_0", "q4_0" and "q4_k" keep them too: the source
	// quantizes (qwen3.QuantizedSource); they say what to expect of it.
	DType string
	// PrefillChunk is the most tokens one prefill pass takes (0:
	// DefaultChunk). Longer prompts run in several passes.
	PrefillChunk int
	// Slots is the number of sequences the KV cache holds at once, each
	// decoded in its own slot; a batched decode step advances several
	// (0: 1).
	Slots int
	// KVDType stores the KV cache as "f32" ("" too), "f16" or "bf16" (two
	// values to a word): a 16-bit cache halves its memory and the bytes
	// decode attention reads per token, and rounds every cached key and
	// value (relative error 2⁻¹¹ for f16, 2⁻⁸ for bf16). f16 holds up to
	// ±65504: Load refuses it when a layer's k_norm weights let keys reach
	// past that (each key element is at most √head_dim·max|k_norm|); values
	// have no such bound and saturate there.
	KVDType string
	// Progress, if set, is called after each tensor is uploaded with the
	// bytes done and the total.
	Progress func(done, total int64)
}

// OptionError is an error caused by one field of Options, named so that a
// caller can report it by its own name for the setting (a CLI flag).
type OptionError struct {
	Option string // "Ctx", "DType", "KVDType", "PrefillChunk" or "Slots"
	Err    error
}

func (e *OptionError) Error() string { return e.Err.Error() }
func (e *OptionError) Unwrap() error { return e.Err }

func optionError(option, format string, args ...any) error {
	return &OptionError{Option: option, Err: fmt.Errorf(format, args...)}
}

// Defaults for a zero Options.
const (
	DefaultCtx   = 4096
	DefaultChunk = 512
)

// maxChunk bounds PrefillChunk: the step uniform holds one 16-byte row per
// token and a uniform binding holds 64 KiB.
const maxChunk = 4000

// layer is one decoder layer's weights and KV cache on the GPU.
type layer struct {
	attnNorm *gpu.Buffer     // [hidden] input_layernorm
	qNorm    *gpu.Buffer     // [head_dim]
	kNorm    *gpu.Buffer     // [head_dim]
	mlpNorm  *gpu.Buffer     // [hidden] post_attention_layernorm
	qkv      *kernels.Matrix // [(heads+2·kv_heads)·head_dim, hidden]: q_proj, k_proj, v_proj stacked
	o        *kernels.Matrix // [hidden, heads·head_dim]
	gateUp   *kernels.Matrix // [2·intermediate, hidden]: gate_proj then up_proj
	gate, up *kernels.Matrix // views of gateUp
	down     *kernels.Matrix // [hidden, intermediate]
	cache    *kernels.KVCache
}

// acts are the activations of one step, rows tokens: a decode step's
// sequences or a prefill chunk. Steps run one after another on the GPU
// queue, so every kind of step shares them.
type acts struct {
	step    *gpu.Buffer // the step uniform (kernels.EncodeStep)
	tokens  *gpu.Buffer // [rows] u32: the tokens fed
	x       *gpu.Buffer // [rows, hidden] the residual stream
	normed  *gpu.Buffer // [rows, hidden] an RMSNorm output
	qkv     *gpu.Buffer // [rows, (heads+2·kv_heads)·head_dim] projected, before the head norms
	q       *gpu.Buffer // [rows, heads·head_dim] after norm and RoPE
	attn    *gpu.Buffer // [rows, heads·head_dim] attention output
	act     *gpu.Buffer // [rows, intermediate] SiLU(gate)·up
	logits  *gpu.Buffer // [slots, vocab]
	next    *gpu.Buffer // [slots] u32: argmax of each row's logits
	scratch *gpu.Buffer // decode attention's partials, shared by the layers
}

// Engine is a loaded Qwen3 model on one GPU device.
type Engine struct {
	dev   *gpu.Device
	scope *gpu.Scope // owns every buffer and op below
	cfg   qwen3.Config
	ctx   int
	chunk int
	rows  int   // max(chunk, slots): the rows acts hold
	pos   []int // per slot: positions filled in the KV cache
	shape kernels.AttentionShape
	// kvType is the KV cache's element type (Options.KVDType).
	kvType weights.DType
	// kNormMax is the largest |k_norm weight| of each layer, for the f16
	// cache's range check.
	kNormMax []float64

	embed     *kernels.Matrix // [vocab, hidden]
	lmHead    *kernels.Matrix // [vocab, hidden]; embed itself when tied
	finalNorm *gpu.Buffer     // [hidden]
	layers    []layer
	rope      *kernels.RopeTables
	a         acts
	uploaded  int64 // weight bytes on the GPU
	// estimateType is the matrix type Estimate assumes for this model.
	estimateType weights.DType

	prefill *graph         // one chunk of one sequence
	decode  map[int]*graph // by batch size, made on first use
	// timings collects per-op GPU times on a profiling device.
	timings []gpu.OpTiming
	// topk holds the top-k passes by (rows, k), made on first use (read.go),
	// all writing topkOut.
	topk    map[[2]int][]*gpu.Op
	topkOut *gpu.Buffer
	// chainable are the slots of the last step when it was a DecodeStart,
	// whose argmax rows a chained step may take as its tokens; nil after
	// any other step.
	chainable []int
}

// Load uploads a model to dev and prepares its steps.
func Load(dev *gpu.Device, cfg qwen3.Config, src qwen3.Source, opt Options) (e *Engine, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ctx := opt.Ctx
	if ctx == 0 {
		ctx = min(DefaultCtx, cfg.MaxPositionEmbeddings)
	}
	if ctx < 1 || ctx > cfg.MaxPositionEmbeddings {
		return nil, optionError("Ctx", "context of %d positions outside [1, %d] (max_position_embeddings)", ctx, cfg.MaxPositionEmbeddings)
	}
	chunk := opt.PrefillChunk
	if chunk == 0 {
		chunk = DefaultChunk
	}
	if chunk < 1 || chunk > maxChunk {
		return nil, optionError("PrefillChunk", "prefill chunk of %d tokens outside [1, %d]", chunk, maxChunk)
	}
	chunk = min(chunk, ctx)
	slots := max(opt.Slots, 1)
	if slots > maxChunk {
		return nil, optionError("Slots", "%d sequence slots: at most %d", slots, maxChunk)
	}
	dtype := strings.ToLower(opt.DType)
	switch dtype {
	case "", "auto", "f32", "bf16", "f16", "q8_0", "q4_0", "q4_k":
	default:
		return nil, optionError("DType", "weight dtype %q: want auto, f32, bf16, f16, q8_0, q4_0 or q4_k", opt.DType)
	}
	kvType, err := kvDType(opt.KVDType)
	if err != nil {
		return nil, err
	}
	e = &Engine{dev: dev, scope: dev.NewScope("engine"), cfg: cfg, ctx: ctx, chunk: chunk, rows: max(chunk, slots), kvType: kvType,
		pos: make([]int, slots), decode: map[int]*graph{},
		shape: kernels.AttentionShape{Hidden: cfg.HiddenSize, NHeads: cfg.NumAttentionHeads, NKV: cfg.NumKeyValueHeads, HeadDim: cfg.HeadDim}}
	defer func() {
		if err != nil {
			e.Close()
			e = nil
		}
	}()
	if err := e.checkLimits(); err != nil {
		return nil, err
	}
	if err := e.uploadWeights(src, dtype, opt.Progress); err != nil {
		return nil, err
	}
	if err := e.checkKeysFitKV(); err != nil {
		return nil, err
	}
	if err := e.allocate(); err != nil {
		return nil, err
	}
	if e.prefill, err = e.build(mode{rows: chunk, prefill: true}); err != nil {
		return nil, err
	}
	if _, err = e.decodeGraph(1); err != nil {
		return nil, err
	}
	// wgpu keeps the staging copies of buffers created with data until a
	// submission follows; an empty one lets it free them now.
	return e, dev.NewRecorder(gpu.Extent{}).Submit()
}

// Config returns the model's configuration.
func (e *Engine) Config() qwen3.Config { return e.cfg }

// Context is the KV cache length in positions, per slot.
func (e *Engine) Context() int { return e.ctx }

// Slots is the number of sequences the cache holds.
func (e *Engine) Slots() int { return len(e.pos) }

// Len is the number of positions filled in slot 0.
func (e *Engine) Len() int { return e.pos[0] }

// SlotLen is the number of positions filled in a slot.
func (e *Engine) SlotLen(slot int) int { return e.pos[slot] }

// Reset empties slot 0 (its contents are overwritten as it refills).
func (e *Engine) Reset() { e.pos[0] = 0 }

// Truncate keeps the first n positions of a slot, so that a sequence that
// shares them (a conversation's next turn) continues from there without
// computing them again.
func (e *Engine) Truncate(slot, n int) error {
	if slot < 0 || slot >= len(e.pos) {
		return fmt.Errorf("slot %d outside [0, %d)", slot, len(e.pos))
	}
	if n < 0 || n > e.pos[slot] {
		return fmt.Errorf("slot %d holds %d positions, cannot keep %d", slot, e.pos[slot], n)
	}
	e.pos[slot] = n
	return nil
}

// KVDType names the KV cache's element type: "f32", "f16" or "bf16".
func (e *Engine) KVDType() string { return strings.ToLower(e.kvType.String()) }

// kvDType parses Options.KVDType.
func kvDType(name string) (weights.DType, error) {
	if name == "" {
		return weights.F32, nil
	}
	if dt, ok := kernels.KVDTypes[strings.ToLower(name)]; ok {
		return dt, nil
	}
	return 0, optionError("KVDType", "kv cache dtype %q: want f32, f16 or bf16", name)
}

// checkKeysFitKV refuses an f16 cache for a model whose keys can pass
// f16's largest value: after the head norm a key element is at most
// √head_dim · max|k_norm| (the normalised head has norm √head_dim, and RoPE
// rotates pairs without changing their norm).
func (e *Engine) checkKeysFitKV() error {
	if e.kvType != weights.F16 {
		return nil
	}
	for i, w := range e.kNormMax {
		if bound := math.Sqrt(float64(e.cfg.HeadDim)) * w; bound > 65504 {
			return optionError("KVDType", "an f16 kv cache cannot hold layer %d's keys: k_norm weights up to %.4g let them reach %.4g, beyond f16's ±65504 (use bf16)",
				i, w, bound)
		}
	}
	return nil
}

// Device is the GPU the engine runs on.
func (e *Engine) Device() *gpu.Device { return e.dev }

// WeightDType names the types the matrices are stored in, the one
// holding most bytes first, joined by "+" ("bf16"; "q4_k+q6_k" for a
// Q4_K_M file).
func (e *Engine) WeightDType() string {
	bytes := map[weights.DType]uint64{}
	add := func(m *kernels.Matrix) {
		for _, p := range m.Parts {
			bytes[p.DType] += uint64(p.Rows) * uint64(kernels.MatrixBytes(p.DType, 1, m.Cols))
		}
	}
	add(e.embed)
	if e.lmHead != e.embed {
		add(e.lmHead)
	}
	for i := range e.layers {
		l := &e.layers[i]
		for _, m := range []*kernels.Matrix{l.qkv, l.o, l.gateUp, l.down} {
			add(m)
		}
	}
	var ts []weights.DType
	for t := range bytes {
		ts = append(ts, t)
	}
	slices.SortFunc(ts, func(a, b weights.DType) int {
		if bytes[a] != bytes[b] {
			return cmp.Compare(bytes[b], bytes[a])
		}
		return cmp.Compare(a, b)
	})
	names := make([]string, len(ts))
	for i, t := range ts {
		names[i] = strings.ToLower(t.String())
	}
	return strings.Join(names, "+")
}

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
	if e != nil {
		e.scope.Release()
	}
}
