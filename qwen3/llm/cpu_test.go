package llm

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
)

// Device "cpu" runs the CPU reference (the GPU's oracle), batching by
// stepping each slot: its greedy text equals the GPU's.
func TestCPUDeviceMatchesGPU(t *testing.T) {
	gpuModel := openTest(t, Options{})
	cpuModel, err := Open(context.Background(), "", Options{Device: "cpu", Ctx: 128, Parallel: 2})
	require.NoError(t, err)
	defer cpuModel.Close()
	require.Equal(t, "CPU reference", cpuModel.Info().Adapter)
	for _, p := range prompts(2) {
		want, _ := collect(t, gpuModel, p, raw(greedy(4)))
		got, res := collect(t, cpuModel, p, raw(greedy(4)))
		require.Equal(t, 4, res.CompletionTokens)
		require.Equal(t, want, got, "prompt %q", p)
	}
	_, err = Open(context.Background(), "", Options{Device: "tpu"})
	require.EqualError(t, err, `device "tpu": want gpu or cpu`)
}
