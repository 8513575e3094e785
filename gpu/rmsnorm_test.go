package gpu

import (
	"testing"

	"github.com/qwgpu/qwgpu/qwen3"
)

func TestRMSNorm(t *testing.T) {
	cases := []struct {
		rows, n int
		scale   float32
	}{
		{1, 1024, 1},
		{3, 77, 1},
		{77, 1000, 1e4}, // large magnitudes: x² sums near 1e11
		{127, 3, 1},
		{1000, 128, 1},
		{5, 5000, 1},  // more than 256 vec4 per thread group: registers
		{2, 40000, 1}, // past rmsnormMaxK: the two-read path
		{70000, 4, 1}, // more rows than 65535: 2-D grid
	}
	forEachBackend(t, "rmsnorm", func(t *testing.T, d *Device) {
		for _, c := range cases {
			t.Run(shape(c.rows, c.n), func(t *testing.T) {
				r := newRand(t)
				x := randF32(r, c.rows*c.n, c.scale)
				w := randF32(r, c.n, 90)
				const eps = 1e-6
				want := make([]float32, len(x))
				qwen3.RMSNormRows(want, x, w, eps)

				bx, bw := upload(t, d, "x", x), upload(t, d, "w", w)
				out := poisoned(t, d, "out", len(x))
				op := must[*Op](t)(d.RMSNorm(out, bx, bw, c.rows, c.n, eps))
				run(t, d, op)
				checkClose(t, "rmsnorm", readF32(t, d, out, len(x)), want)
			})
		}
	})
}
