package llm

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/qwgpu/qwgpu/gpu/gputest"
	"github.com/qwgpu/qwgpu/qwen3"
	"github.com/qwgpu/qwgpu/qwen3/engine"
	"github.com/qwgpu/qwgpu/weights"
)

func ggufTestFile(name string) string { return filepath.Join("..", "..", "testdata", "gguf", name) }

// openFile opens a model file through llm on the test GPU.
func openFile(t *testing.T, path string, opt Options) *Model {
	t.Helper()
	gputest.Open(t).Close() // skips or fails the test without an adapter
	if opt.Device != "cpu" {
		opt.Backend = os.Getenv("QWGPU_TEST_BACKEND")
	}
	m, err := Open(context.Background(), path, opt)
	require.NoError(t, err)
	t.Cleanup(func() { m.Close() })
	return m
}

// engineGreedy is the independent answer: the GGUF file loaded by the
// engine directly on its own device, decoded by argmax with the model's
// end tokens, n tokens at most.
func engineGreedy(t *testing.T, path string, prompt []int, eos []int, n int) []int {
	t.Helper()
	dev := gputest.Open(t)
	defer dev.Close()
	g, err := qwen3.OpenGGUF(path)
	require.NoError(t, err)
	defer g.Close()
	e, err := engine.Load(dev, g.Config, g, engine.Options{Ctx: 256})
	require.NoError(t, err)
	defer e.Close()
	argmax := func(l []float32) int {
		best := 0
		for i, v := range l {
			if v > l[best] {
				best = i
			}
		}
		return best
	}
	logits, err := e.Feed(prompt)
	require.NoError(t, err)
	var out []int
	for len(out) < n {
		id := argmax(logits)
		if slices.Contains(eos, id) {
			break
		}
		out = append(out, id)
		logits, err = e.Feed([]int{id})
		require.NoError(t, err)
	}
	return out
}

// A quantized GGUF file (Q8_0; Q4_K with Q6_K) runs on the GPU through
// llm and gives the greedy tokens of the engine driven directly.
func TestQuantizedGGUFOnGPU(t *testing.T) {
	for _, c := range []struct{ file, dtype string }{
		{"tiny-tied-f32-q8_0.gguf", "q8_0"},
		{"small-tied-bf16-q4_k_m.gguf", "q4_k+q6_k"},
	} {
		t.Run(c.file, func(t *testing.T) {
			const n = 10
			path := ggufTestFile(c.file)
			m := openFile(t, path, Options{Ctx: 256})
			info := m.Info()
			require.Equal(t, c.dtype, info.DType)
			ids := m.Tokenizer().Encode("The quick brown fox")
			want, err := m.Tokenizer().Decode(engineGreedy(t, path, ids, info.EOS, n))
			require.NoError(t, err)
			got, res := collect(t, m, "The quick brown fox", raw(greedy(n)))
			require.Equal(t, want, got)
			require.Equal(t, len(ids), res.PromptTokens)
		})
	}
}

// DType q8_0 quantizes a float GGUF at load: the GPU keeps Q8_0 blocks
// (34 bytes per 32 weights instead of 128) and decodes what the CPU
// reference decodes on the same quantized weights.
func TestQuantizeAtLoad(t *testing.T) {
	const n = 8
	path := ggufTestFile("tiny-tied-f32-f32.gguf")
	quantized := 0
	m := openFile(t, path, Options{Ctx: 256, DType: "q8_0", QuantizeProgress: func(name string, dt weights.DType) {
		require.Equal(t, weights.Q8_0, dt, name)
		quantized++
	}})
	info := m.Info()
	require.Equal(t, "q8_0", info.DType)
	require.Greater(t, quantized, 0)
	f32 := openFile(t, path, Options{Ctx: 256})
	require.Equal(t, "f32", f32.Info().DType)
	// Every matrix shrinks from 4 bytes a weight to 34/32; the norms stay
	// float32: the quantized weights take well under a third.
	require.Less(t, float64(info.WeightBytes), 0.3*float64(f32.Info().WeightBytes))
	// The estimate counts the blocks as the engine stores them (within
	// the padding of stacked matrices).
	require.InEpsilon(t, float64(info.WeightBytes), float64(info.Footprint.Weights), 0.02)

	cpu, err := Open(context.Background(), path, Options{Device: "cpu", Ctx: 256, DType: "q8_0"})
	require.NoError(t, err)
	defer cpu.Close()
	want, _ := collect(t, cpu, "The quick brown fox", raw(greedy(n)))
	got, res := collect(t, m, "The quick brown fox", raw(greedy(n)))
	require.Equal(t, want, got)
	require.Equal(t, n, res.CompletionTokens)
}

// Options.DType q* on a file whose matrices are already blocks is refused
// before anything loads: quantizing dequantized blocks rounds twice.
func TestRequantizeRefused(t *testing.T) {
	_, err := Open(context.Background(), ggufTestFile("tiny-tied-f32-q8_0.gguf"), Options{DType: "q4_k"})
	require.EqualError(t, err, `Options.DType "q4_k": the weights are already quantized (model.layers.0.self_attn.q_proj.weight is Q8_0): quantizing them to Q4_K would round every weight twice; load the unquantized checkpoint, or keep the file's blocks (dtype auto)`)
}
