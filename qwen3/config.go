// Package qwen3 holds the Qwen3 model definition: its configuration, the
// weights by their Hugging Face names, and a pure-Go CPU reference forward
// pass that every GPU kernel is checked against.
package qwen3

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"

	"github.com/qwgpu/qwgpu/weights"
)

// Config is the subset of a Hugging Face Qwen3 config.json that the model
// needs. Field names follow config.json.
type Config struct {
	VocabSize             int     `json:"vocab_size"`
	HiddenSize            int     `json:"hidden_size"`
	IntermediateSize      int     `json:"intermediate_size"`
	NumHiddenLayers       int     `json:"num_hidden_layers"`
	NumAttentionHeads     int     `json:"num_attention_heads"`
	NumKeyValueHeads      int     `json:"num_key_value_heads"`
	HeadDim               int     `json:"head_dim"`
	RMSNormEps            float64 `json:"rms_norm_eps"`
	RopeTheta             float64 `json:"rope_theta"`
	MaxPositionEmbeddings int     `json:"max_position_embeddings"`
	TieWordEmbeddings     bool    `json:"tie_word_embeddings"`
	// EOSTokenIDs is eos_token_id as a list; config.json may give an int,
	// a list or null.
	EOSTokenIDs []int `json:"-"`
	// TorchDtype is the checkpoint's declared dtype ("bfloat16", ...), informational.
	TorchDtype string `json:"-"`
	// RopeScaling is nil for plain RoPE; it holds YaRN's parameters when
	// config.json asks for them (rope_scaling or rope_parameters).
	RopeScaling *RopeScaling `json:"-"`
}

// rawConfig mirrors config.json loosely so that presence, alternative
// spellings and unsupported options can be told apart.
type rawConfig struct {
	Architectures    []string        `json:"architectures"`
	ModelType        string          `json:"model_type"`
	HiddenAct        string          `json:"hidden_act"`
	AttentionBias    bool            `json:"attention_bias"`
	UseSlidingWindow bool            `json:"use_sliding_window"`
	NumExperts       int             `json:"num_experts"`
	LayerTypes       []string        `json:"layer_types"`
	EOSTokenID       json.RawMessage `json:"eos_token_id"`
	TorchDtype       string          `json:"torch_dtype"`
	Dtype            string          `json:"dtype"`
	QuantizationCf   json.RawMessage `json:"quantization_config"`
}

// LoadConfig reads and validates a config.json.
func LoadConfig(path string) (Config, error) {
	data, err := weights.ReadFileLimited(path, weights.MaxConfigBytes)
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	c, err := ParseConfig(data)
	if err != nil {
		return Config{}, fmt.Errorf("config: %s: %w", path, err)
	}
	return c, nil
}

// LoadConfigDir reads config.json from a model directory.
func LoadConfigDir(dir string) (Config, error) {
	return LoadConfig(filepath.Join(dir, "config.json"))
}

// ParseConfig decodes and validates config.json contents. It accepts the
// rope theta both at the top level (transformers 4, the published Qwen3
// checkpoints) and inside "rope_parameters" (transformers 5).
func ParseConfig(data []byte) (Config, error) {
	if err := checkJSONShape(data); err != nil {
		return Config{}, err
	}
	var present map[string]json.RawMessage
	if err := json.Unmarshal(data, &present); err != nil {
		return Config{}, fmt.Errorf("invalid JSON: %v", err)
	}
	var c Config
	if err := json.Unmarshal(data, &c); err != nil {
		return Config{}, fieldError(err)
	}
	var raw rawConfig
	if err := json.Unmarshal(data, &raw); err != nil {
		return Config{}, fieldError(err)
	}
	has := func(k string) bool {
		v, ok := present[k]
		return ok && string(v) != "null"
	}
	for _, k := range []string{"vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
		"num_attention_heads", "num_key_value_heads", "rms_norm_eps", "max_position_embeddings"} {
		if !has(k) {
			return Config{}, fmt.Errorf("missing field %q", k)
		}
	}

	// Refuse what this engine does not compute rather than compute something else.
	if raw.ModelType != "" && raw.ModelType != "qwen3" {
		return Config{}, fmt.Errorf("unsupported model_type %q (only dense \"qwen3\" is supported)", raw.ModelType)
	}
	for _, a := range raw.Architectures {
		if a != "Qwen3ForCausalLM" {
			return Config{}, fmt.Errorf("unsupported architecture %q (only Qwen3ForCausalLM)", a)
		}
	}
	if raw.NumExperts > 0 {
		return Config{}, fmt.Errorf("unsupported: mixture of experts (num_experts=%d)", raw.NumExperts)
	}
	if raw.UseSlidingWindow {
		return Config{}, fmt.Errorf("unsupported: sliding window attention (use_sliding_window=true)")
	}
	for i, t := range raw.LayerTypes {
		if t != "full_attention" {
			return Config{}, fmt.Errorf("unsupported: layer_types[%d]=%q (only full_attention)", i, t)
		}
	}
	if len(raw.QuantizationCf) > 0 && string(raw.QuantizationCf) != "null" {
		return Config{}, fmt.Errorf("unsupported: quantization_config (quantized checkpoints)")
	}
	if raw.HiddenAct != "" && raw.HiddenAct != "silu" {
		return Config{}, fmt.Errorf("unsupported hidden_act %q (only silu)", raw.HiddenAct)
	}
	if raw.AttentionBias {
		return Config{}, fmt.Errorf("unsupported: attention_bias=true")
	}

	if err := parseRope(present, &c); err != nil {
		return Config{}, err
	}
	if !has("head_dim") && c.NumAttentionHeads > 0 {
		c.HeadDim = c.HiddenSize / c.NumAttentionHeads // transformers' default
	}
	ids, err := parseIDs(raw.EOSTokenID)
	if err != nil {
		return Config{}, fmt.Errorf("eos_token_id: %v", err)
	}
	c.EOSTokenIDs = ids
	c.TorchDtype = raw.TorchDtype
	if c.TorchDtype == "" {
		c.TorchDtype = raw.Dtype
	}
	return c, c.Validate()
}

// Validate checks sizes for consistency.
func (c Config) Validate() error {
	pos := []struct {
		name string
		v    int
	}{
		{"vocab_size", c.VocabSize}, {"hidden_size", c.HiddenSize}, {"intermediate_size", c.IntermediateSize},
		{"num_hidden_layers", c.NumHiddenLayers}, {"num_attention_heads", c.NumAttentionHeads},
		{"num_key_value_heads", c.NumKeyValueHeads}, {"head_dim", c.HeadDim},
		{"max_position_embeddings", c.MaxPositionEmbeddings},
	}
	for _, p := range pos {
		if p.v <= 0 {
			return fmt.Errorf("%s must be > 0, got %d", p.name, p.v)
		}
	}
	if c.NumAttentionHeads%c.NumKeyValueHeads != 0 {
		return fmt.Errorf("num_attention_heads (%d) is not divisible by num_key_value_heads (%d)",
			c.NumAttentionHeads, c.NumKeyValueHeads)
	}
	if c.HeadDim%2 != 0 {
		return fmt.Errorf("head_dim must be even for RoPE, got %d", c.HeadDim)
	}
	if !(c.RMSNormEps > 0) {
		return fmt.Errorf("rms_norm_eps must be > 0, got %g", c.RMSNormEps)
	}
	if !(c.RopeTheta > 0) {
		return fmt.Errorf("rope_theta must be > 0, got %g", c.RopeTheta)
	}
	return c.checkBounds()
}

// QDim is the width of the query projection output (heads × head_dim).
func (c Config) QDim() int { return c.NumAttentionHeads * c.HeadDim }

// KVDim is the width of the key and value projection outputs.
func (c Config) KVDim() int { return c.NumKeyValueHeads * c.HeadDim }

// GroupSize is how many query heads share one KV head.
func (c Config) GroupSize() int { return c.NumAttentionHeads / c.NumKeyValueHeads }

// NumParams counts the model's parameters (the head once when tied).
func (c Config) NumParams() int64 {
	h, q, kv, in := int64(c.HiddenSize), int64(c.QDim()), int64(c.KVDim()), int64(c.IntermediateSize)
	layer := 2*h + 2*int64(c.HeadDim) + h*q + 2*h*kv + q*h + 3*h*in
	n := int64(c.VocabSize)*h + int64(c.NumHiddenLayers)*layer + h
	if !c.TieWordEmbeddings {
		n += int64(c.VocabSize) * h
	}
	return n
}

// fieldError names the config.json field a decoding error is about in
// JSON's terms, rather than the Go types encoding/json names.
func fieldError(err error) error {
	var te *json.UnmarshalTypeError
	if !errors.As(err, &te) || te.Field == "" {
		return fmt.Errorf("invalid field: %v", err)
	}
	want := "a " + te.Type.Kind().String()
	switch te.Type.Kind() {
	case reflect.Int, reflect.Int64, reflect.Uint64:
		want = "an integer"
	case reflect.Float64:
		want = "a number"
	case reflect.Bool:
		want = "true or false"
	case reflect.String:
		want = "a string"
	case reflect.Slice:
		want = "a list"
	case reflect.Struct, reflect.Map, reflect.Pointer:
		want = "an object"
	}
	return fmt.Errorf("field %q: want %s, got %s", te.Field, want, te.Value)
}

func parseIDs(raw json.RawMessage) ([]int, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var one int
	if err := json.Unmarshal(raw, &one); err == nil {
		return []int{one}, nil
	}
	var many []int
	if err := json.Unmarshal(raw, &many); err != nil {
		return nil, fmt.Errorf("want an int or a list of ints, got %s", compact(raw))
	}
	return many, nil
}

func compact(raw json.RawMessage) string {
	s := strings.Join(strings.Fields(string(raw)), " ")
	if len(s) > 80 {
		s = s[:77] + "..."
	}
	return s
}
