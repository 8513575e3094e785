package generate

import (
	"math"
	"strconv"
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

// TestOnPrefilled: called once, after the prompt's prefill and before
// any text.
func TestOnPrefilled(t *testing.T) {
	tok, err := tokenizer.Qwen3()
	require.NoError(t, err)
	var events []string
	b := &nanBackend{bad: 1}
	_, err = Generate(b, tok, []int{1, 2, 3}, nil, Options{
		Sampling: sample.Params{Temperature: 0, TopP: 1, RepetitionPenalty: 1}, MaxTokens: 3,
		OnPrefilled: func() { events = append(events, "prefilled at "+strconv.Itoa(b.Len())) },
		OnText:      func(s string) { events = append(events, "text") }})
	require.NoError(t, err)
	require.Equal(t, "prefilled at 3", events[0])
	require.NotContains(t, events[1:], "prefilled at 3")
	require.Contains(t, events, "text")
}
