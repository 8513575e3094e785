package qwen3

import (
	"math"
)

// The float64 operations of the oracle. Weights stay float32 slices: every
// checkpoint dtype (F32, BF16, F16) is exact in float32, and each weight is
// widened exactly to float64 as it is read, so memory stays at 4 bytes a
// weight. Activations, sums, norms, RoPE products and softmax are float64.
// They are exported so that kernel tests can measure a float32 kernel
// against the exact answer (see NMSE), not against another float32 answer.

// Dot64 returns Σ w[i]·x[i] in float64, w widened exactly.
func Dot64(w []float32, x []float64) float64 {
	x = x[:len(w)]
	var s0, s1, s2, s3 float64
	i := 0
	for ; i+4 <= len(w); i += 4 {
		s0 += float64(w[i]) * x[i]
		s1 += float64(w[i+1]) * x[i+1]
		s2 += float64(w[i+2]) * x[i+2]
		s3 += float64(w[i+3]) * x[i+3]
	}
	for ; i < len(w); i++ {
		s0 += float64(w[i]) * x[i]
	}
	return (s0 + s1) + (s2 + s3)
}

// dot64x4 is four Dot64 of one weight row against four vectors, each
// summed in exactly Dot64's order (so a token's result does not depend on
// how many tokens share the call); the row is read once for all four.
func dot64x4(w []float32, a, b, c, d []float64) (ra, rb, rc, rd float64) {
	n := len(w)
	a, b, c, d = a[:n], b[:n], c[:n], d[:n]
	var a0, a1, a2, a3, b0, b1, b2, b3, c0, c1, c2, c3, d0, d1, d2, d3 float64
	i := 0
	for ; i+4 <= n; i += 4 {
		w0, w1, w2, w3 := float64(w[i]), float64(w[i+1]), float64(w[i+2]), float64(w[i+3])
		a0 += w0 * a[i]
		a1 += w1 * a[i+1]
		a2 += w2 * a[i+2]
		a3 += w3 * a[i+3]
		b0 += w0 * b[i]
		b1 += w1 * b[i+1]
		b2 += w2 * b[i+2]
		b3 += w3 * b[i+3]
		c0 += w0 * c[i]
		c1 += w1 * c[i+1]
		c2 += w2 * c[i+2]
		c3 += w3 * c[i+3]
		d0 += w0 * d[i]
		d1 += w1 * d[i+1]
		d2 += w2 * d[i+2]
		d3 += w3 * d[i+3]
	}
	for ; i < n; i++ {
		wi := float64(w[i])
		a0 += wi * a[i]
		b0 += wi * b[i]
		c0 += wi * c[i]
		d0 += wi * d[i]
	}
	return (a0 + a1) + (a2 + a3), (b0 + b1) + (b2 + b3), (c0 + c1) + (c2 + c3), (d0 + d1) + (d2 + d3)
}

// MatVec64 computes out[r] = Σ_c w[r·cols + c] · x[c] (a Hugging Face
// Linear, weight [out, in]) on all cores.
func MatVec64(out []float64, w []float32, x []float64, rows, cols int) {
	parallelFor(rows, cols, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			out[r] = Dot64(w[r*cols:(r+1)*cols], x)
		}
	})
}

// MatMul64 computes out[t, r] = Σ_c x[t, c] · w[r, c] for x [T, cols],
// w [rows, cols], out [T, rows]: a Linear over T tokens, rows split over
// all cores. Every output equals MatVec64's for that token.
func MatMul64(out, x []float64, w []float32, T, rows, cols int) {
	parallelFor(rows, T*cols, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			wr := w[r*cols : (r+1)*cols]
			t := 0
			for ; t+4 <= T; t += 4 {
				a, b, c, d := dot64x4(wr, x[t*cols:], x[(t+1)*cols:], x[(t+2)*cols:], x[(t+3)*cols:])
				out[t*rows+r], out[(t+1)*rows+r], out[(t+2)*rows+r], out[(t+3)*rows+r] = a, b, c, d
			}
			for ; t < T; t++ {
				out[t*rows+r] = Dot64(wr, x[t*cols:(t+1)*cols])
			}
		}
	})
}

// RMSNorm64 writes out = x / sqrt(mean(x²) + eps) · w for one row, all in
// float64. out may alias x.
func RMSNorm64(out, x []float64, w []float32, eps float64) {
	var ss float64
	for _, v := range x {
		ss += v * v
	}
	scale := 1 / math.Sqrt(ss/float64(len(x))+eps)
	for i, v := range x {
		out[i] = v * scale * float64(w[i])
	}
}

// RMSNormRows64 applies RMSNorm64 to each row of x [rows, len(w)].
func RMSNormRows64(out, x []float64, w []float32, eps float64) {
	d := len(w)
	parallelFor(len(x)/d, d, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			RMSNorm64(out[r*d:(r+1)*d], x[r*d:(r+1)*d], w, eps)
		}
	})
}

// SiLU64 is x · sigmoid(x) in float64.
func SiLU64(x float64) float64 { return x / (1 + math.Exp(-x)) }

// SwiGLU64 writes out[i] = SiLU(gate[i]) · up[i]. out may alias gate.
func SwiGLU64(out, gate, up []float64) {
	for i := range out {
		out[i] = SiLU64(gate[i]) * up[i]
	}
}

// Add64 writes out[i] = a[i] + b[i] (the residual connection).
func Add64(out, a, b []float64) {
	for i := range out {
		out[i] = a[i] + b[i]
	}
}

// Embed64 writes the embedding rows of ids into out [len(ids), hidden].
// The caller has checked every id against the vocabulary.
func Embed64(out []float64, embed []float32, ids []int, hidden int) {
	for t, id := range ids {
		row := embed[id*hidden : (id+1)*hidden]
		for i, v := range row {
			out[t*hidden+i] = float64(v)
		}
	}
}

// Attention64 computes causal grouped-query attention for one query
// position that sees cache rows [0, n), in float64: q [nHeads·headDim],
// keys and values [n, nKV·headDim], out [nHeads·headDim]. Query head h
// reads KV head h / (nHeads/nKV); scores are scaled by 1/sqrt(headDim) and
// softmaxed with the maximum subtracted.
func Attention64(out, q, keys, values []float64, n, nHeads, nKV, headDim int) {
	group := nHeads / nKV
	kvDim := nKV * headDim
	scale := 1 / math.Sqrt(float64(headDim))
	scores := make([]float64, n)
	acc := make([]float64, headDim)
	for h := 0; h < nHeads; h++ {
		qh := q[h*headDim : (h+1)*headDim]
		off := (h / group) * headDim
		maxS := math.Inf(-1)
		for j := 0; j < n; j++ {
			kj := keys[j*kvDim+off : j*kvDim+off+headDim]
			var s float64
			for d, qv := range qh {
				s += qv * kj[d]
			}
			scores[j] = s * scale
			maxS = math.Max(maxS, scores[j])
		}
		var sum float64
		for j := 0; j < n; j++ {
			scores[j] = math.Exp(scores[j] - maxS)
			sum += scores[j]
		}
		clear(acc)
		for j := 0; j < n; j++ {
			p := scores[j] / sum
			vj := values[j*kvDim+off : j*kvDim+off+headDim]
			for d := range acc {
				acc[d] += p * vj[d]
			}
		}
		copy(out[h*headDim:(h+1)*headDim], acc)
	}
}

// Widen returns x as float64 (exact).
func Widen(x []float32) []float64 {
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = float64(v)
	}
	return out
}

// Narrow returns x rounded to float32.
func Narrow(x []float64) []float32 {
	out := make([]float32, len(x))
	for i, v := range x {
		out[i] = float32(v)
	}
	return out
}

// NMSE is the normalised mean squared error Σ(got−want)² / Σwant², the
// measure ggml's test-backend-ops bounds kernels by. A float32 kernel
// against these float64 ops lands near 1e-14..1e-12; a wrong one near 1.
// NaN or Inf in got, or a length mismatch, gives +Inf; an all-zero want
// gives 0 only when got is all zero too.
func NMSE(got []float32, want []float64) float64 {
	if len(got) != len(want) {
		return math.Inf(1)
	}
	var num, den float64
	for i, w := range want {
		g := float64(got[i])
		if math.IsNaN(g) || math.IsInf(g, 0) {
			return math.Inf(1)
		}
		num += (g - w) * (g - w)
		den += w * w
	}
	if den == 0 {
		if num == 0 {
			return 0
		}
		return math.Inf(1)
	}
	return num / den
}
