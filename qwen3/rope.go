package qwen3

import "math"

// Rope holds rotary-embedding tables cos[pos, i], sin[pos, i] for
// i < head_dim/2, formed the way transformers forms them even in a float64
// model (Qwen3RotaryEmbedding forces float32): inverse frequencies in
// float32, the angle as one float32 product position × inv_freq, cos and
// sin of that float32 angle rounded to float32, then multiplied in float32
// by the attention factor (YaRN's mscale; 1 otherwise). The GPU uploads the
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

// NewRopeFor builds the tables config c asks for, YaRN scaling included,
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
// factor that multiplies cos and sin (1 without scaling; YaRN's
// 0.1·ln(factor) + 1 by default). A GPU builds identical tables from them
// with NewRopeTables.
func (c Config) RopeFrequencies() (invFreq []float32, attentionFactor float64) {
	if c.RopeScaling == nil {
		return DefaultInvFreq(c.HeadDim, c.RopeTheta), 1
	}
	return yarnFrequencies(c.HeadDim, c.RopeTheta, c.MaxPositionEmbeddings, *c.RopeScaling)
}

// yarnFrequencies is transformers' _compute_yarn_parameters (5.x): a ramp
// over the pairs blends extrapolated frequencies (fast-rotating pairs, kept
// as they are) with interpolated ones (slow pairs, divided by factor).
// Scalars are float64 as in Python; tensor steps are float32 as in torch.
func yarnFrequencies(dim int, theta float64, maxPos int, s RopeScaling) ([]float32, float64) {
	factor := s.Factor
	if factor == 0 { // transformers: a null factor is max_position_embeddings / original
		factor = float64(maxPos) / float64(s.OriginalMaxPositionEmbeddings)
	}
	mscale := func(scale, m float64) float64 {
		if scale <= 1 {
			return 1
		}
		return 0.1*m*math.Log(scale) + 1
	}
	attn := s.AttentionFactor
	if attn == 0 {
		if s.Mscale != 0 && s.MscaleAllDim != 0 {
			attn = mscale(factor, s.Mscale) / mscale(factor, s.MscaleAllDim)
		} else {
			attn = mscale(factor, 1)
		}
	}
	betaFast, betaSlow := s.BetaFast, s.BetaSlow
	if betaFast == 0 {
		betaFast = 32
	}
	if betaSlow == 0 {
		betaSlow = 1
	}
	// The pair index at which a frequency makes numRot turns over the
	// original context.
	correctionDim := func(numRot float64) float64 {
		return (float64(dim) * math.Log(float64(s.OriginalMaxPositionEmbeddings)/(numRot*2*math.Pi))) / (2 * math.Log(theta))
	}
	low, high := correctionDim(betaFast), correctionDim(betaSlow)
	if !s.NoTruncate {
		low, high = math.Floor(low), math.Ceil(high)
	}
	low, high = math.Max(low, 0), math.Min(high, float64(dim-1))
	if low == high {
		high += 0.001 // transformers' guard against a zero-width ramp
	}
	lowF, width := float32(low), float32(high-low)
	ff := float32(factor)
	pos := posFreqs(dim, theta)
	inv := make([]float32, len(pos))
	for i, p := range pos {
		extrapolation := 1 / p
		interpolation := 1 / float32(ff*p)
		ramp := float32(float32(i)-lowF) / width
		ramp = min(max(ramp, 0), 1)
		extraFactor := 1 - ramp
		inv[i] = float32(interpolation*float32(1-extraFactor)) + float32(extrapolation*extraFactor)
	}
	return inv, attn
}

// Apply rotates one float32 head vector in place at position pos
// (rotateHalf).
func (r *Rope) Apply(v []float32, pos int) { rotateHalf(r, v, pos) }

// Apply64 rotates one float64 head vector in place at position pos
// (rotateHalf), as apply_rotary_pos_emb does in a float64 model.
func (r *Rope) Apply64(v []float64, pos int) { rotateHalf(r, v, pos) }

// rotateHalf rotates one head vector in place at position pos with the
// rotate-half (NeoX) form: element i pairs with element i + head_dim/2, and
// the pair becomes q·cos + rotate_half(q)·sin, formed in float64 with the
// float32 table values widened and rounded to F once at the end.
func rotateHalf[F Float](r *Rope, v []F, pos int) {
	half := r.HeadDim / 2
	cos, sin := r.Cos[pos*half:(pos+1)*half], r.Sin[pos*half:(pos+1)*half]
	for i := 0; i < half; i++ {
		a, b := float64(v[i]), float64(v[i+half])
		c, s := float64(cos[i]), float64(sin[i])
		// Each product rounded on its own (no fused multiply-add), as torch
		// forms q·cos and rotate_half(q)·sin as separate tensors.
		v[i] = F(float64(a*c) + float64(-b*s))
		v[i+half] = F(float64(b*c) + float64(a*s))
	}
}
