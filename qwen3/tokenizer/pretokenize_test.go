package tokenizer

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// preTokenize cuts s into pre-tokens as Encode does.
func preTokenize(s string) []string {
	var out []string
	for len(s) > 0 {
		n := preTokenLen(s)
		out = append(out, s[:n])
		s = s[n:]
	}
	return out
}

func TestPreTokenize(t *testing.T) {
	// Each expectation is worked out by hand from qwen2Pattern: the first
	// alternative that matches at a position wins, with backtracking
	// inside it.
	cases := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"Hello, world!", []string{"Hello", ",", " world", "!"}},
		// \s+(?!\S) gives the last space back to the word after it.
		{"a  b", []string{"a", " ", " b"}},
		{"a b  c   d", []string{"a", " b", " ", " c", "  ", " d"}},
		{"hi  !", []string{"hi", " ", " !"}},
		{"x \ty", []string{"x", " ", "\ty"}},
		{"a\tb", []string{"a", "\tb"}},
		// At the end of the text the whole run stays together.
		{"hello   ", []string{"hello", "   "}},
		{"x ", []string{"x", " "}},
		{"   ", []string{"   "}},
		// \s*[\r\n]+ ends at the last line break of a space run.
		{"x   \n", []string{"x", "   \n"}},
		{"x \n", []string{"x", " \n"}},
		{"\r\n\r\n", []string{"\r\n\r\n"}},
		{"a\r\n\r\nb", []string{"a", "\r\n\r\n", "b"}},
		{"a\n b", []string{"a", "\n", " b"}},
		{"  \n  x", []string{"  \n", " ", " x"}},
		{"\n\n  x\n", []string{"\n\n", " ", " x", "\n"}},
		{"end\n\n\n", []string{"end", "\n\n\n"}},
		// Symbols take an optional leading space and trailing line breaks,
		// but a line break cannot prefix a word.
		{" !!!\n\nx", []string{" !!!\n\n", "x"}},
		{"a.\nb", []string{"a", ".\n", "b"}},
		{"\nabc", []string{"\n", "abc"}},
		{"\rabc", []string{"\r", "abc"}},
		// A symbol or non-newline space can prefix a word.
		{"a,b", []string{"a", ",b"}},
		{".Net", []string{".Net"}},
		{"''s", []string{"''", "s"}},
		{"'", []string{"'"}},
		// Contractions, in any case, split from the word before and even
		// from letters after them.
		{"I'm", []string{"I", "'m"}},
		{"I'M", []string{"I", "'M"}},
		{"don't", []string{"don", "'t"}},
		{"we've they'd you'll", []string{"we", "'ve", " they", "'d", " you", "'ll"}},
		{"DON'T SHOUT'S", []string{"DON", "'T", " SHOUT", "'S"}},
		{"'sup", []string{"'s", "up"}},
		{"'Re'x", []string{"'Re", "'x"}},
		// (?i) folds the long s to s.
		{"'ſt", []string{"'ſ", "t"}},
		// Numbers go one by one, in any script.
		{"12345", []string{"1", "2", "3", "4", "5"}},
		{"3.14", []string{"3", ".", "1", "4"}},
		{"x1y", []string{"x", "1", "y"}},
		{"٣½", []string{"٣", "½"}},
		{" 42", []string{" ", "4", "2"}},
		// CJK ideographs are letters; full-width punctuation is a symbol
		// that prefixes the next word.
		{"你好，世界", []string{"你好", "，世界"}},
		{"你好。", []string{"你好", "。"}},
		{"Mixed中文and", []string{"Mixed中文and"}},
		// Ideographic space is white space that can prefix a word.
		{"a\u3000b", []string{"a", "\u3000b"}},
		// A combining mark is neither letter nor number.
		{"e\u0301", []string{"e", "\u0301"}},
		{"🤖🤖 \n", []string{"🤖🤖", " \n"}},
		// Invalid UTF-8 counts as a symbol.
		{"a\xffb", []string{"a", "\xffb"}},
	}
	for _, c := range cases {
		require.Equal(t, c.want, preTokenize(c.in), "input %q", c.in)
	}
}

func TestPreTokenizeCovers(t *testing.T) {
	// Pre-tokens must tile the text exactly, whatever it is.
	inputs := []string{
		"  leading spaces and   inner   runs\tand tabs",
		"def fib(n):\n    return n if n < 2 else fib(n-1) + fib(n-2)\n",
		"\xff\xfe\x00 \u2028\u0085\u00a0x",
		strings.Repeat(" \n\t", 50),
	}
	for _, in := range inputs {
		parts := preTokenize(in)
		require.Equal(t, in, strings.Join(parts, ""))
		for _, p := range parts {
			require.NotEmpty(t, p)
		}
	}
}
