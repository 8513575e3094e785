package qwen3

import (
	"bytes"
	"fmt"
)

// Bounds on config.json's counts. Every one is far above any published
// Qwen3 (the 235B model has 94 layers, hidden size 4096, 64 heads,
// 151936 tokens, 40960 positions, 262144 with YaRN) and low enough that
// no size computed from them overflows an int64: a config asking for a
// million layers or 2^62 positions is refused before it drives any
// allocation or estimate.
const (
	MaxVocabSize             = 1 << 22
	MaxHiddenSize            = 1 << 16
	MaxIntermediateSize      = 1 << 18
	MaxHiddenLayers          = 1 << 10
	MaxAttentionHeads        = 1 << 10
	MaxHeadDim               = 1 << 10
	MaxPositionEmbeddingsCap = 1 << 28
)

// Ranges in which rms_norm_eps and rope_theta leave the model numerically
// meaningful: an eps near the activations' mean square flattens every
// norm, one below float32's normal range divides zero rows by zero; a
// rope_theta below a few hundred folds every position onto a few angles,
// and a tiny one overflows the inverse frequencies to infinity.
const (
	MinRMSNormEps = 1e-12
	MaxRMSNormEps = 0.1
	MinRopeTheta  = 100
	MaxRopeTheta  = 1e12
)

// checkBounds refuses counts and constants outside the ranges above.
func (c Config) checkBounds() error {
	for _, b := range []struct {
		name   string
		v, max int
	}{
		{"vocab_size", c.VocabSize, MaxVocabSize}, {"hidden_size", c.HiddenSize, MaxHiddenSize},
		{"intermediate_size", c.IntermediateSize, MaxIntermediateSize}, {"num_hidden_layers", c.NumHiddenLayers, MaxHiddenLayers},
		{"num_attention_heads", c.NumAttentionHeads, MaxAttentionHeads}, {"num_key_value_heads", c.NumKeyValueHeads, MaxAttentionHeads},
		{"head_dim", c.HeadDim, MaxHeadDim}, {"max_position_embeddings", c.MaxPositionEmbeddings, MaxPositionEmbeddingsCap},
	} {
		if b.v > b.max {
			return fmt.Errorf("%s %d is above the %d this engine supports", b.name, b.v, b.max)
		}
	}
	if !(c.RMSNormEps >= MinRMSNormEps && c.RMSNormEps <= MaxRMSNormEps) {
		return fmt.Errorf("rms_norm_eps %g is outside [%g, %g] (Qwen3 uses 1e-06)", c.RMSNormEps, MinRMSNormEps, MaxRMSNormEps)
	}
	if !(c.RopeTheta >= MinRopeTheta && c.RopeTheta <= MaxRopeTheta) {
		return fmt.Errorf("rope_theta %g is outside [%g, %g] (Qwen3 uses 1000000)", c.RopeTheta, float64(MinRopeTheta), float64(MaxRopeTheta))
	}
	return nil
}

// checkJSONShape explains, in one line, the two ways a config.json that
// is valid text is still not a JSON object: a byte order mark that
// Windows editors add, and a top-level array or value.
func checkJSONShape(data []byte) error {
	if bytes.HasPrefix(data, []byte("\xef\xbb\xbf")) {
		return fmt.Errorf("starts with a UTF-8 byte order mark, which JSON does not allow: save the file without it")
	}
	t := bytes.TrimLeft(data, " \t\r\n")
	if len(t) == 0 {
		return fmt.Errorf("empty file: want a JSON object")
	}
	if t[0] != '{' {
		what := "a JSON value"
		if t[0] == '[' {
			what = "a JSON array"
		}
		return fmt.Errorf("is %s, not the JSON object a config is", what)
	}
	return nil
}
