package qwen3

import (
	"fmt"

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

// TensorSpec names one checkpoint tensor and its expected shape.
type TensorSpec struct {
	Name  string
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

// LayerTensors lists the tensors of decoder layer i in the order the
// forward pass uses them (indexed by InputNorm ... DownProj), with the
// shapes the config implies.
func (c Config) LayerTensors(i int) []TensorSpec {
	p := LayerPrefix(i)
	h, q, kv, in, hd := c.HiddenSize, c.QDim(), c.KVDim(), c.IntermediateSize, c.HeadDim
	return []TensorSpec{
		{p + "input_layernorm.weight", []int{h}},
		{p + "self_attn.q_proj.weight", []int{q, h}},
		{p + "self_attn.k_proj.weight", []int{kv, h}},
		{p + "self_attn.v_proj.weight", []int{kv, h}},
		{p + "self_attn.q_norm.weight", []int{hd}},
		{p + "self_attn.k_norm.weight", []int{hd}},
		{p + "self_attn.o_proj.weight", []int{h, q}},
		{p + "post_attention_layernorm.weight", []int{h}},
		{p + "mlp.gate_proj.weight", []int{in, h}},
		{p + "mlp.up_proj.weight", []int{in, h}},
		{p + "mlp.down_proj.weight", []int{h, in}},
	}
}

// AllTensors lists every tensor the model reads. When the embeddings are
// tied, lm_head.weight is not read even if the file has it (as transformers
// does).
func (c Config) AllTensors() []TensorSpec {
	specs := []TensorSpec{{NameEmbed, []int{c.VocabSize, c.HiddenSize}}}
	for i := 0; i < c.NumHiddenLayers; i++ {
		specs = append(specs, c.LayerTensors(i)...)
	}
	specs = append(specs, TensorSpec{NameFinalNorm, []int{c.HiddenSize}})
	if !c.TieWordEmbeddings {
		specs = append(specs, TensorSpec{NameLMHead, []int{c.VocabSize, c.HiddenSize}})
	}
	return specs
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
	if w.Embed, err = get(TensorSpec{NameEmbed, []int{c.VocabSize, c.HiddenSize}}); err != nil {
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
	if w.FinalNorm, err = get(TensorSpec{NameFinalNorm, []int{c.HiddenSize}}); err != nil {
		return nil, err
	}
	if c.TieWordEmbeddings {
		w.LMHead = w.Embed
	} else if w.LMHead, err = get(TensorSpec{NameLMHead, []int{c.VocabSize, c.HiddenSize}}); err != nil {
		return nil, err
	}
	return w, nil
}
