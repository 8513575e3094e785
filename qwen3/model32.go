package qwen3

// The float32-activation forward pass (Float32Activations): what a chain of
// float32 kernels computes at best, every activation rounded to float32
// between ops, sums in float64.

func (m *Model) prefill32(c *Cache, tokens []int, wantHidden bool) *Output {
	cfg := m.Config
	T, H, pos0 := len(tokens), cfg.HiddenSize, c.Len
	out := &Output{T: T}
	x := make([]float32, T*H) // residual stream [T, hidden]
	for t, id := range tokens {
		copy(x[t*H:(t+1)*H], m.W.Embed[id*H:(id+1)*H])
	}
	if wantHidden {
		out.Hidden = append(out.Hidden, clone(x))
	}
	for l := range m.W.Layers {
		m.layer32(l, c, x, T, pos0)
		if wantHidden && l < cfg.NumHiddenLayers-1 {
			out.Hidden = append(out.Hidden, clone(x))
		}
	}
	RMSNormRows(x, x, m.W.FinalNorm, cfg.RMSNormEps)
	if wantHidden {
		out.Hidden = append(out.Hidden, clone(x))
	}
	out.Logits = make([]float32, T*cfg.VocabSize)
	MatMul(out.Logits, x, m.W.LMHead, T, cfg.VocabSize, H)
	return out
}

// layer32 applies decoder layer l to the residual stream x [T, hidden] in
// place, as Qwen3DecoderLayer does.
func (m *Model) layer32(l int, c *Cache, x []float32, T, pos0 int) {
	cfg, w := m.Config, &m.W.Layers[l]
	H, Q, KV, I, hd := cfg.HiddenSize, cfg.QDim(), cfg.KVDim(), cfg.IntermediateSize, cfg.HeadDim
	eps := cfg.RMSNormEps

	// Attention block: h = x + o_proj(attn(rope(q_norm(q)), rope(k_norm(k)), v)).
	n := make([]float32, T*H)
	RMSNormRows(n, x, w.AttnNorm, eps)
	q := make([]float32, T*Q)
	k := make([]float32, T*KV)
	v := make([]float32, T*KV)
	MatMul(q, n, w.Wq, T, Q, H)
	MatMul(k, n, w.Wk, T, KV, H)
	MatMul(v, n, w.Wv, T, KV, H)
	for t := 0; t < T; t++ {
		pos := pos0 + t
		// q_norm and k_norm normalise each head over head_dim BEFORE RoPE.
		for h := 0; h < cfg.NumAttentionHeads; h++ {
			qh := q[t*Q+h*hd : t*Q+(h+1)*hd]
			RMSNorm(qh, qh, w.QNorm, eps)
			m.Rope.Apply(qh, pos)
		}
		for h := 0; h < cfg.NumKeyValueHeads; h++ {
			kh := k[t*KV+h*hd : t*KV+(h+1)*hd]
			RMSNorm(kh, kh, w.KNorm, eps)
			m.Rope.Apply(kh, pos)
		}
	}
	if m.KVRound != nil {
		for i := range k {
			k[i], v[i] = float32(m.KVRound(float64(k[i]))), float32(m.KVRound(float64(v[i])))
		}
	}
	c.k32[l] = append(c.k32[l][:pos0*KV], k...)
	c.v32[l] = append(c.v32[l][:pos0*KV], v...)
	keys, values := c.k32[l], c.v32[l]
	attn := make([]float32, T*Q)
	parallelFor(T, (pos0+T)*Q, func(lo, hi int) {
		for t := lo; t < hi; t++ {
			// Causal: position pos0+t sees cache rows [0, pos0+t].
			Attention(attn[t*Q:(t+1)*Q], q[t*Q:(t+1)*Q], keys, values, pos0+t+1,
				cfg.NumAttentionHeads, cfg.NumKeyValueHeads, hd)
		}
	})
	o := make([]float32, T*H)
	MatMul(o, attn, w.Wo, T, H, Q)
	Add(x, x, o)

	// MLP block: out = h + down(silu(gate(m)) · up(m)).
	RMSNormRows(n, x, w.MLPNorm, eps)
	gate := make([]float32, T*I)
	up := make([]float32, T*I)
	MatMul(gate, n, w.Gate, T, I, H)
	MatMul(up, n, w.Up, T, I, H)
	SwiGLU(gate, gate, up)
	MatMul(o, gate, w.Down, T, H, I)
	Add(x, x, o)
}
