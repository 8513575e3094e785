package weights

import (
	"math"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestQuantizeMatchesReferenceBlocks quantizes the reference quantizer's
// source rows (zeros, constants, normal, tiny values whose scales become
// f16 subnormals, huge values, spikes, a ramp) and compares the bytes with
// gguf-py's, which equal ggml's C quantizer's.
func TestQuantizeMatchesReferenceBlocks(t *testing.T) {
	st, err := Open(filepath.Join(ggufDir, "blocks.safetensors"))
	require.NoError(t, err)
	defer st.Close()
	for _, d := range []DType{Q8_0, Q4_0} {
		name := strings.ToLower(d.String())
		t.Run(name, func(t *testing.T) {
			src := f32Tensor(t, st, name+".source")
			vals, err := src.Float32()
			require.NoError(t, err)
			want, err := st.Tensor(name + ".from_f32.raw")
			require.NoError(t, err)
			got, err := Quantize(d, vals, src.Shape[0], src.Shape[1], nil)
			require.NoError(t, err)
			require.Equal(t, want.Raw, got)
		})
	}
}

// TestQuantizeMatchesReferenceModels quantizes the golden models' weights
// and compares with the matrices the reference tools quantized from the
// same weights: gguf-py for Q8_0 and Q4_0, ggml's C code (no FMA, as a
// stock x86-64 llama-quantize) for Q4_K.
func TestQuantizeMatchesReferenceModels(t *testing.T) {
	cases := []struct {
		model, gguf string
		dtype       DType
	}{
		{"tiny-tied-f32", "tiny-tied-f32-q8_0.gguf", Q8_0},
		{"tiny-tied-f32", "tiny-tied-f32-q4_0.gguf", Q4_0},
		{"small-tied-bf16", "small-tied-bf16-q4_k_m.gguf", Q4_K},
	}
	for _, c := range cases {
		t.Run(c.dtype.String(), func(t *testing.T) {
			ck, err := OpenCheckpoint(filepath.Join(goldenDir, c.model))
			require.NoError(t, err)
			defer ck.Close()
			g, err := OpenGGUF(filepath.Join(ggufDir, c.gguf))
			require.NoError(t, err)
			defer g.Close()
			manifest := loadManifest(t)[c.gguf]
			compared := 0
			for _, mt := range manifest.Tensors {
				if mt.Type != c.dtype.String() {
					continue
				}
				want, err := g.Tensor(mt.GGUFName)
				require.NoError(t, err)
				src, err := ck.Get(mt.HFName)
				require.NoError(t, err)
				got, err := QuantizeTensor(src, c.dtype, nil)
				require.NoError(t, err)
				require.Equal(t, want.Shape, got.Shape)
				bb := c.dtype.BlockBytes()
				bad := 0
				for b := 0; b < len(want.Raw)/bb; b++ {
					if string(want.Raw[b*bb:(b+1)*bb]) != string(got.Raw[b*bb:(b+1)*bb]) {
						bad++
					}
				}
				require.Zero(t, bad, "%s: %d of %d blocks differ from the reference", mt.GGUFName, bad, len(want.Raw)/bb)
				compared++
			}
			require.Greater(t, compared, 4)
		})
	}
}

// TestQuantizeErrorBound: dequantized values lie within the format's
// step of the input. Q8_0 rounds to the nearest of 255 levels spaced
// d = max|x|/127, Q4_0 to 16 levels spaced |d| = max|x|/8 (the top level
// clamps, so up to one step); the stored f16 d adds at most 2^-11 relative
// per level (2^-25 absolute for a subnormal d). Q4_K has no such closed bound (its scales are fitted); its
// error must not exceed that of ggml's own quantization of the same
// weights (checked via identical bytes above) and stays within one
// sub-block step here.
func TestQuantizeErrorBound(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const rows, cols = 64, 512
	src := make([]float32, rows*cols)
	for i := range src {
		r := i / cols
		switch r % 4 {
		case 0:
			src[i] = float32(rng.NormFloat64())
		case 1:
			src[i] = float32(rng.NormFloat64() * 1e-4)
		case 2:
			src[i] = float32(rng.Float64()*2 - 1)
		case 3:
			src[i] = 0
			if i%37 == 0 {
				src[i] = 3
			}
		}
	}
	for _, c := range []struct {
		d     DType
		steps float64 // bound in steps of the block's scale
		level float64 // levels from zero of the farthest value
	}{{Q8_0, 0.5, 127}, {Q4_0, 1, 8}} {
		raw, err := Quantize(c.d, src, rows, cols, nil)
		require.NoError(t, err)
		got, err := (&Tensor{DType: c.d, Shape: []int{rows, cols}, Raw: raw}).Float32()
		require.NoError(t, err)
		for b := 0; b < len(src)/32; b++ {
			var amax float64
			for _, v := range src[32*b : 32*b+32] {
				amax = max(amax, math.Abs(float64(v)))
			}
			step := amax / c.level
			// f16 rounds d by 2^-11 relative, or by 2^-25 where it is subnormal.
			bound := c.steps*step + c.level*max(step*math.Pow(2, -11), math.Pow(2, -25))
			for i := 32 * b; i < 32*b+32; i++ {
				require.LessOrEqual(t, math.Abs(float64(got[i]-src[i])), bound, "%v value %d", c.d, i)
			}
		}
	}
	raw, err := Quantize(Q4_K, src, rows, cols, nil)
	require.NoError(t, err)
	got, err := (&Tensor{DType: Q4_K, Shape: []int{rows, cols}, Raw: raw}).Float32()
	require.NoError(t, err)
	for sb := 0; sb < len(src)/32; sb++ {
		lo, hi := math.Inf(1), math.Inf(-1)
		for _, v := range src[32*sb : 32*sb+32] {
			lo, hi = min(lo, float64(v)), max(hi, float64(v))
		}
		lo = min(lo, 0)
		// One step of the sub-block's 4-bit grid, plus what the f16
		// super-block factors lose where they are subnormal (2^-25 each,
		// times 63 scale levels × 15 value levels and 63 minimum levels).
		step := (hi - lo) / 15
		bound := step + (63*15+63)*math.Pow(2, -25)
		for i := 32 * sb; i < 32*sb+32; i++ {
			require.LessOrEqual(t, math.Abs(float64(got[i]-src[i])), bound, "Q4_K value %d", i)
		}
	}
}

func TestQuantizeErrors(t *testing.T) {
	_, err := Quantize(Q8_0, make([]float32, 48), 1, 48, nil)
	require.ErrorContains(t, err, "not a multiple of the Q8_0 block of 32")
	_, err = Quantize(Q6_K, make([]float32, 256), 1, 256, nil)
	require.ErrorContains(t, err, "cannot quantize to Q6_K")
	_, err = Quantize(Q8_0, make([]float32, 32), 2, 32, nil)
	require.ErrorContains(t, err, "32 values for 2×32")
	var last int
	_, err = Quantize(Q4_K, make([]float32, 3*256), 3, 256, func(done int) { last = done })
	require.NoError(t, err)
	require.Equal(t, 3, last)
}

// TestDequantizeParallelSplit: a tensor big enough to be decoded on
// several goroutines decodes exactly as block by block.
func TestDequantizeParallelSplit(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	const rows, cols = 72, 32768 // 2.3M values, past the parallel threshold
	src := make([]float32, rows*cols)
	for i := range src {
		src[i] = float32(rng.NormFloat64())
	}
	for _, d := range []DType{Q8_0, Q4_K} {
		raw, err := Quantize(d, src, rows, cols, nil)
		require.NoError(t, err)
		got, err := (&Tensor{DType: d, Shape: []int{rows, cols}, Raw: raw}).Float32()
		require.NoError(t, err)
		want := make([]float32, len(src))
		bs, bb := d.BlockSize(), d.BlockBytes()
		for b := 0; b < len(src)/bs; b++ {
			blockDecoders[d](raw[b*bb:(b+1)*bb], want[b*bs:(b+1)*bs])
		}
		require.Equal(t, want, got, "%v", d)
	}
}
