package qwen3

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// base is a Qwen3-0.6B config.json as transformers 4 wrote it (top-level rope_theta).
const base = `{
  "architectures": ["Qwen3ForCausalLM"], "attention_bias": false, "bos_token_id": 151643,
  "eos_token_id": 151645, "head_dim": 128, "hidden_act": "silu", "hidden_size": 1024,
  "intermediate_size": 3072, "max_position_embeddings": 40960, "max_window_layers": 28,
  "model_type": "qwen3", "num_attention_heads": 16, "num_hidden_layers": 28,
  "num_key_value_heads": 8, "rms_norm_eps": 1e-06, "rope_scaling": null, "rope_theta": 1000000,
  "sliding_window": null, "tie_word_embeddings": true, "torch_dtype": "bfloat16",
  "use_cache": true, "use_sliding_window": false, "vocab_size": 151936}`

func edit(t *testing.T, f func(m map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal([]byte(base), &m))
	f(m)
	b, err := json.Marshal(m)
	require.NoError(t, err)
	return b
}

func TestParseConfigQwen3_06B(t *testing.T) {
	c, err := ParseConfig([]byte(base))
	require.NoError(t, err)
	require.Equal(t, 1024, c.HiddenSize)
	require.Equal(t, 128, c.HeadDim)
	require.Equal(t, 1e6, c.RopeTheta)
	require.Equal(t, []int{151645}, c.EOSTokenIDs)
	require.True(t, c.TieWordEmbeddings)
	require.Equal(t, 2048, c.QDim())
	require.Equal(t, 1024, c.KVDim())
	require.Equal(t, 2, c.GroupSize())
	// Qwen3-0.6B is published as 0.6B parameters: 596M counting the tied head once.
	require.Equal(t, int64(596049920), c.NumParams())
}

func TestParseConfigTransformers5RopeParameters(t *testing.T) {
	// The golden models were written by transformers 5.
	c, err := LoadConfigDir(goldenDir("tiny-tied-f32"))
	require.NoError(t, err)
	require.Equal(t, 1e6, c.RopeTheta)
	require.Equal(t, 16, c.HeadDim)
	require.Nil(t, c.EOSTokenIDs)
}

func TestParseConfigEOSList(t *testing.T) {
	c, err := ParseConfig(edit(t, func(m map[string]any) { m["eos_token_id"] = []int{151645, 151643} }))
	require.NoError(t, err)
	require.Equal(t, []int{151645, 151643}, c.EOSTokenIDs)
}

func TestParseConfigHeadDimDefault(t *testing.T) {
	c, err := ParseConfig(edit(t, func(m map[string]any) { delete(m, "head_dim") }))
	require.NoError(t, err)
	require.Equal(t, 1024/16, c.HeadDim)
}

func TestParseConfigRefuses(t *testing.T) {
	cases := []struct {
		name string
		edit func(m map[string]any)
		want string
	}{
		{"missing hidden_size", func(m map[string]any) { delete(m, "hidden_size") }, `missing field "hidden_size"`},
		{"missing rope theta", func(m map[string]any) { delete(m, "rope_theta") }, `missing field "rope_theta"`},
		{"moe", func(m map[string]any) { m["model_type"] = "qwen3_moe"; m["num_experts"] = 128 }, `unsupported model_type "qwen3_moe"`},
		{"experts", func(m map[string]any) { m["num_experts"] = 64 }, "mixture of experts"},
		{"sliding window", func(m map[string]any) { m["use_sliding_window"] = true }, "sliding window"},
		{"linear rope scaling", func(m map[string]any) { m["rope_scaling"] = map[string]any{"rope_type": "linear", "factor": 4} }, `rope_scaling.rope_type "linear"`},
		{"llama3 in rope_parameters", func(m map[string]any) {
			m["rope_parameters"] = map[string]any{"rope_type": "llama3", "factor": 8}
		}, `rope_parameters.rope_type "llama3"`},
		{"both spellings", func(m map[string]any) {
			m["rope_scaling"] = map[string]any{"rope_type": "yarn", "factor": 4}
			m["rope_parameters"] = map[string]any{"rope_theta": 1e6}
		}, "both rope_scaling and rope_parameters"},
		{"thetas disagree", func(m map[string]any) { m["rope_parameters"] = map[string]any{"rope_theta": 1e4} }, "disagree"},
		{"yarn without factor", func(m map[string]any) { m["rope_scaling"] = map[string]any{"rope_type": "yarn"} }, `"rope_scaling.factor"`},
		{"yarn factor below 1", func(m map[string]any) { m["rope_scaling"] = map[string]any{"type": "yarn", "factor": 0.5} }, "factor must be >= 1"},
		{"yarn unknown key", func(m map[string]any) {
			m["rope_scaling"] = map[string]any{"rope_type": "yarn", "factor": 4, "extrapolation_factor": 1}
		}, "rope_scaling.extrapolation_factor"},
		{"factor on plain rope", func(m map[string]any) { m["rope_scaling"] = map[string]any{"factor": 4} }, `rope_scaling.factor with rope_type "default"`},
		{"partial rotary", func(m map[string]any) { m["partial_rotary_factor"] = 0.5 }, "partial_rotary_factor 0.5"},
		{"rope type not a string", func(m map[string]any) { m["rope_scaling"] = map[string]any{"rope_type": 4} }, "rope_scaling.rope_type: want a string"},
		{"rope_scaling not an object", func(m map[string]any) { m["rope_scaling"] = "yarn" }, `field "rope_scaling": want an object`},
		{"heads not divisible", func(m map[string]any) { m["num_key_value_heads"] = 5 }, "not divisible"},
		{"odd head_dim", func(m map[string]any) { m["head_dim"] = 127 }, "head_dim must be even"},
		{"zero layers", func(m map[string]any) { m["num_hidden_layers"] = 0 }, "num_hidden_layers must be > 0"},
		{"architecture", func(m map[string]any) { m["architectures"] = []string{"LlamaForCausalLM"} }, `unsupported architecture "LlamaForCausalLM"`},
		{"eos string", func(m map[string]any) { m["eos_token_id"] = "x" }, "eos_token_id"},
		{"bad type", func(m map[string]any) { m["hidden_size"] = "big" }, `field "hidden_size": want an integer`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig(edit(t, tc.edit))
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.want)
			require.NotContains(t, err.Error(), "\n")
		})
	}
}

func TestLoadConfigErrorsNameTheFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "config.json")
	_, err := LoadConfig(p)
	require.ErrorContains(t, err, p)
	require.NoError(t, os.WriteFile(p, []byte(`{"hidden_size": 10,`), 0o644))
	_, err = LoadConfig(p)
	require.ErrorContains(t, err, p)
	require.ErrorContains(t, err, "invalid JSON")
}

// A field of the wrong JSON type is named in JSON's terms, not Go's.
func TestParseConfigWrongTypeNamesTheField(t *testing.T) {
	cases := []struct {
		key  string
		val  any
		want string
	}{
		{"hidden_size", "1024", `field "hidden_size": want an integer, got string`},
		{"num_hidden_layers", 2.5, `field "num_hidden_layers": want an integer, got number 2.5`},
		{"tie_word_embeddings", 1, `field "tie_word_embeddings": want true or false, got number`},
		{"architectures", "Qwen3ForCausalLM", `field "architectures": want a list, got string`},
	}
	for _, c := range cases {
		_, err := ParseConfig(edit(t, func(m map[string]any) { m[c.key] = c.val }))
		require.EqualError(t, err, c.want)
	}
}
