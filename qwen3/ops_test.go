package qwen3

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRMSNormByHand(t *testing.T) {
	// mean(x²) = (9+16)/2 = 12.5; 1/sqrt(12.5) = 0.282842712...
	x := []float32{3, 4}
	out := make([]float32, 2)
	RMSNorm(out, x, []float32{1, 2}, 0)
	require.InDelta(t, 3/math.Sqrt(12.5), out[0], 1e-6)
	require.InDelta(t, 2*4/math.Sqrt(12.5), out[1], 1e-6)
}

func TestRopeByHand(t *testing.T) {
	// head_dim 4: inv_freq = [1, theta^-0.5]; with theta = 100, [1, 0.1].
	r := NewRope(4, 3, 100)
	v := []float32{1, 0, 0, 0} // pairs (v0, v2) and (v1, v3)
	r.Apply(v, 0)
	require.Equal(t, []float32{1, 0, 0, 0}, v, "position 0 is the identity")
	v = []float32{1, 1, 0, 0}
	r.Apply(v, 2)
	// pair 0 rotates by 2 rad, pair 1 by 0.2 rad.
	require.InDelta(t, math.Cos(2), v[0], 1e-6)
	require.InDelta(t, math.Sin(2), v[2], 1e-6)
	require.InDelta(t, math.Cos(0.2), v[1], 1e-6)
	require.InDelta(t, math.Sin(0.2), v[3], 1e-6)
}

func TestAttentionByHand(t *testing.T) {
	// One KV head, two query heads, head_dim 2, two positions.
	keys := []float32{1, 0, 0, 1}
	values := []float32{10, 20, 30, 40}
	q := []float32{2, 0, 0, 0}
	out := make([]float32, 4)
	Attention(out, q, keys, values, 2, 2, 1, 2)
	// head 0: scores (2/√2, 0) → p0 = e^√2/(e^√2+1).
	p0 := math.Exp(math.Sqrt2) / (math.Exp(math.Sqrt2) + 1)
	require.InDelta(t, p0*10+(1-p0)*30, out[0], 1e-5)
	require.InDelta(t, p0*20+(1-p0)*40, out[1], 1e-5)
	// head 1: zero query → uniform.
	require.InDelta(t, 20, out[2], 1e-5)
	require.InDelta(t, 30, out[3], 1e-5)
	// With one visible position the output is that value row.
	Attention(out, q, keys, values, 1, 2, 1, 2)
	require.Equal(t, []float32{10, 20, 10, 20}, out)
}

func TestSiLUAndMatMul(t *testing.T) {
	require.InDelta(t, 1/(1+math.Exp(-1)), SiLU(float32(1)), 1e-7)
	require.Equal(t, float32(0), SiLU(float32(0)))
	// [2,3] x [2,3]^T
	x := []float32{1, 2, 3, 4, 5, 6}
	w := []float32{1, 0, 0, 0, 1, 1}
	out := make([]float32, 4)
	MatMul(out, x, w, 2, 2, 3)
	require.Equal(t, []float32{1, 5, 4, 11}, out)
	mv := make([]float32, 2)
	MatVec(mv, w, x[:3], 2, 3)
	require.Equal(t, []float32{1, 5}, mv)
	require.Equal(t, 1, Argmax([]float32{1, 3, 3, 2}), "lowest index wins ties")
}
