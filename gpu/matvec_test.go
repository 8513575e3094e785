package gpu

import (
	"fmt"
	"testing"

	"github.com/qwgpu/qwgpu/qwen3"
)

// matvecCase is one matvec test: shape, dtype, epilogue, rows per part
// (0: as UploadMatrix splits) and input scales.
type matvecCase struct {
	rows, cols int
	dt         DType
	epi        epilogue
	per        int
	wScale     float32
	xScale     float32
	norm       bool // RMSNorm of x fused in (MatVecNorm, MatVecSwiGLUNorm)
}

func (c matvecCase) name() string {
	s := fmt.Sprintf("%s/%s/%s", c.dt, c.epi, shape(c.rows, c.cols))
	if c.per > 0 {
		s += fmt.Sprintf("/parts%d", c.per)
	}
	if c.norm {
		s += "/norm"
	}
	return s
}

var matvecCases = []matvecCase{
	{rows: 1, cols: 1024, dt: BF16, epi: epiStore},
	{rows: 3, cols: 77, dt: BF16, epi: epiStore},  // odd cols: rows start mid-u32
	{rows: 77, cols: 130, dt: F16, epi: epiStore}, // even, not a multiple of 8
	{rows: 127, cols: 1000, dt: F32, epi: epiStore, wScale: 90, xScale: 1e4},
	{rows: 1000, cols: 1024, dt: F16, epi: epiStore, wScale: 90, xScale: 1e4},
	{rows: 1000, cols: 3, dt: F32, epi: epiStore},
	{rows: 127, cols: 3072, dt: BF16, epi: epiStore, wScale: 90, xScale: 1e4},
	{rows: 77, cols: 1024, dt: BF16, epi: epiAdd},
	{rows: 127, cols: 77, dt: F32, epi: epiAdd},
	{rows: 1000, cols: 1024, dt: BF16, epi: epiAddInPlace},
	{rows: 3, cols: 12, dt: F16, epi: epiAddInPlace},
	{rows: 127, cols: 1024, dt: BF16, epi: epiSwiGLU, wScale: 90, xScale: 1e4},
	{rows: 77, cols: 77, dt: F16, epi: epiSwiGLU},
	{rows: 1000, cols: 256, dt: F32, epi: epiSwiGLU},
	// Matrices in parts: one dispatch per part at its row offset.
	{rows: 1000, cols: 1024, dt: BF16, epi: epiStore, per: 300},
	{rows: 127, cols: 77, dt: BF16, epi: epiAdd, per: 40},
	{rows: 77, cols: 1000, dt: F32, epi: epiSwiGLU, per: 30},
	// The RMSNorm in front fused in: odd and vector widths, big inputs.
	{rows: 127, cols: 1024, dt: BF16, epi: epiStore, norm: true, xScale: 1e4, wScale: 90},
	{rows: 3, cols: 77, dt: F16, epi: epiStore, norm: true},
	{rows: 1000, cols: 256, dt: F32, epi: epiSwiGLU, norm: true},
	{rows: 77, cols: 77, dt: BF16, epi: epiSwiGLU, norm: true, xScale: 1e4, wScale: 90},
	{rows: 3072, cols: 1024, dt: BF16, epi: epiSwiGLU, norm: true},
	{rows: 77, cols: 1000, dt: BF16, epi: epiSwiGLU, per: 30, norm: true},
}

func TestMatVec(t *testing.T) {
	forEachBackend(t, "matvec", func(t *testing.T, d *Device) {
		for _, c := range matvecCases {
			t.Run(c.name(), func(t *testing.T) { testMatVec(t, d, c) })
		}
	})
}

// upMatrix uploads w as dt, in parts of per rows when per > 0.
func upMatrix(t testing.TB, d *Device, label string, dt DType, rows, cols, per int, w []float32) *Matrix {
	t.Helper()
	if per == 0 {
		return uploadMatrix(t, d, label, dt, rows, cols, w)
	}
	m, err := d.uploadParts(label, dt, rows, cols, EncodeDType(dt, w), per)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Release)
	if len(m.Parts) < 2 {
		t.Fatalf("wanted several parts, got %d", len(m.Parts))
	}
	return m
}

func testMatVec(t *testing.T, d *Device, c matvecCase) {
	r := newRand(t)
	ws, xs := c.wScale, c.xScale
	if ws == 0 {
		ws, xs = 1, 1
	}
	w := roundTo(c.dt, randF32(r, c.rows*c.cols, ws))
	x := randF32(r, c.cols, xs)
	xin := x // what the projection sees
	var bnw *Buffer
	const eps = 1e-6
	if c.norm {
		nw := randF32(r, c.cols, 2)
		bnw = upload(t, d, "nw", nw)
		xin = make([]float32, c.cols)
		qwen3.RMSNorm(xin, x, nw, eps)
	}
	want := make([]float32, c.rows)
	qwen3.MatVec(want, w, xin, c.rows, c.cols)

	m := upMatrix(t, d, "w", c.dt, c.rows, c.cols, c.per, w)
	bx := upload(t, d, "x", x)
	out := poisoned(t, d, "out", c.rows)
	var ops []*Op
	var err error
	switch c.epi {
	case epiStore:
		if c.norm {
			ops, err = d.MatVecNorm(out, m, bx, bnw, eps)
		} else {
			ops, err = d.MatVec(out, m, bx)
		}
	case epiAdd:
		res := randF32(r, c.rows, 100)
		qwen3.Add(want, want, res)
		ops, err = d.MatVecAdd(out, upload(t, d, "res", res), m, bx)
	case epiAddInPlace:
		res := randF32(r, c.rows, 100)
		qwen3.Add(want, want, res)
		if err := d.WriteF32(out, 0, res); err != nil {
			t.Fatal(err)
		}
		ops, err = d.MatVecAdd(out, out, m, bx)
	case epiSwiGLU:
		u := roundTo(c.dt, randF32(r, c.rows*c.cols, ws))
		up := make([]float32, c.rows)
		qwen3.MatVec(up, u, xin, c.rows, c.cols)
		qwen3.SwiGLU(want, want, up)
		mu := upMatrix(t, d, "up", c.dt, c.rows, c.cols, c.per, u)
		if c.norm {
			ops, err = d.MatVecSwiGLUNorm(out, m, mu, bx, bnw, eps)
		} else {
			ops, err = d.MatVecSwiGLU(out, m, mu, bx)
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	if c.per > 0 && len(ops) < 2 {
		t.Errorf("%d ops for a matrix in parts", len(ops))
	}
	run(t, d, ops...)
	checkClose(t, "matvec", readF32(t, d, out, c.rows), want)
}

// TestMatVecLMHead runs Qwen3-0.6B's tied LM head, [151936, 1024] in bf16
// (311 MB), which needs several parts under lavapipe's 128 MiB binding
// limit. It runs once, on the primary backend only.
func TestMatVecLMHead(t *testing.T) {
	if testing.Short() {
		t.Skip("311 MB matrix; skipped with -short")
	}
	d := openTestDevice(t, "")
	const rows, cols = 151936, 1024
	r := newRand(t)
	raw := make([]byte, rows*cols*2)
	w := make([]float32, rows*cols)
	for i := range w {
		h := BF16Bits((2*r.Float32() - 1) * 0.05)
		raw[2*i], raw[2*i+1] = byte(h), byte(h>>8)
		w[i] = BF16Value(h)
	}
	x := randF32(r, cols, 3)
	want := make([]float32, rows)
	qwen3.MatVec(want, w, x, rows, cols)
	w = nil

	m, err := d.UploadMatrix("lm_head", BF16, rows, cols, raw)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Release()
	t.Logf("%d parts under a %d-byte binding limit", len(m.Parts), d.Limits().MaxStorageBufferBindingSize)
	if uint64(rows*cols*2) > d.Limits().MaxStorageBufferBindingSize && len(m.Parts) < 2 {
		t.Fatalf("one part of %d bytes exceeds the binding limit", rows*cols*2)
	}
	out := poisoned(t, d, "logits", rows)
	ops := must[[]*Op](t)(d.MatVec(out, m, upload(t, d, "x", x)))
	run(t, d, ops...)
	checkClose(t, "matvec", readF32(t, d, out, rows), want)
}
