package qwen3

// The forward pass, written once for both precisions of the CPU reference
// (Precision); F is the activation type:
//
// Float32Activations (F = float32) rounds every activation to float32
// between ops, sums in float64: what a chain of float32 kernels computes
// at best.
//
// Float64 (F = float64) is the oracle. Everything is float64 except the
// RoPE tables, which are float32 exactly as transformers forms them (Rope),
// so that the rotation angles are transformers' own.
//
// Against transformers' float64 model with its two float32 steps made
// float64 (Qwen3RMSNorm upcasts to float32 even in a float64 model, eager
// attention's softmax runs in float32) and with torch's own RoPE tables
// substituted, the oracle gives the same float32-rounded logits on every
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
//
// The two passes differ only in F and in the attention op (Attention and
// Attention64 sum q·k in different orders; see Attention64). Outputs are
// rounded to float32 at the end of either pass (for F = float32 a copy).

// kvStore is one precision's KV cache: per layer, keys and values of every
// position seen so far, [positions, kv_heads·head_dim].
type kvStore[F Float] struct{ k, v [][]F }

func newKVStore[F Float](layers int) kvStore[F] {
	return kvStore[F]{k: make([][]F, layers), v: make([][]F, layers)}
}

// attentionOp is Attention (float32) or Attention64 (float64).
type attentionOp[F Float] func(out, q, keys, values []F, n, nHeads, nKV, headDim int)

// forward feeds tokens at positions pos0.. with activations of type F,
// appends their keys and values to kv, and returns every position's logits.
func forward[F Float](m *Model, kv *kvStore[F], attention attentionOp[F], pos0 int, tokens []int, wantHidden bool) *Output {
	cfg := m.Config
	T, H := len(tokens), cfg.HiddenSize
	out := &Output{T: T}
	x := make([]F, T*H) // residual stream [T, hidden]
	Embed(x, m.W.Embed, tokens, H)
	if wantHidden {
		out.Hidden = append(out.Hidden, Narrow(x))
	}
	for l := range m.W.Layers {
		layer(m, l, kv, attention, x, T, pos0)
		if wantHidden && l < cfg.NumHiddenLayers-1 {
			out.Hidden = append(out.Hidden, Narrow(x))
		}
	}
	RMSNormRows(x, x, m.W.FinalNorm, cfg.RMSNormEps)
	if wantHidden {
		out.Hidden = append(out.Hidden, Narrow(x))
	}
	logits := make([]F, T*cfg.VocabSize)
	MatMul(logits, x, m.W.LMHead, T, cfg.VocabSize, H)
	out.Logits = Narrow(logits)
	return out
}

// layer applies decoder layer l to the residual stream x [T, hidden] in
// place, as Qwen3DecoderLayer does.
func layer[F Float](m *Model, l int, kv *kvStore[F], attention attentionOp[F], x []F, T, pos0 int) {
	cfg, w := m.Config, &m.W.Layers[l]
	H, Q, KV, I, hd := cfg.HiddenSize, cfg.QDim(), cfg.KVDim(), cfg.IntermediateSize, cfg.HeadDim
	eps := cfg.RMSNormEps

	// Attention block: h = x + o_proj(attn(rope(q_norm(q)), rope(k_norm(k)), v)).
	n := make([]F, T*H)
	RMSNormRows(n, x, w.AttnNorm, eps)
	q := make([]F, T*Q)
	k := make([]F, T*KV)
	v := make([]F, T*KV)
	MatMul(q, n, w.Wq, T, Q, H)
	MatMul(k, n, w.Wk, T, KV, H)
	MatMul(v, n, w.Wv, T, KV, H)
	// q_norm and k_norm normalise each head (a row of head_dim) BEFORE RoPE.
	RMSNormRows(q, q, w.QNorm, eps)
	RMSNormRows(k, k, w.KNorm, eps)
	for t := 0; t < T; t++ {
		for h := 0; h < cfg.NumAttentionHeads; h++ {
			rotateHalf(m.Rope, q[t*Q+h*hd:t*Q+(h+1)*hd], pos0+t)
		}
		for h := 0; h < cfg.NumKeyValueHeads; h++ {
			rotateHalf(m.Rope, k[t*KV+h*hd:t*KV+(h+1)*hd], pos0+t)
		}
	}
	if m.KVRound != nil {
		for i := range k {
			k[i], v[i] = F(m.KVRound(float64(k[i]))), F(m.KVRound(float64(v[i])))
		}
	}
	kv.k[l] = append(kv.k[l][:pos0*KV], k...)
	kv.v[l] = append(kv.v[l][:pos0*KV], v...)
	keys, values := kv.k[l], kv.v[l]
	attn := make([]F, T*Q)
	parallelFor(T, (pos0+T)*Q, func(lo, hi int) {
		for t := lo; t < hi; t++ {
			// Causal: position pos0+t sees cache rows [0, pos0+t].
			attention(attn[t*Q:(t+1)*Q], q[t*Q:(t+1)*Q], keys, values, pos0+t+1,
				cfg.NumAttentionHeads, cfg.NumKeyValueHeads, hd)
		}
	})
	o := make([]F, T*H)
	MatMul(o, attn, w.Wo, T, H, Q)
	Add(x, x, o)

	// MLP block: out = h + down(silu(gate(m)) · up(m)).
	RMSNormRows(n, x, w.MLPNorm, eps)
	gate := make([]F, T*I)
	up := make([]F, T*I)
	MatMul(gate, n, w.Gate, T, I, H)
	MatMul(up, n, w.Up, T, I, H)
	SwiGLU(gate, gate, up)
	MatMul(o, gate, w.Down, T, H, I)
	Add(x, x, o)
}
