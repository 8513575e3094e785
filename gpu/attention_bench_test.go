package gpu

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// Qwen3 attention shapes for the benchmarks.
var (
	benchQwen06B = AttentionShape{Hidden: 1024, NHeads: 16, NKV: 8, HeadDim: 128}
	benchQwen8B  = AttentionShape{Hidden: 4096, NHeads: 32, NKV: 8, HeadDim: 128}
)

// benchAttnDecode prepares decode attention over n filled cache rows.
func benchAttnDecode(b *testing.B, d *Device, s AttentionShape, n int) *AttentionDecodeOp {
	b.Helper()
	r := rand.New(rand.NewPCG(1, 2))
	cache := must[*KVCache](b)(d.NewKVCache("cache", n, s.NKV, s.HeadDim))
	b.Cleanup(cache.Release)
	if err := d.WriteF32(cache.K, 0, randF32(r, n*s.KVDim(), 10)); err != nil {
		b.Fatal(err)
	}
	if err := d.WriteF32(cache.V, 0, randF32(r, n*s.KVDim(), 1)); err != nil {
		b.Fatal(err)
	}
	q := upload(b, d, "q", randF32(r, s.QDim(), 1))
	out := benchBuffer(b, d, "out", s.QDim())
	op := must[*AttentionDecodeOp](b)(d.AttentionDecode(s, AttentionDecodeArgs{Q: q, Cache: cache, Out: out}))
	if err := op.SetLen(n); err != nil {
		b.Fatal(err)
	}
	return op
}

// BenchmarkAttentionDecode times decode attention (both dispatches) at
// contexts 512 and 4096; GB/s counts the K and V rows read.
func BenchmarkAttentionDecode(b *testing.B) {
	d := benchDevice(b)
	for _, c := range []struct {
		name string
		s    AttentionShape
		n    int
	}{{"0.6B/ctx512", benchQwen06B, 512}, {"0.6B/ctx4096", benchQwen06B, 4096}, {"8B/ctx4096", benchQwen8B, 4096}} {
		b.Run(c.name, func(b *testing.B) {
			op := benchAttnDecode(b, d, c.s, c.n)
			benchOps(b, d, float64(2*c.n*c.s.KVDim()*4), 0, op.Ops()...)
		})
	}
}

// BenchmarkTuneAttentionDecode sweeps the rows per decode workgroup.
func BenchmarkTuneAttentionDecode(b *testing.B) {
	d := benchDevice(b)
	for _, n := range []int{512, 1024, 2048, 4096} {
		for _, ch := range []int{32, 64, 128, 256} {
			b.Run(fmt.Sprintf("ctx%d/chunk%d", n, ch), func(b *testing.B) {
				attnTune.decodeChunk = ch
				defer func() { attnTune.decodeChunk = 0 }()
				op := benchAttnDecode(b, d, benchQwen06B, n)
				benchOps(b, d, float64(2*n*benchQwen06B.KVDim()*4), 0, op.Ops()...)
			})
		}
	}
}

// benchAttnPrefill prepares prefill attention for t tokens at position 0.
func benchAttnPrefill(b *testing.B, d *Device, s AttentionShape, t int) *Op {
	b.Helper()
	r := rand.New(rand.NewPCG(3, 4))
	cache := must[*KVCache](b)(d.NewKVCache("cache", t, s.NKV, s.HeadDim))
	b.Cleanup(cache.Release)
	if err := d.WriteF32(cache.K, 0, randF32(r, t*s.KVDim(), 10)); err != nil {
		b.Fatal(err)
	}
	if err := d.WriteF32(cache.V, 0, randF32(r, t*s.KVDim(), 1)); err != nil {
		b.Fatal(err)
	}
	q := upload(b, d, "q", randF32(r, t*s.QDim(), 1))
	out := benchBuffer(b, d, "out", t*s.QDim())
	op := must[*AttentionPrefillOp](b)(d.AttentionPrefill(s, AttentionPrefillArgs{Q: q, Cache: cache, Out: out, MaxT: t}))
	if err := op.Set(0, t); err != nil {
		b.Fatal(err)
	}
	return op.Op()
}

// prefillFlops counts the multiply-adds of causal attention over t tokens:
// QKᵀ and PV, each 2·HeadDim flops per (query head, visible key) pair.
func prefillFlops(s AttentionShape, t int) float64 {
	return 4 * float64(s.HeadDim) * float64(s.NHeads) * float64(t) * float64(t+1) / 2
}

// BenchmarkAttentionPrefill times causal prefill attention over 512 tokens.
func BenchmarkAttentionPrefill(b *testing.B) {
	d := benchDevice(b)
	for _, t := range []int{128, 512} {
		b.Run(fmt.Sprintf("0.6B/T%d", t), func(b *testing.B) {
			benchOps(b, d, 0, prefillFlops(benchQwen06B, t), benchAttnPrefill(b, d, benchQwen06B, t))
		})
	}
}

// BenchmarkTuneAttentionPrefill sweeps the prefill tiles.
func BenchmarkTuneAttentionPrefill(b *testing.B) {
	d := benchDevice(b)
	const t = 512
	for _, tl := range []prefillTiles{{16, 16, 32}, {16, 16, 16}, {8, 16, 32}, {32, 8, 16}, {16, 8, 16}, {4, 8, 8}} {
		b.Run(fmt.Sprintf("bq%d_lanes%d_bk%d", tl.bq, tl.lanes, tl.bk), func(b *testing.B) {
			attnTune.prefill = tl
			defer func() { attnTune.prefill = prefillTiles{} }()
			benchOps(b, d, 0, prefillFlops(benchQwen06B, t), benchAttnPrefill(b, d, benchQwen06B, t))
		})
	}
}
