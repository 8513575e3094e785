package qwen3

import (
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/qwgpu/qwgpu/qwen3/tokenizer"
	"github.com/qwgpu/qwgpu/weights"
)

// GGUFModel is a Qwen3 model in one GGUF file, as llama.cpp's converter
// and quantizer write it: the config from the qwen3.* metadata, the tensors
// under their GGUF names (see the table in weights.go), the tokenizer and
// chat template in tokenizer.*. It is a Source: Get takes Hugging Face
// names and returns tensors in the Hugging Face shape, quantized ones as
// stored (Tensor.Float32 decodes them).
type GGUFModel struct {
	File   *weights.GGUFFile
	Config Config
	// ChatTemplate is tokenizer.chat_template, or "" when absent.
	ChatTemplate string
}

// OpenGGUF opens a GGUF file and reads its config. Every tensor the config
// implies must be there with the shape it implies.
func OpenGGUF(path string) (*GGUFModel, error) {
	f, err := weights.OpenGGUF(path)
	if err != nil {
		return nil, err
	}
	m := &GGUFModel{File: f}
	if m.Config, err = ggufConfig(f); err != nil {
		f.Close()
		return nil, err
	}
	if kv, ok := f.Lookup("tokenizer.chat_template"); ok {
		if m.ChatTemplate, err = f.String(kv.Key); err != nil {
			f.Close()
			return nil, err
		}
	}
	for _, s := range m.Config.AllTensors() {
		if _, err := m.Get(s.Name, s.Shape...); err != nil {
			f.Close()
			return nil, err
		}
	}
	return m, nil
}

// Close closes the file; tensors from it must not be used afterwards.
func (m *GGUFModel) Close() error { return m.File.Close() }

// Has reports whether the file holds the tensor with the given Hugging
// Face name.
func (m *GGUFModel) Has(name string) bool {
	g, ok := GGUFName(name)
	if !ok {
		return false
	}
	_, ok = m.File.Info(g)
	return ok
}

// Get returns the tensor with the given Hugging Face name, in the Hugging
// Face shape, checked against shape when given. Errors name both names.
func (m *GGUFModel) Get(name string, shape ...int) (*weights.Tensor, error) {
	g, ok := GGUFName(name)
	if !ok {
		return nil, &weights.Error{Path: m.File.Path(), Tensor: name, Err: errors.New("not a Qwen3 tensor name")}
	}
	t, err := m.File.Tensor(g)
	if err != nil {
		if errors.Is(err, weights.ErrNotFound) {
			return nil, &weights.Error{Path: m.File.Path(), Tensor: g, Err: fmt.Errorf("not found (%s)", name)}
		}
		return nil, err
	}
	if len(shape) > 0 && !slices.Equal(t.Shape, shape) {
		return nil, &weights.Error{Path: m.File.Path(), Tensor: g,
			Err: fmt.Errorf("shape %v (ne %v), want %v for %s", t.Shape, reversed(t.Shape), shape, name)}
	}
	t.Name = name
	return t, nil
}

func reversed(s []int) []int {
	r := slices.Clone(s)
	slices.Reverse(r)
	return r
}

// maxDim bounds the sizes read from metadata (the largest Qwen3 has
// 151936 tokens and 25600-wide MLPs), so a corrupt file cannot ask for
// absurd allocations.
const maxDim = 1 << 24

// ggufConfig reads the Qwen3 config from the metadata. GGUF stores floats
// as float32: eps and rope theta are taken as the shortest decimal that
// float32 rounds to, which recovers the config.json value they came from
// (1e-06, not 9.99999997e-07).
func ggufConfig(f *weights.GGUFFile) (Config, error) {
	arch, err := f.String("general.architecture")
	if err != nil {
		return Config{}, err
	}
	if arch != "qwen3" {
		return Config{}, &weights.Error{Path: f.Path(), Err: fmt.Errorf("general.architecture %q: only dense \"qwen3\" models are supported", arch)}
	}
	var c Config
	ints := []struct {
		key string
		dst *int
	}{
		{"qwen3.embedding_length", &c.HiddenSize},
		{"qwen3.feed_forward_length", &c.IntermediateSize},
		{"qwen3.block_count", &c.NumHiddenLayers},
		{"qwen3.attention.head_count", &c.NumAttentionHeads},
		{"qwen3.context_length", &c.MaxPositionEmbeddings},
	}
	for _, k := range ints {
		if *k.dst, err = f.Int(k.key, maxDim); err != nil {
			return Config{}, err
		}
	}
	c.NumKeyValueHeads = c.NumAttentionHeads // llama.cpp's default
	if _, ok := f.Lookup("qwen3.attention.head_count_kv"); ok {
		if c.NumKeyValueHeads, err = f.Int("qwen3.attention.head_count_kv", maxDim); err != nil {
			return Config{}, err
		}
	}
	if c.NumAttentionHeads > 0 {
		c.HeadDim = c.HiddenSize / c.NumAttentionHeads
	}
	if _, ok := f.Lookup("qwen3.attention.key_length"); ok {
		if c.HeadDim, err = f.Int("qwen3.attention.key_length", maxDim); err != nil {
			return Config{}, err
		}
	}
	if _, ok := f.Lookup("qwen3.attention.value_length"); ok {
		v, err := f.Int("qwen3.attention.value_length", maxDim)
		if err != nil {
			return Config{}, err
		}
		if v != c.HeadDim {
			return Config{}, &weights.Error{Path: f.Path(), Err: fmt.Errorf("qwen3.attention.value_length %d differs from key_length %d, which Qwen3 does not do", v, c.HeadDim)}
		}
	}
	if c.RMSNormEps, err = ggufFloat32(f, "qwen3.attention.layer_norm_rms_epsilon"); err != nil {
		return Config{}, err
	}
	if c.RopeTheta, err = ggufFloat32(f, "qwen3.rope.freq_base"); err != nil {
		return Config{}, err
	}
	if kv, ok := f.Lookup("qwen3.rope.scaling.type"); ok {
		if s, _ := kv.Value.(string); s != "none" && s != "" {
			return Config{}, &weights.Error{Path: f.Path(), Err: fmt.Errorf("qwen3.rope.scaling.type %q: rope scaling is not supported", s)}
		}
	}
	if kv, ok := f.Lookup("qwen3.expert_count"); ok {
		return Config{}, &weights.Error{Path: f.Path(), Err: fmt.Errorf("qwen3.expert_count %v: mixture of experts is not supported", kv.Value)}
	}
	// The vocabulary size is the embedding's row count; a file without an
	// output.weight ties the head to the embedding, as llama.cpp does.
	embed, ok := f.Info("token_embd.weight")
	if !ok {
		return Config{}, &weights.Error{Path: f.Path(), Tensor: "token_embd.weight", Err: errors.New("not found")}
	}
	if len(embed.Shape) != 2 {
		return Config{}, &weights.Error{Path: f.Path(), Tensor: "token_embd.weight", Err: fmt.Errorf("ne %v is not 2-D", embed.NE)}
	}
	c.VocabSize = embed.Shape[0]
	_, hasOutput := f.Info("output.weight")
	c.TieWordEmbeddings = !hasOutput
	if _, ok := f.Lookup("tokenizer.ggml.eos_token_id"); ok {
		id, err := f.Int("tokenizer.ggml.eos_token_id", maxDim)
		if err != nil {
			return Config{}, err
		}
		c.EOSTokenIDs = []int{id}
	}
	if err := c.Validate(); err != nil {
		return Config{}, &weights.Error{Path: f.Path(), Err: fmt.Errorf("qwen3.* metadata: %v", err)}
	}
	return c, nil
}

// ggufFloat32 reads a float metadata value, as the shortest decimal that
// rounds to the same float32.
func ggufFloat32(f *weights.GGUFFile, key string) (float64, error) {
	v, err := f.Float(key)
	if err != nil {
		return 0, err
	}
	d, _ := strconv.ParseFloat(strconv.FormatFloat(v, 'g', -1, 32), 64)
	return d, nil
}

// Tokenizer builds the tokenizer from tokenizer.ggml.*: it must be a GPT-2
// style byte-level BPE with Qwen2's pre-tokenizer, which is what Qwen3 uses.
func (m *GGUFModel) Tokenizer() (*tokenizer.Tokenizer, error) {
	return GGUFTokenizer(m.File)
}

// GGUFTokenizer builds a tokenizer from a GGUF file's tokenizer.ggml.*
// metadata (a vocab-only file will do).
func GGUFTokenizer(f *weights.GGUFFile) (*tokenizer.Tokenizer, error) {
	for _, kw := range [][2]string{{"tokenizer.ggml.model", "gpt2"}, {"tokenizer.ggml.pre", "qwen2"}} {
		key, want := kw[0], kw[1]
		got, err := f.String(key)
		if err != nil {
			return nil, err
		}
		if got != want {
			return nil, &weights.Error{Path: f.Path(), Err: fmt.Errorf("%s %q: only Qwen3's tokenizer (%q) is supported", key, got, want)}
		}
	}
	var v tokenizer.Vocab
	var err error
	if v.Tokens, err = f.Strings("tokenizer.ggml.tokens"); err != nil {
		return nil, err
	}
	if v.Types, err = f.Ints("tokenizer.ggml.token_type"); err != nil {
		return nil, err
	}
	if v.Merges, err = f.Strings("tokenizer.ggml.merges"); err != nil {
		return nil, err
	}
	return tokenizer.FromVocab(v, f.Path())
}
