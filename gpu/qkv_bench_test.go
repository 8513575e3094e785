package gpu

import (
	"fmt"
	"testing"
)

// benchQKV prepares qkv_norm_rope decode for shape s with bf16 weights; a
// layout the device cannot run skips the benchmark.
func benchQKV(b *testing.B, d *Device, s AttentionShape) *QKVDecodeOp {
	b.Helper()
	const ctx = 64
	w := benchMatrix(b, d, BF16, s.QKVDim(), s.Hidden)
	cache := must[*KVCache](b)(d.NewKVCache("cache", ctx, s.NKV, s.HeadDim))
	b.Cleanup(cache.Release)
	half := ctx * s.HeadDim / 2
	rope := must[*RopeTables](b)(d.UploadRope("rope", s.HeadDim, ctx, make([]float32, half), make([]float32, half)))
	b.Cleanup(rope.Release)
	op, err := d.QKVNormRope(s, QKVDecodeArgs{
		X: benchBuffer(b, d, "x", s.Hidden), W: w,
		QNorm: benchBuffer(b, d, "q_norm", s.HeadDim), KNorm: benchBuffer(b, d, "k_norm", s.HeadDim),
		Rope: rope, Q: benchBuffer(b, d, "q", s.QDim()), Cache: cache, Eps: 1e-6,
	})
	if err != nil {
		b.Skip(err)
	}
	if err := op.SetPos(ctx - 1); err != nil {
		b.Fatal(err)
	}
	return op
}

// BenchmarkQKVNormRope times the fused decode stage; GB/s counts the bf16
// weights read.
func BenchmarkQKVNormRope(b *testing.B) {
	d := benchDevice(b)
	for _, c := range []struct {
		name string
		s    AttentionShape
	}{{"0.6B", benchQwen06B}, {"8B", benchQwen8B}} {
		b.Run(c.name, func(b *testing.B) {
			op := benchQKV(b, d, c.s)
			benchOps(b, d, float64(c.s.QKVDim()*c.s.Hidden*2), 0, op.Op())
		})
	}
}

// BenchmarkTuneQKVNormRope sweeps the threads per weight row and the
// workgroup size.
func BenchmarkTuneQKVNormRope(b *testing.B) {
	d := benchDevice(b)
	for _, wg := range []int{256, 512, 1024} {
		for _, tpr := range []int{16, 32, 64} {
			b.Run(fmt.Sprintf("0.6B/wg%d_tpr%d", wg, tpr), func(b *testing.B) {
				attnTune.qkvTPR, attnTune.qkvWG = tpr, wg
				defer func() { attnTune.qkvTPR, attnTune.qkvWG = 0, 0 }()
				op := benchQKV(b, d, benchQwen06B)
				benchOps(b, d, float64(benchQwen06B.QKVDim()*benchQwen06B.Hidden*2), 0, op.Op())
			})
		}
	}
}
