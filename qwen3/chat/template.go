package chat

import (
	"crypto/sha256"
	"encoding/hex"
)

// qwen3TemplateSHA256 identifies the Jinja chat template of Qwen3's
// tokenizer_config.json, the template Render implements; GGUF files of
// Qwen3 carry the same text in tokenizer.chat_template.
const qwen3TemplateSHA256 = "87a2728cb8dc9fe424d624542f6060ec05a1d285ebbec578bb078900e33396b5"

// IsQwen3Template reports whether a model's chat template is exactly the
// one Render implements. Render does not interpret templates, so a model
// shipping another one gets Qwen3's format regardless; callers use this to
// say so.
func IsQwen3Template(tmpl string) bool {
	sum := sha256.Sum256([]byte(tmpl))
	return hex.EncodeToString(sum[:]) == qwen3TemplateSHA256
}
