package qwen3

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/qwgpu/qwgpu/weights"
)

// A written checkpoint reads back through the real loader: the same
// config, every tensor byte for byte, single file and sharded.
func TestWriteCheckpointReadsBack(t *testing.T) {
	cfg := shape(64, 96, 2, 4, 2, 16, false)
	cfg.VocabSize = 300
	src := &RandomSource{Config: cfg, DType: weights.BF16, Seed: 3}
	for _, shards := range []int{1, 3} {
		dir := t.TempDir()
		require.NoError(t, WriteCheckpoint(dir, CheckpointFiles{Config: cfg, Source: src, Shards: shards,
			Tokenizer: []byte(`{"placeholder": true}`), TorchType: "bfloat16"}))
		got, err := LoadConfigDir(dir)
		require.NoError(t, err)
		want := cfg
		want.EOSTokenIDs = []int{151645}
		want.TorchDtype = "bfloat16"
		require.Equal(t, want, got)
		_, err = os.Stat(filepath.Join(dir, weights.IndexFileName))
		require.Equal(t, shards > 1, err == nil, "index file present only when sharded")
		ck, err := weights.OpenCheckpoint(dir)
		require.NoError(t, err)
		for _, s := range cfg.AllTensors() {
			a, err := ck.Get(s.Name, s.Shape...)
			require.NoError(t, err)
			b, err := src.Get(s.Name, s.Shape...)
			require.NoError(t, err)
			require.Equal(t, b.Raw, a.Raw, s.Name)
		}
		require.NoError(t, ck.Close())
	}
}
