package gpu

import (
	"fmt"
	"testing"
	"time"
)

// Benchmarks time b.N repetitions of a kernel's ops recorded into ONE compute
// pass and submitted once, so the submit round trip is amortised and the
// per-dispatch cost inside a pass is included, as in a real step. On lavapipe
// they measure the CPU running the shaders, not any GPU.

// benchOps times ops and reports bytes moved and flops done per repetition
// as GB/s and GFLOP/s, and the time of one repetition in µs.
func benchOps(b *testing.B, d *Device, bytes, flops float64, ops ...*Op) {
	b.Helper()
	b.Cleanup(func() { ReleaseOps(ops) })
	// Warm up: the first submit of a pipeline pays for driver-side setup.
	if err := d.Submit(ops...); err != nil {
		b.Fatal(err)
	}
	r := d.NewRecorder()
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		r.Run(ops...)
	}
	if err := r.Submit(); err != nil {
		b.Fatal(err)
	}
	per := time.Since(start).Seconds() / float64(b.N)
	b.StopTimer()
	b.ReportMetric(per*1e6, "µs/op")
	if bytes > 0 {
		b.ReportMetric(bytes/per/1e9, "GB/s")
	}
	if flops > 0 {
		b.ReportMetric(flops/per/1e9, "GFLOP/s")
	}
}

func benchDevice(b *testing.B) *Device {
	d := openTestDevice(b, "")
	b.Logf("device: %s (%s, %s)", d.Info().Name, d.Info().Backend, d.Info().Type)
	return d
}

func benchBuffer(b *testing.B, d *Device, label string, n int) *Buffer {
	b.Helper()
	buf, err := d.NewBuffer(label, uint64(n)*4)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(buf.Release)
	return buf
}

// BenchmarkCopy is the yardstick: a plain vec4 copy kernel, the bandwidth a
// memory-bound kernel can hope for on the device.
func BenchmarkCopy(b *testing.B) {
	d := benchDevice(b)
	const src = `
struct Params { n: u32, _a: u32, _b: u32, _c: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> y: array<vec4<f32>>;
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) n: vec3<u32>) {
    let i = g.x + g.y * n.x * 256u;
    if (i < p.n) { y[i] = x[i]; }
}`
	k, err := d.KernelSource("bench copy", src, "main")
	if err != nil {
		b.Fatal(err)
	}
	for _, mib := range []int{16, 128} {
		b.Run(fmt.Sprintf("%dMiB", mib), func(b *testing.B) {
			n := mib << 20 / 16
			x, y := benchBuffer(b, d, "x", 4*n), benchBuffer(b, d, "y", 4*n)
			op, err := k.Op("copy", [4]uint32{uint32(n)}, Groups1D(ceilDiv(n, 256)), Bind(x), Bind(y))
			if err != nil {
				b.Fatal(err)
			}
			benchOps(b, d, float64(2*16*n), 0, op)
		})
	}
}

func BenchmarkRMSNorm(b *testing.B) {
	d := benchDevice(b)
	for _, rows := range []int{1, 2048, 32768} {
		const n = 1024
		b.Run(fmt.Sprintf("%dx%d", rows, n), func(b *testing.B) {
			x, w, out := benchBuffer(b, d, "x", rows*n), benchBuffer(b, d, "w", n), benchBuffer(b, d, "out", rows*n)
			op, err := d.RMSNorm(out, x, w, rows, n, 1e-6)
			if err != nil {
				b.Fatal(err)
			}
			benchOps(b, d, float64(2*4*rows*n), 0, op)
		})
	}
}

// benchMatrix allocates a zero [rows, cols] matrix of dt without a host copy.
func benchMatrix(b *testing.B, d *Device, dt DType, rows, cols int) *Matrix {
	b.Helper()
	m, err := d.UploadMatrix("w", dt, rows, cols, make([]byte, rows*cols*dt.Size()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(m.Release)
	return m
}

func BenchmarkMatVec(b *testing.B) {
	d := benchDevice(b)
	cases := []struct {
		name       string
		rows, cols int
		dt         DType
		epi        epilogue
	}{
		{"lm_head", 151936, 1024, BF16, epiStore},
		{"q_proj", 2048, 1024, BF16, epiStore},
		{"o_proj+res", 1024, 2048, BF16, epiAddInPlace},
		{"gate_up_swiglu", 3072, 1024, BF16, epiSwiGLU},
		{"down+res", 1024, 3072, BF16, epiAddInPlace},
		{"lm_head_f32", 151936, 1024, F32, epiStore},
		{"lm_head_f16", 151936, 1024, F16, epiStore},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			w := benchMatrix(b, d, c.dt, c.rows, c.cols)
			x, out := benchBuffer(b, d, "x", c.cols), benchBuffer(b, d, "out", c.rows)
			var ops []*Op
			var err error
			mats := 1
			switch c.epi {
			case epiStore:
				ops, err = d.MatVec(out, w, x)
			case epiAddInPlace:
				ops, err = d.MatVecAdd(out, out, w, x)
			case epiSwiGLU:
				ops, err = d.MatVecSwiGLU(out, w, benchMatrix(b, d, c.dt, c.rows, c.cols), x)
				mats = 2
			}
			if err != nil {
				b.Fatal(err)
			}
			bytes := float64(mats) * float64(w.Bytes())
			benchOps(b, d, bytes, float64(mats*2*c.rows*c.cols), ops...)
		})
	}
}

// BenchmarkTuneMatVec sweeps threads per row for the bf16 matvec.
func BenchmarkTuneMatVec(b *testing.B) {
	d := benchDevice(b)
	for _, c := range []struct{ rows, cols int }{{151936, 1024}, {2048, 1024}, {1024, 3072}} {
		w := benchMatrix(b, d, BF16, c.rows, c.cols)
		x, out := benchBuffer(b, d, "x", c.cols), benchBuffer(b, d, "out", c.rows)
		for _, tpr := range []int{4, 8, 16, 32, 64, 128, 256} {
			b.Run(fmt.Sprintf("%s/tpr%d", shape(c.rows, c.cols), tpr), func(b *testing.B) {
				tune.matvecTPR = tpr
				defer func() { tune.matvecTPR = 0 }()
				ops, err := d.MatVec(out, w, x)
				if err != nil {
					b.Fatal(err)
				}
				benchOps(b, d, float64(w.Bytes()), 0, ops...)
			})
		}
	}
}

// BenchmarkTuneRMSNorm sweeps the rmsnorm workgroup size.
func BenchmarkTuneRMSNorm(b *testing.B) {
	d := benchDevice(b)
	const n = 1024
	for _, rows := range []int{2048, 32768} {
		x, w, out := benchBuffer(b, d, "x", rows*n), benchBuffer(b, d, "w", n), benchBuffer(b, d, "out", rows*n)
		for _, wg := range []int{32, 64, 128, 256} {
			b.Run(fmt.Sprintf("%dx%d/wg%d", rows, n, wg), func(b *testing.B) {
				tune.rmsnormWG = wg
				defer func() { tune.rmsnormWG = 0 }()
				op, err := d.RMSNorm(out, x, w, rows, n, 1e-6)
				if err != nil {
					b.Fatal(err)
				}
				benchOps(b, d, float64(2*4*rows*n), 0, op)
			})
		}
	}
}

func BenchmarkMatMul(b *testing.B) {
	d := benchDevice(b)
	cases := []struct {
		name          string
		T, rows, cols int
		dt            DType
		epi           epilogue
	}{
		{"q_proj/T512", 512, 2048, 1024, BF16, epiStore},
		{"gate_up_swiglu/T512", 512, 3072, 1024, BF16, epiSwiGLU},
		{"down+res/T512", 512, 1024, 3072, BF16, epiAddInPlace},
		{"q_proj/T77", 77, 2048, 1024, BF16, epiStore},
		{"f32/T512", 512, 1024, 1024, F32, epiStore},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			w := benchMatrix(b, d, c.dt, c.rows, c.cols)
			x, out := benchBuffer(b, d, "x", c.T*c.cols), benchBuffer(b, d, "out", c.T*c.rows)
			var ops []*Op
			var err error
			mats := 1
			switch c.epi {
			case epiStore:
				ops, err = d.MatMul(out, x, w, c.T)
			case epiAddInPlace:
				ops, err = d.MatMulAdd(out, out, x, w, c.T)
			case epiSwiGLU:
				ops, err = d.MatMulSwiGLU(out, x, w, benchMatrix(b, d, c.dt, c.rows, c.cols), c.T)
				mats = 2
			}
			if err != nil {
				b.Fatal(err)
			}
			benchOps(b, d, 0, float64(mats*2*c.T*c.rows*c.cols), ops...)
		})
	}
}

func BenchmarkEmbedding(b *testing.B) {
	d := benchDevice(b)
	for _, T := range []int{1, 512} {
		b.Run(fmt.Sprintf("T%d", T), func(b *testing.B) {
			const vocab, cols = 151936, 1024
			e := benchMatrix(b, d, BF16, vocab, cols)
			ids, out := benchBuffer(b, d, "ids", T), benchBuffer(b, d, "out", T*cols)
			ops, err := d.Embedding(out, e, ids, T)
			if err != nil {
				b.Fatal(err)
			}
			benchOps(b, d, float64(T*cols*(2+4)), 0, ops...)
		})
	}
}

func BenchmarkElementwise(b *testing.B) {
	d := benchDevice(b)
	for _, n := range []int{1024, 1 << 22} {
		a, x, out := benchBuffer(b, d, "a", n), benchBuffer(b, d, "x", n), benchBuffer(b, d, "out", n)
		b.Run(fmt.Sprintf("add/%d", n), func(b *testing.B) {
			op, err := d.Add(out, a, x, n)
			if err != nil {
				b.Fatal(err)
			}
			benchOps(b, d, float64(3*4*n), 0, op)
		})
		b.Run(fmt.Sprintf("swiglu/%d", n), func(b *testing.B) {
			op, err := d.SwiGLU(out, a, x, n)
			if err != nil {
				b.Fatal(err)
			}
			benchOps(b, d, float64(3*4*n), 0, op)
		})
	}
}

func BenchmarkArgmax(b *testing.B) {
	d := benchDevice(b)
	const n = 151936
	x, out := benchBuffer(b, d, "logits", n), benchBuffer(b, d, "out", 1)
	ops, err := d.Argmax(out, x, n)
	if err != nil {
		b.Fatal(err)
	}
	benchOps(b, d, float64(4*n), 0, ops...)
}

// BenchmarkDecodeTail is the end of a decode step: final norm, bf16 LM head
// and argmax (4 bytes to read back), and pieces of it.
func BenchmarkDecodeTail(b *testing.B) {
	d := benchDevice(b)
	const vocab, hidden = 151936, 1024
	h, w, n := benchBuffer(b, d, "h", hidden), benchBuffer(b, d, "norm", hidden), benchBuffer(b, d, "n", hidden)
	logits, tok := benchBuffer(b, d, "logits", vocab), benchBuffer(b, d, "tok", 1)
	head := benchMatrix(b, d, BF16, vocab, hidden)
	build := func(b *testing.B, norm, argmax bool) []*Op {
		var ops []*Op
		if norm {
			op, err := d.RMSNorm(n, h, w, 1, hidden, 1e-6)
			if err != nil {
				b.Fatal(err)
			}
			ops = append(ops, op)
		}
		mv, err := d.MatVec(logits, head, n)
		if err != nil {
			b.Fatal(err)
		}
		ops = append(ops, mv...)
		if argmax {
			am, err := d.Argmax(tok, logits, vocab)
			if err != nil {
				b.Fatal(err)
			}
			ops = append(ops, am...)
		}
		return ops
	}
	for _, c := range []struct {
		name         string
		norm, argmax bool
	}{{"all", true, true}, {"norm+head", true, false}, {"head+argmax", false, true}, {"head", false, false}} {
		b.Run(c.name, func(b *testing.B) {
			benchOps(b, d, float64(head.Bytes()), 0, build(b, c.norm, c.argmax)...)
		})
	}
}

// BenchmarkTuneArgmax sweeps the chunk of argmax's partial pass.
func BenchmarkTuneArgmax(b *testing.B) {
	d := benchDevice(b)
	const n = 151936
	x, out := benchBuffer(b, d, "logits", n), benchBuffer(b, d, "out", 1)
	for _, chunk := range []int{256, 512, 1024, 2048, 4096} {
		b.Run(fmt.Sprintf("chunk%d", chunk), func(b *testing.B) {
			tune.argmaxChunk = chunk
			defer func() { tune.argmaxChunk = 0 }()
			ops, err := d.Argmax(out, x, n)
			if err != nil {
				b.Fatal(err)
			}
			benchOps(b, d, float64(4*n), 0, ops...)
		})
	}
}

// BenchmarkTuneMatMul sweeps matmul's tilings (tokens × rows a workgroup /
// tokens × rows a thread) and the columns it stages per step (BK) on
// Qwen3-0.6B's prefill shapes at T = 512. Select with e.g.
// -bench 'TuneMatMul/.*/64x64-8x4/bk16'.
func BenchmarkTuneMatMul(b *testing.B) {
	d := benchDevice(b)
	const T = 512
	for _, c := range []struct {
		name       string
		rows, cols int
		swiglu     bool
	}{{"qkv", 4096, 1024, false}, {"gate_up", 3072, 1024, true}, {"down", 1024, 3072, false}} {
		for _, tile := range matmulTiles {
			for _, bk := range []int{8, 16, 32} {
				b.Run(fmt.Sprintf("%s/%v/bk%d", c.name, tile, bk), func(b *testing.B) {
					tuneMatMulTile, tune.matmulBK = tile, bk
					defer func() { tuneMatMulTile, tune.matmulBK = matmulTile{}, 0 }()
					epi := epiStore
					if c.swiglu {
						epi = epiSwiGLU
					}
					if n := matmulShared(epi, tile, bk, 1); n > int(d.limits.MaxComputeWorkgroupStorageSize) {
						b.Skipf("%d bytes of workgroup memory", n)
					}
					w := benchMatrix(b, d, BF16, c.rows, c.cols)
					x, out := benchBuffer(b, d, "x", T*c.cols), benchBuffer(b, d, "out", T*c.rows)
					var ops []*Op
					var err error
					mats := 1
					if c.swiglu {
						ops, err = d.MatMulSwiGLU(out, x, w, benchMatrix(b, d, BF16, c.rows, c.cols), T)
						mats = 2
					} else {
						ops, err = d.MatMul(out, x, w, T)
					}
					if err != nil {
						b.Fatal(err)
					}
					benchOps(b, d, 0, float64(mats*2*T*c.rows*c.cols), ops...)
				})
			}
		}
	}
}
