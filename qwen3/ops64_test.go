package qwen3

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRMSNormFloat64ByHand(t *testing.T) {
	// mean(x²) = (9+16)/2 = 12.5.
	out := make([]float64, 2)
	RMSNorm(out, []float64{3, 4}, []float32{1, 2}, 0)
	require.InDelta(t, 3/math.Sqrt(12.5), out[0], 1e-15)
	require.InDelta(t, 8/math.Sqrt(12.5), out[1], 1e-15)
}

func TestMatMulFloat64ByHand(t *testing.T) {
	// Five tokens: four go through the two-at-once kernel, one alone; both
	// must give exactly the single-vector answer.
	w := []float32{1, 0, 0.5, 0, 1, 1}
	x := []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 1e-17, 1, 1, -2, 0, 0}
	out := make([]float64, 10)
	MatMul(out, x, w, 5, 2, 3)
	require.Equal(t, []float64{2.5, 5, 7, 11, 11.5, 17, 1e-17 + 0.5, 2, -2, 0}, out)
	for tok := 0; tok < 5; tok++ {
		mv := make([]float64, 2)
		MatVec(mv, w, x[tok*3:(tok+1)*3], 2, 3)
		require.Equal(t, out[tok*2:tok*2+2], mv)
	}
}

func TestAttention64ByHand(t *testing.T) {
	keys := []float64{1, 0, 0, 1}
	values := []float64{10, 20, 30, 40}
	out := make([]float64, 4)
	Attention64(out, []float64{2, 0, 0, 0}, keys, values, 2, 2, 1, 2)
	p0 := math.Exp(math.Sqrt2) / (math.Exp(math.Sqrt2) + 1)
	require.InDelta(t, p0*10+(1-p0)*30, out[0], 1e-13)
	require.InDelta(t, p0*20+(1-p0)*40, out[1], 1e-13)
	require.InDelta(t, 20, out[2], 1e-13)
	require.InDelta(t, 30, out[3], 1e-13)
}

func TestRopeApply64ByHand(t *testing.T) {
	r := NewRope(4, 3, 100) // inv_freq [1, 0.1]
	v := []float64{1, 1, 0, 0}
	r.Apply64(v, 2)
	// Pair 0 turns by 2 rad, pair 1 by 0.2 rad (float32 tables: 1e-7).
	require.InDelta(t, math.Cos(2), v[0], 1e-7)
	require.InDelta(t, math.Sin(2), v[2], 1e-7)
	require.InDelta(t, math.Cos(0.2), v[1], 1e-7)
	require.InDelta(t, math.Sin(0.2), v[3], 1e-7)
}

func TestSwiGLUAndEmbedFloat64(t *testing.T) {
	out := make([]float64, 2)
	SwiGLU(out, []float64{1, 0}, []float64{3, 5})
	require.InDelta(t, 3/(1+math.Exp(-1)), out[0], 1e-15)
	require.Equal(t, 0.0, out[1])
	e := make([]float64, 4)
	Embed(e, []float32{1, 2, 3, 4, 5, 6}, []int{2, 0}, 2)
	require.Equal(t, []float64{5, 6, 1, 2}, e)
}

func TestNMSE(t *testing.T) {
	want := []float64{1, -2, 3}
	require.Equal(t, 0.0, NMSE([]float32{1, -2, 3}, want))
	// Every value off by 0.1%: NMSE = 1e-6.
	require.InEpsilon(t, 1e-6, NMSE([]float32{1.001, -2.002, 3.003}, want), 1e-4)
	require.Equal(t, math.Inf(1), NMSE([]float32{1, float32(math.NaN()), 3}, want))
	require.Equal(t, math.Inf(1), NMSE([]float32{1, -2}, want))
	require.Equal(t, 0.0, NMSE([]float32{0}, []float64{0}))
	require.Equal(t, math.Inf(1), NMSE([]float32{1e-30}, []float64{0}))
}

// The float32 ops and their float64 versions agree to float32 rounding on
// the same inputs: the float32 path is the float64 one rounded, not
// another computation.
func TestFloat32OpsTrackFloat64Ops(t *testing.T) {
	const n, rows = 96, 7
	x32, w := make([]float32, n), make([]float32, rows*n)
	for i := range x32 {
		x32[i] = float32(math.Sin(float64(i)))
	}
	for i := range w {
		w[i] = float32(math.Cos(float64(3 * i)))
	}
	norm32 := make([]float32, n)
	RMSNorm(norm32, x32, w[:n], 1e-6)
	norm64 := make([]float64, n)
	RMSNorm(norm64, Widen(x32), w[:n], 1e-6)
	require.Less(t, NMSE(norm32, norm64), 1e-14)
	mv32 := make([]float32, rows)
	MatVec(mv32, w, x32, rows, n)
	mv64 := make([]float64, rows)
	MatVec(mv64, w, Widen(x32), rows, n)
	require.Less(t, NMSE(mv32, mv64), 1e-14)
	require.Equal(t, Narrow(mv64), mv32, "float64 sums rounded once on both sides")
}
