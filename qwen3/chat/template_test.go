package chat

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// testdata/tokenizer_config.json is Qwen3's, as published (see
// testdata/README.md).
func TestIsQwen3Template(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "tokenizer_config.json"))
	require.NoError(t, err)
	var cfg struct {
		ChatTemplate string `json:"chat_template"`
	}
	require.NoError(t, json.Unmarshal(data, &cfg))
	require.True(t, IsQwen3Template(cfg.ChatTemplate))
	require.False(t, IsQwen3Template(cfg.ChatTemplate+" "))
	require.False(t, IsQwen3Template(""))
}
