package qwen3

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/qwgpu/qwgpu/weights"
)

// Source provides checkpoint tensors by their exact Hugging Face names,
// checking the expected shape. *weights.Checkpoint is one; a synthetic
// random model is another.
type Source interface {
	Get(name string, shape ...int) (*weights.Tensor, error)
	Has(name string) bool
}

// Hugging Face tensor names, built from one prefix per layer.
const (
	NameEmbed     = "model.embed_tokens.weight"
	NameFinalNorm = "model.norm.weight"
	NameLMHead    = "lm_head.weight"
)

// LayerPrefix is the name prefix of decoder layer i.
func LayerPrefix(i int) string { return fmt.Sprintf("model.layers.%d.", i) }

// ggufLayerPrefix is the GGUF name prefix of decoder layer i.
func ggufLayerPrefix(i int) string { return fmt.Sprintf("blk.%d.", i) }

// TensorSpec names one checkpoint tensor and its expected shape (Hugging
// Face order: [out, in] for a Linear weight).
type TensorSpec struct {
	Name  string // Hugging Face name
	GGUF  string // the name llama.cpp's converter gives it in a GGUF file
	Shape []int
}

// The positions of a layer's tensors in LayerTensors, for code that needs
// one of them by what it is.
const (
	InputNorm = iota
	QProj
	KProj
	VProj
	QNorm
	KNorm
	OProj
	PostAttentionNorm
	GateProj
	UpProj
	DownProj
)

// The one table of the tensors a Qwen3 model reads: Hugging Face name,
// GGUF name, and shape from the config. Layer entries are suffixes after
// LayerPrefix / ggufLayerPrefix, in the order the forward pass uses them.
var (
	globalTensors = []struct {
		hf, gguf string
		shape    func(c Config) []int
	}{
		{NameEmbed, "token_embd.weight", func(c Config) []int { return []int{c.VocabSize, c.HiddenSize} }},
		{NameFinalNorm, "output_norm.weight", func(c Config) []int { return []int{c.HiddenSize} }},
		{NameLMHead, "output.weight", func(c Config) []int { return []int{c.VocabSize, c.HiddenSize} }},
	}
	layerTensors = []struct {
		hf, gguf string
		shape    func(c Config) []int
	}{
		{"input_layernorm.weight", "attn_norm.weight", func(c Config) []int { return []int{c.HiddenSize} }},
		{"self_attn.q_proj.weight", "attn_q.weight", func(c Config) []int { return []int{c.QDim(), c.HiddenSize} }},
		{"self_attn.k_proj.weight", "attn_k.weight", func(c Config) []int { return []int{c.KVDim(), c.HiddenSize} }},
		{"self_attn.v_proj.weight", "attn_v.weight", func(c Config) []int { return []int{c.KVDim(), c.HiddenSize} }},
		{"self_attn.q_norm.weight", "attn_q_norm.weight", func(c Config) []int { return []int{c.HeadDim} }},
		{"self_attn.k_norm.weight", "attn_k_norm.weight", func(c Config) []int { return []int{c.HeadDim} }},
		{"self_attn.o_proj.weight", "attn_output.weight", func(c Config) []int { return []int{c.HiddenSize, c.QDim()} }},
		{"post_attention_layernorm.weight", "ffn_norm.weight", func(c Config) []int { return []int{c.HiddenSize} }},
		{"mlp.gate_proj.weight", "ffn_gate.weight", func(c Config) []int { return []int{c.IntermediateSize, c.HiddenSize} }},
		{"mlp.up_proj.weight", "ffn_up.weight", func(c Config) []int { return []int{c.IntermediateSize, c.HiddenSize} }},
		{"mlp.down_proj.weight", "ffn_down.weight", func(c Config) []int { return []int{c.HiddenSize, c.IntermediateSize} }},
	}
)

// globalSpec is the spec of one of the tensors outside the layers.
func (c Config) globalSpec(hf string) TensorSpec {
	for _, g := range globalTensors {
		if g.hf == hf {
			return TensorSpec{g.hf, g.gguf, g.shape(c)}
		}
	}
	panic("qwen3: no tensor " + hf) // only called with the Name constants
}

// LayerTensors lists the tensors of decoder layer i in the order the
// forward pass uses them (indexed by InputNorm ... DownProj), with the
// shapes the config implies.
func (c Config) LayerTensors(i int) []TensorSpec {
	specs := make([]TensorSpec, len(layerTensors))
	for j, l := range layerTensors {
		specs[j] = TensorSpec{LayerPrefix(i) + l.hf, ggufLayerPrefix(i) + l.gguf, l.shape(c)}
	}
	return specs
}

// AllTensors lists every tensor the model reads. When the embeddings are
// tied, lm_head.weight is not read even if the file has it (as transformers
// does).
func (c Config) AllTensors() []TensorSpec {
	specs := []TensorSpec{c.globalSpec(NameEmbed)}
	for i := 0; i < c.NumHiddenLayers; i++ {
		specs = append(specs, c.LayerTensors(i)...)
	}
	specs = append(specs, c.globalSpec(NameFinalNorm))
	if !c.TieWordEmbeddings {
		specs = append(specs, c.globalSpec(NameLMHead))
	}
	return specs
}

// GGUFName returns the GGUF name of a Hugging Face tensor name of a Qwen3
// model, such as "blk.3.attn_q.weight" for
// "model.layers.3.self_attn.q_proj.weight".
func GGUFName(hf string) (string, bool) {
	for _, g := range globalTensors {
		if g.hf == hf {
			return g.gguf, true
		}
	}
	if layer, rest, ok := splitLayerName(hf, "model.layers."); ok {
		for _, l := range layerTensors {
			if l.hf == rest {
				return ggufLayerPrefix(layer) + l.gguf, true
			}
		}
	}
	return "", false
}

// HFName is GGUFName the other way round.
func HFName(gguf string) (string, bool) {
	for _, g := range globalTensors {
		if g.gguf == gguf {
			return g.hf, true
		}
	}
	if layer, rest, ok := splitLayerName(gguf, "blk."); ok {
		for _, l := range layerTensors {
			if l.gguf == rest {
				return LayerPrefix(layer) + l.hf, true
			}
		}
	}
	return "", false
}

// splitLayerName splits prefix + "<n>." + rest into n and rest.
func splitLayerName(name, prefix string) (int, string, bool) {
	num, rest, ok := strings.Cut(strings.TrimPrefix(name, prefix), ".")
	if !ok || !strings.HasPrefix(name, prefix) || num == "" || len(num) > 6 {
		return 0, "", false
	}
	n, err := strconv.Atoi(num)
	if err != nil || n < 0 || strconv.Itoa(n) != num {
		return 0, "", false
	}
	return n, rest, true
}

// LayerWeights holds one decoder layer in float32, row-major with the
// Hugging Face Linear layout [out, in].
type LayerWeights struct {
	AttnNorm []float32 // [hidden] input_layernorm
	Wq       []float32 // [heads·head_dim, hidden]
	Wk       []float32 // [kv_heads·head_dim, hidden]
	Wv       []float32 // [kv_heads·head_dim, hidden]
	QNorm    []float32 // [head_dim], shared by all query heads
	KNorm    []float32 // [head_dim], shared by all KV heads
	Wo       []float32 // [hidden, heads·head_dim]
	MLPNorm  []float32 // [hidden] post_attention_layernorm
	Gate     []float32 // [intermediate, hidden]
	Up       []float32 // [intermediate, hidden]
	Down     []float32 // [hidden, intermediate]
}

// Weights holds the whole model in float32 for the CPU reference.
type Weights struct {
	Embed     []float32 // [vocab, hidden]
	Layers    []LayerWeights
	FinalNorm []float32 // [hidden]
	LMHead    []float32 // [vocab, hidden]; the same slice as Embed when tied
}

// LoadWeights reads every tensor the config names from src, converting
// to float32.
func LoadWeights(c Config, src Source) (*Weights, error) {
	get := func(s TensorSpec) ([]float32, error) {
		t, err := src.Get(s.Name, s.Shape...)
		if err != nil {
			return nil, err
		}
		return t.Float32()
	}
	w := &Weights{Layers: make([]LayerWeights, c.NumHiddenLayers)}
	var err error
	if w.Embed, err = get(c.globalSpec(NameEmbed)); err != nil {
		return nil, err
	}
	for i := range w.Layers {
		specs := c.LayerTensors(i)
		l := &w.Layers[i]
		dst := []*[]float32{&l.AttnNorm, &l.Wq, &l.Wk, &l.Wv, &l.QNorm, &l.KNorm, &l.Wo, &l.MLPNorm, &l.Gate, &l.Up, &l.Down}
		for j, s := range specs {
			if *dst[j], err = get(s); err != nil {
				return nil, err
			}
		}
	}
	if w.FinalNorm, err = get(c.globalSpec(NameFinalNorm)); err != nil {
		return nil, err
	}
	if c.TieWordEmbeddings {
		w.LMHead = w.Embed
	} else if w.LMHead, err = get(c.globalSpec(NameLMHead)); err != nil {
		return nil, err
	}
	return w, nil
}
