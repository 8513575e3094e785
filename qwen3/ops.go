package qwen3

import (
	"math"
	"runtime"
	"sync"
)

// The CPU reference operations. Activations are float32 like the GPU's;
// every reduction (dot products, sums of squares, softmax) accumulates in
// float64 so that the reference is closer to the float64 Hugging Face
// reference than any float32 kernel can be. The GPU kernels are tested
// against these functions.

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

// Dot returns Σ a[i]·b[i] accumulated in float64.
func Dot(a, b []float32) float64 {
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

// RMSNorm writes out = x / sqrt(mean(x²) + eps) · w for one row
// (Qwen3RMSNorm). out may alias x.
func RMSNorm(out, x, w []float32, eps float64) {
	var ss float64
	for _, v := range x {
		ss += float64(v) * float64(v)
	}
	scale := 1 / math.Sqrt(ss/float64(len(x))+eps)
	for i, v := range x {
		out[i] = float32(float64(v) * scale * float64(w[i]))
	}
}

// RMSNormRows applies RMSNorm to each row of x [rows, len(w)].
func RMSNormRows(out, x, w []float32, eps float64) {
	d := len(w)
	rows := len(x) / d
	parallelFor(rows, d, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			RMSNorm(out[r*d:(r+1)*d], x[r*d:(r+1)*d], w, eps)
		}
	})
}

// MatVec computes out[r] = Σ_c w[r·cols + c] · x[c]: a Hugging Face Linear
// (weight [out, in]) applied to one vector.
func MatVec(out, w, x []float32, rows, cols int) {
	parallelFor(rows, cols, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			out[r] = float32(Dot(w[r*cols:(r+1)*cols], x))
		}
	})
}

// MatMul computes out[t, r] = Σ_c x[t, c] · w[r, c] for x [T, cols],
// w [rows, cols], out [T, rows]: a Linear over T tokens.
func MatMul(out, x, w []float32, T, rows, cols int) {
	parallelFor(rows, T*cols, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			wr := w[r*cols : (r+1)*cols]
			for t := 0; t < T; t++ {
				out[t*rows+r] = float32(Dot(wr, x[t*cols:(t+1)*cols]))
			}
		}
	})
}

// SiLU is x · sigmoid(x).
func SiLU(x float32) float32 {
	return float32(float64(x) / (1 + math.Exp(-float64(x))))
}

// SwiGLU writes out[i] = SiLU(gate[i]) · up[i], the Qwen3 MLP activation.
func SwiGLU(out, gate, up []float32) {
	for i := range out {
		out[i] = float32(float64(SiLU(gate[i])) * float64(up[i]))
	}
}

// Add writes out[i] = a[i] + b[i] (the residual connection).
func Add(out, a, b []float32) {
	for i := range out {
		out[i] = a[i] + b[i]
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
// float64 with the maximum subtracted.
func Attention(out, q, keys, values []float32, n, nHeads, nKV, headDim int) {
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
			s := Dot(qh, keys[j*kvDim+off:j*kvDim+off+headDim]) * scale
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
			out[h*headDim+d] = float32(v)
		}
	}
}
