package main

import (
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/qwgpu/qwgpu/qwen3"
	"github.com/qwgpu/qwgpu/weights"
)

// fixtureSeed seeds the random checkpoints the tests write.
const fixtureSeed = 7

var (
	tokOnce sync.Once
	tokPath string
	tokErr  error
)

// realTokenizer returns the path of the real Qwen3 tokenizer.json,
// gunzipped once from qwen3/tokenizer.
func realTokenizer(t *testing.T) string {
	t.Helper()
	tokOnce.Do(func() {
		tokPath = filepath.Join(workDir, "tokenizer.json")
		tokErr = gunzip(repoRoot("qwen3", "tokenizer", "qwen3_tokenizer.json.gz"), tokPath)
	})
	require.NoError(t, tokErr)
	return tokPath
}

func gunzip(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	zr, err := gzip.NewReader(in)
	if err != nil {
		return err
	}
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, zr); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// configJSON is config.json as a Hugging Face Qwen3 checkpoint (written by
// transformers 4) has it.
func configJSON(c qwen3.Config) map[string]any {
	return map[string]any{
		"architectures":           []string{"Qwen3ForCausalLM"},
		"model_type":              "qwen3",
		"attention_bias":          false,
		"hidden_act":              "silu",
		"vocab_size":              c.VocabSize,
		"hidden_size":             c.HiddenSize,
		"intermediate_size":       c.IntermediateSize,
		"num_hidden_layers":       c.NumHiddenLayers,
		"num_attention_heads":     c.NumAttentionHeads,
		"num_key_value_heads":     c.NumKeyValueHeads,
		"head_dim":                c.HeadDim,
		"rms_norm_eps":            c.RMSNormEps,
		"rope_theta":              c.RopeTheta,
		"rope_scaling":            nil,
		"max_position_embeddings": c.MaxPositionEmbeddings,
		"tie_word_embeddings":     c.TieWordEmbeddings,
		"eos_token_id":            c.EOSTokenIDs,
		"bos_token_id":            151643,
		"use_sliding_window":      false,
		"sliding_window":          nil,
		"torch_dtype":             "bfloat16",
	}
}

func writeJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, b, 0o644))
}

// checkpointTensors builds every tensor the model reads from src.
func checkpointTensors(t *testing.T, cfg qwen3.Config, src qwen3.Source) []weights.WriteTensor {
	t.Helper()
	var ts []weights.WriteTensor
	for _, s := range cfg.AllTensors() {
		x, err := src.Get(s.Name, s.Shape...)
		require.NoError(t, err)
		ts = append(ts, weights.WriteTensor{Name: s.Name, DType: x.DType, Shape: x.Shape, Data: x.Raw})
	}
	return ts
}

// writeCheckpoint writes a Hugging Face model directory: config.json, the
// tensors in one model.safetensors (shards <= 1) or in shards with
// model.safetensors.index.json, generation_config.json as Qwen3 publishes
// it, and the real tokenizer.json.
func writeCheckpoint(t *testing.T, dir string, cfg qwen3.Config, tensors []weights.WriteTensor, shards int) {
	t.Helper()
	require.NoError(t, os.MkdirAll(dir, 0o755))
	writeJSON(t, filepath.Join(dir, "config.json"), configJSON(cfg))
	writeJSON(t, filepath.Join(dir, "generation_config.json"), map[string]any{
		"bos_token_id": 151643, "do_sample": true, "eos_token_id": []int{151645, 151643},
		"pad_token_id": 151643, "temperature": 0.6, "top_k": 20, "top_p": 0.95,
	})
	tok, err := os.ReadFile(realTokenizer(t))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "tokenizer.json"), tok, 0o644))
	writeTensors(t, dir, tensors, shards)
}

// writeTensors writes the safetensors file(s) of a model directory.
func writeTensors(t *testing.T, dir string, tensors []weights.WriteTensor, shards int) {
	t.Helper()
	if shards <= 1 {
		require.NoError(t, weights.WriteFile(filepath.Join(dir, weights.SingleFileName), tensors, map[string]string{"format": "pt"}))
		return
	}
	weightMap := map[string]string{}
	total := 0
	per := (len(tensors) + shards - 1) / shards
	for i := 0; i < shards; i++ {
		part := tensors[i*per : min((i+1)*per, len(tensors))]
		name := fmt.Sprintf("model-%05d-of-%05d.safetensors", i+1, shards)
		require.NoError(t, weights.WriteFile(filepath.Join(dir, name), part, map[string]string{"format": "pt"}))
		for _, x := range part {
			weightMap[x.Name] = name
			total += len(x.Data)
		}
	}
	writeJSON(t, filepath.Join(dir, weights.IndexFileName), map[string]any{
		"metadata": map[string]any{"total_size": total}, "weight_map": weightMap,
	})
}

// tinyConfig is the built-in "tiny" shape (the real vocabulary) with the
// ctx the tests use.
func tinyConfig() qwen3.Config {
	return qwen3.Shapes["tiny"]
}

var (
	tinyOnce                sync.Once
	tinyDir, tinyShardedDir string
)

// tinyCheckpoint writes, once, the "tiny" shape with seeded random bf16
// weights as a checkpoint directory, and the same split in two shards.
func tinyCheckpoint(t *testing.T) (single, sharded string) {
	t.Helper()
	tinyOnce.Do(func() {
		cfg := tinyConfig()
		ts := checkpointTensors(t, cfg, &qwen3.RandomSource{Config: cfg, DType: weights.BF16, Seed: fixtureSeed})
		writeCheckpoint(t, filepath.Join(workDir, "tiny"), cfg, ts, 1)
		writeCheckpoint(t, filepath.Join(workDir, "tiny-sharded"), cfg, ts, 2)
		tinyDir, tinyShardedDir = filepath.Join(workDir, "tiny"), filepath.Join(workDir, "tiny-sharded")
	})
	if tinyDir == "" {
		t.Fatal("writing the tiny checkpoint failed in an earlier test")
	}
	return tinyDir, tinyShardedDir
}

// microConfig is a very small model with the real vocabulary (so the real
// tokenizer fits it), for the bad-input tests: about 10 MB of bf16.
func microConfig() qwen3.Config {
	c := qwen3.Shapes["tiny"]
	c.HiddenSize, c.IntermediateSize, c.NumHiddenLayers = 64, 128, 1
	c.NumAttentionHeads, c.NumKeyValueHeads, c.HeadDim = 2, 1, 32
	return c
}

var (
	microOnce    sync.Once
	microTensors []weights.WriteTensor
)

// microModel writes the micro model into a new directory and returns it;
// edit, if set, changes the tensors first (a copy: the cached ones stay).
func microModel(t *testing.T, edit func(cfg map[string]any, ts []weights.WriteTensor) []weights.WriteTensor) string {
	t.Helper()
	cfg := microConfig()
	microOnce.Do(func() {
		microTensors = checkpointTensors(t, cfg, &qwen3.RandomSource{Config: cfg, DType: weights.BF16, Seed: fixtureSeed})
	})
	ts := make([]weights.WriteTensor, len(microTensors))
	for i, x := range microTensors {
		ts[i] = x
		ts[i].Shape = slices.Clone(x.Shape)
		ts[i].Data = slices.Clone(x.Data)
	}
	dir := t.TempDir()
	writeCheckpoint(t, dir, cfg, nil, 1)
	cj := configJSON(cfg)
	if edit != nil {
		ts = edit(cj, ts)
	}
	writeJSON(t, filepath.Join(dir, "config.json"), cj)
	writeTensors(t, dir, ts, 1)
	return dir
}

// editConfig rewrites a config.json key by key (nil deletes).
func editConfig(t *testing.T, dir string, set map[string]any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "config.json"))
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m))
	for k, v := range maps.All(set) {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	writeJSON(t, filepath.Join(dir, "config.json"), m)
}
