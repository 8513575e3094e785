package kernels

import (
	"encoding/binary"
	"math"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/qwgpu/qwgpu/gpu"
	"github.com/qwgpu/qwgpu/weights"
	"github.com/qwgpu/qwgpu/wgsl"
)

// paramsStructs maps each shader to the Go struct that mirrors its Params
// (attention_combine has none: it reads only the step uniform).
var paramsStructs = map[string]any{
	"rmsnorm":           rmsnormParams{},
	"matvec":            matvecParams{},
	"matmul":            matmulParams{},
	"embedding":         embeddingParams{},
	"argmax":            argmaxParams{},
	"topk":              topkParams{},
	"copy":              copyParams{},
	"qkv_norm_rope":     qkvParams{},
	"attention_decode":  attnParams{},
	"attention_prefill": attnParams{},
}

var wgslField = regexp.MustCompile(`(?m)^\s*(\w+)\s*:\s*(u32|i32|f32)\s*,?\s*$`)

// Every params struct matches its shader: a multiple of 16 bytes, no Go
// padding (every field 4 bytes), and as many fields as the WGSL struct.
func TestParamsLayout(t *testing.T) {
	for _, name := range wgsl.Names() {
		params, ok := paramsStructs[name]
		src, err := wgsl.Source(name)
		if err != nil {
			t.Fatal(err)
		}
		start := strings.Index(src, "struct Params {")
		if !ok {
			if start >= 0 {
				t.Errorf("%s.wgsl declares Params but has no entry in paramsStructs", name)
			}
			continue
		}
		t.Run(name, func(t *testing.T) {
			size := binary.Size(params)
			if size <= 0 || size%16 != 0 {
				t.Errorf("%T is %d bytes, want a positive multiple of 16", params, size)
			}
			if goSize := int(reflect.TypeOf(params).Size()); goSize != size {
				t.Errorf("%T: Go lays it out in %d bytes, encoding/binary in %d: a field is not 4 bytes", params, goSize, size)
			}
			if start < 0 {
				t.Fatalf("%s.wgsl has no struct Params", name)
			}
			body := src[start : start+strings.Index(src[start:], "}")]
			if fields := wgslField.FindAllString(body, -1); 4*len(fields) != size {
				t.Errorf("WGSL Params has %d scalar fields (%d bytes), Go %T has %d bytes", len(fields), 4*len(fields), params, size)
			}
			if _, err := gpu.ParamsBytes(params); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestParseTune(t *testing.T) {
	defer func() { tune = tuneKnobs{} }()
	if err := parseTune("matmul=128x64-8x8,bk=32,prefill=8x8x16,chunk=64,matvec_tpr=16,attn_qreg=1"); err != nil {
		t.Fatal(err)
	}
	want := tuneKnobs{matmulTile: matmulTile{128, 64, 8, 8}, matmulBK: 32, prefillTiles: prefillTiles{8, 8, 16}, decodeChunk: 64, matvecTPR: 16, decodeQReg: 1}
	if tune != want {
		t.Fatalf("got %+v, want %+v", tune, want)
	}
	for _, bad := range []string{"matmul=64x64", "nope=1", "bk", "chunk=x", "matvec_wide=1", "matvec_xstage=1"} {
		if err := parseTune(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// The float matvec reads x through the caches, one token or a batch (its
// staging in workgroup memory was removed after run 20).
func TestMatVecReadsX(t *testing.T) {
	for _, batch := range []int{1, 16} {
		v, err := matvecVars(weights.BF16, SwiGLU, true, batch, 1024, 3072, 4096)
		require.NoError(t, err)
		src, err := gpu.Render("matvec", v)
		require.NoError(t, err)
		require.Contains(t, src, "let xa = x[b * xrow + 2u * j] * na;")
		require.NotContains(t, src, "xs[")
	}
}

// The matvec's measured layout defaults (run 16 on the H200): one token of
// 16-byte half loads takes 32 threads a row on matrices of 4,096 rows or
// more and 64 below (or in a batch); one-token Q5_K quads take 128-thread
// workgroups, batched Q4_K ones 256.
func TestMatVecLayoutDefaults(t *testing.T) {
	saved := tune
	defer func() { tune = saved }()
	tune = tuneKnobs{}
	for _, c := range []struct {
		dt                     weights.DType
		batch, cols, rows, tpr int
		wg                     int
	}{
		{weights.BF16, 1, 4096, 12288, 32, 256}, // 8B gate_up
		{weights.BF16, 1, 12288, 4096, 32, 256}, // 8B down
		{weights.BF16, 1, 3072, 1024, 64, 256},  // 0.6B down
		{weights.BF16, 16, 4096, 12288, 64, 256},
		{weights.Q5_K, 1, 4096, 12288, 64, 128},
		{weights.Q4_K, 4, 4096, 12288, 64, 256},
	} {
		v, err := matvecVars(c.dt, Store, false, c.batch, c.cols, c.rows, 4096)
		require.NoError(t, err)
		require.Equal(t, []int{c.tpr, c.wg}, []int{v.TPR, v.WG}, "%v B=%d cols=%d rows=%d", c.dt, c.batch, c.cols, c.rows)
	}
	tune.matvecTPR, tune.matvecWG = 64, 256
	v, err := matvecVars(weights.BF16, Store, false, 1, 4096, 12288, 4096)
	require.NoError(t, err)
	require.Equal(t, []int{64, 256}, []int{v.TPR, v.WG}, "QWGPU_TUNE overrides")
}

// The x-in-registers layout's defaults (run 18 on the H200): one token of
// Q4_K rows of 2,048 values or more takes it with 4 rows a workgroup and
// the quants summed unscaled, 128 threads where rows have 128 units of 32
// values or more, fewer on shorter rows or where GL's reduction arrays
// need it, and its normalising matvecs read x from a standalone rmsnorm;
// shorter rows, the other block types, and batches keep their layouts and
// the fused norm up to 8 rows; QWGPU_TUNE turns it off and on.
func TestMatVecXRegDefaults(t *testing.T) {
	saved := tune
	defer func() { tune = saved }()
	tune = tuneKnobs{}
	for _, c := range []struct {
		epi                 Epilogue
		cols, redCap, r, wg int
	}{
		{SwiGLU, 4096, 4096, 4, 128}, // 8B gate_up: 128 units a row
		{Store, 12288, 4096, 4, 128}, // 8B down: 384
		{Store, 3072, 4096, 4, 128},  // 0.6B down: 96 units, 128 threads
		{Store, 2048, 4096, 4, 64},   // 1.7B gate_up: 64 units, 64 threads
		{SwiGLU, 4096, 256, 4, 32},   // GL: 4 rows · 2 arrays · 32 threads = 256 floats
	} {
		v, err := matvecVars(weights.Q4_K, c.epi, true, 1, c.cols, 12288, c.redCap)
		require.NoError(t, err)
		require.True(t, v.XReg && v.XFold, "Q4_K cols=%d: XReg %v XFold %v", c.cols, v.XReg, v.XFold)
		require.Equal(t, []int{c.r, c.wg, 4}, []int{v.Rows, v.WG, v.XG}, "Q4_K %s cols=%d redCap=%d", c.epi, c.cols, c.redCap)
	}
	for _, dt := range []weights.DType{weights.Q8_0, weights.Q5_K, weights.Q6_K, weights.Q4_0} {
		v, err := matvecVars(dt, Store, true, 1, 4096, 4096, 4096)
		require.NoError(t, err)
		require.False(t, v.XReg, "%v one token", dt)
	}
	v, err := matvecVars(weights.Q4_K, Store, true, 2, 4096, 4096, 4096)
	require.NoError(t, err)
	require.False(t, v.XReg, "Q4_K two tokens")
	v, err = matvecVars(weights.Q4_K, SwiGLU, true, 1, 1024, 3072, 4096)
	require.NoError(t, err)
	require.False(t, v.XReg, "Q4_K rows of 1,024 values (0.6B's gate_up)")
	require.True(t, MatVecFusedNorm(weights.Q4_K, 1024, 1), "Q4_K rows of 1,024 values: fused norm")

	require.False(t, MatVecFusedNorm(weights.Q4_K, 4096, 1), "Q4_K one token: standalone norm")
	for _, dt := range []weights.DType{weights.BF16, weights.Q8_0, weights.Q6_K} {
		require.True(t, MatVecFusedNorm(dt, 4096, 1), "%v one token: fused norm", dt)
	}
	require.True(t, MatVecFusedNorm(weights.Q4_K, 4096, 8))
	require.False(t, MatVecFusedNorm(weights.Q4_K, 4096, 9))
	require.False(t, MatVecFusedNorm(weights.BF16, 4096, 16))

	tune.matvecXReg, tune.matvecXFold = -1, 0
	v, err = matvecVars(weights.Q4_K, Store, true, 1, 4096, 4096, 4096)
	require.NoError(t, err)
	require.False(t, v.XReg, "matvec_xreg=-1")
	require.True(t, MatVecFusedNorm(weights.Q4_K, 4096, 1), "matvec_xreg=-1: the fused norm again")
	tune.matvecXReg, tune.matvecXFold = 8, -1
	v, err = matvecVars(weights.Q8_0, Store, true, 1, 4096, 4096, 4096)
	require.NoError(t, err)
	require.True(t, v.XReg && v.Rows == 8, "matvec_xreg=8 on Q8_0")
	v, err = matvecVars(weights.Q4_K, Store, true, 1, 4096, 4096, 4096)
	require.NoError(t, err)
	require.True(t, v.XReg && !v.XFold && v.Rows == 8, "matvec_xfold=-1")
	tune.matvecXReg, tune.matvecNorm = 0, 4
	require.True(t, MatVecFusedNorm(weights.Q4_K, 4096, 1), "matvec_norm sets the line for every type")

	// matvec_minrows and matvec_mincols keep the override to large
	// dispatches (the LM head), the rest in their defaults.
	tune = tuneKnobs{matvecXReg: 2, matvecMinRows: 100000, matvecMinCols: 1024}
	for _, c := range []struct {
		dt         weights.DType
		cols, rows int
		xreg       bool
		r          int
	}{
		{weights.Q8_0, 1024, 151936, true, 2},
		{weights.Q8_0, 1024, 99999, false, 0}, // too few rows: the default chunks
		{weights.Q8_0, 512, 151936, false, 0}, // too short
		{weights.Q4_K, 4096, 12288, true, 4},  // Q4_K's own default XReg
	} {
		v, err := matvecVars(c.dt, Store, false, 1, c.cols, c.rows, 4096)
		require.NoError(t, err)
		require.Equal(t, c.xreg, v.XReg, "%v %dx%d XReg", c.dt, c.rows, c.cols)
		if c.xreg {
			require.Equal(t, c.r, v.Rows, "%v %dx%d rows a workgroup", c.dt, c.rows, c.cols)
		}
	}
}

// The Add epilogue loads its residual at the kernel's start (PreAdd) where
// each thread writes at most one output: XReg, and Red1 in one round of
// at most TPR partials; not with the tree, nor where a round has more
// outputs than threads, nor for the other epilogues.
func TestMatVecPreAdd(t *testing.T) {
	saved := tune
	defer func() { tune = saved }()
	tune = tuneKnobs{}
	for _, c := range []struct {
		dt                  weights.DType
		epi                 Epilogue
		batch, cols, redCap int
		red1, pre           bool
	}{
		{weights.BF16, Add, 1, 2048, 4096, true, true},
		{weights.Q8_0, Add, 1, 3072, 4096, true, true},
		{weights.Q4_K, Add, 1, 12288, 4096, true, true}, // XReg
		{weights.BF16, Add, 16, 1024, 4096, true, true}, // 16 tokens, R = 2: 32 partials ≤ 64 lanes
		{weights.BF16, Add, 1, 2048, 256, false, false}, // GL: the tree
		{weights.BF16, Store, 1, 2048, 4096, true, false},
		{weights.BF16, SwiGLU, 1, 2048, 4096, true, false},
	} {
		v, err := matvecVars(c.dt, c.epi, false, c.batch, c.cols, 1024, c.redCap)
		require.NoError(t, err)
		require.Equal(t, c.red1, v.Red1, "%v %s B=%d redCap=%d: Red1", c.dt, c.epi, c.batch, c.redCap)
		require.Equal(t, c.pre, v.PreAdd, "%v %s B=%d cols=%d redCap=%d (R %d, TPR %d, RC %d, rounds %v)", c.dt, c.epi, c.batch, c.cols, c.redCap, v.R, v.TPR, v.RC, v.Rounds)
		src, err := gpu.Render("matvec", v)
		require.NoError(t, err)
		require.Equal(t, c.pre, strings.Contains(src, "= resid + y"), "%v %s B=%d: the residual's add", c.dt, c.epi, c.batch)
		if c.pre {
			require.Equal(t, 1, strings.Count(src, "emit("), "emit defined, not called: no late load")
		}
	}
	tune.matvecTPR, tune.matvecR = 4, 2 // 16 tokens · 2 rows = 32 partials over 4 lanes: rounds of more outputs than threads
	v, err := matvecVars(weights.BF16, Add, false, 16, 1024, 1024, 4096)
	require.NoError(t, err)
	require.False(t, v.PreAdd, "R %d, TPR %d, RC %d, rounds %v", v.R, v.TPR, v.RC, v.Rounds)
}

// Q4_K's device layout (packQ4K) holds every value of the file's block:
// decoded from the packed bytes as lib_quant.wgsl reads them (d and dmin
// f32 at words 0-1 and 4-5, group g's sc, m bytes in word 2 + (g & 1) of
// header g / 2, quants from byte 32), each equals the CPU reference's
// decoding of the file block bit for bit, for random blocks with negative
// and subnormal d and dmin.
func TestPackQ4K(t *testing.T) {
	r := newRand(t)
	const n = 64
	raw := randBlocks(r, weights.Q4_K, n)
	binary.LittleEndian.PutUint16(raw[144+2:], 0x0007) // a subnormal dmin
	want := must[[]float32](t)((&weights.Tensor{Name: "w", DType: weights.Q4_K, Shape: []int{n, 256}, Raw: raw}).Float32())
	packed := PackBlocks(weights.Q4_K, raw)
	require.Len(t, packed, n*gpuBlockBytes(weights.Q4_K))
	require.Equal(t, 160, gpuBlockBytes(weights.Q4_K))
	f32 := func(b []byte) float32 { return math.Float32frombits(binary.LittleEndian.Uint32(b)) }
	for b := range n {
		blk := packed[160*b : 160*(b+1)]
		for i := range 256 {
			unit, l := i/32, i%32
			g := unit / 2
			h := blk[16*(g/2):]
			sc := float32(h[8+4*(g%2)+2*(unit%2)])
			m := float32(h[8+4*(g%2)+2*(unit%2)+1])
			q := blk[32+32*g+l]
			if unit%2 == 1 {
				q >>= 4
			}
			got := f32(h)*sc*float32(q&0xf) - f32(h[4:])*m
			if math.Float32bits(got) != math.Float32bits(want[256*b+i]) {
				t.Fatalf("block %d value %d: packed gives %g, the reference %g", b, i, got, want[256*b+i])
			}
		}
	}
}
