package tokenizer

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

// byteToken returns the id of the one-byte token for b.
func byteToken(t *testing.T, tok *Tokenizer, b byte) int {
	t.Helper()
	id, ok := tok.ID(string(byteToRune[b]))
	require.True(t, ok)
	return id
}

func TestDecodeInvalidIDs(t *testing.T) {
	tok := mustQwen3(t)
	for _, id := range []int{-1, tok.VocabSize(), 151936, 1 << 40} {
		_, err := tok.Decode([]int{9707, id})
		require.Error(t, err)
		require.Contains(t, err.Error(), "position 1")
	}
}

func TestDecodePartialCharacter(t *testing.T) {
	tok := mustQwen3(t)
	// "😀" is F0 9F 98 80; without its last byte it is one ill-formed
	// subsequence, so one U+FFFD.
	ids := []int{byteToken(t, tok, 0xF0), byteToken(t, tok, 0x9F), byteToken(t, tok, 0x98), 9707}
	text, err := tok.Decode(ids)
	require.NoError(t, err)
	require.Equal(t, "\uFFFDHello", text)
}

func TestAppendValidUTF8(t *testing.T) {
	cases := []struct{ in, want, rest string }{
		{"abc", "abc", ""},
		{"a\xf0\x9f\x98", "a", "\xf0\x9f\x98"},
		{"a\xf0\x9f\x98b", "a\uFFFDb", ""},
		{"\x80\x80", "\uFFFD\uFFFD", ""},
		{"\xe0\x80", "\uFFFD\uFFFD", ""},           // overlong: E0 needs A0..BF next
		{"\xed\xa0\x80", "\uFFFD\uFFFD\uFFFD", ""}, // surrogate
		{"\xf4\x90", "\uFFFD\uFFFD", ""},           // past U+10FFFF
		{"\xc3", "", "\xc3"},
		{"\xff", "\uFFFD", ""},
	}
	for _, c := range cases {
		out, rest := appendValidUTF8(nil, []byte(c.in), true)
		require.Equal(t, c.want, string(out), "input %q", c.in)
		require.Equal(t, c.rest, string(rest), "input %q", c.in)
	}
	out, rest := appendValidUTF8(nil, []byte("a\xf0\x9f\x98"), false)
	require.Equal(t, "a\uFFFD", string(out))
	require.Empty(t, rest)
}

func TestStreamDecoder(t *testing.T) {
	tok := mustQwen3(t)
	for _, c := range []struct {
		text string
		// splits says some token ends inside a character. Common emoji and
		// CJK are whole tokens; rarer ones are split over several.
		splits bool
	}{
		{"emoji: 😀🎉👍🏽 done", false},
		{"你好，世界", false},
		{"melting 🫠, flamingo 🦩, 龘𠀀 𝔘", true},
		{"<|im_start|>assistant\n<think>\n🫠</think>\n\nこんにちは<|im_end|>", true},
	} {
		d := tok.NewStreamDecoder()
		var sb strings.Builder
		held := false
		for _, id := range tok.Encode(c.text) {
			piece := d.Push(id)
			require.True(t, utf8.ValidString(piece), "piece %q of %q", piece, c.text)
			held = held || piece == ""
			sb.WriteString(piece)
		}
		require.Empty(t, d.Flush())
		require.Equal(t, c.text, sb.String())
		require.Equal(t, c.splits, held, "text %q", c.text)
	}
}

func TestStreamDecoderLeftovers(t *testing.T) {
	tok := mustQwen3(t)
	d := tok.NewStreamDecoder()
	require.Empty(t, d.Push(byteToken(t, tok, 0xF0)))
	require.Empty(t, d.Push(byteToken(t, tok, 0x9F)))
	// An ASCII byte cannot continue the sequence: it is replaced at once.
	require.Equal(t, "\uFFFDa", d.Push(byteToken(t, tok, 'a')))

	require.Empty(t, d.Push(byteToken(t, tok, 0xE4)))
	require.Equal(t, "\uFFFD", d.Flush())
	// Flush resets the decoder.
	require.Equal(t, "hi", d.Push(byteToken(t, tok, 'h'))+d.Push(byteToken(t, tok, 'i')))

	// An unknown id shows up as U+FFFD rather than vanishing.
	require.Equal(t, "\uFFFD", d.Push(-5))
	require.Equal(t, "\uFFFD", d.Push(tok.VocabSize()))
	require.Empty(t, d.Flush())
}
