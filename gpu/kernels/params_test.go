package kernels

import (
	"encoding/binary"
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
	if err := parseTune("matmul=128x64-8x8,bk=32,prefill=8x8x16,chunk=64,matvec_tpr=16,matvec_qfold=1"); err != nil {
		t.Fatal(err)
	}
	want := tuneKnobs{matmulTile: matmulTile{128, 64, 8, 8}, matmulBK: 32, prefillTiles: prefillTiles{8, 8, 16}, decodeChunk: 64, matvecTPR: 16, matvecQFold: 1}
	if tune != want {
		t.Fatalf("got %+v, want %+v", tune, want)
	}
	for _, bad := range []string{"matmul=64x64", "nope=1", "bk", "chunk=x"} {
		if err := parseTune(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// With matvec_unroll the float matvec's inner loop is written out: for
// B = 3 tokens and R = 2 rows, token 2 of row 1 adds into acc[1·3 + 2]
// with constant indices, and no loop over the tokens is left in it.
func TestMatVecUnrollWritesOutLoops(t *testing.T) {
	saved := tune
	defer func() { tune = saved }()
	tune.matvecUnroll, tune.matvecR = 1, 2
	v, err := matvecVars(weights.BF16, SwiGLU, true, 3, 64, 40, 4096)
	require.NoError(t, err)
	require.True(t, v.Unroll)
	src, err := gpu.Render("matvec", v)
	require.NoError(t, err)
	require.Contains(t, src, "let xa = x[2u * xrow + 2u * j] * na;")
	require.Contains(t, src, "acc[5] += dot8(wv[1], xa, xb);")
	require.Contains(t, src, "acc2[5] += dot8(uv[1], xa, xb);")
	require.NotContains(t, src, "acc[rr * B + b] += dot8")

	tune.matvecUnroll = 0
	v, err = matvecVars(weights.BF16, SwiGLU, true, 3, 64, 40, 4096)
	require.NoError(t, err)
	src, err = gpu.Render("matvec", v)
	require.NoError(t, err)
	require.Contains(t, src, "acc[rr * B + b] += dot8(wv[rr], xa, xb);")
}
