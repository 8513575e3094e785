package qwen3

import "fmt"

// Model is the CPU reference Qwen3: float32 weights and activations,
// float64 reductions. It is the oracle the GPU engine is validated against.
type Model struct {
	Config Config
	W      *Weights
	Rope   *Rope
}

// NewModel wraps loaded weights. maxPos bounds the positions the RoPE
// tables cover (and so the longest sequence).
func NewModel(c Config, w *Weights, maxPos int) *Model {
	return &Model{Config: c, W: w, Rope: NewRope(c.HeadDim, maxPos, c.RopeTheta)}
}

// Cache is the KV cache of the CPU reference: per layer, keys and values
// of every position seen so far, [maxPos, kv_heads·head_dim] each.
type Cache struct {
	K, V [][]float32
	Len  int // positions filled
	Max  int
}

// NewCache allocates a cache for up to maxPos positions.
func (m *Model) NewCache(maxPos int) *Cache {
	c := &Cache{Max: maxPos}
	for range m.Config.NumHiddenLayers {
		c.K = append(c.K, make([]float32, maxPos*m.Config.KVDim()))
		c.V = append(c.V, make([]float32, maxPos*m.Config.KVDim()))
	}
	return c
}

// Output is what a forward pass returns.
type Output struct {
	T      int
	Logits []float32 // [T, vocab]
	// Hidden, when requested: index 0 the embeddings, i in 1..L-1 the output
	// of layer i, L the output of the last layer after the final norm
	// (transformers' hidden_states convention). Each [T, hidden].
	Hidden [][]float32
}

// LogitsAt returns position t's logits.
func (o *Output) LogitsAt(t int) []float32 {
	v := len(o.Logits) / o.T
	return o.Logits[t*v : (t+1)*v]
}

// Forward runs a whole prompt from an empty cache (full recompute).
func (m *Model) Forward(tokens []int, wantHidden bool) (*Output, error) {
	return m.Prefill(m.NewCache(len(tokens)), tokens, wantHidden)
}

// Step feeds one token after what the cache holds and returns its logits.
func (m *Model) Step(c *Cache, token int) ([]float32, error) {
	o, err := m.Prefill(c, []int{token}, false)
	if err != nil {
		return nil, err
	}
	return o.Logits, nil
}

// Prefill feeds tokens at positions c.Len.. and appends their keys and
// values to the cache. It returns every position's logits.
func (m *Model) Prefill(c *Cache, tokens []int, wantHidden bool) (*Output, error) {
	cfg := m.Config
	T, H := len(tokens), cfg.HiddenSize
	if T == 0 {
		return nil, fmt.Errorf("qwen3: empty input")
	}
	pos0 := c.Len
	if pos0+T > c.Max || pos0+T > m.Rope.MaxPos {
		return nil, fmt.Errorf("qwen3: %d tokens after %d exceed the context of %d", T, pos0, min(c.Max, m.Rope.MaxPos))
	}
	for _, id := range tokens {
		if id < 0 || id >= cfg.VocabSize {
			return nil, fmt.Errorf("qwen3: token id %d outside the vocabulary [0, %d)", id, cfg.VocabSize)
		}
	}
	out := &Output{T: T}

	x := make([]float32, T*H) // residual stream [T, hidden]
	for t, id := range tokens {
		copy(x[t*H:(t+1)*H], m.W.Embed[id*H:(id+1)*H])
	}
	if wantHidden {
		out.Hidden = append(out.Hidden, clone(x))
	}
	for l := range m.W.Layers {
		m.layer(l, c, x, T, pos0)
		if wantHidden && l < cfg.NumHiddenLayers-1 {
			out.Hidden = append(out.Hidden, clone(x))
		}
	}
	c.Len = pos0 + T

	RMSNormRows(x, x, m.W.FinalNorm, cfg.RMSNormEps)
	if wantHidden {
		out.Hidden = append(out.Hidden, clone(x))
	}
	out.Logits = make([]float32, T*cfg.VocabSize)
	MatMul(out.Logits, x, m.W.LMHead, T, cfg.VocabSize, H)
	return out, nil
}

// layer applies decoder layer l to the residual stream x [T, hidden] in
// place, as Qwen3DecoderLayer does.
func (m *Model) layer(l int, c *Cache, x []float32, T, pos0 int) {
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
		copy(c.K[l][pos*KV:(pos+1)*KV], k[t*KV:(t+1)*KV])
		copy(c.V[l][pos*KV:(pos+1)*KV], v[t*KV:(t+1)*KV])
	}
	attn := make([]float32, T*Q)
	parallelFor(T, (pos0+T)*Q, func(lo, hi int) {
		for t := lo; t < hi; t++ {
			// Causal: position pos0+t sees cache rows [0, pos0+t].
			Attention(attn[t*Q:(t+1)*Q], q[t*Q:(t+1)*Q], c.K[l], c.V[l], pos0+t+1,
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

func clone(x []float32) []float32 { return append([]float32(nil), x...) }
