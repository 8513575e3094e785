package llm

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/qwgpu/qwgpu/qwen3"
	"github.com/qwgpu/qwgpu/qwen3/engine"
	"github.com/qwgpu/qwgpu/weights"
)

// The footprint of the built-in model (bf16 matrices) is the engine's own
// count, and a budget below it refuses the model before it loads.
func TestGPUMemoryBudget(t *testing.T) {
	m := openTest(t, Options{Ctx: 256})
	cfg := m.Info().Config
	want := engine.Estimate(cfg, engine.Options{Ctx: 256}, weights.BF16)
	f := m.Info().Footprint
	require.Equal(t, want.Weights, f.Weights)
	require.Equal(t, want.KVCache, f.KVCache)
	require.Equal(t, want.Activations, f.Activations)
	require.InEpsilon(t, float64(m.Info().WeightBytes), float64(f.Weights), 0.001, "the engine stores about what the estimate counts")

	_, err := Open(context.Background(), "", Options{Ctx: 256, GPUMemory: f.Device() - 1})
	var me *MemoryError
	require.ErrorAs(t, err, &me)
	require.Equal(t, f.Device(), me.Need.Device())
	require.Contains(t, err.Error(), "needs about 0.")
	require.Contains(t, err.Error(), "more than the budget")
	_, err = Open(context.Background(), "", Options{GPUMemory: -1})
	require.ErrorContains(t, err, "GPU memory budget -1")
}

// BeforeDevice sees the model before the device opens, and its error ends
// Open.
func TestBeforeDevice(t *testing.T) {
	refuse := errors.New("refused")
	var plan Plan
	_, err := Open(context.Background(), "", Options{Ctx: 300, Device: "cpu", BeforeDevice: func(p Plan) error {
		plan = p
		return refuse
	}})
	require.ErrorIs(t, err, refuse)
	require.True(t, plan.BuiltIn)
	require.Equal(t, 300, plan.Ctx)
	require.Equal(t, qwen3.Shapes["tiny"].HiddenSize, plan.Config.HiddenSize)
	require.NotNil(t, plan.Tokenizer)
	require.Equal(t, []int{9707}, plan.Tokenizer.Encode("Hello"))
}

// OnPrefill follows a prompt of three chunks to its end, on the caller's
// goroutine, before the first token.
func TestPrefillProgress(t *testing.T) {
	m := openTest(t, Options{Ctx: 2048})
	prompt := strings.Repeat("one two three four five six seven eight nine ten ", 120)
	n := len(m.Tokenizer().Encode(prompt))
	require.Greater(t, n, 2*prefillChunk)
	var seen [][2]int
	tokens := 0
	opt := raw(greedy(2))
	opt.OnPrefill = func(done, total int) {
		require.Zero(t, tokens, "progress after a token")
		seen = append(seen, [2]int{done, total})
	}
	res, err := m.Generate(context.Background(), prompt, opt, func(Token) error { tokens++; return nil })
	require.NoError(t, err)
	require.Equal(t, n, res.PromptTokens)
	require.NotEmpty(t, seen)
	for i, s := range seen {
		require.Equal(t, n, s[1])
		require.Zero(t, s[0]%prefillChunk*boolInt(s[0] != n), "chunk boundaries: %v", seen)
		if i > 0 {
			require.Greater(t, s[0], seen[i-1][0])
		}
	}
	require.Equal(t, n, seen[len(seen)-1][0])
	require.Zero(t, seen[0][0], "the first report comes before any work")

	// A prompt that continues the slot's: the first report says how much
	// of it was found cached.
	seen = nil
	tokens = 0
	res, err = m.Generate(context.Background(), prompt+"and more", opt, func(Token) error { tokens++; return nil })
	require.NoError(t, err)
	require.Positive(t, res.CachedTokens)
	require.Equal(t, [2]int{res.CachedTokens, res.PromptTokens}, seen[0])
	require.Equal(t, [2]int{res.PromptTokens, res.PromptTokens}, seen[len(seen)-1])
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Result.StopString names the stop string that ended the output, whose
// text and what follows are not handed out.
func TestResultStopString(t *testing.T) {
	m := openTest(t, Options{Ctx: 256})
	const prompt = "Once upon a time"
	full, res := collect(t, m, prompt, raw(greedy(24)))
	require.Equal(t, "length", res.FinishReason)
	require.Empty(t, res.StopString)
	require.Greater(t, len(full), 12)
	stop := full[len(full)/2 : len(full)/2+3]
	opt := raw(greedy(24))
	opt.Stop = []string{"never in this text \x00", stop}
	got, res := collect(t, m, prompt, opt)
	require.Equal(t, "stop", res.FinishReason)
	require.Equal(t, stop, res.StopString)
	require.Equal(t, full[:strings.Index(full, stop)], got)
}
