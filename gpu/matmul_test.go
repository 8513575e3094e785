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
	// Edges of the vector loads (X: cols % 4 == 0; W: f32 cols % 4 == 0,
	// bf16/f16 cols % 8 == 0), the staging step (16 or 32 columns on
	// Vulkan) and the 64- and 128-token tiles.
	{T: 129, rows: 65, cols: 36, dt: BF16, epi: epiStore},           // X vec4, W by element
	{T: 65, rows: 130, cols: 136, dt: F16, epi: epiAddInPlace},      // both vec4, 136 = 8·17
	{T: 66, rows: 67, cols: 1002, dt: F32, epi: epiAdd},             // f32 by element, even cols
	{T: 200, rows: 33, cols: 100, dt: F32, epi: epiStore},           // f32 vec4, cols % 16 != 0
	{T: 5, rows: 9, cols: 8, dt: BF16, epi: epiSwiGLU},              // fewer cols than a step
	{T: 70, rows: 200, cols: 72, dt: BF16, epi: epiSwiGLU, per: 72}, // vec4 over parts
	{T: 64, rows: 64, cols: 1, dt: BF16, epi: epiStore},
	{T: 2, rows: 200, cols: 41, dt: F16, epi: epiAdd, per: 66}, // odd cols over parts
}

func TestMatMul(t *testing.T) {
	forEachBackend(t, "matmul", func(t *testing.T, d *Device) {
		for _, c := range matmulCases {
			t.Run(c.name(), func(t *testing.T) { testMatMul(t, d, c) })
		}
	})
}

// TestMatMulTiles runs every tiling BenchmarkTuneMatMul may pick, at 8, 16
// and 32 columns a step, on the primary backend (GL runs its own default in
// TestMatMul).
func TestMatMulTiles(t *testing.T) {
	d := openTestDevice(t, primaryBackend())
	cases := []matmulCase{
		{T: 130, rows: 127, cols: 1000, dt: F32, epi: epiStore},
		{T: 77, rows: 127, cols: 1024, dt: BF16, epi: epiSwiGLU, wScale: 90, xScale: 1e4},
		{T: 129, rows: 65, cols: 36, dt: BF16, epi: epiStore},
		{T: 65, rows: 130, cols: 136, dt: F16, epi: epiAddInPlace},
		{T: 66, rows: 67, cols: 1002, dt: F32, epi: epiAdd},
		{T: 70, rows: 200, cols: 72, dt: BF16, epi: epiSwiGLU, per: 72},
		{T: 3, rows: 127, cols: 77, dt: BF16, epi: epiSwiGLU, per: 40},
	}
	defer func() { tuneMatMulTile, tune.matmulBK = matmulTile{}, 0 }()
	for _, tile := range matmulTiles {
		for _, bk := range []int{8, 16, 32} {
			t.Run(fmt.Sprintf("%v/bk%d", tile, bk), func(t *testing.T) {
				tuneMatMulTile, tune.matmulBK = tile, bk
				if n := matmulShared(epiSwiGLU, tile, bk, 1); n > int(d.limits.MaxComputeWorkgroupStorageSize) {
					t.Skipf("%d bytes of workgroup memory", n)
				}
				for _, c := range cases {
					t.Run(c.name(), func(t *testing.T) { testMatMul(t, d, c) })
				}
			})
		}
	}
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
