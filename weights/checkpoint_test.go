package weights

import (
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// writeSharded writes a two-shard checkpoint: embeddings and layer 0 in the
// first shard, the final norm and lm_head in the second.
func writeSharded(t *testing.T, dir string, weightMap map[string]string) {
	t.Helper()
	require.NoError(t, WriteFile(filepath.Join(dir, "model-00001-of-00002.safetensors"), []WriteTensor{
		{Name: "model.embed_tokens.weight", DType: BF16, Shape: []int{3, 2}, Data: BF16Bytes([]float32{1, 2, 3, 4, 5, 6})},
		{Name: "model.layers.0.mlp.up_proj.weight", DType: BF16, Shape: []int{1, 2}, Data: BF16Bytes([]float32{-1, 0.25})},
	}, map[string]string{"format": "pt"}))
	require.NoError(t, WriteFile(filepath.Join(dir, "model-00002-of-00002.safetensors"), []WriteTensor{
		{Name: "model.norm.weight", DType: F32, Shape: []int{2}, Data: F32Bytes([]float32{0.5, 1.5})},
		{Name: "lm_head.weight", DType: F16, Shape: []int{3, 2}, Data: F16Bytes([]float32{-1, -2, -3, -4, -5, -6})},
	}, nil))
	writeIndex(t, dir, weightMap)
}

func writeIndex(t *testing.T, dir string, weightMap map[string]string) {
	t.Helper()
	index, err := json.Marshal(map[string]any{
		"metadata":   map[string]any{"total_size": 36},
		"weight_map": weightMap,
	})
	require.NoError(t, err)
	writeBytes(t, dir, IndexFileName, index)
}

func fullWeightMap() map[string]string {
	return map[string]string{
		"model.embed_tokens.weight":         "model-00001-of-00002.safetensors",
		"model.layers.0.mlp.up_proj.weight": "model-00001-of-00002.safetensors",
		"model.norm.weight":                 "model-00002-of-00002.safetensors",
		"lm_head.weight":                    "model-00002-of-00002.safetensors",
	}
}

func TestShardedCheckpoint(t *testing.T) {
	dir := t.TempDir()
	writeSharded(t, dir, fullWeightMap())
	c, err := OpenCheckpoint(dir)
	require.NoError(t, err)
	defer c.Close()

	require.Equal(t, dir, c.Dir())
	require.Equal(t, []string{
		"lm_head.weight",
		"model.embed_tokens.weight",
		"model.layers.0.mlp.up_proj.weight",
		"model.norm.weight",
	}, c.Names())
	require.True(t, c.Has("lm_head.weight"))
	require.False(t, c.Has("model.layers.1.mlp.up_proj.weight"))

	embed, err := c.Get("model.embed_tokens.weight", 3, 2)
	require.NoError(t, err)
	require.Equal(t, filepath.Join(dir, "model-00001-of-00002.safetensors"), embed.File)
	v, err := embed.Float32()
	require.NoError(t, err)
	require.Equal(t, []float32{1, 2, 3, 4, 5, 6}, v)

	head, err := c.Get("lm_head.weight", 3, 2)
	require.NoError(t, err)
	require.Equal(t, filepath.Join(dir, "model-00002-of-00002.safetensors"), head.File)
	v, err = head.Float32()
	require.NoError(t, err)
	require.Equal(t, []float32{-1, -2, -3, -4, -5, -6}, v)

	norm, err := c.Get("model.norm.weight") // no shape: any accepted
	require.NoError(t, err)
	v, err = norm.Float32()
	require.NoError(t, err)
	require.Equal(t, []float32{0.5, 1.5}, v)

	_, err = c.Get("model.layers.0.mlp.up_proj.weight", 1, 3)
	require.EqualError(t, err, `weights: `+filepath.Join(dir, "model-00001-of-00002.safetensors")+
		`: tensor "model.layers.0.mlp.up_proj.weight": shape [1 2], want [1 3]`)

	_, err = c.Get("model.layers.9.mlp.up_proj.weight")
	require.EqualError(t, err, `weights: `+dir+`: tensor "model.layers.9.mlp.up_proj.weight": not found`)
	require.ErrorIs(t, err, ErrNotFound)

	require.NoError(t, c.Close())
}

func TestSingleFileCheckpointShapeError(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, WriteFile(filepath.Join(dir, SingleFileName), []WriteTensor{
		{Name: "model.layers.0.mlp.up_proj.weight", DType: BF16, Shape: []int{6, 4}, Data: make([]byte, 48)},
	}, nil))
	c, err := OpenCheckpoint(dir)
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Get("model.layers.0.mlp.up_proj.weight", 6, 5)
	require.EqualError(t, err, `weights: `+filepath.Join(dir, SingleFileName)+
		`: tensor "model.layers.0.mlp.up_proj.weight": shape [6 4], want [6 5]`)
	_, err = c.Get("model.layers.0.mlp.up_proj.weight", 24)
	requireError(t, err, "shape [6 4], want [24]")
	_, err = c.Get("lm_head.weight", 6, 4)
	require.EqualError(t, err, `weights: `+dir+`: tensor "lm_head.weight": not found`)
}

func TestCheckpointErrors(t *testing.T) {
	shard2 := "model-00002-of-00002.safetensors"
	cases := []struct {
		name  string
		setup func(t *testing.T, dir string)
		// want lists message parts; "DIR/" is replaced by the directory.
		want []string
	}{
		{"empty directory", func(t *testing.T, dir string) {}, []string{"DIR: ", "neither model.safetensors nor model.safetensors.index.json found"}},
		{"shard missing", func(t *testing.T, dir string) {
			m := fullWeightMap()
			m["model.layers.1.mlp.up_proj.weight"] = "model-00003-of-00002.safetensors"
			writeSharded(t, dir, m)
		}, []string{"DIR/model-00003-of-00002.safetensors: ", "shard listed in model.safetensors.index.json does not exist"}},
		{"index malformed", func(t *testing.T, dir string) {
			writeBytes(t, dir, IndexFileName, []byte(`{"weight_map": {"a": "x.safetensors",`))
		}, []string{"DIR/model.safetensors.index.json: ", "invalid index"}},
		{"index weight_map wrong type", func(t *testing.T, dir string) {
			writeBytes(t, dir, IndexFileName, []byte(`{"weight_map": {"a": 3}}`))
		}, []string{"DIR/model.safetensors.index.json: ", "invalid index: weight_map must map tensor names to file names"}},
		{"index not an object", func(t *testing.T, dir string) {
			writeBytes(t, dir, IndexFileName, []byte(`["model-00001-of-00001.safetensors"]`))
		}, []string{"DIR/model.safetensors.index.json: ", "invalid index: not a JSON object"}},
		{"weight_map not an object", func(t *testing.T, dir string) {
			writeBytes(t, dir, IndexFileName, []byte(`{"weight_map": ["a"]}`))
		}, []string{"DIR/model.safetensors.index.json: ", "invalid index: weight_map must map tensor names to file names"}},
		{"index without weight_map", func(t *testing.T, dir string) {
			writeBytes(t, dir, IndexFileName, []byte(`{"metadata": {}}`))
		}, []string{"DIR/model.safetensors.index.json: ", "no weight_map entries"}},
		{"tensor missing from shard", func(t *testing.T, dir string) {
			m := fullWeightMap()
			m["model.layers.1.mlp.up_proj.weight"] = shard2
			writeSharded(t, dir, m)
		}, []string{"DIR/" + shard2 + `: tensor "model.layers.1.mlp.up_proj.weight": `, "listed in model.safetensors.index.json but not in the shard"}},
		{"shard outside directory", func(t *testing.T, dir string) {
			writeIndex(t, dir, map[string]string{"a": "../model.safetensors"})
		}, []string{"DIR/model.safetensors.index.json: ", `tensor "a": `, `shard "../model.safetensors" is not a file inside the directory`}},
		{"corrupt shard", func(t *testing.T, dir string) {
			writeSharded(t, dir, fullWeightMap())
			writeBytes(t, dir, shard2, []byte("not a safetensors file"))
		}, []string{"DIR/" + shard2 + ": ", "exceeds the limit"}},
		{"corrupt single file", func(t *testing.T, dir string) {
			writeBytes(t, dir, SingleFileName, rawFile(`{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}`, make([]byte, 4)))
		}, []string{"DIR/model.safetensors: ", `tensor "x": `, "hold 4 bytes, but F32 [2] needs 8"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			c.setup(t, dir)
			ck, err := OpenCheckpoint(dir)
			require.Nil(t, ck)
			for _, part := range c.want {
				if len(part) >= 3 && part[:3] == "DIR" {
					part = "weights: " + dir + filepath.FromSlash(part[3:])
				}
				requireError(t, err, part)
			}
		})
	}
}
