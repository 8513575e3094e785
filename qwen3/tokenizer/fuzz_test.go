package tokenizer

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
	"golang.org/x/text/unicode/norm"
)

// FuzzEncodeDecode checks that decoding an encoding gives back the NFC form
// of the text. Seeds are the golden texts, in testdata/fuzz.
func FuzzEncodeDecode(f *testing.F) {
	tok := mustQwen3(f)
	// Exercises the NFC exception below; the golden texts are in testdata.
	f.Add("<think>a</think>\u0338 e\u0301")
	f.Fuzz(func(t *testing.T, s string) {
		ids := tok.Encode(s)
		for _, id := range ids {
			require.True(t, 0 <= id && id < tok.VocabSize(), "id %d", id)
		}
		got, err := tok.Decode(ids)
		require.NoError(t, err)
		if !utf8.ValidString(s) {
			return // invalid bytes come back as U+FFFD
		}
		want := norm.NFC.String(s)
		if got == want {
			return
		}
		// The one allowed difference: like Hugging Face, Encode splits out
		// added tokens before NFC, so NFC never fuses a token's last rune
		// with a combining mark after it.
		split := normalizeBetweenAddedTokens(tok, s)
		require.NotEqual(t, want, split)
		require.Equal(t, split, got)
	})
}

// normalizeBetweenAddedTokens applies NFC to the text between added tokens,
// found leftmost-longest by plain string search.
func normalizeBetweenAddedTokens(tok *Tokenizer, s string) string {
	var sb strings.Builder
	start := 0
	for i := 0; i < len(s); i++ {
		longest := ""
		for _, a := range tok.AddedTokens() {
			if strings.HasPrefix(s[i:], a.Content) && len(a.Content) > len(longest) {
				longest = a.Content
			}
		}
		if longest != "" {
			sb.WriteString(norm.NFC.String(s[start:i]))
			sb.WriteString(longest)
			i += len(longest) - 1
			start = i + 1
		}
	}
	sb.WriteString(norm.NFC.String(s[start:]))
	return sb.String()
}

// benchText returns about 10 kB of mixed text: prose, code, CJK, emoji and
// chat markup from the golden cases.
func benchText(b *testing.B) string {
	var sb strings.Builder
	cases := loadGolden(b)
	for sb.Len() < 10_000 {
		for _, c := range cases {
			sb.WriteString(c.Text)
			sb.WriteByte('\n')
		}
	}
	return sb.String()
}

func BenchmarkEncode(b *testing.B) {
	tok := mustQwen3(b)
	text := benchText(b)
	b.Run("warm", func(b *testing.B) {
		b.SetBytes(int64(len(text)))
		for b.Loop() {
			tok.Encode(text)
		}
	})
	b.Run("cold", func(b *testing.B) {
		// Every pre-token goes through BPE, as for text unlike any seen.
		b.SetBytes(int64(len(text)))
		for b.Loop() {
			clear(tok.cache)
			tok.Encode(text)
		}
	})
}

func BenchmarkDecode(b *testing.B) {
	tok := mustQwen3(b)
	ids := tok.Encode(benchText(b))
	for b.Loop() {
		if _, err := tok.Decode(ids); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLoad(b *testing.B) {
	path := realTokenizerFile(b)
	for b.Loop() {
		if _, err := Load(path); err != nil {
			b.Fatal(err)
		}
	}
}
