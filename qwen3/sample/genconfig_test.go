package sample

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "generation_config.json")
	require.NoError(t, os.WriteFile(path, []byte(body), 0o644))
	return path
}

func TestQwen3GenerationConfig(t *testing.T) {
	// As Qwen3 publishes it.
	path := writeConfig(t, `{
  "bos_token_id": 151643,
  "do_sample": true,
  "eos_token_id": [151645, 151643],
  "pad_token_id": 151643,
  "temperature": 0.6,
  "top_k": 20,
  "top_p": 0.95,
  "transformers_version": "4.51.0"
}`)
	g, err := LoadGenerationConfig(path)
	require.NoError(t, err)
	assert.Equal(t, TokenIDs{151645, 151643}, g.EOSTokenIDs)
	require.NotNil(t, g.BOSTokenID)
	assert.Equal(t, 151643, *g.BOSTokenID)
	require.NotNil(t, g.PadTokenID)
	assert.Equal(t, 151643, *g.PadTokenID)
	assert.Nil(t, g.MinP)

	p := g.Defaults()
	assert.Equal(t, Params{Temperature: 0.6, TopK: 20, TopP: 0.95, MinP: 0, RepetitionPenalty: 1, PresencePenalty: 0}, p)
	assert.NoError(t, p.Validate())
}

func TestEOSAsSingleID(t *testing.T) {
	g, err := LoadGenerationConfig(writeConfig(t, `{"eos_token_id": 151645}`))
	require.NoError(t, err)
	assert.Equal(t, TokenIDs{151645}, g.EOSTokenIDs)

	g, err = LoadGenerationConfig(writeConfig(t, `{"eos_token_id": null}`))
	require.NoError(t, err)
	assert.Nil(t, g.EOSTokenIDs)

	_, err = LoadGenerationConfig(writeConfig(t, `{"eos_token_id": "x"}`))
	assert.Error(t, err)
}

func TestDefaultsRules(t *testing.T) {
	for _, tc := range []struct {
		name, json string
		want       Params
	}{
		{"empty file is greedy", `{}`,
			Params{Temperature: 0, TopP: 1, RepetitionPenalty: 1}},
		{"do_sample false beats temperature", `{"do_sample": false, "temperature": 0.7, "top_k": 20}`,
			Params{Temperature: 0, TopK: 20, TopP: 1, RepetitionPenalty: 1}},
		{"temperature alone samples", `{"temperature": 0.7}`,
			Params{Temperature: 0.7, TopP: 1, RepetitionPenalty: 1}},
		{"do_sample alone samples at 1", `{"do_sample": true}`,
			Params{Temperature: 1, TopP: 1, RepetitionPenalty: 1}},
		{"every field", `{"do_sample": true, "temperature": 0.8, "top_k": 40, "top_p": 0.9, "min_p": 0.05,
			"repetition_penalty": 1.1, "presence_penalty": 1.5}`,
			Params{Temperature: 0.8, TopK: 40, TopP: 0.9, MinP: 0.05, RepetitionPenalty: 1.1, PresencePenalty: 1.5}},
		{"penalties apply to greedy too", `{"do_sample": false, "repetition_penalty": 1.2}`,
			Params{Temperature: 0, TopP: 1, RepetitionPenalty: 1.2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, err := LoadGenerationConfig(writeConfig(t, tc.json))
			require.NoError(t, err)
			assert.Equal(t, tc.want, g.Defaults())
		})
	}
}

func TestGoldenModelGenerationConfig(t *testing.T) {
	// A file as transformers writes it for a model with no sampling settings.
	g, err := LoadGenerationConfig("../../testdata/golden/tiny-tied-f32/generation_config.json")
	require.NoError(t, err)
	assert.True(t, g.Defaults().Greedy())
}

func TestMalformedAndMissing(t *testing.T) {
	path := writeConfig(t, `{"temperature": 0.6,`)
	_, err := LoadGenerationConfig(path)
	require.Error(t, err)
	assert.Contains(t, err.Error(), path)
	_, ok, err := LoadGenerationConfigIfExists(path)
	assert.Error(t, err)
	assert.False(t, ok)

	missing := filepath.Join(t.TempDir(), "generation_config.json")
	_, err = LoadGenerationConfig(missing)
	assert.Error(t, err)

	g, ok, err := LoadGenerationConfigIfExists(missing)
	require.NoError(t, err)
	assert.False(t, ok)
	assert.Equal(t, GenerationConfig{}, g)

	_, ok, err = LoadGenerationConfigIfExists(writeConfig(t, `{}`))
	require.NoError(t, err)
	assert.True(t, ok)
}
