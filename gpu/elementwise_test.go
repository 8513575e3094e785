package gpu

import (
	"fmt"
	"math"
	"testing"

	"github.com/qwgpu/qwgpu/qwen3"
)

var elementwiseSizes = []int{1, 3, 77, 127, 1000, 4096, 100003}

func TestAdd(t *testing.T) {
	forEachBackend(t, "add", func(t *testing.T, d *Device) {
		for _, n := range elementwiseSizes {
			for _, mode := range []string{"out", "inplace-a", "inplace-b"} {
				t.Run(fmt.Sprintf("%d/%s", n, mode), func(t *testing.T) {
					r := newRand(t)
					a, b := randF32(r, n, 1e4), randF32(r, n, 90)
					want := make([]float32, n)
					qwen3.Add(want, a, b)
					ba, bb := upload(t, d, "a", a), upload(t, d, "b", b)
					var out *Buffer
					switch mode {
					case "out":
						out = poisoned(t, d, "out", n)
					case "inplace-a":
						out = ba
					case "inplace-b":
						out = bb
					}
					op := must[*Op](t)(d.Add(out, ba, bb, n))
					run(t, d, op)
					checkClose(t, "add", readF32(t, d, out, n), want)
				})
			}
		}
	})
}

func TestSwiGLU(t *testing.T) {
	forEachBackend(t, "swiglu", func(t *testing.T, d *Device) {
		for _, n := range elementwiseSizes {
			t.Run(fmt.Sprint(n), func(t *testing.T) {
				r := newRand(t)
				gate, up := randF32(r, n, 20), randF32(r, n, 1e4)
				gate[0] = -1e4 // e^1e4 overflows to +Inf: SiLU must still give -0, not NaN
				if n > 1 {
					gate[1] = 1e4
				}
				want := make([]float32, n)
				qwen3.SwiGLU(want, gate, up)
				out := poisoned(t, d, "out", n)
				op := must[*Op](t)(d.SwiGLU(out, upload(t, d, "gate", gate), upload(t, d, "up", up), n))
				run(t, d, op)
				checkClose(t, "swiglu", readF32(t, d, out, n), want)
			})
		}
	})
}

func TestEmbedding(t *testing.T) {
	cases := []struct {
		vocab, cols, T int
		dt             DType
		per            int
	}{
		{1000, 1024, 1, BF16, 0},
		{1000, 77, 3, BF16, 0}, // odd cols: rows start mid-u32
		{127, 130, 77, F16, 0},
		{77, 3, 77, F32, 0},
		{1000, 77, 77, BF16, 300}, // parts
		{1000, 128, 127, F32, 333},
	}
	forEachBackend(t, "embedding", func(t *testing.T, d *Device) {
		for _, c := range cases {
			name := fmt.Sprintf("%s/%s/T%d", c.dt, shape(c.vocab, c.cols), c.T)
			if c.per > 0 {
				name += fmt.Sprintf("/parts%d", c.per)
			}
			t.Run(name, func(t *testing.T) {
				r := newRand(t)
				e := roundTo(c.dt, randF32(r, c.vocab*c.cols, 90))
				ids := make([]uint32, c.T)
				for i := range ids {
					ids[i] = uint32(r.IntN(c.vocab))
				}
				ids[c.T-1] = uint32(c.vocab - 1) // the last row, in the last part
				if c.T > 2 {
					ids[1] = ids[0]                  // a repeated token
					ids[2] = uint32(c.vocab + 12345) // out of vocabulary: zeros
				}
				want := make([]float32, c.T*c.cols)
				for i, id := range ids {
					if int(id) < c.vocab {
						copy(want[i*c.cols:], e[int(id)*c.cols:(int(id)+1)*c.cols])
					}
				}
				m := upMatrix(t, d, "embed", c.dt, c.vocab, c.cols, c.per, e)
				bids, err := d.UploadU32("ids", ids)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(bids.Release)
				out := poisoned(t, d, "out", c.T*c.cols)
				ops := must[[]*Op](t)(d.Embedding(out, m, bids, c.T))
				run(t, d, ops...)
				checkClose(t, "embedding", readF32(t, d, out, c.T*c.cols), want)
			})
		}
	})
}

func TestArgmax(t *testing.T) {
	nan := float32(math.NaN())
	inf := float32(math.Inf(1))
	cases := []struct {
		name string
		n    int
		edit func(x []float32)
	}{
		{"1", 1, nil},
		{"3", 3, nil},
		{"77", 77, nil},
		{"1000", 1000, nil},
		{"4097", 4097, nil},
		{"vocab", 151936, nil},
		{"ties", 151936, func(x []float32) { x[150000], x[70000], x[2049] = 1e6, 1e6, 1e6 }},
		{"tie-in-one-chunk", 5000, func(x []float32) { x[4099], x[4097] = 1e6, 1e6 }},
		{"all-equal", 3000, func(x []float32) {
			for i := range x {
				x[i] = 7
			}
		}},
		{"nan", 151936, func(x []float32) { x[0], x[5], x[100000] = nan, nan, 1e6 }},
		{"inf-last", 151936, func(x []float32) { x[151935] = inf }},
	}
	forEachBackend(t, "argmax", func(t *testing.T, d *Device) {
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				r := newRand(t)
				x := randF32(r, c.n, 1e4)
				if c.edit != nil {
					c.edit(x)
				}
				want := uint32(argmaxIgnoringNaN(x))
				out, err := d.UploadU32("out", []uint32{0xdeadbeef})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(out.Release)
				ops := must[[]*Op](t)(d.Argmax(out, upload(t, d, "x", x), c.n))
				run(t, d, ops...)
				got, err := d.ReadU32(out, 0, 1)
				if err != nil {
					t.Fatal(err)
				}
				if got[0] != want {
					t.Errorf("index 0: got %d, want %d", got[0], want)
				}
			})
		}
	})
}

// argmaxIgnoringNaN is qwen3.Argmax with NaN treated as -Inf, which is what
// the kernel promises (qwen3.Argmax returns 0 when x[0] is NaN).
func argmaxIgnoringNaN(x []float32) int {
	clean := make([]float32, len(x))
	for i, v := range x {
		if v != v {
			v = float32(math.Inf(-1))
		}
		clean[i] = v
	}
	return qwen3.Argmax(clean)
}
