package gpu

import (
	"math"
	"testing"
)

// tolerance bounds |got - want| ≤ Abs + Rel · max|want| for one kernel. The
// CPU references in package qwen3 accumulate in float64, so the bound is the
// kernel's float32 rounding; low-precision weights are rounded before the
// reference sees them, so they add nothing here.
type tolerance struct {
	Abs, Rel float64
}

// tolerances is the one table every kernel test checks against.
var tolerances = map[string]tolerance{
	"rmsnorm":   {Rel: 2e-6},
	"add":       {Rel: 1e-7},
	"swiglu":    {Rel: 1e-6},
	"embedding": {},
	// Dot products of up to a few thousand terms summed in float32 in a
	// different order than the float64 reference.
	"matvec": {Rel: 2e-6},
	// The matmul sums each thread's k range sequentially (no tree), so its
	// rounding grows faster with cols; 1.4e-6 seen at cols 1024 on lavapipe.
	"matmul": {Rel: 4e-6},
	// qkv_norm_rope: a matvec, then a per-head norm and a rotation, all
	// float32; compared per output vector (q, a K row, a V row).
	"qkv_norm_rope": {Rel: 5e-6},
	// attention: float32 scores and softmax. A score error δ scales a
	// softmax weight by e^δ, and δ ≈ ε·Σ|q_i·k_i|/sqrt(head_dim): with k_norm
	// weights near 90 and values of 1e4, a float32 evaluation in plain Go
	// (products and sums rounded to float32, exact exp) is itself 2e-5 off
	// the float64 reference. Also used for qkv_norm_rope + attention.
	"attention": {Rel: 5e-5},
}

// checkClose compares got against want with kernel's tolerance and reports
// the first mismatches as "index i: got a, want b". NaN or Inf in got is
// always a mismatch (outputs start as NaN, so an unwritten element fails).
func checkClose(t testing.TB, kernel string, got, want []float32) {
	t.Helper()
	tol, ok := tolerances[kernel]
	if !ok {
		t.Fatalf("no tolerance for kernel %q in tolerances", kernel)
	}
	if len(got) != len(want) {
		t.Fatalf("got %d values, want %d", len(got), len(want))
	}
	var maxWant float64
	for _, w := range want {
		maxWant = math.Max(maxWant, math.Abs(float64(w)))
	}
	bound := tol.Abs + tol.Rel*maxWant
	bad, worst := 0, 0.0
	for i := range got {
		g, w := float64(got[i]), float64(want[i])
		diff := math.Abs(g - w)
		if math.IsNaN(g) || math.IsInf(g, 0) || diff > bound {
			if bad < 5 {
				t.Errorf("index %d: got %v, want %v (|diff| %.3g > %.3g)", i, got[i], want[i], diff, bound)
			}
			bad++
		}
		if !math.IsNaN(diff) {
			worst = math.Max(worst, diff)
		}
	}
	if bad > 0 {
		t.Errorf("%s: %d of %d values out of tolerance", kernel, bad, len(got))
	}
	if maxWant > 0 {
		t.Logf("%s: worst |diff| / max|want| = %.3g (bound %.3g)", kernel, worst/maxWant, bound/maxWant)
	}
}
