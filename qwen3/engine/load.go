package engine

import (
	"fmt"
	"math"
	"strings"

	"github.com/qwgpu/qwgpu/gpu"
	"github.com/qwgpu/qwgpu/gpu/kernels"
	"github.com/qwgpu/qwgpu/qwen3"
	"github.com/qwgpu/qwgpu/weights"
)

// storeAs is the GPU dtype a checkpoint tensor of dtype dt is kept in:
// f32, bf16 or f16 convert every matrix (block types dequantized); auto
// and the quantized dtypes (whose source, a qwen3.QuantizedSource, has
// already quantized what it could) keep the tensor's own type.
func storeAs(dtype string, dt weights.DType) (weights.DType, error) {
	switch dtype {
	case "f32":
		return weights.F32, nil
	case "bf16":
		return weights.BF16, nil
	case "f16":
		return weights.F16, nil
	}
	switch {
	case dt == weights.F32, dt == weights.BF16, dt == weights.F16, dt.IsQuantized():
		return dt, nil
	}
	return 0, fmt.Errorf("dtype %v is not supported for weights (F32, BF16, F16 or a GGUF block type)", dt)
}

// QuantDTypes are the Options.DType values of quantized weights (the
// weights quantized at load into these block types).
var QuantDTypes = map[string]weights.DType{"q8_0": weights.Q8_0, "q4_0": weights.Q4_0, "q4_k": weights.Q4_K}

// CheckRequantize refuses dtype when it asks for blocks (QuantDTypes) and
// src's matrices already are blocks: quantizing dequantized blocks again
// rounds every weight twice (llama.cpp's quantize refuses the same without
// --allow-requantize), and keeping the file's blocks instead would ignore
// what was asked. It reads the type of layer 0's q_proj, which every
// quantized Qwen3 file quantizes. The error is an OptionError on DType.
func CheckRequantize(src qwen3.Source, dtype string) error {
	dt, ok := QuantDTypes[strings.ToLower(dtype)]
	if !ok {
		return nil
	}
	name := qwen3.LayerPrefix(0) + "self_attn.q_proj.weight"
	t, err := src.Get(name)
	if err != nil || !t.DType.IsQuantized() {
		return nil // a missing tensor is the load's error to report
	}
	return optionError("DType", "the weights are already quantized (%s is %v): quantizing them to %v would round every weight twice; load the unquantized checkpoint, or keep the file's blocks (dtype auto)", name, t.DType, dt)
}

// StoredType is the type a matrix of the given shape gets, as far as
// it can be told before reading it: dt (0 for auto) unless it is a block
// type whose blocks do not divide the rows, where qwen3.QuantizedSource
// falls back (Q4_K to Q4_0, else the source's own, taken as srcType).
func StoredType(dt, srcType weights.DType, cols int) weights.DType {
	switch {
	case dt == 0:
		return srcType
	case !dt.IsQuantized():
		return dt
	case cols%dt.BlockSize() == 0:
		return dt
	case dt == weights.Q4_K && cols%weights.Q4_0.BlockSize() == 0:
		return weights.Q4_0
	}
	return srcType
}

// Footprint is what a model holds on the GPU, in bytes.
type Footprint struct {
	Weights     int64
	KVCache     int64 // keys and values of every slot and position (Options.KVDType)
	Activations int64 // one step's buffers, the logits and the RoPE tables
}

// Total is the sum of the parts.
func (f Footprint) Total() int64 { return f.Weights + f.KVCache + f.Activations }

// Estimate returns what Load(cfg, opt) will allocate, before anything is:
// the one count that the engine's messages, the CLI's memory check and
// the bench report. dt is the type the matrices are kept in (a block type
// counts its padded device blocks, kernels.MatrixBytes; matrices whose
// rows are not whole blocks count as bf16); norms are float32.
func Estimate(c qwen3.Config, opt Options, dt weights.DType) Footprint {
	ctx, chunk, slots := opt.Ctx, opt.PrefillChunk, max(opt.Slots, 1)
	if ctx == 0 {
		ctx = min(DefaultCtx, c.MaxPositionEmbeddings)
	}
	if chunk == 0 {
		chunk = DefaultChunk
	}
	chunk = min(chunk, ctx)
	var f Footprint
	for _, s := range c.AllTensors() {
		n := int64(1)
		for _, d := range s.Shape {
			n *= int64(d)
		}
		if len(s.Shape) == 1 {
			f.Weights += 4 * n
		} else {
			f.Weights += kernels.MatrixBytes(StoredType(dt, weights.BF16, s.Shape[1]), s.Shape[0], s.Shape[1])
		}
	}
	h, q, kv, in, v := int64(c.HiddenSize), int64(c.QDim()), int64(c.KVDim()), int64(c.IntermediateSize), int64(c.VocabSize)
	kvType, err := kvDType(opt.KVDType)
	if err != nil {
		kvType = weights.F32 // Load refuses it; count the largest
	}
	f.KVCache = 2 * int64(c.NumHiddenLayers) * int64(kernels.KVCacheBytes(slots, ctx, c.NumKeyValueHeads, c.HeadDim, kvType))
	rows := int64(max(chunk, slots))
	f.Activations = 4 * (rows*(1+2*h+(q+2*kv)+2*q+in) + int64(slots)*(v+1))
	f.Activations += 2 * 4 * int64(ctx) * int64(c.HeadDim/2) // RoPE cos and sin
	// decode attention's partials: at most [slots, heads, ⌈ctx/32⌉, head_dim/4+1] vec4
	f.Activations += int64(slots) * int64(c.NumAttentionHeads) * int64((ctx+31)/32) * int64(c.HeadDim/4+1) * 16
	return f
}

// checkLimits refuses, before anything is allocated, buffers that cannot
// be split and exceed the device's per-binding limit.
func (e *Engine) checkLimits() error {
	lim := e.dev.Limits()
	maxBind := min(lim.MaxStorageBufferBindingSize, lim.MaxBufferSize)
	c := e.cfg
	cacheLayer := kernels.KVCacheBytes(len(e.pos), e.ctx, c.NumKeyValueHeads, c.HeadDim, e.kvType)
	if cacheLayer > maxBind {
		what := fmt.Sprintf("a context of %d positions", e.ctx)
		if len(e.pos) > 1 {
			what += fmt.Sprintf(" in each of %d slots", len(e.pos))
		}
		return optionError("Ctx", "%s needs %d bytes of KV cache per layer, above this device's binding limit of %d (%s; largest context: %d)",
			what, cacheLayer, maxBind, weights.HumanBytes(int64(maxBind)),
			maxBind/kernels.KVCacheBytes(len(e.pos), 1, c.NumKeyValueHeads, c.HeadDim, e.kvType))
	}
	widest := max(c.HiddenSize, e.shape.QKVDim(), c.IntermediateSize)
	if act := uint64(e.rows) * uint64(widest) * 4; act > maxBind {
		return optionError("PrefillChunk", "a prefill chunk of %d tokens needs %s per activation buffer, above this device's %s binding limit",
			e.rows, weights.HumanBytes(int64(act)), weights.HumanBytes(int64(maxBind)))
	}
	if v := uint64(len(e.pos)) * uint64(c.VocabSize) * 4; v > maxBind {
		return fmt.Errorf("vocab_size %d: the logits of %d slots do not fit one binding of %s", c.VocabSize, len(e.pos), weights.HumanBytes(int64(maxBind)))
	}
	return nil
}

// oom adds what the model needs to an allocation failure.
func (e *Engine) oom(what string, err error) error {
	f := Estimate(e.cfg, Options{Ctx: e.ctx, PrefillChunk: e.chunk, Slots: len(e.pos), KVDType: e.KVDType()}, e.estimateType)
	return fmt.Errorf("%s: %w (the model needs about %s on the GPU: weights %s, KV cache %s for %d positions, activations %s; %s of weights were uploaded)",
		what, err, weights.HumanBytes(f.Total()), weights.HumanBytes(f.Weights), weights.HumanBytes(f.KVCache), e.ctx,
		weights.HumanBytes(f.Activations), weights.HumanBytes(e.uploaded))
}

// uploadWeights moves every tensor the model reads to the GPU, one at a
// time so that host memory holds at most one layer's matrix.
func (e *Engine) uploadWeights(src qwen3.Source, dtype string, progress func(done, total int64)) error {
	c := e.cfg
	e.estimateType = weights.BF16
	switch {
	case dtype == "f32" || ((dtype == "" || dtype == "auto") && c.TorchDtype == "float32"):
		e.estimateType = weights.F32
	case QuantDTypes[dtype] != 0:
		e.estimateType = QuantDTypes[dtype]
	}
	total := Estimate(c, Options{Ctx: 1}, e.estimateType).Weights
	done := int64(0)
	report := func(n int64) {
		done += n
		if progress != nil {
			progress(min(done, total), total)
		}
	}
	vector := func(s qwen3.TensorSpec) (*gpu.Buffer, error) {
		t, err := src.Get(s.Name, s.Shape...)
		if err != nil {
			return nil, err
		}
		v, err := t.Float32()
		if err != nil {
			return nil, err
		}
		if strings.HasSuffix(s.Name, "self_attn.k_norm.weight") {
			m := 0.0
			for _, x := range v {
				m = math.Max(m, math.Abs(float64(x)))
			}
			e.kNormMax = append(e.kNormMax, m)
		}
		b, err := e.scope.Upload(s.Name, weights.F32Bytes(v))
		if err != nil {
			return nil, e.oom(s.Name, err)
		}
		report(int64(4 * len(v)))
		return b, nil
	}
	// matrix uploads the row-wise concatenation of tensors (q, k, v
	// stacked; gate and up stacked), converting when the dtype asks.
	// Each tensor keeps its own type: a quantized GGUF stacks q and k of
	// one block type with v of another (a matrix in parts of each type).
	matrix := func(label string, specs ...qwen3.TensorSpec) (*kernels.Matrix, error) {
		var pieces []kernels.MatrixPiece
		var first weights.DType
		cols := specs[0].Shape[1]
		for i, s := range specs {
			t, err := src.Get(s.Name, s.Shape...)
			if err != nil {
				return nil, err
			}
			dt, err := storeAs(dtype, t.DType)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", s.Name, err)
			}
			if i == 0 {
				first = dt
			}
			if e.embed == nil && dt.IsQuantized() && (dtype == "" || dtype == "auto") {
				// A quantized GGUF: the embedding's type, read first,
				// stands for every matrix's in the estimates.
				e.estimateType = dt
				total = Estimate(c, Options{Ctx: 1}, dt).Weights
			}
			// A float tensor stacked with others keeps their float type
			// (the checkpoint's, or the one asked for).
			if !dt.IsQuantized() && !first.IsQuantized() {
				dt = first
			}
			b, err := encode(t, dt)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", s.Name, err)
			}
			pieces = append(pieces, kernels.MatrixPiece{DType: dt, Rows: s.Shape[0], Raw: b})
			report(kernels.MatrixBytes(dt, s.Shape[0], cols))
		}
		m, err := kernels.UploadStack(e.scope, label, cols, pieces...)
		if err != nil {
			return nil, e.oom(label, err)
		}
		e.uploaded += int64(m.Bytes())
		return m, nil
	}

	all := c.AllTensors()
	var err error
	if e.embed, err = matrix(qwen3.NameEmbed, all[0]); err != nil {
		return err
	}
	e.layers = make([]layer, c.NumHiddenLayers)
	for i := range e.layers {
		l, t := &e.layers[i], c.LayerTensors(i)
		p := qwen3.LayerPrefix(i)
		for _, v := range []struct {
			dst **gpu.Buffer
			k   int
		}{{&l.attnNorm, qwen3.InputNorm}, {&l.qNorm, qwen3.QNorm}, {&l.kNorm, qwen3.KNorm}, {&l.mlpNorm, qwen3.PostAttentionNorm}} {
			if *v.dst, err = vector(t[v.k]); err != nil {
				return err
			}
		}
		if l.qkv, err = matrix(p+"self_attn.qkv", t[qwen3.QProj], t[qwen3.KProj], t[qwen3.VProj]); err != nil {
			return err
		}
		if l.o, err = matrix(t[qwen3.OProj].Name, t[qwen3.OProj]); err != nil {
			return err
		}
		if l.gateUp, err = matrix(p+"mlp.gate_up", t[qwen3.GateProj], t[qwen3.UpProj]); err != nil {
			return err
		}
		in := c.IntermediateSize
		if l.gate, err = l.gateUp.Slice(0, in); err != nil {
			return err
		}
		if l.up, err = l.gateUp.Slice(in, in); err != nil {
			return err
		}
		if l.down, err = matrix(t[qwen3.DownProj].Name, t[qwen3.DownProj]); err != nil {
			return err
		}
	}
	if e.finalNorm, err = vector(qwen3.TensorSpec{Name: qwen3.NameFinalNorm, Shape: []int{c.HiddenSize}}); err != nil {
		return err
	}
	if c.TieWordEmbeddings {
		// transformers ignores a stored lm_head.weight when tied.
		e.lmHead = e.embed
	} else if e.lmHead, err = matrix(qwen3.NameLMHead, qwen3.TensorSpec{Name: qwen3.NameLMHead, Shape: []int{c.VocabSize, c.HiddenSize}}); err != nil {
		return err
	}
	return nil
}

// encode returns t's elements packed as dt: the checkpoint's own bytes
// when they already are, else converted through float32, refusing values
// that the conversion turns infinite (f16 holds at most 65504).
func encode(t *weights.Tensor, dt weights.DType) ([]byte, error) {
	if t.DType == dt {
		return t.Raw, nil
	}
	v, err := t.Float32()
	if err != nil {
		return nil, err
	}
	if dt == weights.F16 {
		for i, x := range v {
			if x > 65504 || x < -65504 {
				return nil, fmt.Errorf("element %d is %g, beyond f16's range ±65504: keep the checkpoint's dtype", i, x)
			}
		}
	}
	return kernels.EncodeF32(dt, v)
}

// allocate makes the activations, the KV cache and the RoPE tables.
func (e *Engine) allocate() error {
	c, s, R, slots := e.cfg, e.scope, e.rows, len(e.pos)
	scratch := kernels.AttentionScratchBytes(e.dev, e.shape, e.ctx, slots)
	for _, b := range []struct {
		dst   **gpu.Buffer
		label string
		bytes uint64
	}{
		{&e.a.tokens, "tokens", uint64(R) * 4},
		{&e.a.x, "x", uint64(R*c.HiddenSize) * 4},
		{&e.a.normed, "normed", uint64(R*c.HiddenSize) * 4},
		{&e.a.qkv, "qkv", uint64(R*e.shape.QKVDim()) * 4},
		{&e.a.q, "q", uint64(R*c.QDim()) * 4},
		{&e.a.attn, "attn", uint64(R*c.QDim()) * 4},
		{&e.a.act, "act", uint64(R*c.IntermediateSize) * 4},
		{&e.a.logits, "logits", uint64(slots*c.VocabSize) * 4},
		{&e.a.next, "next", uint64(slots) * 4},
		{&e.a.scratch, "attention scratch", scratch},
	} {
		var err error
		if *b.dst, err = s.Buffer(b.label, b.bytes); err != nil {
			return e.oom(b.label, err)
		}
	}
	var err error
	if e.a.step, err = s.Uniform("step", kernels.StepBytes(R)); err != nil {
		return e.oom("step", err)
	}
	for i := range e.layers {
		if e.layers[i].cache, err = kernels.NewKVCache(s, fmt.Sprintf("layer %d kv cache", i), slots, e.ctx, c.NumKeyValueHeads, c.HeadDim, e.kvType); err != nil {
			return e.oom("kv cache", err)
		}
	}
	// The reference's tables (YaRN scaling and its attention factor folded
	// in), so that the GPU rotates by exactly the reference's values.
	rope := qwen3.NewRopeFor(c, e.ctx)
	if e.rope, err = kernels.UploadRope(s, "rope", c.HeadDim, e.ctx, rope.Cos, rope.Sin); err != nil {
		return e.oom("rope tables", err)
	}
	return nil
}
