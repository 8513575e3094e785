package qwen3

import (
	"os"
	"testing"
)

// FuzzParseConfig: any bytes either give an error or a config that passes
// Validate; never a panic.
func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(base))
	for _, name := range goldenModels {
		if b, err := os.ReadFile(goldenDir(name) + "/config.json"); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(`{"rope_parameters": {"rope_theta": null}}`))
	f.Add([]byte(`{"eos_token_id": [1, "a"]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseConfig(data)
		if err != nil {
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("ParseConfig accepted a config that fails Validate: %v", err)
		}
		if c.QDim() <= 0 || c.KVDim() <= 0 || c.GroupSize() <= 0 {
			t.Fatalf("accepted config has non-positive sizes: %+v", c)
		}
	})
}
