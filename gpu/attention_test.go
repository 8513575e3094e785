package gpu

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/qwgpu/qwgpu/qwen3"
)

// attnCase is one attention geometry with the magnitudes of its inputs.
type attnCase struct {
	s                    AttentionShape
	qScale, kScale, vMag float32
}

func (c attnCase) String() string {
	return fmt.Sprintf("%dx%d_hd%d", c.s.NHeads, c.s.NKV, c.s.HeadDim)
}

// attnInputs returns random queries [rows, QDim] and cache rows [n, KVDim].
func attnInputs(r *rand.Rand, c attnCase, rows, n int) (q, k, v []float32) {
	return randF32(r, rows*c.s.QDim(), c.qScale), randF32(r, n*c.s.KVDim(), c.kScale), randF32(r, n*c.s.KVDim(), c.vMag)
}

func TestAttentionDecode(t *testing.T) {
	cases := []struct {
		attnCase
		n int
	}{
		{attnCase{AttentionShape{NHeads: 4, NKV: 1, HeadDim: 16}, 1, 1, 1}, 1},
		{attnCase{AttentionShape{NHeads: 4, NKV: 2, HeadDim: 32}, 1, 1, 1}, 3},
		{attnCase{AttentionShape{NHeads: 16, NKV: 8, HeadDim: 64}, 1, 1, 1}, 77},
		{attnCase{AttentionShape{NHeads: 4, NKV: 2, HeadDim: 128}, 1, 1, 1}, 127},
		// k_norm weights near 90 (scores of hundreds) and values of 1e4.
		{attnCase{AttentionShape{NHeads: 16, NKV: 8, HeadDim: 128}, 2, 90, 1e4}, 1000},
		{attnCase{AttentionShape{NHeads: 4, NKV: 1, HeadDim: 64}, 2, 90, 1e4}, 4096},
		{attnCase{AttentionShape{NHeads: 4, NKV: 2, HeadDim: 256}, 2, 90, 1e4}, 300}, // the largest head_dim
	}
	forEachBackend(t, "attention", func(t *testing.T, d *Device) {
		for _, c := range cases {
			s := c.s
			t.Run(fmt.Sprintf("%v_n%d", c.attnCase, c.n), func(t *testing.T) {
				r := newRand(t)
				ctx := c.n + 5 // rows past n are NaN: reading one fails the test
				q, k, v := attnInputs(r, c.attnCase, 1, c.n)
				want := make([]float32, s.QDim())
				qwen3.Attention(want, q, k, v, c.n, s.NHeads, s.NKV, s.HeadDim)

				cache := newFilledCache(t, d, s, ctx, k, v)
				out := poisoned(t, d, "out", s.QDim())
				op := must[*AttentionDecodeOp](t)(d.AttentionDecode(s, AttentionDecodeArgs{Q: upload(t, d, "q", q), Cache: cache, Out: out}))
				t.Cleanup(op.Release)
				if err := op.SetLen(c.n); err != nil {
					t.Fatal(err)
				}
				if err := d.Submit(op.Ops()...); err != nil {
					t.Fatal(err)
				}
				checkClose(t, "attention", readF32(t, d, out, s.QDim()), want)
			})
		}
	})
}

// TestAttentionDecodeGrowing runs one prepared op at every length of a
// sequence that crosses several chunk boundaries, as a decode loop does.
func TestAttentionDecodeGrowing(t *testing.T) {
	c := attnCase{AttentionShape{NHeads: 4, NKV: 2, HeadDim: 32}, 2, 10, 3}
	s := c.s
	forEachBackend(t, "attention", func(t *testing.T, d *Device) {
		ch := attnDecodeChunk(d, s.HeadDim)
		ctx := 3*ch + 2
		r := newRand(t)
		q, k, v := attnInputs(r, c, 1, ctx)
		cache := newFilledCache(t, d, s, ctx, k, v)
		out := poisoned(t, d, "out", s.QDim())
		op := must[*AttentionDecodeOp](t)(d.AttentionDecode(s, AttentionDecodeArgs{Q: upload(t, d, "q", q), Cache: cache, Out: out}))
		t.Cleanup(op.Release)
		want := make([]float32, s.QDim())
		for _, n := range []int{1, 2, ch - 1, ch, ch + 1, 2*ch + 7, ctx} {
			if err := op.SetLen(n); err != nil {
				t.Fatal(err)
			}
			if err := d.Submit(op.Ops()...); err != nil {
				t.Fatal(err)
			}
			qwen3.Attention(want, q, k, v, n, s.NHeads, s.NKV, s.HeadDim)
			t.Run(fmt.Sprint("n", n), func(t *testing.T) {
				checkClose(t, "attention", readF32(t, d, out, s.QDim()), want)
			})
		}
		if err := op.SetLen(ctx + 1); err == nil {
			t.Errorf("SetLen(%d) on a %d-row cache: no error", ctx+1, ctx)
		}
	})
}

// TestAttentionDecodeSharedScratch runs two layers' decode attention with
// one scratch buffer in one pass: the second layer's partials must not
// overwrite the first's before its combine step has read them.
func TestAttentionDecodeSharedScratch(t *testing.T) {
	c := attnCase{AttentionShape{NHeads: 16, NKV: 8, HeadDim: 64}, 2, 20, 5}
	s := c.s
	const n = 300
	forEachBackend(t, "attention", func(t *testing.T, d *Device) {
		r := newRand(t)
		scratch := must[*Buffer](t)(d.NewBuffer("scratch", d.AttentionDecodeScratchBytes(s, n)))
		t.Cleanup(scratch.Release)
		rec := d.NewRecorder()
		var wants, outs [][]float32
		var reads []*Readback
		for layer := range 2 {
			q, k, v := attnInputs(r, c, 1, n)
			want := make([]float32, s.QDim())
			qwen3.Attention(want, q, k, v, n, s.NHeads, s.NKV, s.HeadDim)
			wants = append(wants, want)
			out := poisoned(t, d, fmt.Sprint("out", layer), s.QDim())
			op := must[*AttentionDecodeOp](t)(d.AttentionDecode(s, AttentionDecodeArgs{
				Q: upload(t, d, "q", q), Cache: newFilledCache(t, d, s, n, k, v), Out: out, Scratch: scratch,
			}))
			t.Cleanup(op.Release)
			if err := op.SetLen(n); err != nil {
				t.Fatal(err)
			}
			rec.Run(op.Ops()...)
			reads = append(reads, rec.ReadF32(out, 0, s.QDim()))
		}
		if err := rec.Submit(); err != nil {
			t.Fatal(err)
		}
		for _, rb := range reads {
			outs = append(outs, rb.F32())
		}
		for layer := range outs {
			t.Run(fmt.Sprint("layer", layer), func(t *testing.T) {
				checkClose(t, "attention", outs[layer], wants[layer])
			})
		}
	})
}

// refPrefill computes causal attention for t query rows at positions
// pos0.. with the CPU reference, one row at a time.
func refPrefill(s AttentionShape, q, k, v []float32, pos0, t int) []float32 {
	out := make([]float32, t*s.QDim())
	for i := 0; i < t; i++ {
		n := pos0 + i + 1
		qwen3.Attention(out[i*s.QDim():(i+1)*s.QDim()], q[i*s.QDim():(i+1)*s.QDim()], k[:n*s.KVDim()], v[:n*s.KVDim()], n, s.NHeads, s.NKV, s.HeadDim)
	}
	return out
}

func TestAttentionPrefill(t *testing.T) {
	cases := []struct {
		attnCase
		pos0, t, maxT int
	}{
		{attnCase{AttentionShape{NHeads: 4, NKV: 1, HeadDim: 16}, 1, 1, 1}, 0, 1, 1},
		{attnCase{AttentionShape{NHeads: 4, NKV: 2, HeadDim: 32}, 1, 1, 1}, 5, 3, 4},
		{attnCase{AttentionShape{NHeads: 16, NKV: 8, HeadDim: 64}, 1, 1, 1}, 0, 77, 77},
		{attnCase{AttentionShape{NHeads: 4, NKV: 2, HeadDim: 128}, 2, 90, 1e4}, 33, 127, 130},
		{attnCase{AttentionShape{NHeads: 16, NKV: 8, HeadDim: 128}, 2, 90, 1e4}, 3, 77, 77},
		{attnCase{AttentionShape{NHeads: 4, NKV: 1, HeadDim: 32}, 2, 90, 1e4}, 0, 1000, 1000},
		{attnCase{AttentionShape{NHeads: 4, NKV: 4, HeadDim: 16}, 1, 1, 1}, 1000, 127, 127}, // no GQA, long history
		{attnCase{AttentionShape{NHeads: 4, NKV: 2, HeadDim: 256}, 2, 90, 1e4}, 3, 20, 20},  // the largest head_dim
	}
	forEachBackend(t, "attention", func(t *testing.T, d *Device) {
		for _, c := range cases {
			s := c.s
			t.Run(fmt.Sprintf("%v_pos%d_T%d", c.attnCase, c.pos0, c.t), func(t *testing.T) {
				r := newRand(t)
				n := c.pos0 + c.t
				ctx := n + 3
				q, k, v := attnInputs(r, c.attnCase, c.t, n)
				want := refPrefill(s, q, k, v, c.pos0, c.t)

				cache := newFilledCache(t, d, s, ctx, k, v)
				out := poisoned(t, d, "out", c.maxT*s.QDim())
				gq := upload(t, d, "q", append(q, randF32(r, (c.maxT-c.t)*s.QDim(), 1)...))
				op := must[*AttentionPrefillOp](t)(d.AttentionPrefill(s, AttentionPrefillArgs{Q: gq, Cache: cache, Out: out, MaxT: c.maxT}))
				t.Cleanup(op.Release)
				if err := op.Set(c.pos0, c.t); err != nil {
					t.Fatal(err)
				}
				if err := d.Submit(op.Op()); err != nil {
					t.Fatal(err)
				}
				got := readF32(t, d, out, c.maxT*s.QDim())
				checkClose(t, "attention", got[:len(want)], want)
				for i, g := range got[len(want):] {
					if g == g {
						t.Fatalf("index %d past row %d: got %v, want NaN (untouched)", len(want)+i, c.t, g)
					}
				}
			})
		}
	})
}

// TestAttentionPrefillThenDecode runs a layer's attention half the way the
// model does: qkv_norm_rope prefill and prefill attention over a prompt,
// then qkv_norm_rope and decode attention for each further token, in one
// pass per step. The attention output at every position must match the CPU
// composition of MatVec, RMSNorm, Rope and Attention.
func TestAttentionPrefillThenDecode(t *testing.T) {
	s := AttentionShape{Hidden: 96, NHeads: 4, NKV: 2, HeadDim: 32}
	const prompt, steps = 37, 40 // the decode steps cross a chunk boundary
	const ctx = prompt + steps
	forEachBackend(t, "attention", func(t *testing.T, d *Device) {
		r := newRand(t)
		f := newQKVFixture(t, d, r, s, ctx, 20)
		w := roundTo(BF16, randF32(r, s.QKVDim()*s.Hidden, 0.2))
		x := randF32(r, ctx*s.Hidden, 3) // the layer inputs of every position

		// The CPU side: projections, norms, RoPE, then attention per position.
		qs := make([]float32, ctx*s.QDim())
		ks := make([]float32, ctx*s.KVDim())
		vs := make([]float32, ctx*s.KVDim())
		rows := make([]float32, ctx*s.QKVDim())
		qwen3.MatMul(rows, x, w, ctx, s.QKVDim(), s.Hidden)
		for p := 0; p < ctx; p++ {
			qp, kp, vp := refNormRope(s, rows[p*s.QKVDim():(p+1)*s.QKVDim()], f.qn, f.kn, f.rope, p)
			copy(qs[p*s.QDim():], qp)
			copy(ks[p*s.KVDim():], kp)
			copy(vs[p*s.KVDim():], vp)
		}
		want := refPrefill(s, qs, ks, vs, 0, ctx)

		cache := newFilledCache(t, d, s, ctx, nil, nil)
		// Prefill: the projected rows come from a matmul in the model.
		gRows := upload(t, d, "qkv", rows[:prompt*s.QKVDim()])
		gQ := poisoned(t, d, "q", prompt*s.QDim())
		gOut := poisoned(t, d, "out", prompt*s.QDim())
		qkvP := must[*QKVPrefillOp](t)(d.QKVNormRopePrefill(s, QKVPrefillArgs{
			QKV: gRows, QNorm: f.gQN, KNorm: f.gKN, Rope: f.gRope, Q: gQ, Cache: cache, MaxT: prompt, Eps: testEps,
		}))
		t.Cleanup(qkvP.Release)
		attP := must[*AttentionPrefillOp](t)(d.AttentionPrefill(s, AttentionPrefillArgs{Q: gQ, Cache: cache, Out: gOut, MaxT: prompt}))
		t.Cleanup(attP.Release)
		if err := qkvP.Set(0, prompt); err != nil {
			t.Fatal(err)
		}
		if err := attP.Set(0, prompt); err != nil {
			t.Fatal(err)
		}
		if err := d.Submit(qkvP.Op(), attP.Op()); err != nil {
			t.Fatal(err)
		}
		t.Run("prefill", func(t *testing.T) {
			checkClose(t, "attention", readF32(t, d, gOut, prompt*s.QDim()), want[:prompt*s.QDim()])
		})

		// Decode: one step per token, each in one pass.
		gx := poisoned(t, d, "x", s.Hidden)
		gw := uploadMatrix(t, d, "w_qkv", BF16, s.QKVDim(), s.Hidden, w)
		gq1 := poisoned(t, d, "q1", s.QDim())
		gOut1 := poisoned(t, d, "out1", s.QDim())
		qkvD := must[*QKVDecodeOp](t)(d.QKVNormRope(s, QKVDecodeArgs{
			X: gx, W: gw, QNorm: f.gQN, KNorm: f.gKN, Rope: f.gRope, Q: gq1, Cache: cache, Eps: testEps,
		}))
		t.Cleanup(qkvD.Release)
		attD := must[*AttentionDecodeOp](t)(d.AttentionDecode(s, AttentionDecodeArgs{Q: gq1, Cache: cache, Out: gOut1}))
		t.Cleanup(attD.Release)
		for p := prompt; p < ctx; p++ {
			if err := d.WriteF32(gx, 0, x[p*s.Hidden:(p+1)*s.Hidden]); err != nil {
				t.Fatal(err)
			}
			if err := qkvD.SetPos(p); err != nil {
				t.Fatal(err)
			}
			if err := attD.SetLen(p + 1); err != nil {
				t.Fatal(err)
			}
			rec := d.NewRecorder()
			rec.Run(qkvD.Op())
			rec.Run(attD.Ops()...)
			out := rec.ReadF32(gOut1, 0, s.QDim())
			if err := rec.Submit(); err != nil {
				t.Fatal(err)
			}
			t.Run(fmt.Sprint("pos", p), func(t *testing.T) {
				checkClose(t, "attention", out.F32(), want[p*s.QDim():(p+1)*s.QDim()])
			})
		}
	})
}

// TestAttentionRejects checks that bad shapes and lengths are Go errors.
func TestAttentionRejects(t *testing.T) {
	d := openTestDevice(t, "")
	s := AttentionShape{NHeads: 4, NKV: 2, HeadDim: 16}
	cache := must[*KVCache](t)(d.NewKVCache("cache", 8, s.NKV, s.HeadDim))
	t.Cleanup(cache.Release)
	q := poisoned(t, d, "q", s.QDim())
	if _, err := d.AttentionDecode(AttentionShape{NHeads: 4, NKV: 4, HeadDim: 16}, AttentionDecodeArgs{Q: q, Cache: cache, Out: q}); err == nil {
		t.Error("cache of other heads: no error")
	}
	if _, err := d.AttentionDecode(s, AttentionDecodeArgs{Q: q, Cache: cache, Out: poisoned(t, d, "short", s.QDim()-4)}); err == nil {
		t.Error("short output: no error")
	}
	if _, err := d.AttentionDecode(s, AttentionDecodeArgs{Q: q, Cache: cache, Out: q}); err == nil {
		t.Error("output aliasing q: no error")
	}
	if _, err := d.AttentionPrefill(s, AttentionPrefillArgs{Q: q, Cache: cache, Out: q, MaxT: 2}); err == nil {
		t.Error("q of one row for MaxT 2: no error")
	}
	op := must[*AttentionPrefillOp](t)(d.AttentionPrefill(s, AttentionPrefillArgs{Q: q, Cache: cache, Out: poisoned(t, d, "out", s.QDim()), MaxT: 1}))
	t.Cleanup(op.Release)
	for _, pt := range [][2]int{{0, 0}, {0, 2}, {8, 1}, {-1, 1}} {
		if err := op.Set(pt[0], pt[1]); err == nil {
			t.Errorf("Set(%d, %d): no error", pt[0], pt[1])
		}
	}
}
