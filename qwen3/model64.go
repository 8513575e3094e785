package qwen3

// The float64 forward pass (the oracle). Everything is float64 except the
// RoPE tables, which are float32 exactly as transformers forms them (Rope),
// so that the rotation angles are transformers' own.
//
// Against transformers' float64 model with its two float32 steps made
// float64 (Qwen3RMSNorm upcasts to float32 even in a float64 model, eager
// attention's softmax runs in float32) and with torch's own RoPE tables
// substituted, this pass gives the same float32-rounded logits on every
// golden model (max error 0; testdata/golden/*/golden64.safetensors,
// TestOracleReproducesFloat64Transformers). With its own tables it differs
// by up to 7.3e-6 on the models whose k_norm weights reach 20..90: about one
// table entry in twelve is one float32 ulp from torch's (torch's float32
// cos/sin are not correctly rounded), and those models amplify it. Against
// the stored golden data (transformers as published, float32 norm and
// softmax) the difference is 3.9e-6 and 9.9e-6 there, and transformers
// itself moves by 5.5e-6 and 9.2e-6 when those two steps are made float64:
// that part is transformers' rounding, which no other implementation
// reproduces bit for bit.

func (m *Model) prefill64(c *Cache, tokens []int, wantHidden bool) *Output {
	cfg := m.Config
	T, H, pos0 := len(tokens), cfg.HiddenSize, c.Len
	out := &Output{T: T}
	x := make([]float64, T*H) // residual stream [T, hidden]
	Embed(x, m.W.Embed, tokens, H)
	if wantHidden {
		out.Hidden = append(out.Hidden, Narrow(x))
	}
	for l := range m.W.Layers {
		m.layer64(l, c, x, T, pos0)
		if wantHidden && l < cfg.NumHiddenLayers-1 {
			out.Hidden = append(out.Hidden, Narrow(x))
		}
	}
	m.norm64(x, x, m.W.FinalNorm)
	if wantHidden {
		out.Hidden = append(out.Hidden, Narrow(x))
	}
	logits := make([]float64, T*cfg.VocabSize)
	MatMul(logits, x, m.W.LMHead, T, cfg.VocabSize, H)
	out.Logits = Narrow(logits)
	return out
}

func (m *Model) norm64(out, x []float64, w []float32) {
	RMSNormRows(out, x, w, m.Config.RMSNormEps)
}

// layer64 applies decoder layer l to the residual stream x [T, hidden] in
// place, as Qwen3DecoderLayer does.
func (m *Model) layer64(l int, c *Cache, x []float64, T, pos0 int) {
	cfg, w := m.Config, &m.W.Layers[l]
	H, Q, KV, I, hd := cfg.HiddenSize, cfg.QDim(), cfg.KVDim(), cfg.IntermediateSize, cfg.HeadDim

	// Attention block: h = x + o_proj(attn(rope(q_norm(q)), rope(k_norm(k)), v)).
	n := make([]float64, T*H)
	m.norm64(n, x, w.AttnNorm)
	q := make([]float64, T*Q)
	k := make([]float64, T*KV)
	v := make([]float64, T*KV)
	MatMul(q, n, w.Wq, T, Q, H)
	MatMul(k, n, w.Wk, T, KV, H)
	MatMul(v, n, w.Wv, T, KV, H)
	// q_norm and k_norm normalise each head over head_dim BEFORE RoPE.
	m.norm64(q, q, w.QNorm)
	m.norm64(k, k, w.KNorm)
	for t := 0; t < T; t++ {
		for h := 0; h < cfg.NumAttentionHeads; h++ {
			m.Rope.Apply64(q[t*Q+h*hd:t*Q+(h+1)*hd], pos0+t)
		}
		for h := 0; h < cfg.NumKeyValueHeads; h++ {
			m.Rope.Apply64(k[t*KV+h*hd:t*KV+(h+1)*hd], pos0+t)
		}
	}
	if m.KVRound != nil {
		for i := range k {
			k[i], v[i] = m.KVRound(k[i]), m.KVRound(v[i])
		}
	}
	c.k64[l] = append(c.k64[l][:pos0*KV], k...)
	c.v64[l] = append(c.v64[l][:pos0*KV], v...)
	keys, values := c.k64[l], c.v64[l]
	attn := make([]float64, T*Q)
	parallelFor(T, (pos0+T)*Q, func(lo, hi int) {
		for t := lo; t < hi; t++ {
			// Causal: position pos0+t sees cache rows [0, pos0+t].
			Attention64(attn[t*Q:(t+1)*Q], q[t*Q:(t+1)*Q], keys, values, pos0+t+1,
				cfg.NumAttentionHeads, cfg.NumKeyValueHeads, hd)
		}
	})
	o := make([]float64, T*H)
	MatMul(o, attn, w.Wo, T, H, Q)
	Add(x, x, o)

	// MLP block: out = h + down(silu(gate(m)) · up(m)).
	m.norm64(n, x, w.MLPNorm)
	gate := make([]float64, T*I)
	up := make([]float64, T*I)
	MatMul(gate, n, w.Gate, T, I, H)
	MatMul(up, n, w.Up, T, I, H)
	SwiGLU(gate, gate, up)
	MatMul(o, gate, w.Down, T, H, I)
	Add(x, x, o)
}
