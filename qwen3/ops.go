package qwen3

import (
	"math"
	"runtime"
	"sync"
)

// The CPU reference operations, written once for both kinds of activations
// (Float): float32, as the GPU keeps them, for the Float32Activations pass,
// and float64 for the oracle. Go compiles the float32 and float64
// instantiations separately, so neither pays for the other.
//
// Weights stay float32 slices: every checkpoint dtype (F32, BF16, F16) is
// exact in float32, and each weight is widened exactly to float64 as it is
// read, so memory stays at 4 bytes a weight. Every product is formed and
// every reduction (dot products, sums of squares, softmax) accumulated in
// float64; a float32 op rounds its result to float32 as it stores it. So
// the float32 ops are closer to the float64 Hugging Face reference than any
// float32 kernel can be, and the float64 ops are the exact answer a float32
// kernel is measured against (see NMSE), not another float32 answer. The
// GPU kernels are tested against these functions.

// Float is the element type of the CPU reference's activations.
type Float interface{ ~float32 | ~float64 }

// parallelFor splits [0, n) into contiguous chunks run on all cores.
// Small jobs run inline: goroutines cost more than they save there.
func parallelFor(n, costPerItem int, fn func(lo, hi int)) {
	workers := runtime.GOMAXPROCS(0)
	if workers <= 1 || n*costPerItem < 1<<15 || n < 2 {
		fn(0, n)
		return
	}
	if workers > n {
		workers = n
	}
	var wg sync.WaitGroup
	chunk := (n + workers - 1) / workers
	for lo := 0; lo < n; lo += chunk {
		hi := min(lo+chunk, n)
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(lo, hi)
		}()
	}
	wg.Wait()
}

// Dot returns Σ a[i]·b[i] in float64, both widened exactly, summed in four
// interleaved partial sums.
func Dot[A, B Float](a []A, b []B) float64 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float64
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += float64(a[i]) * float64(b[i])
		s1 += float64(a[i+1]) * float64(b[i+1])
		s2 += float64(a[i+2]) * float64(b[i+2])
		s3 += float64(a[i+3]) * float64(b[i+3])
	}
	for ; i < len(a); i++ {
		s0 += float64(a[i]) * float64(b[i])
	}
	return (s0 + s1) + (s2 + s3)
}

// dotx2 is two Dot of one weight row against two vectors, each summed in
// exactly Dot's order (so a token's result does not depend on how many
// tokens share the call); the row is read once for both. Two, not four:
// sixteen float64 partial sums plus the widened weights overflow amd64's
// sixteen vector registers, and a four-token version measured slower in
// float32 than one token at a time.
func dotx2[F Float](w []float32, a, b []F) (ra, rb float64) {
	n := len(w)
	a, b = a[:n], b[:n]
	var a0, a1, a2, a3, b0, b1, b2, b3 float64
	i := 0
	for ; i+4 <= n; i += 4 {
		w0, w1, w2, w3 := float64(w[i]), float64(w[i+1]), float64(w[i+2]), float64(w[i+3])
		a0 += w0 * float64(a[i])
		a1 += w1 * float64(a[i+1])
		a2 += w2 * float64(a[i+2])
		a3 += w3 * float64(a[i+3])
		b0 += w0 * float64(b[i])
		b1 += w1 * float64(b[i+1])
		b2 += w2 * float64(b[i+2])
		b3 += w3 * float64(b[i+3])
	}
	for ; i < n; i++ {
		wi := float64(w[i])
		a0 += wi * float64(a[i])
		b0 += wi * float64(b[i])
	}
	return (a0 + a1) + (a2 + a3), (b0 + b1) + (b2 + b3)
}

// MatVec computes out[r] = Σ_c w[r·cols + c] · x[c]: a Hugging Face Linear
// (weight [out, in]) applied to one vector, rows split over all cores.
func MatVec[F Float](out []F, w []float32, x []F, rows, cols int) {
	parallelFor(rows, cols, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			out[r] = F(Dot(w[r*cols:(r+1)*cols], x))
		}
	})
}

// MatMul computes out[t, r] = Σ_c x[t, c] · w[r, c] for x [T, cols],
// w [rows, cols], out [T, rows]: a Linear over T tokens, rows split over
// all cores. Every output equals MatVec's for that token.
func MatMul[F Float](out, x []F, w []float32, T, rows, cols int) {
	parallelFor(rows, T*cols, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			wr := w[r*cols : (r+1)*cols]
			t := 0
			for ; t+2 <= T; t += 2 {
				a, b := dotx2(wr, x[t*cols:], x[(t+1)*cols:])
				out[t*rows+r], out[(t+1)*rows+r] = F(a), F(b)
			}
			for ; t < T; t++ {
				out[t*rows+r] = F(Dot(wr, x[t*cols:(t+1)*cols]))
			}
		}
	})
}

// RMSNorm writes out = x / sqrt(mean(x²) + eps) · w for one row
// (Qwen3RMSNorm), computed in float64. out may alias x.
func RMSNorm[F Float](out, x []F, w []float32, eps float64) {
	var ss float64
	for _, v := range x {
		ss += float64(v) * float64(v)
	}
	scale := 1 / math.Sqrt(ss/float64(len(x))+eps)
	for i, v := range x {
		out[i] = F(float64(v) * scale * float64(w[i]))
	}
}

// RMSNormRows applies RMSNorm to each row of x [rows, len(w)].
func RMSNormRows[F Float](out, x []F, w []float32, eps float64) {
	d := len(w)
	parallelFor(len(x)/d, d, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			RMSNorm(out[r*d:(r+1)*d], x[r*d:(r+1)*d], w, eps)
		}
	})
}

// SiLU is x · sigmoid(x), computed in float64.
func SiLU[F Float](x F) F {
	return F(float64(x) / (1 + math.Exp(-float64(x))))
}

// SwiGLU writes out[i] = SiLU(gate[i]) · up[i], the Qwen3 MLP activation.
// SiLU's result is rounded to F before the product, as a float32 kernel
// that stores it would. out may alias gate.
func SwiGLU[F Float](out, gate, up []F) {
	for i := range out {
		out[i] = F(float64(SiLU(gate[i])) * float64(up[i]))
	}
}

// Add writes out[i] = a[i] + b[i] (the residual connection).
func Add[F Float](out, a, b []F) {
	for i := range out {
		out[i] = a[i] + b[i]
	}
}

// Embed writes the embedding rows of ids into out [len(ids), hidden].
// The caller has checked every id against the vocabulary.
func Embed[F Float](out []F, embed []float32, ids []int, hidden int) {
	for t, id := range ids {
		row := embed[id*hidden : (id+1)*hidden]
		for i, v := range row {
			out[t*hidden+i] = F(v)
		}
	}
}

// Argmax returns the index of the largest value; the lowest index wins ties.
func Argmax(x []float32) int {
	best := 0
	for i, v := range x {
		if v > x[best] {
			best = i
		}
	}
	return best
}

// Attention computes causal grouped-query attention for one query position
// that may see cache rows [0, n). q is [nHeads·headDim]; keys and values
// are [n, nKV·headDim]; out is [nHeads·headDim]. Query head h reads KV head
// h / (nHeads/nKV). Scores are scaled by 1/sqrt(headDim) and softmaxed in
// float64 with the maximum subtracted. Each q·k score is summed in Dot's
// four partial sums.
func Attention(out, q, keys, values []float32, n, nHeads, nKV, headDim int) {
	attention(out, q, keys, values, n, nHeads, nKV, headDim, Dot[float32, float32])
}

// Attention64 is Attention in float64, the oracle's. It sums each q·k
// score in one running sum instead of Dot's four: the oracle's logits were
// validated against transformers' (error 0, golden64_test.go) in that
// order, and this keeps them bit for bit.
func Attention64(out, q, keys, values []float64, n, nHeads, nKV, headDim int) {
	attention(out, q, keys, values, n, nHeads, nKV, headDim, dotInOrder[float64])
}

// dotInOrder returns Σ a[i]·b[i] in float64 summed from i = 0 up in one sum.
func dotInOrder[F Float](a, b []F) float64 {
	b = b[:len(a)]
	var s float64
	for i, v := range a {
		s += float64(v) * float64(b[i])
	}
	return s
}

// attention is Attention and Attention64, with dot the sum of each q·k
// score.
func attention[F Float](out, q, keys, values []F, n, nHeads, nKV, headDim int, dot func(a, b []F) float64) {
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
			s := dot(qh, keys[j*kvDim+off:j*kvDim+off+headDim]) * scale
			scores[j] = s
			maxS = math.Max(maxS, s)
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
				acc[d] += p * float64(vj[d])
			}
		}
		for d, v := range acc {
			out[h*headDim+d] = F(v)
		}
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

// Narrow returns x rounded to float32 (a copy when x is float32).
func Narrow[F Float](x []F) []float32 {
	out := make([]float32, len(x))
	for i, v := range x {
		out[i] = float32(v)
	}
	return out
}

// NMSE is the normalised mean squared error Σ(got−want)² / Σwant², the
// measure ggml's test-backend-ops bounds kernels by. A float32 kernel
// against the float64 ops lands near 1e-14..1e-12; a wrong one near 1.
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
