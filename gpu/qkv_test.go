package gpu

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/qwgpu/qwgpu/qwen3"
)

const (
	testRopeTheta = 1e6 // Qwen3's rope_theta
	testEps       = 1e-6
)

// refNormRope applies what qkv_norm_rope does after the projection to one
// row [(NHeads+2·NKV)·HeadDim] with the CPU reference: per-head RMSNorm of q
// and k, then RoPE at pos; v is copied.
func refNormRope(s AttentionShape, row, qn, kn []float32, rope *qwen3.Rope, pos int) (q, k, v []float32) {
	hd := s.HeadDim
	q = append([]float32(nil), row[:s.QDim()]...)
	k = append([]float32(nil), row[s.QDim():s.QDim()+s.KVDim()]...)
	v = append([]float32(nil), row[s.QDim()+s.KVDim():]...)
	for h := 0; h < s.NHeads; h++ {
		qh := q[h*hd : (h+1)*hd]
		qwen3.RMSNorm(qh, qh, qn, testEps)
		rope.Apply(qh, pos)
	}
	for h := 0; h < s.NKV; h++ {
		kh := k[h*hd : (h+1)*hd]
		qwen3.RMSNorm(kh, kh, kn, testEps)
		rope.Apply(kh, pos)
	}
	return q, k, v
}

// qkvFixture is one layer's weights and tables for the qkv tests.
type qkvFixture struct {
	s      AttentionShape
	qn, kn []float32
	rope   *qwen3.Rope
	gRope  *RopeTables
	gQN    *Buffer
	gKN    *Buffer
}

func newQKVFixture(t *testing.T, d *Device, r *rand.Rand, s AttentionShape, maxPos int, knScale float32) *qkvFixture {
	t.Helper()
	f := &qkvFixture{s: s, rope: qwen3.NewRope(s.HeadDim, maxPos, testRopeTheta)}
	f.qn = randF32(r, s.HeadDim, 2)
	f.kn = randF32(r, s.HeadDim, knScale)
	f.gQN, f.gKN = upload(t, d, "q_norm", f.qn), upload(t, d, "k_norm", f.kn)
	f.gRope = must[*RopeTables](t)(d.UploadRope("rope", s.HeadDim, maxPos, f.rope.Cos, f.rope.Sin))
	t.Cleanup(f.gRope.Release)
	return f
}

// newFilledCache returns a cache of ctx rows whose first len(k)/KVDim rows
// hold k and v and whose other rows are NaN, so that a kernel reading a row
// it should not, or leaving a row unwritten, shows in the results.
func newFilledCache(t *testing.T, d *Device, s AttentionShape, ctx int, k, v []float32) *KVCache {
	t.Helper()
	c := must[*KVCache](t)(d.NewKVCache("cache", ctx, s.NKV, s.HeadDim))
	t.Cleanup(c.Release)
	for _, kv := range []struct {
		b    *Buffer
		rows []float32
	}{{c.K, k}, {c.V, v}} {
		full := nanF32(ctx * s.KVDim())
		copy(full, kv.rows)
		if err := d.WriteF32(kv.b, 0, full); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// checkCache checks a cache buffer after a kernel wrote rows [row0,
// row0+len(want)/KVDim): rows before row0 must hold old unchanged, the
// written rows must match want within tolerance, and every later row must
// still be NaN.
func checkCache(t *testing.T, d *Device, kernel, what string, b *Buffer, s AttentionShape, ctx int, old, want []float32) {
	t.Helper()
	got := readF32(t, d, b, ctx*s.KVDim())
	for i, w := range old {
		if got[i] != w {
			t.Fatalf("%s: index %d (row %d, before the written rows): got %v, want %v (unchanged)", what, i, i/s.KVDim(), got[i], w)
		}
	}
	end := len(old) + len(want)
	checkClose(t, kernel, got[len(old):end], want)
	for i, g := range got[end:] {
		if g == g {
			t.Fatalf("%s: index %d (row %d, past the written rows): got %v, want NaN (untouched)", what, end+i, (end+i)/s.KVDim(), g)
		}
	}
}

func TestQKVNormRope(t *testing.T) {
	cases := []struct {
		s       AttentionShape
		dt      DType
		pos     int
		xScale  float32
		knScale float32
	}{
		{AttentionShape{Hidden: 96, NHeads: 4, NKV: 1, HeadDim: 16}, F32, 0, 1, 1},
		{AttentionShape{Hidden: 97, NHeads: 4, NKV: 2, HeadDim: 16}, F32, 3, 1, 1},     // scalar f32 loads
		{AttentionShape{Hidden: 98, NHeads: 4, NKV: 2, HeadDim: 32}, BF16, 5, 1, 1},    // u32 loads, 2 values each
		{AttentionShape{Hidden: 1000, NHeads: 4, NKV: 2, HeadDim: 32}, BF16, 77, 1, 1}, // vec4<u32> loads
		{AttentionShape{Hidden: 1000, NHeads: 16, NKV: 8, HeadDim: 64}, F16, 126, 1, 1},
		{AttentionShape{Hidden: 1000, NHeads: 4, NKV: 1, HeadDim: 128}, F32, 1000, 1e4, 90}, // large magnitudes
		{AttentionShape{Hidden: 1024, NHeads: 16, NKV: 8, HeadDim: 128}, BF16, 4095, 1e4, 90},
		{AttentionShape{Hidden: 1000, NHeads: 16, NKV: 8, HeadDim: 128}, F16, 2, 1, 90},
		{AttentionShape{Hidden: 512, NHeads: 4, NKV: 2, HeadDim: 256}, BF16, 9, 1e4, 90}, // the largest head_dim
	}
	forEachBackend(t, "qkv_norm_rope", func(t *testing.T, d *Device) {
		for _, c := range cases {
			// The cases at odd positions also run with input_layernorm fused in.
			for _, norm := range []bool{false, c.pos%2 == 1} {
				s := c.s
				name := fmt.Sprintf("h%d_%dx%d_hd%d_%s_pos%d", s.Hidden, s.NHeads, s.NKV, s.HeadDim, c.dt, c.pos)
				if norm {
					name += "_norm"
				}
				t.Run(name, func(t *testing.T) {
					r := newRand(t)
					ctx := c.pos + 3
					f := newQKVFixture(t, d, r, s, ctx+5, c.knScale)
					w := roundTo(c.dt, randF32(r, s.QKVDim()*s.Hidden, 0.1))
					x := randF32(r, s.Hidden, c.xScale)
					oldK := randF32(r, c.pos*s.KVDim(), 90)
					oldV := randF32(r, c.pos*s.KVDim(), 1e4)

					gw := uploadMatrix(t, d, "w_qkv", c.dt, s.QKVDim(), s.Hidden, w)
					cache := newFilledCache(t, d, s, ctx, oldK, oldV)
					q := poisoned(t, d, "q", s.QDim())
					args := QKVDecodeArgs{
						X: upload(t, d, "x", x), W: gw, QNorm: f.gQN, KNorm: f.gKN, Rope: f.gRope,
						Q: q, Cache: cache, Eps: testEps,
					}
					xin := x // what the projection sees
					if norm {
						xw := randF32(r, s.Hidden, 2)
						args.XNorm = upload(t, d, "x norm", xw)
						xin = make([]float32, s.Hidden)
						qwen3.RMSNorm(xin, x, xw, testEps)
					}
					op := must[*QKVDecodeOp](t)(d.QKVNormRope(s, args))
					t.Cleanup(op.Release)
					if err := op.SetPos(c.pos); err != nil {
						t.Fatal(err)
					}
					if err := d.Submit(op.Op()); err != nil {
						t.Fatal(err)
					}

					row := make([]float32, s.QKVDim())
					qwen3.MatVec(row, w, xin, s.QKVDim(), s.Hidden)
					wq, wk, wv := refNormRope(s, row, f.qn, f.kn, f.rope, c.pos)
					checkClose(t, "qkv_norm_rope", readF32(t, d, q, s.QDim()), wq)
					checkCache(t, d, "qkv_norm_rope", "k", cache.K, s, ctx, oldK, wk)
					checkCache(t, d, "qkv_norm_rope", "v", cache.V, s, ctx, oldV, wv)
				})
			}
		}
	})
}

func TestQKVNormRopePrefill(t *testing.T) {
	cases := []struct {
		s         AttentionShape
		pos0, n   int
		maxT      int
		qkvScale  float32
		knScale   float32
		untouched int // cache rows past the written ones
	}{
		{AttentionShape{NHeads: 4, NKV: 1, HeadDim: 16}, 0, 1, 4, 1, 1, 3},
		{AttentionShape{NHeads: 4, NKV: 2, HeadDim: 32}, 5, 3, 3, 1, 1, 0},
		{AttentionShape{NHeads: 16, NKV: 8, HeadDim: 64}, 0, 77, 80, 1, 1, 3},
		{AttentionShape{NHeads: 4, NKV: 2, HeadDim: 128}, 33, 127, 127, 1e4, 90, 4},
		{AttentionShape{NHeads: 16, NKV: 8, HeadDim: 128}, 1, 1000, 1000, 1e4, 90, 1},
		// 2100·(16+16) = 67200 workgroups: past 65535, a 2-D grid.
		{AttentionShape{NHeads: 16, NKV: 8, HeadDim: 16}, 7, 2100, 2100, 1, 1, 1},
	}
	forEachBackend(t, "qkv_norm_rope", func(t *testing.T, d *Device) {
		for _, c := range cases {
			s := c.s
			t.Run(fmt.Sprintf("%dx%d_hd%d_pos%d_T%d", s.NHeads, s.NKV, s.HeadDim, c.pos0, c.n), func(t *testing.T) {
				r := newRand(t)
				ctx := c.pos0 + c.n + c.untouched
				f := newQKVFixture(t, d, r, s, ctx, c.knScale)
				qkv := randF32(r, c.n*s.QKVDim(), c.qkvScale)
				oldK := randF32(r, c.pos0*s.KVDim(), 90)
				oldV := randF32(r, c.pos0*s.KVDim(), 1)

				cache := newFilledCache(t, d, s, ctx, oldK, oldV)
				gqkv := upload(t, d, "qkv", append(qkv, randF32(r, (c.maxT-c.n)*s.QKVDim(), 1)...))
				q := poisoned(t, d, "q", c.maxT*s.QDim())
				op := must[*QKVPrefillOp](t)(d.QKVNormRopePrefill(s, QKVPrefillArgs{
					QKV: gqkv, QNorm: f.gQN, KNorm: f.gKN, Rope: f.gRope, Q: q, Cache: cache,
					MaxT: c.maxT, Eps: testEps,
				}))
				t.Cleanup(op.Release)
				if err := op.Set(c.pos0, c.n); err != nil {
					t.Fatal(err)
				}
				if err := d.Submit(op.Op()); err != nil {
					t.Fatal(err)
				}

				var wq, wk, wv []float32
				for i := 0; i < c.n; i++ {
					qi, ki, vi := refNormRope(s, qkv[i*s.QKVDim():(i+1)*s.QKVDim()], f.qn, f.kn, f.rope, c.pos0+i)
					wq = append(wq, qi...)
					wk = append(wk, ki...)
					wv = append(wv, vi...)
				}
				gq := readF32(t, d, q, c.maxT*s.QDim())
				checkClose(t, "qkv_norm_rope", gq[:len(wq)], wq)
				for i, g := range gq[len(wq):] {
					if g == g {
						t.Fatalf("q index %d past row %d: got %v, want NaN (untouched)", len(wq)+i, c.n, g)
					}
				}
				checkCache(t, d, "qkv_norm_rope", "k", cache.K, s, ctx, oldK, wk)
				checkCache(t, d, "qkv_norm_rope", "v", cache.V, s, ctx, oldV, wv)
			})
		}
	})
}

// TestQKVNormRopeRejects checks that bad shapes are Go errors, not
// silently clamped reads.
func TestQKVNormRopeRejects(t *testing.T) {
	d := openTestDevice(t, "")
	r := newRand(t)
	s := AttentionShape{Hidden: 64, NHeads: 4, NKV: 2, HeadDim: 16}
	f := newQKVFixture(t, d, r, s, 8, 1)
	cache := must[*KVCache](t)(d.NewKVCache("cache", 8, s.NKV, s.HeadDim))
	t.Cleanup(cache.Release)
	w := uploadMatrix(t, d, "w", BF16, s.QKVDim(), s.Hidden, randF32(r, s.QKVDim()*s.Hidden, 1))
	args := QKVDecodeArgs{
		X: poisoned(t, d, "x", s.Hidden), W: w, QNorm: f.gQN, KNorm: f.gKN, Rope: f.gRope,
		Q: poisoned(t, d, "q", s.QDim()), Cache: cache, Eps: testEps,
	}
	op := must[*QKVDecodeOp](t)(d.QKVNormRope(s, args))
	t.Cleanup(op.Release)
	if err := op.SetPos(8); err == nil {
		t.Error("SetPos(8) on an 8-row cache: no error")
	}
	bad := []struct {
		name string
		s    AttentionShape
		edit func(a *QKVDecodeArgs)
	}{
		{"heads not a multiple of kv heads", AttentionShape{Hidden: 64, NHeads: 3, NKV: 2, HeadDim: 16}, nil},
		{"odd head_dim", AttentionShape{Hidden: 64, NHeads: 4, NKV: 2, HeadDim: 18}, nil},
		{"short q", s, func(a *QKVDecodeArgs) { a.Q = poisoned(t, d, "q", s.QDim()-1) }},
		{"wrong matrix", AttentionShape{Hidden: 32, NHeads: 4, NKV: 2, HeadDim: 16}, nil},
		{"cache of other heads", AttentionShape{Hidden: 64, NHeads: 4, NKV: 4, HeadDim: 16}, nil},
		{"q aliasing x", s, func(a *QKVDecodeArgs) { a.Q = poisoned(t, d, "qx", s.Hidden); a.X = a.Q }},
	}
	for _, b := range bad {
		a := args
		if b.edit != nil {
			b.edit(&a)
		}
		if op, err := d.QKVNormRope(b.s, a); err == nil {
			op.Release()
			t.Errorf("%s: no error", b.name)
		} else {
			t.Logf("%s: %v", b.name, err)
		}
	}
}
