package weights

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

const goldenDir = "../testdata/golden"

// goldenConfig is the part of a model's config.json that fixes tensor shapes.
type goldenConfig struct {
	VocabSize        int  `json:"vocab_size"`
	HiddenSize       int  `json:"hidden_size"`
	IntermediateSize int  `json:"intermediate_size"`
	Layers           int  `json:"num_hidden_layers"`
	Heads            int  `json:"num_attention_heads"`
	KVHeads          int  `json:"num_key_value_heads"`
	HeadDim          int  `json:"head_dim"`
	Tied             bool `json:"tie_word_embeddings"`
}

// expectedShapes lists every tensor a Qwen3 checkpoint holds, with its
// shape, as derived from the config.
func expectedShapes(c goldenConfig) map[string][]int {
	m := map[string][]int{
		"model.embed_tokens.weight": {c.VocabSize, c.HiddenSize},
		"model.norm.weight":         {c.HiddenSize},
	}
	if !c.Tied {
		m["lm_head.weight"] = []int{c.VocabSize, c.HiddenSize}
	}
	for i := range c.Layers {
		p := fmt.Sprintf("model.layers.%d.", i)
		m[p+"input_layernorm.weight"] = []int{c.HiddenSize}
		m[p+"post_attention_layernorm.weight"] = []int{c.HiddenSize}
		m[p+"self_attn.q_proj.weight"] = []int{c.Heads * c.HeadDim, c.HiddenSize}
		m[p+"self_attn.k_proj.weight"] = []int{c.KVHeads * c.HeadDim, c.HiddenSize}
		m[p+"self_attn.v_proj.weight"] = []int{c.KVHeads * c.HeadDim, c.HiddenSize}
		m[p+"self_attn.o_proj.weight"] = []int{c.HiddenSize, c.Heads * c.HeadDim}
		m[p+"self_attn.q_norm.weight"] = []int{c.HeadDim}
		m[p+"self_attn.k_norm.weight"] = []int{c.HeadDim}
		m[p+"mlp.gate_proj.weight"] = []int{c.IntermediateSize, c.HiddenSize}
		m[p+"mlp.up_proj.weight"] = []int{c.IntermediateSize, c.HiddenSize}
		m[p+"mlp.down_proj.weight"] = []int{c.HiddenSize, c.IntermediateSize}
	}
	return m
}

func TestGoldenModels(t *testing.T) {
	cases := []struct {
		model string
		dtype DType
		// First four raw elements of model.norm.weight, read with an
		// independent Python reader.
		normHead []uint32
		// Expected count of k_norm weights forced into [20, 90] per layer
		// (an eighth of head_dim in the "extreme k" models, none otherwise).
		bigKNorm int
	}{
		{"tiny-tied-f32", F32, []uint32{1066113809, 1067687217, 1062830635, 1061478492}, 0},
		{"gqa-untied-extremek-f32", F32, []uint32{1067050945, 1066550115, 1063695795, 1063468523}, 4},
		{"small-tied-bf16", BF16, []uint32{0x3f80, 0x3f4a, 0x3f7f, 0x3f6d}, 8},
	}
	for _, tc := range cases {
		t.Run(tc.model, func(t *testing.T) {
			dir := filepath.Join(goldenDir, tc.model)
			cfgJSON, err := os.ReadFile(filepath.Join(dir, "config.json"))
			require.NoError(t, err)
			var cfg goldenConfig
			require.NoError(t, json.Unmarshal(cfgJSON, &cfg))

			c, err := OpenCheckpoint(dir)
			require.NoError(t, err)
			defer c.Close()

			want := expectedShapes(cfg)
			require.Len(t, c.Names(), len(want), "tensor count")
			require.Equal(t, !cfg.Tied, c.Has("lm_head.weight"))
			for name, shape := range want {
				tensor, err := c.Get(name, shape...)
				require.NoError(t, err)
				require.Equal(t, tc.dtype, tensor.DType, name)
				require.NoError(t, tensor.CheckFinite(), name)
			}

			norm, err := c.Get("model.norm.weight", cfg.HiddenSize)
			require.NoError(t, err)
			vals, err := norm.Float32()
			require.NoError(t, err)
			for i, bits := range tc.normHead {
				var want float32
				if tc.dtype == BF16 {
					want = math.Float32frombits(bits << 16)
				} else {
					want = math.Float32frombits(bits)
				}
				require.Equal(t, want, vals[i], "model.norm.weight[%d]", i)
			}
			// Norm weights are drawn as 1 + 0.2·N(0,1).
			var sum float64
			for _, v := range vals {
				sum += float64(v)
			}
			mean := sum / float64(len(vals))
			require.Greater(t, mean, 0.5)
			require.Less(t, mean, 1.5)

			if tc.dtype == BF16 {
				// Every element equals its top-16-bits reference.
				embed, err := c.Get("model.embed_tokens.weight")
				require.NoError(t, err)
				got, err := embed.Float32()
				require.NoError(t, err)
				for i := range got {
					ref := math.Float32frombits(uint32(binary.LittleEndian.Uint16(embed.Raw[2*i:])) << 16)
					if got[i] != ref {
						require.Equal(t, ref, got[i], "element %d", i)
					}
				}
			}

			for i := range cfg.Layers {
				k, err := c.Get(fmt.Sprintf("model.layers.%d.self_attn.k_norm.weight", i), cfg.HeadDim)
				require.NoError(t, err)
				kv, err := k.Float32()
				require.NoError(t, err)
				big := 0
				for _, v := range kv {
					if v >= 20 && v <= 90 {
						big++
					}
				}
				require.Equal(t, tc.bigKNorm, big, "layer %d k_norm entries in [20, 90]", i)
			}
		})
	}
}

func TestGoldenOutputsFile(t *testing.T) {
	path := filepath.Join(goldenDir, "tiny-tied-f32", "golden.safetensors")
	f, err := Open(path)
	require.NoError(t, err)
	defer f.Close()
	require.Nil(t, f.Metadata())
	// Three cases, each with input_ids, greedy, greedy_margin, logits and
	// hidden.0..2 (two layers plus the embedding output).
	require.Len(t, f.Names(), 3*7)

	ids, err := f.Tensor("case1.input_ids")
	require.NoError(t, err)
	require.Equal(t, I32, ids.DType)
	require.Equal(t, []int{7}, ids.Shape)
	got, err := ids.Int32()
	require.NoError(t, err)
	require.Equal(t, []int32{11, 337, 326, 63, 87, 509, 75}, got)

	greedy, err := f.Tensor("case1.greedy")
	require.NoError(t, err)
	g, err := greedy.Int32()
	require.NoError(t, err)
	require.Equal(t, []int32{350, 333, 333, 333, 333, 333, 333, 333, 281, 281, 281, 281, 281, 281, 281, 281}, g)

	logits, err := f.Tensor("case1.logits")
	require.NoError(t, err)
	require.Equal(t, F32, logits.DType)
	require.Equal(t, []int{7, 512}, logits.Shape)
	require.NoError(t, logits.CheckFinite())
}
