package generate

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/qwgpu/qwgpu/qwen3"
	"github.com/qwgpu/qwgpu/qwen3/sample"
	"github.com/qwgpu/qwgpu/qwen3/tokenizer"
)

// nanBackend returns logits whose token 7 is NaN (or +Inf): greedy
// decoding would have picked some other token and printed it as text.
type nanBackend struct {
	n   int
	bad float32
}

func (b *nanBackend) Config() qwen3.Config { return qwen3.Config{VocabSize: 16} }
func (b *nanBackend) Context() int         { return 64 }
func (b *nanBackend) Len() int             { return b.n }
func (b *nanBackend) Reset()               { b.n = 0 }
func (b *nanBackend) Feed(tokens []int) ([]float32, error) {
	b.n += len(tokens)
	l := make([]float32, 16)
	l[3] = 5
	l[7] = b.bad
	return l, nil
}

func TestNonFiniteLogitsAreAnError(t *testing.T) {
	tok, err := tokenizer.Qwen3()
	require.NoError(t, err)
	for _, bad := range []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1))} {
		for _, temp := range []float64{0, 0.7} {
			_, err := Generate(&nanBackend{bad: bad}, tok, []int{1, 2}, nil, Options{
				Sampling: sample.Params{Temperature: temp, TopP: 1, RepetitionPenalty: 1}, MaxTokens: 4})
			require.Error(t, err, "%v at temperature %v", bad, temp)
			require.ErrorContains(t, err, "logits are not finite at position 1 (token id 7")
		}
	}
}
