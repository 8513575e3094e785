package qwen3

import "math"

// Rope holds rotary-embedding tables cos[pos, i], sin[pos, i] for
// i < head_dim/2, formed the way transformers forms them even in a float64
// model (Qwen3RotaryEmbedding forces float32): inverse frequencies in
// float32, the angle as one float32 product position × inv_freq, cos and
// sin of that float32 angle rounded to float32, then multiplied in float32
// by the attention factor (1 for plain RoPE). The GPU uploads the
// same tables, so both sides rotate by identical values, and the float64
// oracle differs from transformers' float64 model only in summation order.
type Rope struct {
	HeadDim int
	MaxPos  int
	// InvFreq [head_dim/2] and AttentionFactor are what the tables were
	// built from (RopeFrequencies).
	InvFreq         []float32
	AttentionFactor float64
	Cos             []float32 // [MaxPos, HeadDim/2]
	Sin             []float32 // [MaxPos, HeadDim/2]
}

// NewRope builds unscaled tables (inv_freq = theta^(-2i/head_dim)) for
// positions [0, maxPos). A model's tables come from NewRopeFor, which also
// applies the config's rope scaling.
func NewRope(headDim, maxPos int, theta float64) *Rope {
	return NewRopeTables(DefaultInvFreq(headDim, theta), 1, maxPos)
}

// NewRopeFor builds the tables config c asks for
// for positions [0, maxPos).
func NewRopeFor(c Config, maxPos int) *Rope {
	inv, attn := c.RopeFrequencies()
	return NewRopeTables(inv, attn, maxPos)
}

// NewRopeTables builds cos and sin tables from per-pair inverse frequencies
// and the factor multiplying cos and sin, with transformers' float32 steps.
func NewRopeTables(invFreq []float32, attentionFactor float64, maxPos int) *Rope {
	half := len(invFreq)
	r := &Rope{HeadDim: 2 * half, MaxPos: maxPos, InvFreq: invFreq, AttentionFactor: attentionFactor,
		Cos: make([]float32, maxPos*half), Sin: make([]float32, maxPos*half)}
	// torch multiplies a float32 tensor by a Python float in float32.
	af := float32(attentionFactor)
	for p := 0; p < maxPos; p++ {
		for i, f := range invFreq {
			angle := float32(float32(p) * f) // one float32 product (inv_freq @ position_ids)
			c := float32(math.Cos(float64(angle)))
			s := float32(math.Sin(float64(angle)))
			r.Cos[p*half+i] = float32(c * af)
			r.Sin[p*half+i] = float32(s * af)
		}
	}
	return r
}

// DefaultInvFreq is transformers' unscaled inverse frequencies,
// 1 / theta^(float32(2i)/float32(head_dim)), every step rounded to float32
// as torch computes it.
func DefaultInvFreq(headDim int, theta float64) []float32 {
	pos := posFreqs(headDim, theta)
	inv := make([]float32, len(pos))
	for i, p := range pos {
		inv[i] = 1 / p
	}
	return inv
}

// posFreqs is theta^(2i/dim) in float32: the exponent is a float32
// division and the base is rounded to float32, as torch does for
// `base ** (arange(0, dim, 2).float() / dim)`.
func posFreqs(dim int, theta float64) []float32 {
	out := make([]float32, dim/2)
	base := float64(float32(theta))
	for i := range out {
		e := float32(2*i) / float32(dim)
		out[i] = float32(math.Pow(base, float64(e)))
	}
	return out
}

// RopeFrequencies returns the per-pair inverse frequencies (head_dim/2
// float32 values, as transformers stores inv_freq) and the attention
// factor that multiplies cos and sin (1 without scaling). A GPU builds
// identical tables from them with NewRopeTables.
func (c Config) RopeFrequencies() (invFreq []float32, attentionFactor float64) {
	return DefaultInvFreq(c.HeadDim, c.RopeTheta), 1
}

// Apply rotates one float32 head vector in place at position pos with the
// rotate-half (NeoX) form: element i pairs with element i + head_dim/2.
func (r *Rope) Apply(v []float32, pos int) {
	half := r.HeadDim / 2
	cos, sin := r.Cos[pos*half:(pos+1)*half], r.Sin[pos*half:(pos+1)*half]
	for i := 0; i < half; i++ {
		a, b := float64(v[i]), float64(v[i+half])
		c, s := float64(cos[i]), float64(sin[i])
		v[i] = float32(a*c - b*s)
		v[i+half] = float32(b*c + a*s)
	}
}

// Apply64 rotates one float64 head vector in place at position pos, as
// apply_rotary_pos_emb does in a float64 model: q·cos + rotate_half(q)·sin
// with the float32 table values widened.
func (r *Rope) Apply64(v []float64, pos int) {
	half := r.HeadDim / 2
	cos, sin := r.Cos[pos*half:(pos+1)*half], r.Sin[pos*half:(pos+1)*half]
	for i := 0; i < half; i++ {
		a, b := v[i], v[i+half]
		c, s := float64(cos[i]), float64(sin[i])
		// Each product rounded on its own (no fused multiply-add), as torch
		// forms q·cos and rotate_half(q)·sin as separate tensors.
		v[i] = float64(a*c) + float64(-b*s)
		v[i+half] = float64(b*c) + float64(a*s)
	}
}
