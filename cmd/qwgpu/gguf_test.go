package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/qwgpu/qwgpu/qwen3"
	"github.com/qwgpu/qwgpu/weights"
)

// The GGUF files of testdata/gguf, written by the GGUF reference
// implementation from the golden models (testdata/gguf/README.md).
func ggufFile(name string) string { return filepath.Join("..", "..", "testdata", "gguf", name) }

func goldenModelDir(name string) string { return filepath.Join("..", "..", "testdata", "golden", name) }

// TestValidateCPUQuantizedDType: --dtype q8_0 and q4_k quantize on the
// CPU side and the CPU reference runs them against the golden data.
func TestValidateCPUQuantizedDType(t *testing.T) {
	dir := goldenModelDir("tiny-tied-f32")
	golden := filepath.Join(dir, "golden.safetensors")
	// Q8_0 keeps every greedy token of the golden continuations and the
	// logits within a few hundredths.
	r := qwgpu(t, "validate", "--device", "cpu", "--dtype", "q8_0", "--model", dir, "--golden", golden, "--tol", "0.05")
	requireOK(t, r)
	require.Contains(t, r.stderr, "qwgpu: quantized 15 matrices to Q8_0 in ")
	require.True(t, strings.HasPrefix(lastLine(r.stdout), "validate: ok max_logit_err="), "%v", r)
	require.Contains(t, lastLine(r.stdout), "greedy=48/48")
	// With the bound of the unquantized reference it fails, as it must.
	r = qwgpu(t, "validate", "--device", "cpu", "--dtype", "q8_0", "--model", dir, "--golden", golden)
	require.NotEqual(t, 0, r.code)
	require.True(t, strings.HasPrefix(lastLine(r.stdout), "validate: FAIL golden case 0 position 0: logits error"), "%v", r)
	// Q4_K (rows of 64 are no 256-block: Q4_0) runs all three cases; 4 bits
	// flip some greedy tokens of random weights, which validate reports.
	r = qwgpu(t, "validate", "--device", "cpu", "--dtype", "q4_k", "--model", dir, "--golden", golden, "--tol", "1")
	require.Regexp(t, `qwgpu: quantized 15 matrices to Q4_K in [0-9.]+ s \(15 as Q4_0: rows not whole Q4_K blocks\)`, r.stderr)
	require.Contains(t, r.stdout, "golden case 2: 33 prompt tokens, max logit err ")
}

// TestValidateQuantizedOnGPU: quantized GGUF files (llama.cpp's Q4_K_M
// recipe, Q8_0, Q4_0 with Q5_0) run on the GPU and match the CPU reference
// on the same quantized weights within validate's default bound.
func TestValidateQuantizedOnGPU(t *testing.T) {
	needGPU(t)
	for _, c := range []struct{ file, types string }{
		{"small-tied-bf16-q4_k_m.gguf", "weights q4_k+q6_k ("},
		{"tiny-tied-f32-q8_0.gguf", "weights q8_0 ("},
		{"tiny-tied-f32-q4_0.gguf", "weights q4_0+"},
	} {
		t.Run(c.file, func(t *testing.T) {
			r := qwgpu(t, append([]string{"validate", "--model", ggufFile(c.file)}, testBackend()...)...)
			requireOK(t, r)
			require.Contains(t, r.stdout, c.types)
			require.True(t, strings.HasPrefix(lastLine(r.stdout), "validate: ok max_logit_err="), "%v", r)
		})
	}
}

// TestValidateQuantizedDTypeOnGPU: --dtype q8_0, q4_0 and q4_k quantize a
// float checkpoint at load; the GPU keeps the blocks and matches the CPU
// reference, which quantizes alike. The small model's rows (256, 512, 768)
// are whole Q4_K blocks, so q4_k is Q4_K throughout.
func TestValidateQuantizedDTypeOnGPU(t *testing.T) {
	needGPU(t)
	bf16 := bf16GGUF(t)
	for _, dt := range []string{"q8_0", "q4_0", "q4_k"} {
		t.Run(dt, func(t *testing.T) {
			r := qwgpu(t, append([]string{"validate", "--model", bf16, "--dtype", dt}, testBackend()...)...)
			requireOK(t, r)
			require.Contains(t, r.stderr, "qwgpu: quantized 29 matrices to "+strings.ToUpper(dt)+" in ")
			require.Contains(t, r.stdout, "weights "+dt+" (")
			require.True(t, strings.HasPrefix(lastLine(r.stdout), "validate: ok max_logit_err="), "%v", r)
		})
	}
}

// TestQuantizedRunAndBench: run says what the quantized weights take, and
// bench's model column names the type, as llama-bench's does.
func TestQuantizedRunAndBench(t *testing.T) {
	needGPU(t)
	r := qwgpu(t, append([]string{"run", "--model", ggufFile("tiny-tied-f32-q8_0.gguf"), "--prompt", "hello", "--greedy", "--max-tokens", "3"}, testBackend()...)...)
	requireOK(t, r)
	require.Regexp(t, `weights q8_0 [0-9.]+ [KM]iB, loaded in`, r.stderr)
	require.Equal(t, 3, parseStats(t, r).generated)
	// --dtype q8_0 quantizes a float file at load, through llm as serve does.
	r = qwgpu(t, append([]string{"run", "--model", ggufFile("tiny-tied-f32-f32.gguf"), "--dtype", "q8_0", "--prompt", "hello", "--greedy", "--max-tokens", "3"}, testBackend()...)...)
	requireOK(t, r)
	require.Contains(t, r.stderr, "qwgpu: quantized 15 matrices to Q8_0 in ")
	require.Regexp(t, `weights q8_0 [0-9.]+ [KM]iB, loaded in`, r.stderr)
	require.Equal(t, 3, parseStats(t, r).generated)
	r = qwgpu(t, append([]string{"bench", "--shape", "tiny", "--dtype", "q4_k", "-p", "8", "-n", "4", "--reps", "1"}, testBackend()...)...)
	requireOK(t, r)
	require.Contains(t, r.stdout, "| qwen3 tiny Q4_K ")
	requireCleanError(t, qwgpu(t, "run", "--dtype", "q5_k", "--prompt", "x"), `--dtype "q5_k": want auto, f32, bf16, f16, q8_0, q4_0 or q4_k`)
}

// TestRunGGUFOnGPU: an F32 GGUF runs on the GPU with nothing beside it,
// and validates against the golden data like its checkpoint does.
func TestRunGGUFOnGPU(t *testing.T) {
	needGPU(t)
	f32 := ggufFile("tiny-tied-f32-f32.gguf")
	r := qwgpu(t, append([]string{"run", "--model", f32, "--prompt", "hello", "--greedy", "--max-tokens", "4"}, testBackend()...)...)
	requireOK(t, r)
	s := parseStats(t, r)
	require.Equal(t, 4, s.generated)
	r = qwgpu(t, append([]string{"validate", "--model", f32, "--golden", filepath.Join(goldenModelDir("tiny-tied-f32"), "golden.safetensors")}, testBackend()...)...)
	requireOK(t, r)
	require.True(t, strings.HasPrefix(lastLine(r.stdout), "validate: ok "), "%v", r)

	// BF16 tensors of a GGUF go to the GPU as they are.
	bf16 := bf16GGUF(t)
	golden := filepath.Join(goldenModelDir("small-tied-bf16"), "golden.safetensors")
	r = qwgpu(t, append([]string{"validate", "--model", bf16, "--golden", golden}, testBackend()...)...)
	requireOK(t, r)
	require.Contains(t, r.stdout, "weights bf16")
	require.True(t, strings.HasPrefix(lastLine(r.stdout), "validate: ok "), "%v", r)
}

// bf16GGUF writes the small golden model's BF16 weights as a GGUF file
// with the reference converter's metadata for that model.
func bf16GGUF(t *testing.T) string {
	t.Helper()
	meta, err := qwen3.OpenGGUF(ggufFile("small-tied-bf16-q4_k_m.gguf"))
	require.NoError(t, err)
	defer meta.Close()
	ck, err := weights.OpenCheckpoint(goldenModelDir("small-tied-bf16"))
	require.NoError(t, err)
	defer ck.Close()
	var tensors []weights.WriteTensor
	for _, s := range meta.Config.AllTensors() {
		tensor, err := ck.Get(s.Name, s.Shape...)
		require.NoError(t, err)
		tensors = append(tensors, weights.WriteTensor{Name: s.GGUF, DType: tensor.DType, Shape: tensor.Shape, Data: tensor.Raw})
	}
	path := filepath.Join(t.TempDir(), "small-bf16.gguf")
	require.NoError(t, weights.WriteGGUFFile(path, meta.File.KVs, tensors))
	return path
}

func TestTokenizeGGUF(t *testing.T) {
	r := qwgpu(t, "tokenize", "--model", ggufFile("tiny-tied-f32-q8_0.gguf"), "--text", "hello world", "--json")
	requireOK(t, r)
	var ids []int
	require.NoError(t, json.Unmarshal([]byte(strings.TrimSpace(r.stdout)), &ids))
	require.NotEmpty(t, ids)
	for _, id := range ids {
		require.Less(t, id, 512)
	}

}

// TestRequantizeRefused: --dtype q* on a file whose matrices are already
// blocks is an error naming the flag and the tensor's type, before a GPU
// opens (run goes through llm, bench and validate load the engine
// themselves); a float dtype dequantizes exactly and is allowed.
func TestRequantizeRefused(t *testing.T) {
	const want = `the weights are already quantized (model.layers.0.self_attn.q_proj.weight is Q4_0): quantizing them to Q4_K would round every weight twice`
	for _, cmd := range []string{"run", "bench", "validate"} {
		args := []string{cmd, "--model", ggufFile("tiny-tied-f32-q4_0.gguf"), "--dtype", "q4_k"}
		r := qwgpu(t, args...)
		requireCleanError(t, r, `--dtype "q4_k": `+want)
	}
	r := qwgpu(t, "run", "--model", ggufFile("tiny-tied-f32-q8_0.gguf"), "--dtype", "q8_0")
	requireCleanError(t, r, `--dtype "q8_0": the weights are already quantized (model.layers.0.self_attn.q_proj.weight is Q8_0)`)
}

// TestQ5KMLayoutOnGPU: a file in llama.cpp's Q5_K_M layout (Q5_K, with
// Q6_K where the recipe keeps more bits) runs on the GPU and validates
// against the CPU reference on the same blocks. No reference tool wrote
// such a file from the golden models, so q5kmGGUF re-encodes the Q4_K_M
// file's Q4_K blocks as the Q5_K blocks of the same values; the reader's
// decoding of each (the block oracle's, bit for bit) must then agree
// exactly, which the test checks before it runs the model.
func TestQ5KMLayoutOnGPU(t *testing.T) {
	needGPU(t)
	path := q5kmGGUF(t)
	q4, err := weights.OpenGGUF(ggufFile("small-tied-bf16-q4_k_m.gguf"))
	require.NoError(t, err)
	defer q4.Close()
	q5, err := weights.OpenGGUF(path)
	require.NoError(t, err)
	defer q5.Close()
	types := map[weights.DType]int{}
	for _, ti := range q4.Tensors {
		a, err := q4.Tensor(ti.Name)
		require.NoError(t, err)
		b, err := q5.Tensor(ti.Name)
		require.NoError(t, err)
		want := a.DType
		if want == weights.Q4_K {
			want = weights.Q5_K
		}
		require.Equal(t, want, b.DType, ti.Name)
		types[b.DType]++
		av, err := a.Float32()
		require.NoError(t, err)
		bv, err := b.Float32()
		require.NoError(t, err)
		require.Equal(t, av, bv, ti.Name)
	}
	require.Positive(t, types[weights.Q5_K])
	require.Positive(t, types[weights.Q6_K])

	r := qwgpu(t, append([]string{"validate", "--model", path}, testBackend()...)...)
	requireOK(t, r)
	require.Contains(t, r.stdout, "weights q5_k+q6_k (")
	require.True(t, strings.HasPrefix(lastLine(r.stdout), "validate: ok max_logit_err="), "%v", r)
	r = qwgpu(t, append([]string{"run", "--model", path, "--prompt", "hello", "--greedy", "--max-tokens", "4"}, testBackend()...)...)
	requireOK(t, r)
	require.Equal(t, 4, parseStats(t, r).generated)
}

// q5kmGGUF writes small-tied-bf16-q4_k_m.gguf again with every Q4_K
// block (d, dmin, 12 scale bytes, 256 nibbles q) replaced by the Q5_K
// block of the same values: d/2 (one less in the f16 exponent, exact for
// a normal d), the same dmin and scales, and the quants 2q, whose fifth
// bits go to qh (value l of group g: bit 2g of qh[l]; value l+32: bit
// 2g+1).
func q5kmGGUF(t *testing.T) string {
	t.Helper()
	src, err := weights.OpenGGUF(ggufFile("small-tied-bf16-q4_k_m.gguf"))
	require.NoError(t, err)
	defer src.Close()
	var tensors []weights.WriteTensor
	for _, ti := range src.Tensors {
		tensor, err := src.Tensor(ti.Name)
		require.NoError(t, err)
		wt := weights.WriteTensor{Name: ti.Name, DType: tensor.DType, Shape: tensor.Shape, Data: tensor.Raw}
		if tensor.DType == weights.Q4_K {
			wt.DType, wt.Data = weights.Q5_K, nil
			for b := 0; b < len(tensor.Raw); b += 144 {
				wt.Data = append(wt.Data, q4KAsQ5K(t, tensor.Raw[b:b+144])...)
			}
		}
		tensors = append(tensors, wt)
	}
	path := filepath.Join(t.TempDir(), "small-q5_k_m.gguf")
	require.NoError(t, weights.WriteGGUFFile(path, src.KVs, tensors))
	return path
}

func q4KAsQ5K(t *testing.T, q4 []byte) []byte {
	q5 := make([]byte, 176)
	d := uint16(q4[0]) | uint16(q4[1])<<8
	require.Greater(t, d>>10&0x1f, uint16(1), "d = %#04x: halving it is exact only for a normal half above the smallest", d)
	d -= 1 << 10
	q5[0], q5[1] = byte(d), byte(d>>8)
	copy(q5[2:16], q4[2:16]) // dmin and the scales
	qh, qs := q5[16:48], q5[48:176]
	for g := range 4 {
		for l := range 32 {
			q := q4[16+32*g+l]
			lo, hi := 2*(q&0xf), 2*(q>>4)
			qs[32*g+l] = lo&0xf | (hi&0xf)<<4
			qh[l] |= (lo>>4)<<(2*g) | (hi>>4)<<(2*g+1)
		}
	}
	return q5
}
