package kernels

import (
	"cmp"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/qwgpu/qwgpu/gpu"
	"github.com/qwgpu/qwgpu/weights"
)

// The op harness: every kernel over shape lists with odd sizes, every
// weight dtype, checked against a float64 reference by NMSE (bounds in
// nmseBound), on lavapipe and GL. A new case is one line of a table.

var dtypes = []weights.DType{weights.F32, weights.BF16, weights.F16}

func TestRMSNorm(t *testing.T) {
	cases := []struct {
		rows, cols int
		last       bool
	}{{1, 81, false}, {3, 128, false}, {5, 1024, false}, {2, 4099, false}, {600, 64, false}, {7, 96, true}}
	forEachBackend(t, func(t *testing.T, s *gpu.Scope) {
		for _, c := range cases {
			t.Run(name(c.rows, c.cols, c.last), func(t *testing.T) {
				r := newRand(t)
				x, w := randF32(r, c.rows*c.cols, 4), randF32(r, c.cols, 2)
				outRows := c.rows
				if c.last {
					outRows = 1
				}
				out := poisoned(t, s, "out", outRows*c.cols)
				rows := seqRows(0, 0, c.rows)
				op := must[*gpu.Op](t)(NewRMSNorm(s, RMSNorm{Out: out, X: upload(t, s, "x", x), W: upload(t, s, "w", w), Cols: c.cols,
					Eps: 1e-6, Step: stepBuffer(t, s, c.rows, rows), MaxRows: c.rows, Last: c.last, Label: "rmsnorm"}))
				runStep(t, s.Device(), rows, op)
				want := rmsnorm64(x, w, c.cols, float64(float32(1e-6)))
				if c.last {
					want = want[(c.rows-1)*c.cols:]
				}
				checkNMSE(t, "rmsnorm", readF32(t, s.Device(), out, outRows*c.cols), want)
			})
		}
	})
}

// linearCase is one projection: T tokens of cols values through a [rows,
// cols] matrix of dt.
type linearCase struct {
	T, rows, cols int
	dt            weights.DType
	epi           Epilogue
	norm          bool
}

// runLinear runs the case through MatVec or MatMul and checks it.
func runLinear(t *testing.T, s *gpu.Scope, c linearCase, matmul bool) {
	r := newRand(t)
	x := randF32(r, c.T*c.cols, 1)
	var w, up []float32
	l := Linear{Epi: c.epi, Label: "linear", Role: "linear", MaxRows: c.T}
	l.W, w = testMatrix(t, s, r, "w", c.dt, c.rows, c.cols)
	if c.epi == SwiGLU {
		l.Up, up = testMatrix(t, s, r, "up", c.dt, c.rows, c.cols)
	}
	l.X = upload(t, s, "x", x)
	xw := widen(x)
	var nw []float32
	if c.norm {
		nw = randF32(r, c.cols, 2)
		l.Norm, l.Eps = upload(t, s, "norm", nw), 1e-6
		xw = rmsnorm64(x, nw, c.cols, float64(float32(1e-6)))
	}
	prior := randF32(r, c.T*c.rows, 1)
	if c.epi == Add {
		l.Out = upload(t, s, "out", prior)
	} else {
		l.Out = poisoned(t, s, "out", c.T*c.rows)
	}
	rows := seqRows(0, 0, c.T)
	l.Step = stepBuffer(t, s, c.T, rows)
	var ops []*gpu.Op
	if matmul {
		ops = must[[]*gpu.Op](t)(MatMul(s, l))
	} else {
		ops = must[[]*gpu.Op](t)(MatVec(s, l, c.T))
	}
	runStep(t, s.Device(), rows, ops...)
	want := linear64(xw, w, c.T, c.rows, c.cols)
	switch c.epi {
	case Add:
		for i := range want {
			want[i] += float64(prior[i])
		}
	case SwiGLU:
		u := linear64(xw, up, c.T, c.rows, c.cols)
		for i := range want {
			want[i] = silu64(want[i]) * u[i]
		}
	}
	op := "matvec"
	if matmul {
		op = "matmul"
	}
	checkNMSE(t, op, readF32(t, s.Device(), l.Out, c.T*c.rows), want)
}

// testMatrix makes a random [rows, cols] matrix of dt on the device and
// returns it with the float32 values it holds: float types rounded from
// uniform values, block types random valid blocks (randBlocks) decoded by
// the CPU reference (weights' Tensor.Float32), so that the float64
// references use exactly the weights the GPU reads.
func testMatrix(t *testing.T, s *gpu.Scope, r *rand.Rand, label string, dt weights.DType, rows, cols int) (*Matrix, []float32) {
	t.Helper()
	if !dt.IsQuantized() {
		w := roundTo(dt, randF32(r, rows*cols, 0.5))
		return must[*Matrix](t)(UploadMatrixF32(s, label, dt, rows, cols, w)), w
	}
	raw := randBlocks(r, dt, rows*cols/dt.BlockSize())
	w := must[[]float32](t)((&weights.Tensor{Name: label, DType: dt, Shape: []int{rows, cols}, Raw: raw}).Float32())
	return must[*Matrix](t)(UploadMatrix(s, label, dt, rows, cols, raw)), w
}

// quantTypes are the GGUF block types the kernels read.
var quantTypes = []weights.DType{weights.Q8_0, weights.Q4_0, weights.Q4_1, weights.Q5_0, weights.Q5_1,
	weights.Q4_K, weights.Q5_K, weights.Q6_K}

// quantOnBackend reports whether a case of a block type and a number of
// tokens runs on the backend: all of them on Vulkan; on GL, whose Mesa
// compiler takes 10-35 s on a quantized matvec unrolled for 8-32 tokens
// (0.3 s for one), every case of the three types of Qwen's Q8_0 and
// Q4_K_M files and the cases of up to 3 tokens of the others (the decoder
// is the same text on both backends; what GL's translation could get
// wrong shows at any size).
func quantOnBackend(s *gpu.Scope, dt weights.DType, tokens int) bool {
	return s.Device().Info().Backend != "gl" || dt == weights.Q8_0 || dt == weights.Q4_K || dt == weights.Q6_K || tokens <= 3
}

// quantCols is a row length of whole blocks of dt, odd in blocks.
func quantCols(dt weights.DType, blocks int) int { return blocks * dt.BlockSize() }

// Every block type through the matvec: every epilogue, the fused norm,
// batches 1 to 32, odd row counts, rows of an odd number of blocks.
func TestMatVecQuant(t *testing.T) {
	var cases []linearCase
	for _, dt := range quantTypes {
		cases = append(cases,
			linearCase{1, 96, quantCols(dt, 3), dt, Store, false},
			linearCase{3, 41, quantCols(dt, 5), dt, Add, false},
			linearCase{5, 67, quantCols(dt, 3), dt, SwiGLU, true},
			linearCase{2, 130, quantCols(dt, 1), dt, Store, true},
			linearCase{17, 37, quantCols(dt, 3), dt, Add, true},
			linearCase{32, 29, quantCols(dt, 1), dt, SwiGLU, true},
		)
	}
	forEachBackend(t, func(t *testing.T, s *gpu.Scope) {
		for _, c := range cases {
			if quantOnBackend(s, c.dt, c.T) {
				t.Run(name(c.T, c.rows, c.cols, c.dt, c.epi, c.norm), func(t *testing.T) { runLinear(t, s, c, false) })
			}
		}
	})
}

// Every block type through the prefill matmul: one token, a partial tile,
// more than two tiles.
func TestMatMulQuant(t *testing.T) {
	var cases []linearCase
	for _, dt := range quantTypes {
		cases = append(cases,
			linearCase{1, 64, quantCols(dt, 3), dt, Store, false},
			linearCase{37, 96, quantCols(dt, 1), dt, SwiGLU, false},
			linearCase{130, 67, quantCols(dt, 2), dt, Add, false},
		)
	}
	forEachBackend(t, func(t *testing.T, s *gpu.Scope) {
		for _, c := range cases {
			if quantOnBackend(s, c.dt, c.T) {
				t.Run(name(c.T, c.rows, c.cols, c.dt, c.epi), func(t *testing.T) { runLinear(t, s, c, true) })
			}
		}
	})
}

// A stack of different block types (q and k Q4_K, v Q6_K, as in a Q4_K_M
// file) is one matrix in parts of one type each; matvec and matmul run a
// kernel per part, and a Slice across the boundary keeps the types.
func TestMixedStack(t *testing.T) {
	const cols = 512
	pieces := []struct {
		dt   weights.DType
		rows int
	}{{weights.Q4_K, 40}, {weights.Q4_K, 24}, {weights.Q6_K, 24}, {weights.Q8_0, 9}}
	forEachBackend(t, func(t *testing.T, s *gpu.Scope) {
		r := newRand(t)
		var ps []MatrixPiece
		var w []float32
		rows := 0
		for _, p := range pieces {
			raw := randBlocks(r, p.dt, p.rows*cols/p.dt.BlockSize())
			v := must[[]float32](t)((&weights.Tensor{Name: "w", DType: p.dt, Shape: []int{p.rows, cols}, Raw: raw}).Float32())
			ps, w, rows = append(ps, MatrixPiece{DType: p.dt, Rows: p.rows, Raw: raw}), append(w, v...), rows+p.rows
		}
		m := must[*Matrix](t)(UploadStack(s, "qkv", cols, ps...))
		if len(m.Parts) != 3 || m.DType != 0 || m.Rows != rows {
			t.Fatalf("stack: %d parts, dtype %v, %d rows; want 3 parts, mixed, %d rows", len(m.Parts), m.DType, m.Rows, rows)
		}
		if want := uint64(64*cols/256*160 + 24*cols/256*212 + 9*cols/32*36); m.Bytes() != want {
			t.Fatalf("stack takes %d bytes, want %d", m.Bytes(), want)
		}
		sl := must[*Matrix](t)(m.Slice(50, 30))
		if got := sl.Types(); len(got) != 2 || got[0] != weights.Q4_K || got[1] != weights.Q6_K {
			t.Fatalf("slice [50, 80) has types %v, want [Q4_K Q6_K]", got)
		}
		for _, T := range []int{1, 5, 20} {
			t.Run(name(T), func(t *testing.T) {
				x := randF32(r, T*cols, 1)
				out := poisoned(t, s, "out", T*rows)
				steps := seqRows(0, 0, T)
				l := Linear{Out: out, X: upload(t, s, "x", x), W: m, Epi: Store, Label: "qkv", Role: "qkv",
					Step: stepBuffer(t, s, T, steps), MaxRows: T}
				var ops []*gpu.Op
				op := "matmul"
				if T <= MaxMatVecBatch {
					ops, op = must[[]*gpu.Op](t)(MatVec(s, l, T)), "matvec"
				} else {
					ops = must[[]*gpu.Op](t)(MatMul(s, l))
				}
				runStep(t, s.Device(), steps, ops...)
				checkNMSE(t, op, readF32(t, s.Device(), out, T*rows), linear64(widen(x), w, T, rows, cols))
			})
		}
	})
}

func TestMatVec(t *testing.T) {
	var cases []linearCase
	for _, dt := range dtypes {
		// Mesa's GLSL compiler takes ~2 minutes on the f16 SwiGLU matvec
		// of 8 tokens (16 unpack2x16float a load, unrolled 8 times): 4 here.
		batch := 8
		if dt == weights.F16 {
			batch = 4
		}
		cases = append(cases,
			linearCase{1, 96, 128, dt, Store, false},
			linearCase{3, 40, 82, dt, Add, false},
			linearCase{batch, 67, 256, dt, SwiGLU, true},
			linearCase{2, 130, 1024, dt, Store, true},
		)
	}
	cases = append(cases, linearCase{1, 33, 81, weights.F32, Store, true}, linearCase{5, 7, 4099, weights.F32, Add, false},
		// batches past 8: the reduction in rounds
		linearCase{9, 35, 256, weights.BF16, Add, false}, linearCase{16, 70, 136, weights.BF16, SwiGLU, true},
		linearCase{32, 21, 88, weights.F32, Store, true}, linearCase{31, 19, 83, weights.BF16, Add, false},
		linearCase{32, 25, 96, weights.BF16, SwiGLU, false})
	forEachBackend(t, func(t *testing.T, s *gpu.Scope) {
		for _, c := range cases {
			t.Run(name(c.T, c.rows, c.cols, c.dt, c.epi, c.norm), func(t *testing.T) { runLinear(t, s, c, false) })
		}
	})
}

// The one-token Q8_0 matvec with each block's d applied to its sums (the
// default, Q8Sum), runs of 1 and 2 chunks, one and two rows a thread
// group, every epilogue, with and without the fused norm; and with every
// value scaled (matvec_qsum=-1).
func TestMatVecQ8Sum(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *gpu.Scope) {
		dt := weights.Q8_0
		for _, l := range []struct{ qsum, cpt, r, tpr int }{{0, 1, 1, 0}, {0, 2, 2, 0}, {0, 1, 2, 4}, {-1, 1, 1, 0}, {-1, 2, 2, 0}} {
			for _, c := range []linearCase{{1, 37, quantCols(dt, 1), dt, Store, false}, {1, 21, quantCols(dt, 3), dt, SwiGLU, true},
				{1, 19, quantCols(dt, 5), dt, Add, true}, {1, 9, quantCols(dt, 1), dt, SwiGLU, false}} {
				t.Run(name(l.qsum, l.cpt, l.r, l.tpr, c.rows, c.cols, c.epi, c.norm), func(t *testing.T) {
					saved := tune
					tune.matvecQSum, tune.matvecCPT, tune.matvecR, tune.matvecTPR = l.qsum, l.cpt, l.r, l.tpr
					defer func() { tune = saved }()
					runLinear(t, s, c, false)
				})
			}
		}
	})
}

// The x-in-registers matvec of one token (QWGPU_TUNE=matvec_xreg, MatVecVars.XReg)
// for every block type: every epilogue, with and without the fused norm,
// rows that leave the last workgroup partial, rows of more units than a
// workgroup has threads (so a thread takes two, the second only some) and
// of fewer; several rows' loads together or one; Q8_0 with its blocks' d
// on the sums and on every value, Q4_K with its quants summed unscaled
// (XFold, its default) and scaled (matvec_xfold=-1). Q4_K and Q8_0 in every layout, the other
// types in one each (GL, whose reduction arrays hold 256 floats, in the
// layouts that fit them, one a case: each compiles for seconds).
func TestMatVecXReg(t *testing.T) {
	type layout struct{ xreg, wg, xg, qsum, xfold int }
	layouts := []layout{{4, 32, 2, 0, 0}, {2, 32, 1, -1, -1}, {8, 64, 4, 0, 0}, {16, 0, 0, 0, -1}, {4, 128, 4, -1, 0}}
	forEachBackend(t, func(t *testing.T, s *gpu.Scope) {
		gl := s.Device().Info().Backend == "gl"
		n := 0
		for _, dt := range quantTypes {
			for _, c := range []linearCase{{1, 37, quantCols(dt, 5), dt, Store, false}, {1, 21, quantCols(dt, 3), dt, SwiGLU, true},
				{1, 19, 32 * 41, dt, Add, true}} {
				if c.cols%dt.BlockSize() != 0 {
					c.cols = quantCols(dt, 2)
				}
				use := []int{n % len(layouts)}
				switch {
				case gl:
					use = []int{n % 2}
				case dt == weights.Q4_K || dt == weights.Q8_0:
					use = []int{0, 1, 2, 3, 4}
				}
				n++
				for _, i := range use {
					l := layouts[i]
					t.Run(name(l.xreg, l.wg, l.xg, l.qsum, l.xfold, c.rows, c.cols, c.dt, c.epi, c.norm), func(t *testing.T) {
						saved := tune
						tune.matvecXReg, tune.matvecWG, tune.matvecXG, tune.matvecQSum, tune.matvecXFold = l.xreg, l.wg, l.xg, l.qsum, l.xfold
						defer func() { tune = saved }()
						v := must[MatVecVars](t)(matvecVars(dt, c.epi, c.norm, 1, c.cols, c.rows, matvecRedCap(s.Device())))
						if !v.XReg || v.Rows != l.xreg {
							t.Fatalf("layout: XReg %v, %d rows a workgroup; want the x-in-registers layout with %d", v.XReg, v.Rows, l.xreg)
						}
						runLinear(t, s, c, false)
					})
				}
			}
		}
	})
}

// The matvec's two reductions over a group's lanes: each output summed by
// one thread (MatVecVars.Red1, the default but on GL; matvec_red1=1 forces
// it) and the tree (QWGPU_TUNE=matvec_red1=-1): every epilogue, with and without the fused
// norm, one token and batches (16 in one round and in several, as the
// reduction arrays require), groups of 1, 2 and 4 rows (4 through
// matvec_maxr) and of 8 to 64 lanes, rows that leave the last group
// partial; a float and two block types.
func TestMatVecReduction(t *testing.T) {
	type layout struct{ red1, maxr, tpr, wg int }
	layouts := []layout{{0, 4, 0, 0}, {1, 2, 8, 64}, {0, 4, 64, 256}, {1, 1, 32, 128}, {-1, 4, 16, 128}, {-1, 2, 64, 256}}
	var cases []linearCase
	for _, dt := range []weights.DType{weights.BF16, weights.Q8_0, weights.Q4_K} {
		cols := 8 * 61
		if dt.IsQuantized() {
			cols = quantCols(dt, 3)
		}
		cases = append(cases,
			linearCase{1, 45, cols, dt, Store, false},
			linearCase{16, 37, cols, dt, SwiGLU, false},
			linearCase{5, 23, cols, dt, Add, true},
			linearCase{16, 70, cols, dt, Add, false},
			linearCase{3, 19, cols, dt, SwiGLU, true})
	}
	forEachBackend(t, func(t *testing.T, s *gpu.Scope) {
		gl := s.Device().Info().Backend == "gl"
		for i, l := range layouts {
			for j, c := range cases {
				// GL compiles each shader for seconds: one layout a case there.
				if gl && j%len(layouts) != i || !quantOnBackend(s, c.dt, c.T) {
					continue
				}
				t.Run(name(l.red1, l.maxr, l.tpr, l.wg, c.T, c.rows, c.cols, c.dt, c.epi, c.norm), func(t *testing.T) {
					saved := tune
					tune.matvecRed1, tune.matvecMaxR, tune.matvecTPR, tune.matvecWG = l.red1, l.maxr, l.tpr, l.wg
					tune.matvecXReg = -1
					defer func() { tune = saved }()
					v := must[MatVecVars](t)(matvecVars(c.dt, c.epi, c.norm, c.T, c.cols, c.rows, matvecRedCap(s.Device())))
					if want := l.red1 > 0 || l.red1 == 0 && !gl; v.Red1 != want {
						t.Fatalf("layout %+v: Red1 %v with matvec_red1=%d on %s", v, v.Red1, l.red1, s.Device().Info().Backend)
					}
					runLinear(t, s, c, false)
				})
			}
		}
	})
}

// The matvec in layouts the automatic choice takes on large matrices only
// or not at all (QWGPU_TUNE's matvec_rows, matvec_tpr, matvec_wg,
// matvec_cpt, matvec_wide): several rows a thread group, with a row count that leaves
// the last group partial, small and large groups, two chunks of quants a
// thread, Q4_K and Q5_K in quads and in word chunks, every batch from 1
// to 32 on one float and one block type.
func TestMatVecLayouts(t *testing.T) {
	type layout struct{ r, tpr, wg, cpt, wide int }
	// wide -1: Q4_K and Q5_K through the word chunks, not their quads.
	layouts := []layout{{2, 8, 64, 2, -1}, {4, 16, 256, 1, 0}, {3, 1, 32, 2, 0}, {2, 64, 128, 1, -1}, {3, 4, 64, 1, 0}}
	var cases []linearCase
	for _, dt := range []weights.DType{weights.BF16, weights.F32, weights.Q4_K, weights.Q8_0, weights.Q6_K, weights.Q5_0} {
		cols := 96
		if dt.IsQuantized() {
			cols = quantCols(dt, 2)
		}
		cases = append(cases,
			linearCase{1, 45, cols, dt, Store, false},
			linearCase{6, 23, cols, dt, SwiGLU, true},
			linearCase{20, 31, cols, dt, Add, true})
	}
	cases = append(cases, linearCase{3, 13, 81, weights.BF16, SwiGLU, true}, linearCase{2, 9, 85, weights.F32, Add, false},
		linearCase{6, 23, quantCols(weights.Q8_0, 8), weights.Q8_0, SwiGLU, true}, linearCase{1, 45, quantCols(weights.Q8_0, 12), weights.Q8_0, Add, false})
	for _, dt := range []weights.DType{weights.Q4_0, weights.Q4_1, weights.Q5_1, weights.Q5_K} {
		cases = append(cases, linearCase{3, 19, quantCols(dt, 2), dt, SwiGLU, true})
	}
	all := len(cases) // cases before this run in every layout, the batches in one each
	for b := 1; b <= MaxMatVecBatch; b++ {
		c := linearCase{b, 11, 88, weights.BF16, SwiGLU, b%3 == 0}
		if b%2 == 0 {
			c.cols, c.dt = quantCols(weights.Q4_K, 2), weights.Q4_K
		}
		cases = append(cases, c)
	}
	forEachBackend(t, func(t *testing.T, s *gpu.Scope) {
		gl := s.Device().Info().Backend == "gl"
		for i, l := range layouts {
			for j, c := range cases {
				// GL compiles each shader for seconds: one layout a case there.
				// GL: the layouts of the three types only, whatever the batch.
				if (j >= all || gl) && j%len(layouts) != i || !quantOnBackend(s, c.dt, MaxMatVecBatch) {
					continue
				}
				t.Run(name(l.r, l.tpr, l.wg, l.cpt, l.wide, c.T, c.rows, c.cols, c.dt, c.epi, c.norm), func(t *testing.T) {
					saved := tune
					tune.matvecR, tune.matvecTPR, tune.matvecWG, tune.matvecCPT, tune.matvecWide = l.r, l.tpr, l.wg, l.cpt, l.wide
					tune.matvecXReg = -1 // one token of Q4_K in these layouts, not its default XReg
					defer func() { tune = saved }()
					runLinear(t, s, c, false)
				})
			}
		}
	})
}

func TestMatMul(t *testing.T) {
	var cases []linearCase
	for _, dt := range dtypes {
		cases = append(cases,
			linearCase{1, 64, 64, dt, Store, false},
			linearCase{37, 96, 82, dt, Add, false},
			linearCase{70, 130, 128, dt, SwiGLU, false},
		)
	}
	cases = append(cases, linearCase{600, 24, 81, weights.F32, Store, false}, linearCase{9, 200, 1024, weights.BF16, Store, false})
	forEachBackend(t, func(t *testing.T, s *gpu.Scope) {
		for _, c := range cases {
			t.Run(name(c.T, c.rows, c.cols, c.dt, c.epi), func(t *testing.T) { runLinear(t, s, c, true) })
		}
	})
}

// Every tiling of matmulTiles computes the same products (Vulkan: GL
// compiles each tiling for seconds), with tokens, rows and columns that
// leave partial tiles, one case a tiling in turn (each case a shader to
// compile cold in CI).
func TestMatMulTiles(t *testing.T) {
	cases := []linearCase{{37, 96, 82, weights.BF16, Add, false}, {70, 130, 128, weights.F32, SwiGLU, false},
		{9, 45, quantCols(weights.Q4_K, 2), weights.Q4_K, Store, false}}
	forEachBackend(t, func(t *testing.T, s *gpu.Scope) {
		if s.Device().Info().Backend == "gl" {
			t.Skip("GL: TestMatMul covers its default tiling; each other one compiles for seconds")
		}
		for i, tile := range matmulTiles {
			c := cases[i%len(cases)]
			t.Run(name(tile, c.T, c.rows, c.cols, c.dt, c.epi), func(t *testing.T) {
				saved := tune
				tune.matmulTile = tile
				defer func() { tune = saved }()
				runLinear(t, s, c, true)
			})
		}
	})
}

// ropeTables are a RoPE table pair like qwen3.NewRope's, for the
// references to read the same float32 values the GPU does.
func ropeTables(hd, maxPos int, theta float64) (cos, sin []float32) {
	half := hd / 2
	cos, sin = make([]float32, maxPos*half), make([]float32, maxPos*half)
	for p := 0; p < maxPos; p++ {
		for i := 0; i < half; i++ {
			a := float64(p) / math.Pow(theta, float64(2*i)/float64(hd))
			cos[p*half+i], sin[p*half+i] = float32(math.Cos(a)), float32(math.Sin(a))
		}
	}
	return
}

// headNormRope64 normalises one head in place with w and rotates it at pos.
func headNormRope64(h []float64, w []float32, cos, sin []float32, pos int, eps float64) {
	hd := len(h)
	half := hd / 2
	ss := 0.0
	for _, v := range h {
		ss += v * v
	}
	scale := 1 / math.Sqrt(ss/float64(hd)+eps)
	for i := range h {
		h[i] *= scale * float64(w[i])
	}
	for i := 0; i < half; i++ {
		c, s := float64(cos[pos*half+i]), float64(sin[pos*half+i])
		a, b := h[i], h[i+half]
		h[i], h[i+half] = a*c-b*s, b*c+a*s
	}
}

type qkvCase struct {
	sh     AttentionShape
	rows   []StepRow
	decode bool // the fused projection, else the rows variant
	norm   bool // decode: input_layernorm inside
	dt     weights.DType
	kv     weights.DType // the cache's element type
}

func TestQKVNormRope(t *testing.T) {
	sh := func(hidden, nq, nkv, hd int) AttentionShape {
		return AttentionShape{Hidden: hidden, NHeads: nq, NKV: nkv, HeadDim: hd}
	}
	var cases []qkvCase
	f32 := weights.F32
	for _, dt := range dtypes {
		cases = append(cases,
			qkvCase{sh(128, 4, 2, 64), []StepRow{{0, 5}}, true, false, dt, f32},
			qkvCase{sh(96, 8, 1, 24), []StepRow{{1, 30}}, true, true, dt, f32},
		)
	}
	cases = append(cases,
		qkvCase{sh(256, 2, 2, 128), []StepRow{{0, 0}}, true, true, weights.F32, f32},
		qkvCase{sh(82, 2, 1, 256), []StepRow{{1, 63}}, true, false, weights.BF16, f32},
		qkvCase{sh(0, 4, 2, 64), seqRows(1, 3, 37), false, false, weights.F32, f32},
		qkvCase{sh(0, 8, 1, 128), []StepRow{{0, 9}, {2, 0}, {1, 40}}, false, false, weights.F32, f32},
		qkvCase{sh(0, 3, 3, 24), seqRows(0, 0, 600), false, false, weights.F32, f32},
	)
	// 16-bit caches: the fused decode writer and the rows writer.
	for _, kv := range []weights.DType{weights.F16, weights.BF16} {
		cases = append(cases,
			qkvCase{sh(128, 4, 2, 64), []StepRow{{0, 5}}, true, false, weights.BF16, kv},
			qkvCase{sh(96, 8, 1, 24), []StepRow{{1, 30}}, true, true, weights.F32, kv},
			qkvCase{sh(82, 2, 1, 256), []StepRow{{2, 63}}, true, false, weights.F16, kv},
			qkvCase{sh(0, 8, 1, 128), []StepRow{{0, 9}, {2, 0}, {1, 40}}, false, false, weights.F32, kv},
			qkvCase{sh(0, 3, 3, 24), seqRows(0, 0, 100), false, false, weights.F32, kv},
		)
	}
	forEachBackend(t, func(t *testing.T, s *gpu.Scope) {
		for _, c := range cases {
			t.Run(name(c.sh.Hidden, c.sh.NHeads, c.sh.NKV, c.sh.HeadDim, len(c.rows), c.decode, c.norm, c.dt, "kv", c.kv), func(t *testing.T) {
				runQKV(t, s, c)
			})
		}
		// The fused decode kernel's layouts swept on the H200 (qkv_wg,
		// qkv_tpr; Vulkan: GL keeps its small arrays): 256 threads a head
		// (the default before run 14, and GL's), more, fewer lanes a row.
		if s.Device().Info().Backend == "gl" {
			return
		}
		for _, l := range []struct{ wg, tpr int }{{256, 0}, {1024, 0}, {512, 16}, {1024, 8}} {
			for _, c := range cases {
				if !c.decode || c.kv != weights.F32 { // the fused kernel's cases of every weight type
					continue
				}
				t.Run(name("layout", l.wg, l.tpr, c.sh.Hidden, c.sh.NHeads, c.sh.HeadDim, c.norm, c.dt), func(t *testing.T) {
					saved := tune
					tune.qkvWG, tune.qkvTPR = l.wg, l.tpr
					defer func() { tune = saved }()
					runQKV(t, s, c)
				})
			}
		}
	})
}

func runQKV(t *testing.T, s *gpu.Scope, c qkvCase) {
	r := newRand(t)
	sh, T := c.sh, len(c.rows)
	const slots, ctx, eps = 3, 64 * 10, 1e-6
	hd, nh3 := sh.HeadDim, sh.NHeads+2*sh.NKV
	cos, sin := ropeTables(hd, ctx, 1e6)
	qn, kn := randF32(r, hd, 2), randF32(r, hd, 100) // k_norm weights near 100, as in Qwen3
	cache := must[*KVCache](t)(NewKVCache(s, "cache", slots, ctx, sh.NKV, hd, c.kv))
	a := QKVNormRope{Shape: sh, QNorm: upload(t, s, "qn", qn), KNorm: upload(t, s, "kn", kn),
		Rope: must[*RopeTables](t)(UploadRope(s, "rope", hd, ctx, cos, sin)), Q: poisoned(t, s, "q", T*sh.QDim()),
		Cache: cache, Step: stepBuffer(t, s, T, c.rows), MaxRows: T, Eps: eps, Label: "qkv"}
	var qkv []float64 // [T, NH3·HD] the projected rows the reference starts from
	if c.decode {
		x := randF32(r, sh.Hidden, 1)
		w := roundTo(c.dt, randF32(r, sh.QKVDim()*sh.Hidden, 0.5))
		a.X = upload(t, s, "x", x)
		a.W = must[*Matrix](t)(UploadMatrixF32(s, "w", c.dt, sh.QKVDim(), sh.Hidden, w))
		xw := widen(x)
		if c.norm {
			nw := randF32(r, sh.Hidden, 2)
			a.XNorm = upload(t, s, "xnorm", nw)
			xw = rmsnorm64(x, nw, sh.Hidden, float64(float32(eps)))
		}
		qkv = linear64(xw, w, 1, sh.QKVDim(), sh.Hidden)
		op, err := QKVDecode(s, a)
		if err != nil && c.norm && s.Device().Limits().MaxStorageBuffersPerShaderStage < 9 {
			t.Logf("the device binds %d storage buffers, the fused norm needs 9: %v", s.Device().Limits().MaxStorageBuffersPerShaderStage, err)
			return
		}
		runStep(t, s.Device(), c.rows, must[*gpu.Op](t)(op, err))
	} else {
		in := randF32(r, T*sh.QKVDim(), 3)
		a.QKV = upload(t, s, "qkv", in)
		qkv = widen(in)
		runStep(t, s.Device(), c.rows, must[*gpu.Op](t)(QKVRows(s, a)))
	}
	wantQ := make([]float64, 0, T*sh.QDim())
	gotK, gotV, wantK, wantV := []float32{}, []float32{}, []float64{}, []float64{}
	for i, row := range c.rows {
		for h := 0; h < nh3; h++ {
			head := append([]float64(nil), qkv[i*nh3*hd+h*hd:][:hd]...)
			switch {
			case h < sh.NHeads:
				headNormRope64(head, qn, cos, sin, row.Pos, float64(float32(eps)))
				wantQ = append(wantQ, head...)
			case h < sh.NHeads+sh.NKV:
				headNormRope64(head, kn, cos, sin, row.Pos, float64(float32(eps)))
				wantK = append(wantK, head...)
			default:
				wantV = append(wantV, head...)
			}
		}
		off := (row.Slot*ctx + row.Pos) * sh.KVDim()
		gotK = append(gotK, readKV(t, s.Device(), cache.K, c.kv, off, sh.KVDim())...)
		gotV = append(gotV, readKV(t, s.Device(), cache.V, c.kv, off, sh.KVDim())...)
	}
	checkNMSE(t, "qkv_norm_rope", readF32(t, s.Device(), a.Q, T*sh.QDim()), wantQ)
	// A 16-bit cache rounds each value once: its own bound.
	op := map[weights.DType]string{weights.F32: "qkv_norm_rope", weights.F16: "kv f16", weights.BF16: "kv bf16"}[c.kv]
	checkNMSE(t, op, gotK, wantK)
	checkNMSE(t, op, gotV, wantV)
}

// readKV reads n cache values of type dt from element off as float32.
func readKV(t testing.TB, d *gpu.Device, b *gpu.Buffer, dt weights.DType, off, n int) []float32 {
	t.Helper()
	if dt == weights.F32 {
		return must[[]float32](t)(d.ReadF32(b, off, n))
	}
	raw := must[[]byte](t)(d.Read(b, uint64(off)*2, uint64(n)*2))
	out := make([]float32, n)
	for i := range out {
		h := uint16(raw[2*i]) | uint16(raw[2*i+1])<<8
		if dt == weights.F16 {
			out[i] = weights.F16ToFloat32(h)
		} else {
			out[i] = weights.BF16ToFloat32(h)
		}
	}
	return out
}

// attention64 is causal grouped-query attention of one query row q [NQ·HD]
// against the first n rows of a slot's keys and values [ctx, KVD].
func attention64(q []float32, k, v []float32, n int, sh AttentionShape) []float64 {
	hd, g, kvd := sh.HeadDim, sh.NHeads/sh.NKV, sh.KVDim()
	out := make([]float64, sh.QDim())
	scores := make([]float64, n)
	for h := 0; h < sh.NHeads; h++ {
		kh := h / g
		m := math.Inf(-1)
		for j := 0; j < n; j++ {
			s := 0.0
			for i := 0; i < hd; i++ {
				s += float64(q[h*hd+i]) * float64(k[j*kvd+kh*hd+i])
			}
			scores[j] = s / math.Sqrt(float64(hd))
			m = math.Max(m, scores[j])
		}
		l := 0.0
		for j := range scores[:n] {
			scores[j] = math.Exp(scores[j] - m)
			l += scores[j]
		}
		for j := 0; j < n; j++ {
			for i := 0; i < hd; i++ {
				out[h*hd+i] += scores[j] / l * float64(v[j*kvd+kh*hd+i])
			}
		}
	}
	return out
}

type attnCase struct {
	sh      AttentionShape
	ctx     int
	rows    []StepRow
	prefill bool
	kv      weights.DType // the cache's element type (0: F32)
	splits  int           // decode: QWGPU_TUNE's attn_splits (0: the default)
	lanes   int           // decode: QWGPU_TUNE's attn_lanes (0: the default)
	chunk   int           // decode: QWGPU_TUNE's chunk (0: the default)
}

func TestAttention(t *testing.T) {
	sh := func(nq, nkv, hd int) AttentionShape { return AttentionShape{NHeads: nq, NKV: nkv, HeadDim: hd} }
	cases := []attnCase{
		// decode: one chunk (no combine), several chunks, batches of
		// sequences at different lengths in different slots
		{sh(4, 4, 64), 64, []StepRow{{0, 0}}, false, 0, 0, 0, 0},
		{sh(8, 2, 128), 300, []StepRow{{1, 299}}, false, 0, 0, 0, 0},
		{sh(8, 1, 24), 4097, []StepRow{{0, 4096}}, false, 0, 0, 0, 0},
		{sh(16, 2, 256), 200, []StepRow{{0, 3}, {2, 150}, {1, 31}}, false, 0, 0, 0, 0},
		{sh(6, 3, 64), 130, []StepRow{{2, 129}, {0, 0}, {1, 64}, {0, 100}}, false, 0, 0, 0, 0},
		// prefill: from position 0 and continuing a sequence
		{sh(4, 2, 64), 64, seqRows(0, 0, 1), true, 0, 0, 0, 0},
		{sh(8, 1, 128), 700, seqRows(1, 90, 600), true, 0, 0, 0, 0},
		{sh(4, 4, 24), 64, seqRows(2, 7, 37), true, 0, 0, 0, 0},
		{sh(2, 1, 256), 64, seqRows(0, 0, 20), true, 0, 0, 0, 0},
	}
	f16, bf16 := weights.F16, weights.BF16
	cases = append(cases,
		// several tiles per split (the online softmax across tiles), the
		// split count cut by the bound, rows of one step in different
		// numbers of splits
		attnCase{sh(8, 1, 24), 4097, []StepRow{{0, 4096}}, false, 0, 3, 0, 0},
		attnCase{sh(16, 2, 128), 4100, []StepRow{{1, 4099}, {0, 0}, {2, 700}}, false, 0, 4, 0, 0},
		attnCase{sh(16, 2, 256), 1500, []StepRow{{0, 3}, {2, 1499}, {1, 31}}, false, 0, 2, 0, 0},
		attnCase{sh(6, 3, 64), 2000, []StepRow{{2, 1999}}, false, 0, 1, 0, 0},
		// 16-bit caches, decode (eight values a load where head_dim allows,
		// else four) and prefill
		attnCase{sh(4, 4, 64), 64, []StepRow{{0, 0}}, false, f16, 0, 0, 0},
		attnCase{sh(8, 2, 128), 300, []StepRow{{1, 299}}, false, f16, 0, 0, 0},
		attnCase{sh(8, 1, 24), 4097, []StepRow{{0, 4096}}, false, f16, 3, 0, 0},
		attnCase{sh(16, 2, 256), 1500, []StepRow{{0, 3}, {2, 1499}, {1, 31}}, false, bf16, 2, 0, 0},
		attnCase{sh(16, 2, 128), 4100, []StepRow{{1, 4099}, {0, 0}}, false, bf16, 0, 0, 0},
		attnCase{sh(8, 1, 128), 700, seqRows(1, 90, 600), true, f16, 0, 0, 0},
		attnCase{sh(4, 4, 24), 64, seqRows(2, 7, 37), true, bf16, 0, 0, 0},
		attnCase{sh(2, 1, 256), 64, seqRows(0, 0, 20), true, f16, 0, 0, 0},
		// key rows read by 1, 2, 4, 8 and 16 threads together (GL always
		// uses 1)
		attnCase{sh(16, 2, 128), 4100, []StepRow{{1, 4099}, {0, 0}, {2, 700}}, false, 0, 4, 1, 0},
		attnCase{sh(8, 1, 24), 4097, []StepRow{{0, 4096}}, false, f16, 3, 2, 0},
		attnCase{sh(16, 2, 256), 1500, []StepRow{{0, 3}, {2, 1499}, {1, 31}}, false, bf16, 2, 8, 0},
		attnCase{sh(16, 16, 64), 300, []StepRow{{1, 299}}, false, 0, 0, 16, 0},
		attnCase{sh(8, 2, 128), 300, []StepRow{{1, 299}}, false, f16, 0, 0, 0},
		attnCase{sh(6, 3, 64), 130, []StepRow{{2, 129}, {0, 0}, {1, 64}, {0, 100}}, false, 0, 0, 0, 0},
		// small tiles (GL too): many tiles per split, GQA 8, 2 and 1,
		// splits cut by the bound; up to one tile: one split, no combine
		attnCase{sh(8, 1, 24), 4097, []StepRow{{0, 4096}}, false, f16, 3, 0, 8},
		attnCase{sh(6, 3, 64), 2000, []StepRow{{2, 1999}, {0, 0}, {1, 64}}, false, bf16, 0, 0, 16},
		attnCase{sh(4, 4, 24), 300, []StepRow{{1, 299}, {2, 5}}, false, 0, 2, 0, 8},
		attnCase{sh(6, 3, 64), 200, []StepRow{{0, 15}, {2, 4}}, false, bf16, 0, 0, 16},
		attnCase{sh(16, 8, 128), 3000, []StepRow{{0, 2999}}, false, bf16, 0, 0, 32},
		attnCase{sh(16, 2, 256), 1500, []StepRow{{0, 3}, {2, 1499}, {1, 31}}, false, bf16, 2, 0, 64},
	)
	forEachBackend(t, func(t *testing.T, s *gpu.Scope) {
		gl := s.Device().Info().Backend == "gl"
		// The decode cases run with the loads batched and the query values
		// in registers (the defaults), again with the loads one after
		// another (attn_unroll=-1), and with the query values reloaded per
		// key unit (attn_qreg=-1, several lanes a row): lanes past a row's
		// end (head_dim 24, f16: 3 units, 2 lanes), partial tiles, several
		// tiles a split. GL (one lane a row: only the value loads change)
		// takes its small-tile cases in the second layout and none in the
		// third.
		for _, layout := range []struct {
			prefix       string
			unroll, qreg int
		}{{"", 0, 0}, {"serial-loads/", -1, 0}, {"no-qreg/", 0, -1}} {
			for _, c := range cases {
				switch {
				case layout.unroll == -1 && (c.prefill || gl && c.chunk == 0),
					layout.qreg == -1 && (c.prefill || gl || c.lanes == 1):
					continue
				}
				if c.kv == 0 {
					c.kv = weights.F32
				}
				n := name(c.sh.NHeads, c.sh.NKV, c.sh.HeadDim, c.ctx, len(c.rows), c.prefill, c.kv, c.splits, c.lanes, c.chunk)
				t.Run(layout.prefix+n, func(t *testing.T) {
					saved := tune
					tune.decodeSplits, tune.decodeLanes, tune.decodeChunk = c.splits, c.lanes, c.chunk
					tune.decodeUnroll, tune.decodeQReg = layout.unroll, layout.qreg
					defer func() { tune = saved }()
					runAttention(t, s, c)
				})
			}
		}
	})
}

func runAttention(t *testing.T, s *gpu.Scope, c attnCase) {
	r := newRand(t)
	const slots = 3
	sh, T := c.sh, len(c.rows)
	d := s.Device()
	cache := must[*KVCache](t)(NewKVCache(s, "cache", slots, c.ctx, sh.NKV, sh.HeadDim, c.kv))
	kv := slots * c.ctx * sh.KVDim()
	// Scores of a few units, as after Qwen3's q/k norms: exp keeps them
	// apart. The reference reads the values the cache holds (rounded to
	// a 16-bit type), so the bound is float32 arithmetic's.
	keys, values := roundTo(c.kv, randF32(r, kv, 1)), roundTo(c.kv, randF32(r, kv, 1))
	if err := d.Write(cache.K, 0, must[[]byte](t)(EncodeF32(c.kv, keys))); err != nil {
		t.Fatal(err)
	}
	if err := d.Write(cache.V, 0, must[[]byte](t)(EncodeF32(c.kv, values))); err != nil {
		t.Fatal(err)
	}
	q := randF32(r, T*sh.QDim(), 1)
	a := Attention{Shape: sh, Q: upload(t, s, "q", q), Cache: cache, Out: poisoned(t, s, "out", T*sh.QDim()),
		Step: stepBuffer(t, s, T, c.rows), MaxRows: T, Label: "attention"}
	var ops []*gpu.Op
	if c.prefill {
		ops = []*gpu.Op{must[*gpu.Op](t)(AttentionPrefill(s, a))}
	} else {
		a.Scratch = must[*gpu.Buffer](t)(s.Buffer("scratch", AttentionScratchBytes(d, sh, c.ctx, T)))
		ops = must[[]*gpu.Op](t)(AttentionDecode(s, a))
	}
	runStep(t, d, c.rows, ops...)
	var want []float64
	slotLen := c.ctx * sh.KVDim()
	for i, row := range c.rows {
		k, v := keys[row.Slot*slotLen:][:slotLen], values[row.Slot*slotLen:][:slotLen]
		want = append(want, attention64(q[i*sh.QDim():][:sh.QDim()], k, v, row.Pos+1, sh)...)
	}
	checkNMSE(t, "attention", readF32(t, d, a.Out, T*sh.QDim()), want)
}

// The embedding gathers rows exactly (bf16 and f16 widen exactly) and
// gives zeros for an id past the matrix.
func TestEmbedding(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *gpu.Scope) {
		for _, dt := range dtypes {
			t.Run(dt.String(), func(t *testing.T) {
				const vocab, cols = 50, 82
				e := roundTo(dt, randF32(newRand(t), vocab*cols, 1))
				runEmbedding(t, s, must[*Matrix](t)(UploadMatrixF32(s, "e", dt, vocab, cols, e)), e, vocab, cols)
			})
		}
	})
}

// The embedding gathers rows of every block type exactly: the GPU decodes
// each value bit for bit as the CPU reference does.
func TestEmbeddingQuant(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *gpu.Scope) {
		for _, dt := range quantTypes {
			if !quantOnBackend(s, dt, 1) {
				continue
			}
			t.Run(dt.String(), func(t *testing.T) {
				const vocab, cols = 50, 512
				e, want := testMatrix(t, s, newRand(t), "e", dt, vocab, cols)
				runEmbedding(t, s, e, want, vocab, cols)
			})
		}
	})
}

// runEmbedding gathers ids (one past the vocabulary among them) from e,
// whose values are want, and requires each row bit for bit (zeros past it).
func runEmbedding(t *testing.T, s *gpu.Scope, e *Matrix, want []float32, vocab, cols int) {
	ids := []uint32{3, 0, 49, 17, 50, 3}
	idBytes := make([]byte, 4*len(ids))
	for i, id := range ids {
		binary.LittleEndian.PutUint32(idBytes[4*i:], id)
	}
	out := poisoned(t, s, "out", len(ids)*cols)
	rows := seqRows(0, 0, len(ids))
	ops := must[[]*gpu.Op](t)(NewEmbedding(s, Embedding{Out: out, E: e,
		IDs: must[*gpu.Buffer](t)(s.Upload("ids", idBytes)), Step: stepBuffer(t, s, len(ids), rows), MaxRows: len(ids), Label: "embedding"}))
	runStep(t, s.Device(), rows, ops...)
	got := readF32(t, s.Device(), out, len(ids)*cols)
	for i, id := range ids {
		for c := 0; c < cols; c++ {
			w := float32(0)
			if id < uint32(vocab) {
				w = want[int(id)*cols+c]
			}
			if math.Float32bits(got[i*cols+c]) != math.Float32bits(w) {
				t.Fatalf("row %d (id %d) col %d: got %v, want %v", i, id, c, got[i*cols+c], w)
			}
		}
	}
}

// Argmax finds each row's first maximum, and flags rows holding NaN or
// infinities instead of letting them win.
func TestArgmax(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *gpu.Scope) {
		r := newRand(t)
		for _, n := range []int{1, 81, 1024, 1025, 151936} {
			t.Run(name(n), func(t *testing.T) {
				const rows = 3
				x := randF32(r, rows*n, 10)
				x[n-1] = 11                             // row 0: the last element wins
				x[n+n/2], x[n+n/2+min(1, n-1)] = 12, 12 // row 1: a tie goes to the first
				x[2*n] = float32(math.NaN())            // row 2: flagged
				out := must[*gpu.Buffer](t)(s.Buffer("out", rows*4))
				ops := must[[]*gpu.Op](t)(NewArgmax(s, Argmax{Out: out, X: upload(t, s, "x", x), N: n, Rows: rows, Label: "argmax"}))
				runStep(t, s.Device(), nil, ops...)
				got := gpu.BytesU32(must[[]byte](t)(s.Device().Read(out, 0, rows*4)))
				if got[0] != uint32(n-1) || got[1] != uint32(n/2) || got[2]&NonFinite == 0 {
					t.Fatalf("got %#x, want [%d %d NonFinite]", got, n-1, n/2)
				}
			})
		}
	})
}

// topK64 is the reference: the k best (value, index) of a row, ranked by
// value then lower index, NaN and infinities counted as -∞ (as
// qwen3/sample ranks candidates), by a full sort.
func topK64(row []float32, k int) (vals []float32, ids []int) {
	key := func(i int) float64 {
		v := float64(row[i])
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return math.Inf(-1)
		}
		return v
	}
	idx := make([]int, len(row))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return cmp.Compare(key(b), key(a)) })
	for _, i := range idx[:min(k, len(idx))] {
		vals, ids = append(vals, float32(key(i))), append(ids, i)
	}
	return vals, ids
}

// TopK returns each row's k best logits and their ids, ties to the lower
// id (rows of few distinct values tie at every rank), and flags rows
// holding NaN or infinities.
func TestTopK(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *gpu.Scope) {
		r := newRand(t)
		for _, n := range []int{1, 50, 4096, 4097, 151936} {
			for _, k := range []int{1, 20, MaxTopK} {
				t.Run(name(n, k), func(t *testing.T) {
					const rows = 4
					x := randF32(r, rows*n, 10)
					for i := n; i < 2*n; i++ { // row 1: eight distinct values, ties everywhere
						x[i] = float32(r.IntN(8))
					}
					x[2*n+n/2] = float32(math.Inf(1)) // row 2: flagged
					x[4*n-1] = float32(math.NaN())    // row 3: flagged, and its NaN never wins
					x[3*n] = 100                      // (with n = 1, row 3 is finite)
					out := must[*gpu.Buffer](t)(s.Buffer("out", TopKBytes(rows, k)))
					ops := must[[]*gpu.Op](t)(NewTopK(s, TopK{Out: out, X: upload(t, s, "x", x), N: n, Rows: rows, K: k, Label: "topk"}))
					runStep(t, s.Device(), nil, ops...)
					got := gpu.BytesU32(must[[]byte](t)(s.Device().Read(out, 0, TopKBytes(rows, k))))
					for b := range rows {
						vals, ids := topK64(x[b*n:(b+1)*n], k)
						flagged := slices.ContainsFunc(x[b*n:(b+1)*n], func(v float32) bool { return math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) })
						for j := range k {
							gv, gi := math.Float32frombits(got[2*(b*k+j)]), got[2*(b*k+j)+1]
							if j >= len(ids) {
								if gi != NoCandidate {
									t.Fatalf("row %d entry %d: id %#x past the row's %d values, want NoCandidate", b, j, gi, n)
								}
								continue
							}
							if (gi&NonFinite != 0) != flagged {
								t.Fatalf("row %d entry %d: id %#x, non-finite flag want %v", b, j, gi, flagged)
							}
							if int(gi&^NonFinite) != ids[j] || math.Float32bits(gv) != math.Float32bits(vals[j]) {
								t.Fatalf("row %d entry %d: got (%v, %d), want (%v, %d)", b, j, gv, gi&^NonFinite, vals[j], ids[j])
							}
						}
					}
				})
			}
		}
	})
}

// The read-only bandwidth kernel sums what it reads: thread t's output is
// x[t] + x[t + threads] + … in that order (float32 adds, so bit for bit),
// over a buffer that ends mid-way through the second sweep. Bandwidth
// reports positive finite rates for both yardsticks.
func TestReadSum(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *gpu.Scope) {
		const threads = readSumGroups * 256
		n := 2*threads + 7 // vec4s
		x := randF32(newRand(t), 4*n, 1)
		y := must[*gpu.Buffer](t)(s.Buffer("y", threads*16))
		op := must[*gpu.Op](t)(newReadSum(s, upload(t, s, "x", x), y, n))
		runStep(t, s.Device(), nil, op)
		got := readF32(t, s.Device(), y, 4*threads)
		for tid := 0; tid < threads; tid++ {
			for c := range 4 {
				var want float32
				for i := tid; i < n; i += threads {
					want += x[4*i+c]
				}
				if got[4*tid+c] != want {
					t.Fatalf("thread %d component %d: %v, want %v", tid, c, got[4*tid+c], want)
				}
			}
		}
		copyBW, readBW, err := Bandwidth(s.Device())
		if err != nil {
			t.Fatal(err)
		}
		for _, bw := range []float64{copyBW, readBW} {
			if !(bw > 0) || math.IsInf(bw, 0) {
				t.Fatalf("bandwidths copy %v, read %v: want positive and finite", copyBW, readBW)
			}
		}
	})
}
