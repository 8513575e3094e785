package engine

import (
	"fmt"

	"github.com/qwgpu/qwgpu/gpu"
	"github.com/qwgpu/qwgpu/qwen3"
	"github.com/qwgpu/qwgpu/weights"
)

// storeAs is the GPU dtype a checkpoint tensor of dtype dt is kept in.
func (e *Engine) storeAs(dt weights.DType) (gpu.DType, error) {
	switch e.dtype {
	case "f32":
		return gpu.F32, nil
	case "bf16":
		return gpu.BF16, nil
	case "f16":
		return gpu.F16, nil
	}
	switch dt {
	case weights.F32:
		return gpu.F32, nil
	case weights.BF16:
		return gpu.BF16, nil
	case weights.F16:
		return gpu.F16, nil
	}
	return 0, fmt.Errorf("dtype %v is not supported for weights (F32, BF16, F16)", dt)
}

// estimate returns the bytes the model will hold on the GPU: weights,
// KV cache and activations. WebGPU does not tell how much memory a device
// has, so this is what errors report when an allocation fails.
func (e *Engine) estimate() (weightsBytes, cacheBytes, actBytes int64) {
	c := e.cfg
	per := int64(2) // bf16 / f16
	if e.dtype == "f32" || ((e.dtype == "" || e.dtype == "auto") && c.TorchDtype == "float32") {
		per = 4
	}
	for _, s := range c.AllTensors() {
		n := int64(1)
		for _, d := range s.Shape {
			n *= int64(d)
		}
		if len(s.Shape) == 1 {
			weightsBytes += 4 * n // norms are float32
		} else {
			weightsBytes += per * n
		}
	}
	cacheBytes, actBytes = RuntimeBytes(c, e.ctx, e.chunk)
	actBytes += int64(e.dev.AttentionDecodeScratchBytes(e.shape, e.ctx))
	return
}

// RuntimeBytes is what a model allocates on the GPU besides its weights:
// the float32 KV cache of ctx positions, and the activations of prefill
// chunks of chunk tokens and of a decode step with the RoPE tables (the
// decode attention's scratch, which depends on the device, aside).
func RuntimeBytes(c qwen3.Config, ctx, chunk int) (cache, act int64) {
	h, q, kv, in, v := int64(c.HiddenSize), int64(c.QDim()), int64(c.KVDim()), int64(c.IntermediateSize), int64(c.VocabSize)
	cache = 2 * int64(c.NumHiddenLayers) * int64(ctx) * kv * 4
	T := int64(chunk)
	act = 4 * (T*(2*h+q+2*kv+2*q+in) + v + 2*h + 2*q + in)
	act += 2 * 4 * int64(ctx) * int64(c.HeadDim/2) // RoPE cos and sin tables
	return cache, act
}

// checkLimits refuses, before anything is allocated, buffers that cannot
// be split and exceed the device's per-binding limit, naming the flag
// that sizes them.
func (e *Engine) checkLimits() error {
	lim := e.dev.Limits()
	maxBind := min(lim.MaxStorageBufferBindingSize, lim.MaxBufferSize)
	c := e.cfg
	cacheLayer := uint64(e.ctx) * uint64(c.KVDim()) * 4
	if cacheLayer > maxBind {
		return fmt.Errorf("--ctx %d: one layer's KV cache needs %.1f MiB, above this device's %.1f MiB binding limit (largest ctx: %d)",
			e.ctx, mib(cacheLayer), mib(maxBind), maxBind/(uint64(c.KVDim())*4))
	}
	widest := max(c.HiddenSize, e.shape.QKVDim(), c.IntermediateSize)
	if act := uint64(e.chunk) * uint64(widest) * 4; act > maxBind {
		return fmt.Errorf("prefill chunk of %d tokens: activations need %.1f MiB per buffer, above this device's %.1f MiB binding limit",
			e.chunk, mib(act), mib(maxBind))
	}
	if v := uint64(c.VocabSize) * 4; v > maxBind {
		return fmt.Errorf("vocab_size %d: the logits do not fit one binding of %.1f MiB", c.VocabSize, mib(maxBind))
	}
	return nil
}

// oom adds what the model needs to an allocation failure.
func (e *Engine) oom(what string, err error) error {
	w, c, a := e.estimate()
	return fmt.Errorf("%s: %w (the model needs about %.2f GiB on the GPU: weights %.2f, KV cache %.2f for --ctx %d, activations %.2f; %.2f GiB of weights were uploaded)",
		what, err, gib(w+c+a), gib(w), gib(c), e.ctx, gib(a), gib(e.uploaded))
}

func gib(n int64) float64 { return float64(n) / (1 << 30) }

func mib(n uint64) float64 { return float64(n) / (1 << 20) }

// uploadWeights moves every tensor the model reads to the GPU, one at a
// time so that host memory holds at most one layer's matrix.
func (e *Engine) uploadWeights(src qwen3.Source, progress func(done, total int64)) error {
	c := e.cfg
	total, _, _ := e.estimate()
	done := int64(0)
	report := func(n int64) {
		done += n
		if progress != nil {
			progress(done, total)
		}
	}
	vector := func(name string, n int) (*gpu.Buffer, error) {
		t, err := src.Get(name, n)
		if err != nil {
			return nil, err
		}
		v, err := t.Float32()
		if err != nil {
			return nil, err
		}
		b, err := e.dev.UploadF32(name, v)
		if err != nil {
			return nil, e.oom(name, err)
		}
		e.buffers = append(e.buffers, b)
		report(int64(4 * n))
		return b, nil
	}
	// matrix uploads the row-wise concatenation of tensors (q, k, v
	// stacked; gate and up stacked), converting when --dtype asks.
	matrix := func(label string, cols int, names []string, rows []int) (*gpu.Matrix, error) {
		var ts []*weights.Tensor
		totalRows := 0
		for i, n := range names {
			t, err := src.Get(n, rows[i], cols)
			if err != nil {
				return nil, err
			}
			ts = append(ts, t)
			totalRows += rows[i]
		}
		dt, err := e.storeAs(ts[0].DType)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", names[0], err)
		}
		var raw []byte
		for _, t := range ts {
			b, err := encode(t, dt)
			if err != nil {
				return nil, err
			}
			if len(ts) == 1 {
				raw = b
			} else {
				raw = append(raw, b...)
			}
		}
		m, err := e.dev.UploadMatrix(label, dt, totalRows, cols, raw)
		if err != nil {
			return nil, e.oom(label, err)
		}
		e.matrices = append(e.matrices, m)
		e.uploaded += int64(len(raw))
		report(int64(len(raw)))
		return m, nil
	}

	var err error
	if e.embed, err = matrix(qwen3.NameEmbed, c.HiddenSize, []string{qwen3.NameEmbed}, []int{c.VocabSize}); err != nil {
		return err
	}
	e.layers = make([]layer, c.NumHiddenLayers)
	q, kv, in, h := c.QDim(), c.KVDim(), c.IntermediateSize, c.HiddenSize
	for i := range e.layers {
		l := &e.layers[i]
		p := qwen3.LayerPrefix(i)
		if l.attnNorm, err = vector(p+"input_layernorm.weight", h); err != nil {
			return err
		}
		if l.qNorm, err = vector(p+"self_attn.q_norm.weight", c.HeadDim); err != nil {
			return err
		}
		if l.kNorm, err = vector(p+"self_attn.k_norm.weight", c.HeadDim); err != nil {
			return err
		}
		if l.mlpNorm, err = vector(p+"post_attention_layernorm.weight", h); err != nil {
			return err
		}
		if l.wqkv, err = matrix(p+"self_attn.qkv", h,
			[]string{p + "self_attn.q_proj.weight", p + "self_attn.k_proj.weight", p + "self_attn.v_proj.weight"},
			[]int{q, kv, kv}); err != nil {
			return err
		}
		if l.wo, err = matrix(p+"self_attn.o_proj.weight", q, []string{p + "self_attn.o_proj.weight"}, []int{h}); err != nil {
			return err
		}
		if l.wgateUp, err = matrix(p+"mlp.gate_up", h,
			[]string{p + "mlp.gate_proj.weight", p + "mlp.up_proj.weight"}, []int{in, in}); err != nil {
			return err
		}
		if l.gate, err = l.wgateUp.Slice(0, in); err != nil {
			return err
		}
		if l.up, err = l.wgateUp.Slice(in, in); err != nil {
			return err
		}
		if l.wdown, err = matrix(p+"mlp.down_proj.weight", in, []string{p + "mlp.down_proj.weight"}, []int{h}); err != nil {
			return err
		}
	}
	if e.finalNorm, err = vector(qwen3.NameFinalNorm, h); err != nil {
		return err
	}
	if c.TieWordEmbeddings {
		// transformers ignores a stored lm_head.weight when tied.
		e.lmHead = e.embed
	} else if e.lmHead, err = matrix(qwen3.NameLMHead, h, []string{qwen3.NameLMHead}, []int{c.VocabSize}); err != nil {
		return err
	}
	return nil
}

// encode returns t's elements packed as dt: the checkpoint's own bytes
// when they already are, else converted through float32.
func encode(t *weights.Tensor, dt gpu.DType) ([]byte, error) {
	same := (dt == gpu.F32 && t.DType == weights.F32) || (dt == gpu.BF16 && t.DType == weights.BF16) ||
		(dt == gpu.F16 && t.DType == weights.F16)
	if same {
		return t.Raw, nil
	}
	v, err := t.Float32()
	if err != nil {
		return nil, err
	}
	return gpu.EncodeDType(dt, v), nil
}

// allocate makes the activation buffers, the KV cache and the RoPE tables.
func (e *Engine) allocate() error {
	c := e.cfg
	T := e.chunk
	newBuf := func(label string, elems int) (*gpu.Buffer, error) {
		b, err := e.dev.NewBuffer(label, uint64(elems)*4)
		if err != nil {
			return nil, e.oom(label, err)
		}
		e.buffers = append(e.buffers, b)
		return b, nil
	}
	specs := []struct {
		dst   **gpu.Buffer
		label string
		elems int
	}{
		{&e.token, "token", 1}, {&e.x, "x", c.HiddenSize}, {&e.normed, "normed", c.HiddenSize},
		{&e.q, "q", c.QDim()}, {&e.attnOut, "attn", c.QDim()}, {&e.act, "act", c.IntermediateSize},
		{&e.logits, "logits", c.VocabSize}, {&e.next, "next", 1},
		{&e.pTokens, "prefill.tokens", T}, {&e.px, "prefill.x", T * c.HiddenSize},
		{&e.pNormed, "prefill.normed", T * c.HiddenSize}, {&e.pQKV, "prefill.qkv", T * e.shape.QKVDim()},
		{&e.pQ, "prefill.q", T * c.QDim()}, {&e.pAttn, "prefill.attn", T * c.QDim()},
		{&e.pAct, "prefill.act", T * c.IntermediateSize},
		{&e.scratch, "attention.scratch", int(e.dev.AttentionDecodeScratchBytes(e.shape, e.ctx)+3) / 4},
	}
	for _, s := range specs {
		b, err := newBuf(s.label, s.elems)
		if err != nil {
			return err
		}
		*s.dst = b
	}
	for i := range e.layers {
		kc, err := e.dev.NewKVCache(fmt.Sprintf("layer %d kv cache", i), e.ctx, c.NumKeyValueHeads, c.HeadDim)
		if err != nil {
			return e.oom("kv cache", err)
		}
		e.layers[i].cache = kc
	}
	rope := qwen3.NewRope(c.HeadDim, e.ctx, c.RopeTheta)
	var err error
	if e.rope, err = e.dev.UploadRope("rope", c.HeadDim, e.ctx, rope.Cos, rope.Sin); err != nil {
		return e.oom("rope tables", err)
	}
	return nil
}
