package main

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

// --serve-clients drives llm's scheduler: one row per client count
// (tokens of every request counted), then the time to first token of a
// -p token prompt, in milliseconds; greedy and sampled (top-k on the GPU).
func TestBenchServeClients(t *testing.T) {
	needGPU(t)
	for _, temp := range []string{"0", "0.7"} {
		r := qwgpu(t, append([]string{"bench", "--shape", "tiny", "-p", "16", "-n", "3", "--reps", "1", "--serve-clients", "1,3",
			"--serve-temperature", temp, "--json"}, testBackend()...)...)
		requireOK(t, r)
		var b struct {
			Results []struct {
				Test      string
				Tokens    int
				TokPerSec float64 `json:"tokens_per_second"`
				Unit      string
				MS        float64 `json:"ms"`
			}
		}
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &b), r.stdout)
		require.Len(t, b.Results, 5)
		suffix := map[string]string{"0": "", "0.7": " t0.7"}[temp]
		for i, want := range []struct {
			test   string
			tokens int
		}{{"pp16", 16}, {"tg3", 3}, {"serve tg3 x1" + suffix, 3}, {"serve tg3 x3" + suffix, 9}, {"serve ttft pp16", 16}} {
			res := b.Results[i]
			require.Equal(t, want.test, res.Test)
			require.Equal(t, want.tokens, res.Tokens)
			require.Greater(t, res.TokPerSec, 0.0)
		}
		ttft := b.Results[4]
		require.Equal(t, "ms", ttft.Unit)
		// The latency is the prompt's tokens over the prompt rate.
		require.InDelta(t, 1e3*16/ttft.TokPerSec, ttft.MS, 1e-6*ttft.MS)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--serve-clients", "0"}, "--serve-clients 0: want 1 to 256 clients"},
		{[]string{"-n", "0", "--serve-clients", "2"}, "--serve-clients needs the decode test (-n > 0)"},
		{[]string{"--serve-clients", "2", "--serve-temperature", "3"}, "--serve-temperature 3: want 0 to 2"},
	} {
		requireCleanError(t, qwgpu(t, append([]string{"bench", "--shape", "tiny"}, c.args...)...), c.want)
	}
}
