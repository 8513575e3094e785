package tokenizer

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// byteVocab is the 256 byte-level tokens, ids 0-255, all normal.
func byteVocab() Vocab {
	var v Vocab
	for _, r := range byteToRune {
		v.Tokens = append(v.Tokens, string(r))
		v.Types = append(v.Types, TypeNormal)
	}
	return v
}

func TestFromVocab(t *testing.T) {
	v := byteVocab()
	v.Tokens = append(v.Tokens, "ab", "<|end|>", "<think>", "[PAD]")
	v.Types = append(v.Types, TypeNormal, TypeControl, TypeUserDefined, TypeUnused)
	v.Merges = []string{"a b"}
	tok, err := FromVocab(v, "v.gguf")
	require.NoError(t, err)
	// By hand: "ab" merges to id 256; the added tokens are matched whole.
	require.Equal(t, []int{256, 257, 258, int(byteToRune['c'])}, tok.Encode("ab<|end|><think>c"))
	require.Equal(t, 259, tok.VocabSize()) // the unused id names no token
	require.Equal(t, []AddedToken{{257, "<|end|>", true}, {258, "<think>", false}}, tok.AddedTokens())
}

func TestFromVocabErrors(t *testing.T) {
	for _, c := range []struct {
		edit func(v *Vocab)
		want string
	}{
		{func(v *Vocab) { v.Types = v.Types[1:] }, "255 token types for 256 tokens"},
		{func(v *Vocab) { v.Types[3] = TypeByte }, "has type 6"},
		{func(v *Vocab) { v.Merges = []string{"ab"} }, `merge 0 "ab" is not of the form`},
		{func(v *Vocab) { v.Merges = []string{"a b"} }, `result "ab" is not in the vocab`},
		{func(v *Vocab) { v.Tokens[5] = v.Tokens[6] }, "has ids 5 and 6"},
		{func(v *Vocab) { v.Types['x'] = TypeUnused }, "lacks"},
		{func(v *Vocab) { *v = Vocab{} }, "no tokens"},
	} {
		v := byteVocab()
		c.edit(&v)
		_, err := FromVocab(v, "v.gguf")
		require.ErrorContains(t, err, "tokenizer: v.gguf: ")
		require.ErrorContains(t, err, c.want)
	}
}
