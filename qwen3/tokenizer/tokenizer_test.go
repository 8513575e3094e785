package tokenizer

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/text/unicode/norm"
)

// realTokenizerFile writes the embedded Qwen3 tokenizer.json (the real
// file, byte for byte) to a temporary path for the tests of Load.
func realTokenizerFile(t testing.TB) string {
	t.Helper()
	data, err := Qwen3JSON()
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "tokenizer.json")
	require.NoError(t, os.WriteFile(path, data, 0o644))
	return path
}

func mustQwen3(t testing.TB) *Tokenizer {
	t.Helper()
	tok, err := Qwen3()
	require.NoError(t, err)
	return tok
}

type goldenCase struct {
	Text string `json:"text"`
	IDs  []int  `json:"ids"`
}

func loadGolden(t testing.TB) []goldenCase {
	t.Helper()
	data, err := os.ReadFile("../../testdata/golden/tokens.json")
	require.NoError(t, err)
	var cases []goldenCase
	require.NoError(t, json.Unmarshal(data, &cases))
	require.NotEmpty(t, cases)
	return cases
}

// firstMismatch describes where got departs from want, with the tokens
// around that place spelled out.
func firstMismatch(tok *Tokenizer, want, got []int) string {
	i := 0
	for i < len(want) && i < len(got) && want[i] == got[i] {
		i++
	}
	spell := func(ids []int) string {
		lo, hi := max(i-2, 0), min(i+3, len(ids))
		var parts []string
		for j := lo; j < hi; j++ {
			parts = append(parts, fmt.Sprintf("%d:%q", ids[j], tok.TokenString(ids[j])))
		}
		return strings.Join(parts, " ")
	}
	return fmt.Sprintf("first mismatch at index %d (want %d ids, got %d)\n want: … %s …\n got:  … %s …",
		i, len(want), len(got), spell(want), spell(got))
}

func TestGolden(t *testing.T) {
	tok := mustQwen3(t)
	for i, c := range loadGolden(t) {
		got := tok.Encode(c.Text)
		if !slicesEqual(got, c.IDs) {
			t.Errorf("case %d %q: %s", i, c.Text, firstMismatch(tok, c.IDs, got))
			continue
		}
		text, err := tok.Decode(got)
		require.NoError(t, err)
		require.Equal(t, norm.NFC.String(c.Text), text, "case %d", i)
	}
}

func slicesEqual(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestLoadRealFile(t *testing.T) {
	path := realTokenizerFile(t)
	start := time.Now()
	tok, err := Load(path)
	require.NoError(t, err)
	t.Logf("Load %s: %v", filepath.Base(path), time.Since(start))
	require.Equal(t, 151669, tok.VocabSize())
}

func TestQwen3Cached(t *testing.T) {
	a, err := Qwen3()
	require.NoError(t, err)
	b, err := Qwen3()
	require.NoError(t, err)
	require.Same(t, a, b)
}

func TestAccessors(t *testing.T) {
	tok := mustQwen3(t)
	require.Equal(t, 151669, tok.VocabSize())

	id, ok := tok.ID("Ġworld")
	require.True(t, ok)
	require.Equal(t, 1879, id)
	require.Equal(t, "Ġworld", tok.TokenString(1879))

	id, ok = tok.ID("<|im_end|>")
	require.True(t, ok)
	require.Equal(t, 151645, id)
	require.Equal(t, "<|im_end|>", tok.TokenString(151645))

	_, ok = tok.ID("no such token")
	require.False(t, ok)
	require.Empty(t, tok.TokenString(-1))
	require.Empty(t, tok.TokenString(tok.VocabSize()))

	added := tok.AddedTokens()
	require.Len(t, added, 26)
	for i, a := range added {
		require.Equal(t, 151643+i, a.ID)
	}
	require.Equal(t, AddedToken{ID: 151643, Content: "<|endoftext|>", Special: true}, added[0])
	require.Equal(t, AddedToken{ID: 151668, Content: "</think>", Special: false}, added[25])
	// The caller's copy is its own.
	added[0].Content = "changed"
	require.Equal(t, "<|endoftext|>", tok.AddedTokens()[0].Content)
}

func TestEncodeAddedTokens(t *testing.T) {
	tok := mustQwen3(t)
	imStart, imEnd := 151644, 151645
	require.Equal(t, []int{imStart, imEnd, imStart}, tok.Encode("<|im_start|><|im_end|><|im_start|>"))
	// Added tokens are found inside words too, and a partial one is text.
	ids := tok.Encode("ab<|im_end|>cd<|im_end")
	require.Contains(t, ids, imEnd)
	require.Equal(t, 1, countOf(ids, imEnd))
	text, err := tok.Decode(ids)
	require.NoError(t, err)
	require.Equal(t, "ab<|im_end|>cd<|im_end", text)
	// Each piece between added tokens is pre-tokenized on its own, so a
	// space run before a token keeps all its spaces.
	require.Equal(t, append(tok.Encode("hi  "), imEnd), tok.Encode("hi  <|im_end|>"))
}

func TestEncodeNormalizesBetweenAddedTokens(t *testing.T) {
	tok := mustQwen3(t)
	// The decomposed é is composed before BPE.
	require.Equal(t, tok.Encode("caf\u00e9"), tok.Encode("cafe\u0301"))
	// Like Hugging Face, added tokens are split out before NFC runs, so a
	// combining mark after one stays separate instead of fusing with '>'.
	ids := tok.Encode("</think>\u0338")
	require.Equal(t, 151668, ids[0])
	text, err := tok.Decode(ids)
	require.NoError(t, err)
	require.Equal(t, "</think>\u0338", text)
}

func countOf(ids []int, id int) int {
	n := 0
	for _, x := range ids {
		if x == id {
			n++
		}
	}
	return n
}

func TestEncodeEmpty(t *testing.T) {
	ids := mustQwen3(t).Encode("")
	require.NotNil(t, ids)
	require.Empty(t, ids)
}

func TestEncodeLongWord(t *testing.T) {
	// One pre-token of 200k bytes: BPE must not be quadratic.
	tok := mustQwen3(t)
	word := strings.Repeat("ab", 100_000)
	start := time.Now()
	ids := tok.Encode(word)
	elapsed := time.Since(start)
	text, err := tok.Decode(ids)
	require.NoError(t, err)
	require.Equal(t, word, text)
	require.Less(t, elapsed, 2*time.Second)
}

func TestEncodeInvalidUTF8(t *testing.T) {
	tok := mustQwen3(t)
	ids := tok.Encode("a\xffb\xe2\x82")
	require.NotEmpty(t, ids)
	text, err := tok.Decode(ids)
	require.NoError(t, err)
	require.Equal(t, "a\uFFFDb\uFFFD", text)
}

// referenceBPE is the textbook form of BPE: repeatedly merge the leftmost
// occurrence of the lowest-ranked adjacent pair. It is quadratic but
// obviously right, to check the heap-based appendBPE against.
func referenceBPE(tok *Tokenizer, word string) []int {
	var ids []int
	for i := range len(word) {
		ids = append(ids, int(tok.byteIDs[word[i]]))
	}
	for {
		best, bestRank, bestID := -1, int32(0), int32(0)
		for i := 0; i+1 < len(ids); i++ {
			m, ok := tok.merges[mergePair{int32(ids[i]), int32(ids[i+1])}]
			if ok && (best < 0 || m.rank < bestRank) {
				best, bestRank, bestID = i, m.rank, m.id
			}
		}
		if best < 0 {
			return ids
		}
		ids = append(ids[:best+1], ids[best+2:]...)
		ids[best] = int(bestID)
	}
}

func TestBPEMatchesReference(t *testing.T) {
	tok := mustQwen3(t)
	var words []string
	for _, c := range loadGolden(t) {
		words = append(words, preTokenize(c.Text)...)
	}
	words = append(words, "aaaaaaaaaaaaa", "ĠĠĠĠĠĠĠĠ", strings.Repeat(" ", 33), "internationalization",
		"Supercalifragilisticexpialidocious", "\xf0\x9f\x98\x80\xf0\x9f\x98\x80")
	for _, w := range words {
		require.Equal(t, referenceBPE(tok, w), tok.appendBPE(nil, w), "word %q", w)
	}
}

func TestCacheBounded(t *testing.T) {
	tok := mustQwen3(t)
	var sb strings.Builder
	for i := range maxCacheEntries + 100 {
		fmt.Fprintf(&sb, " w%x", i)
	}
	text := sb.String()
	ids := tok.Encode(text)
	require.LessOrEqual(t, len(tok.cache), maxCacheEntries)
	// Results are the same with a cold cache and a warm one.
	require.Equal(t, ids, tok.Encode(text))
	clear(tok.cache)
	require.Equal(t, ids, tok.Encode(text))
}

func TestConcurrentEncode(t *testing.T) {
	tok := mustQwen3(t)
	cases := loadGolden(t)
	done := make(chan error)
	for g := range 4 {
		go func() {
			for i := range 50 {
				c := cases[(g+i)%len(cases)]
				if got := tok.Encode(c.Text); !slicesEqual(got, c.IDs) {
					done <- fmt.Errorf("%q: %s", c.Text, firstMismatch(tok, c.IDs, got))
					return
				}
			}
			done <- nil
		}()
	}
	for range 4 {
		require.NoError(t, <-done)
	}
}
