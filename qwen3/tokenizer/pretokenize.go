package tokenizer

import (
	"unicode"
	"unicode/utf8"
)

// qwen2Pattern is the pre-tokenizer split pattern of Qwen2 and Qwen3, as
// tokenizer.json spells it. Go's regexp lacks the lookahead it needs, so
// preTokenLen implements it by hand; Parse only checks that a file asks for
// this exact pattern.
const qwen2Pattern = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`

// preTokenLen returns the length in bytes of the first pre-token of the
// non-empty string s: the match that qwen2Pattern finds at the start of s.
//
// The pattern's alternatives are tried in order and the first that matches
// wins, as in the backtracking engine Hugging Face uses. Some alternative
// matches at every position, since every rune is a letter, a number,
// white space or something else, so the pre-tokens cover s without gaps.
// Invalid UTF-8 decodes to utf8.RuneError, which counts as "something else".
func preTokenLen(s string) int {
	r0, n0 := utf8.DecodeRuneInString(s)

	// (?i:'s|'t|'re|'ve|'m|'ll|'d)
	if r0 == '\'' {
		if n := contractionLen(s[n0:]); n > 0 {
			return n0 + n
		}
	}

	// [^\r\n\p{L}\p{N}]?\p{L}+ — the optional rune and the letters are
	// disjoint classes, so trying the rune first or not gives one answer.
	if isLetter(r0) {
		return n0 + letterRunLen(s[n0:])
	}
	if r0 != '\r' && r0 != '\n' && !isNumber(r0) {
		if r1, n1 := utf8.DecodeRuneInString(s[n0:]); isLetter(r1) {
			return n0 + n1 + letterRunLen(s[n0+n1:])
		}
	}

	// \p{N}: numbers go one rune at a time.
	if isNumber(r0) {
		return n0
	}

	// ` ?[^\s\p{L}\p{N}]+[\r\n]*` — a space is not in the class, so if the
	// run after an optional space is empty, the run without it is too.
	skip := 0
	if r0 == ' ' {
		skip = 1
	}
	if n := otherRunLen(s[skip:]); n > 0 {
		n += skip
		return n + lineBreakRunLen(s[n:])
	}

	// Only white space is left: r0 is white space here.
	end, lastBreakEnd, lastRuneStart := 0, 0, 0
	for end < len(s) {
		r, n := utf8.DecodeRuneInString(s[end:])
		if !unicode.IsSpace(r) {
			break
		}
		lastRuneStart = end
		end += n
		if r == '\r' || r == '\n' {
			lastBreakEnd = end
		}
	}
	switch {
	case lastBreakEnd > 0:
		// \s*[\r\n]+ backtracks the greedy \s* to the run's last line break.
		return lastBreakEnd
	case end == len(s):
		// \s+(?!\S) at the end of the text takes the whole run.
		return end
	case lastRuneStart > 0:
		// \s+(?!\S) before a non-space backtracks one rune, leaving the
		// last space to prefix the next pre-token (" word", " +").
		return lastRuneStart
	default:
		// \s+ for a single space before a non-space it could not join.
		return end
	}
}

// contractions are the suffixes of the pattern's first alternative, in the
// order it tries them.
var contractions = [...]string{"s", "t", "re", "ve", "m", "ll", "d"}

// contractionLen returns the length of the contraction suffix that starts s
// (after the apostrophe), matched case-insensitively, or 0.
func contractionLen(s string) int {
	for _, c := range contractions {
		n := 0
		for _, want := range c {
			r, size := utf8.DecodeRuneInString(s[n:])
			if size == 0 || !equalFold(r, want) {
				n = -1
				break
			}
			n += size
		}
		if n > 0 {
			return n
		}
	}
	return 0
}

// equalFold reports whether r and want are equal under simple case folding,
// so that the long s 'ſ' matches 's' as it does in a Unicode-aware (?i).
func equalFold(r, want rune) bool {
	f := want
	for {
		if f == r {
			return true
		}
		if f = unicode.SimpleFold(f); f == want {
			return false
		}
	}
}

func isLetter(r rune) bool { return unicode.IsLetter(r) }
func isNumber(r rune) bool { return unicode.IsNumber(r) }

// isOther reports whether r is in [^\s\p{L}\p{N}].
func isOther(r rune) bool { return !unicode.IsSpace(r) && !isLetter(r) && !isNumber(r) }

func letterRunLen(s string) int { return runLen(s, isLetter) }
func otherRunLen(s string) int  { return runLen(s, isOther) }

func lineBreakRunLen(s string) int {
	return runLen(s, func(r rune) bool { return r == '\r' || r == '\n' })
}

// runLen returns the length of the longest prefix of s whose runes all
// satisfy in.
func runLen(s string, in func(rune) bool) int {
	n := 0
	for n < len(s) {
		r, size := utf8.DecodeRuneInString(s[n:])
		if !in(r) {
			break
		}
		n += size
	}
	return n
}
