package qwen3

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/qwgpu/qwgpu/weights"
)

// CheckpointFiles describes a model directory to write.
type CheckpointFiles struct {
	Config    Config
	Source    Source // the tensors, e.g. a RandomSource
	Shards    int    // <= 1: one model.safetensors; more: shards and an index
	Tokenizer []byte // tokenizer.json contents
	TorchType string // "bfloat16", "float32", ... for config.json
}

// WriteCheckpoint writes a Hugging Face Qwen3 model directory in the
// layout the published checkpoints use: config.json as transformers 4
// writes it (top-level rope_theta), the tensors in model.safetensors or in
// shards with model.safetensors.index.json, generation_config.json with
// Qwen3's sampling defaults, and tokenizer.json. It holds one shard's
// tensors in memory at a time.
func WriteCheckpoint(dir string, f CheckpointFiles) error {
	c := f.Config
	if err := c.Validate(); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	config := map[string]any{
		"architectures": []string{"Qwen3ForCausalLM"}, "model_type": "qwen3", "attention_bias": false,
		"hidden_act": "silu", "vocab_size": c.VocabSize, "hidden_size": c.HiddenSize,
		"intermediate_size": c.IntermediateSize, "num_hidden_layers": c.NumHiddenLayers,
		"num_attention_heads": c.NumAttentionHeads, "num_key_value_heads": c.NumKeyValueHeads,
		"head_dim": c.HeadDim, "rms_norm_eps": c.RMSNormEps, "rope_theta": c.RopeTheta, "rope_scaling": nil,
		"max_position_embeddings": c.MaxPositionEmbeddings, "tie_word_embeddings": c.TieWordEmbeddings,
		"eos_token_id": 151645, "bos_token_id": 151643, "use_sliding_window": false, "sliding_window": nil,
		"torch_dtype": f.TorchType,
	}
	gen := map[string]any{
		"bos_token_id": 151643, "do_sample": true, "eos_token_id": []int{151645, 151643},
		"pad_token_id": 151643, "temperature": 0.6, "top_k": 20, "top_p": 0.95,
	}
	for name, v := range map[string]any{"config.json": config, "generation_config.json": gen} {
		if err := writeJSON(filepath.Join(dir, name), v); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "tokenizer.json"), f.Tokenizer, 0o644); err != nil {
		return err
	}

	specs := c.AllTensors()
	shards := max(f.Shards, 1)
	if shards > len(specs) {
		return fmt.Errorf("%d shards for %d tensors", shards, len(specs))
	}
	weightMap := map[string]string{}
	for s := 0; s < shards; s++ {
		part := specs[s*len(specs)/shards : (s+1)*len(specs)/shards]
		var ts []weights.WriteTensor
		for _, spec := range part {
			t, err := f.Source.Get(spec.Name, spec.Shape...)
			if err != nil {
				return err
			}
			ts = append(ts, weights.WriteTensor{Name: spec.Name, DType: t.DType, Shape: t.Shape, Data: t.Raw})
		}
		name := weights.SingleFileName
		if shards > 1 {
			name = fmt.Sprintf("model-%05d-of-%05d.safetensors", s+1, shards)
		}
		if err := weights.WriteFile(filepath.Join(dir, name), ts, map[string]string{"format": "pt"}); err != nil {
			return err
		}
		for _, t := range ts {
			weightMap[t.Name] = name
		}
	}
	if shards > 1 {
		return writeJSON(filepath.Join(dir, weights.IndexFileName), map[string]any{
			"metadata": map[string]any{}, "weight_map": weightMap,
		})
	}
	return nil
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
