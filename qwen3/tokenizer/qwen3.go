package tokenizer

import (
	"bytes"
	"compress/gzip"
	_ "embed"
	"fmt"
	"io"
	"sync"
)

// qwen3JSON is Qwen3's tokenizer.json, gzip-compressed; NOTICE.qwen3-tokenizer
// and LICENSE.qwen3-tokenizer beside it say where it comes from.
//
//go:embed qwen3_tokenizer.json.gz
var qwen3JSON []byte

const qwen3Name = "qwen3_tokenizer.json.gz (embedded)"

var qwen3 = sync.OnceValues(func() (*Tokenizer, error) {
	data, err := Qwen3JSON()
	if err != nil {
		return nil, err
	}
	return Parse(data, qwen3Name)
})

// Qwen3JSON returns the embedded tokenizer.json itself, for writing a
// model directory in the published layout.
func Qwen3JSON() ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(qwen3JSON))
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %s: %w", qwen3Name, err)
	}
	data, err := io.ReadAll(zr)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %s: %w", qwen3Name, err)
	}
	return data, nil
}

// Qwen3 returns the tokenizer of the Qwen3 model family, built into the
// package. It is parsed on first use, which takes a few hundred
// milliseconds; later calls return the same Tokenizer.
func Qwen3() (*Tokenizer, error) { return qwen3() }
