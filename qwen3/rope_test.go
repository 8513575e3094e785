package qwen3

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// Qwen3's documented long-context setting, as a transformers 4 checkpoint
// spells it: a top-level rope_theta beside rope_scaling.
func TestParseConfigYarnTransformers4(t *testing.T) {
	c, err := ParseConfig(edit(t, func(m map[string]any) {
		m["rope_scaling"] = map[string]any{"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32768}
	}))
	require.NoError(t, err)
	require.Equal(t, 1e6, c.RopeTheta)
	require.Equal(t, &RopeScaling{Type: "yarn", Factor: 4, OriginalMaxPositionEmbeddings: 32768}, c.RopeScaling)

	// The legacy "type" key names the same thing.
	c2, err := ParseConfig(edit(t, func(m map[string]any) {
		m["rope_scaling"] = map[string]any{"type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32768}
	}))
	require.NoError(t, err)
	require.Equal(t, c.RopeScaling, c2.RopeScaling)
}

// A top-level rope_theta does not make a rope_parameters asking for YaRN
// go unread.
func TestParseConfigYarnBesideTopLevelTheta(t *testing.T) {
	c, err := ParseConfig(edit(t, func(m map[string]any) {
		m["rope_parameters"] = map[string]any{"rope_type": "yarn", "factor": 2.0, "beta_fast": 16, "truncate": false}
	}))
	require.NoError(t, err)
	require.Equal(t, 1e6, c.RopeTheta)
	// No original length given: transformers takes max_position_embeddings.
	require.Equal(t, &RopeScaling{Type: "yarn", Factor: 2, OriginalMaxPositionEmbeddings: 40960, BetaFast: 16, NoTruncate: true}, c.RopeScaling)
	// A top-level original_max_position_embeddings wins, as in transformers.
	c, err = ParseConfig(edit(t, func(m map[string]any) {
		m["original_max_position_embeddings"] = 8192
		m["rope_parameters"] = map[string]any{"rope_type": "yarn", "factor": 2.0, "original_max_position_embeddings": 4096}
	}))
	require.NoError(t, err)
	require.Equal(t, 8192, c.RopeScaling.OriginalMaxPositionEmbeddings)
}

// The golden YaRN model (transformers 5's rope_parameters) and the same
// settings in transformers 4's spelling give identical tables.
func TestYarnBothSpellingsSameTables(t *testing.T) {
	c5, err := LoadConfigDir(goldenDir("yarn-tied-f32"))
	require.NoError(t, err)
	require.Equal(t, &RopeScaling{Type: "yarn", Factor: 4, OriginalMaxPositionEmbeddings: 32}, c5.RopeScaling)

	raw, err := os.ReadFile(filepath.Join(goldenDir("yarn-tied-f32"), "config.json"))
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(raw, &m))
	m["rope_theta"] = 1e6
	m["rope_scaling"] = map[string]any{"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32}
	delete(m, "rope_parameters")
	b, err := json.Marshal(m)
	require.NoError(t, err)
	c4, err := ParseConfig(b)
	require.NoError(t, err)
	r4, r5 := NewRopeFor(c4, 128), NewRopeFor(c5, 128)
	require.Equal(t, r5.Cos, r4.Cos)
	require.Equal(t, r5.Sin, r4.Sin)
}

// YaRN by hand for the golden model: head_dim 32, theta 1e6, original 32,
// factor 4. The ramp ends are floor(32·ln(32/(32·2π))/(2·ln 1e6)) = -3 → 0
// and ceil(32·ln(32/2π)/(2·ln 1e6)) = ceil(1.885) = 2, so pair 0 keeps its
// frequency, pair 1 averages kept and divided, pairs 2.. are divided by 4.
func TestYarnFrequenciesByHand(t *testing.T) {
	c, err := LoadConfigDir(goldenDir("yarn-tied-f32"))
	require.NoError(t, err)
	inv, attn := c.RopeFrequencies()
	require.Len(t, inv, 16)
	require.InDelta(t, 0.1*math.Log(4)+1, attn, 1e-15)
	require.InDelta(t, 1.1386294361119891, attn, 1e-15)
	base := func(i int) float64 { return math.Pow(1e6, -float64(2*i)/32) }
	require.Equal(t, float32(1), inv[0])
	require.InEpsilon(t, 0.5*base(1)+0.5*base(1)/4, float64(inv[1]), 3e-7)
	for i := 2; i < 16; i++ {
		require.InEpsilonf(t, base(i)/4, float64(inv[i]), 3e-7, "pair %d", i)
	}
	// cos and sin carry the attention factor.
	r := NewRopeFor(c, 4)
	require.InEpsilon(t, attn, float64(r.Cos[0]), 1e-7)
	require.InEpsilon(t, attn*math.Sin(3*0.625*base(1)), float64(r.Sin[3*16+1]), 1e-6)
}

// Qwen3's published setting: head_dim 128, theta 1e6, original 32768,
// factor 4. Ramp ends: floor(128·ln(32768/(64π))/(2·ln 1e6)) = floor(23.6) = 23
// and ceil(128·ln(32768/2π)/(2·ln 1e6)) = ceil(39.65) = 40.
func TestYarnFrequenciesQwen3Published(t *testing.T) {
	c, err := ParseConfig(edit(t, func(m map[string]any) {
		m["rope_scaling"] = map[string]any{"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32768}
	}))
	require.NoError(t, err)
	inv, attn := c.RopeFrequencies()
	plain := DefaultInvFreq(128, 1e6)
	require.InDelta(t, 1.1386294361119891, attn, 1e-15)
	for i := range inv {
		ramp := math.Min(math.Max((float64(i)-23)/17, 0), 1)
		want := float64(plain[i]) * (1 - ramp*(1-0.25))
		require.InEpsilonf(t, want, float64(inv[i]), 3e-7, "pair %d", i)
	}
	require.Equal(t, plain[:24], inv[:24], "pairs below the ramp keep their frequency exactly")
}

// Without scaling the frequencies are transformers' float32 ones and the
// factor is 1.
func TestDefaultFrequencies(t *testing.T) {
	c, err := ParseConfig([]byte(base))
	require.NoError(t, err)
	inv, attn := c.RopeFrequencies()
	require.Equal(t, 1.0, attn)
	require.Len(t, inv, 64)
	for i, f := range inv {
		require.InEpsilon(t, math.Pow(1e6, -float64(2*i)/128), float64(f), 1.2e-7)
	}
}
