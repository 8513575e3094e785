package main

import (
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

var qualityRE = regexp.MustCompile(`^validate: ok mean_kl=(\S+) max_kl=(\S+) top1=(\d+)/(\d+) max_logit_err=(\S+)$`)

func parseQuality(t *testing.T, r result) (meanKL, maxKL float64, top1, n int, maxErr float64) {
	t.Helper()
	m := qualityRE.FindStringSubmatch(lastLine(r.stdout))
	require.NotNil(t, m, "%v", r)
	f := func(s string) float64 { v, err := strconv.ParseFloat(s, 64); require.NoError(t, err); return v }
	top1, _ = strconv.Atoi(m[3])
	n, _ = strconv.Atoi(m[4])
	return f(m[1]), f(m[2]), top1, n, f(m[5])
}

// TestValidateAgainst reports what Q8_0 costs the tiny golden model over
// its golden prompts; the same weights in another container cost nothing.
func TestValidateAgainst(t *testing.T) {
	golden := filepath.Join(goldenModelDir("tiny-tied-f32"), "golden.safetensors")
	r := qwgpu(t, "validate", "--device", "cpu", "--model", ggufFile("tiny-tied-f32-f32.gguf"), "--against", goldenModelDir("tiny-tied-f32"), "--golden", golden)
	requireOK(t, r)
	meanKL, maxKL, top1, n, maxErr := parseQuality(t, r)
	// The F32 GGUF decodes exactly to the checkpoint: identical logits.
	require.Equal(t, []float64{0, 0, 0}, []float64{meanKL, maxKL, maxErr})
	require.Equal(t, 41, n) // 1 + 7 + 33 golden prompt positions
	require.Equal(t, n, top1)

	r = qwgpu(t, "validate", "--device", "cpu", "--model", ggufFile("tiny-tied-f32-q8_0.gguf"), "--against", goldenModelDir("tiny-tied-f32"), "--golden", golden)
	requireOK(t, r)
	require.Contains(t, r.stdout, "KL divergence (nats): mean ")
	cpuKL := 0.0
	meanKL, maxKL, top1, n, maxErr = parseQuality(t, r)
	require.Equal(t, 41, n)
	// Q8_0 moves these logits (a few units) by a few hundredths: KL of
	// order 1e-5 nats; a wrong layout would give nats and top-1 near chance.
	require.Greater(t, meanKL, 0.0)
	require.Less(t, meanKL, 1e-3)
	require.LessOrEqual(t, meanKL, maxKL)
	require.Less(t, maxErr, 0.2)
	require.GreaterOrEqual(t, top1, 36)
	cpuKL = meanKL

	// The same on the GPU (the default device): the engine's logits on the
	// Q8_0 blocks, so the report shows what a user's runs cost. The GPU's
	// own float32 error (≤ 2e-3 of the logits, validate's bound) adds
	// little to what Q8_0 costs: the KL stays within a factor of the CPU's.
	r = qwgpu(t, "validate", "--model", ggufFile("tiny-tied-f32-q8_0.gguf"), "--against", goldenModelDir("tiny-tied-f32"), "--golden", golden)
	requireOK(t, r)
	require.Regexp(t, `(?m)^model: .+ on .+ \(.+\) against .+ on the float64 CPU oracle$`, r.stdout)
	meanKL, _, top1, n, maxErr = parseQuality(t, r)
	require.Equal(t, 41, n)
	require.InEpsilon(t, cpuKL, meanKL, 0.5)
	require.Less(t, maxErr, 0.2)
	require.GreaterOrEqual(t, top1, 36)
	// The unquantized GGUF on the GPU against the checkpoint on the
	// oracle: the GPU's error alone, far below Q8_0's.
	r = qwgpu(t, "validate", "--model", ggufFile("tiny-tied-f32-f32.gguf"), "--against", goldenModelDir("tiny-tied-f32"), "--golden", golden)
	requireOK(t, r)
	meanKL, _, top1, n, maxErr = parseQuality(t, r)
	require.Less(t, meanKL, cpuKL/10)
	require.Less(t, maxErr, 2e-3*10)
	require.Equal(t, n, top1)

	// Quantizing the checkpoint at load to Q8_0 is the same model as the
	// Q8_0 GGUF (the same bytes): zero divergence between the two.
	r = qwgpu(t, "validate", "--device", "cpu", "--model", goldenModelDir("tiny-tied-f32"), "--dtype", "q8_0", "--against", ggufFile("tiny-tied-f32-q8_0.gguf"), "--golden", golden)
	requireOK(t, r)
	require.Contains(t, r.stderr, "qwgpu: quantized 15 matrices to Q8_0 in ")
	meanKL, _, top1, n, maxErr = parseQuality(t, r)
	require.Equal(t, []float64{0, 0}, []float64{meanKL, maxErr})
	require.Equal(t, n, top1)

	// Without --golden, --prompt encoded by the GGUF's own tokenizer.
	r = qwgpu(t, "validate", "--model", ggufFile("tiny-tied-f32-q8_0.gguf"), "--against", goldenModelDir("tiny-tied-f32"), "--prompt", "hello world, hello")
	requireOK(t, r)
	require.Regexp(t, `(?m)^prompt 0: \d+ tokens, KL mean `, r.stdout)
	_, _, _, n, _ = parseQuality(t, r)
	require.Greater(t, n, 1)

	requireCleanError(t, qwgpu(t, "validate", "--model", ggufFile("tiny-tied-f32-q8_0.gguf"), "--against", goldenModelDir("small-tied-bf16")),
		"is not the same model shape")
	requireCleanError(t, qwgpu(t, "validate", "--device", "tpu", "--model", ggufFile("tiny-tied-f32-q8_0.gguf"), "--against", goldenModelDir("tiny-tied-f32")),
		`--device "tpu": want gpu or cpu`)
}
