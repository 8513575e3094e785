package gpu

import (
	"fmt"
	"testing"

	"github.com/qwgpu/qwgpu/qwen3"
)

type matmulCase struct {
	T, rows, cols int
	dt            DType
	epi           epilogue
	per           int
	wScale        float32
	xScale        float32
}

func (c matmulCase) name() string {
	s := fmt.Sprintf("%s/%s/T%d/%s", c.dt, c.epi, c.T, shape(c.rows, c.cols))
	if c.per > 0 {
		s += fmt.Sprintf("/parts%d", c.per)
	}
	return s
}

var matmulCases = []matmulCase{
	{T: 1, rows: 77, cols: 1024, dt: BF16, epi: epiStore},
	{T: 3, rows: 1, cols: 77, dt: BF16, epi: epiStore},
	{T: 77, rows: 127, cols: 130, dt: F16, epi: epiStore},
	{T: 77, rows: 1000, cols: 1024, dt: BF16, epi: epiStore, wScale: 90, xScale: 1e4},
	{T: 3, rows: 3, cols: 3, dt: F32, epi: epiStore},
	{T: 130, rows: 127, cols: 1000, dt: F32, epi: epiStore},
	{T: 77, rows: 127, cols: 1024, dt: BF16, epi: epiAdd},
	{T: 3, rows: 1000, cols: 77, dt: F32, epi: epiAddInPlace},
	{T: 77, rows: 127, cols: 1024, dt: BF16, epi: epiSwiGLU, wScale: 90, xScale: 1e4},
	{T: 1, rows: 77, cols: 77, dt: F16, epi: epiSwiGLU},
	{T: 77, rows: 1000, cols: 256, dt: BF16, epi: epiStore, per: 300},
	{T: 3, rows: 127, cols: 77, dt: BF16, epi: epiSwiGLU, per: 40},
}

func TestMatMul(t *testing.T) {
	forEachBackend(t, "matmul", func(t *testing.T, d *Device) {
		for _, c := range matmulCases {
			t.Run(c.name(), func(t *testing.T) { testMatMul(t, d, c) })
		}
	})
}

func testMatMul(t *testing.T, d *Device, c matmulCase) {
	r := newRand(t)
	ws, xs := c.wScale, c.xScale
	if ws == 0 {
		ws, xs = 1, 1
	}
	w := roundTo(c.dt, randF32(r, c.rows*c.cols, ws))
	x := randF32(r, c.T*c.cols, xs)
	n := c.T * c.rows
	want := make([]float32, n)
	qwen3.MatMul(want, x, w, c.T, c.rows, c.cols)

	m := upMatrix(t, d, "w", c.dt, c.rows, c.cols, c.per, w)
	bx := upload(t, d, "x", x)
	out := poisoned(t, d, "out", n)
	var ops []*Op
	var err error
	switch c.epi {
	case epiStore:
		ops, err = d.MatMul(out, bx, m, c.T)
	case epiAdd:
		res := randF32(r, n, 100)
		qwen3.Add(want, want, res)
		ops, err = d.MatMulAdd(out, upload(t, d, "res", res), bx, m, c.T)
	case epiAddInPlace:
		res := randF32(r, n, 100)
		qwen3.Add(want, want, res)
		if err := d.WriteF32(out, 0, res); err != nil {
			t.Fatal(err)
		}
		ops, err = d.MatMulAdd(out, out, bx, m, c.T)
	case epiSwiGLU:
		u := roundTo(c.dt, randF32(r, c.rows*c.cols, ws))
		up := make([]float32, n)
		qwen3.MatMul(up, x, u, c.T, c.rows, c.cols)
		qwen3.SwiGLU(want, want, up)
		ops, err = d.MatMulSwiGLU(out, bx, m, upMatrix(t, d, "up", c.dt, c.rows, c.cols, c.per, u), c.T)
	}
	if err != nil {
		t.Fatal(err)
	}
	run(t, d, ops...)
	checkClose(t, "matmul", readF32(t, d, out, n), want)
}
