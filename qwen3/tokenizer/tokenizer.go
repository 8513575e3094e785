// Package tokenizer implements the byte-level BPE tokenizer of the Qwen3
// model family, reading the Hugging Face tokenizer.json that ships with
// every Qwen3 checkpoint.
//
// Encoding follows the Hugging Face tokenizers pipeline for that file, with
// add_special_tokens=False: added tokens such as <|im_start|> are split out
// wherever they occur, the text between them is NFC-normalized and cut into
// pre-tokens by Qwen2's split pattern, each pre-token's UTF-8 bytes are
// mapped to GPT-2's byte alphabet and merged by BPE rank.
//
// Qwen3 returns the tokenizer built into the package; Load reads the
// tokenizer.json of a model directory.
//
// A Tokenizer is immutable after loading apart from an internal cache, and
// is safe for concurrent use.
package tokenizer

import (
	"strings"
	"sync"

	"golang.org/x/text/unicode/norm"
)

// Tokenizer encodes text to Qwen3 token ids and decodes ids back to text.
type Tokenizer struct {
	vocab  map[string]int // model vocabulary, byte-level strings
	tokens []string       // by id: vocab string or added-token content
	kinds  []tokenKind    // by id

	added    []AddedToken   // sorted by id
	addedIDs map[string]int // added-token content to id

	// rawAdded matches added tokens in the text as given; normAdded matches
	// those flagged "normalized" in the NFC form of the text between them.
	rawAdded, normAdded addedMatcher

	byteIDs [256]int32          // id of the one-byte token for each byte
	merges  map[mergePair]merge // pair of ids to the merge that joins them

	cacheMu sync.RWMutex
	cache   map[string][]int // raw pre-token to its ids
}

type tokenKind uint8

const (
	kindNone  tokenKind = iota // no token has this id
	kindVocab                  // a byte-level token of the BPE model
	kindAdded                  // an added token, decoded to its content
)

// AddedToken is a token that is matched in text as a whole before BPE runs,
// such as <|im_start|> or <think>.
type AddedToken struct {
	ID      int
	Content string
	// Special marks control tokens (<|endoftext|>, <|im_end|>, …). Tokens
	// like <think> or <tool_call> are added but not special: they are
	// ordinary text of the chat format.
	Special bool
}

// Encode returns the token ids of text. It never fails: every byte sequence
// has a byte-level encoding. Bytes of text that are not valid UTF-8 are
// encoded as themselves, so they do not survive Decode, which replaces them
// with U+FFFD.
func (t *Tokenizer) Encode(text string) []int {
	ids := make([]int, 0, len(text)/3+1)
	// Added tokens that are not "normalized" are found in the raw text
	// before NFC, as Hugging Face does; this only matters when a combining
	// mark follows a token's closing '>' (NFC would fuse ">\u0338" to "≯").
	t.rawAdded.split(text, func(piece string, id int) {
		if id >= 0 {
			ids = append(ids, id)
			return
		}
		t.normAdded.split(norm.NFC.String(piece), func(piece string, id int) {
			if id >= 0 {
				ids = append(ids, id)
				return
			}
			for len(piece) > 0 {
				n := preTokenLen(piece)
				ids = t.appendWord(ids, piece[:n])
				piece = piece[n:]
			}
		})
	})
	return ids
}

// VocabSize returns one more than the highest token id, that is the number
// of rows a model's embedding needs at least. For Qwen3 it is 151669; the
// published models pad their embeddings to 151936.
func (t *Tokenizer) VocabSize() int { return len(t.tokens) }

// TokenString returns the token with the given id as the vocabulary spells
// it: byte-level form for BPE tokens ("Ġworld" for " world"), the content
// for added tokens. It returns "" for ids that name no token. Use Decode
// for text.
func (t *Tokenizer) TokenString(id int) string {
	if id < 0 || id >= len(t.tokens) {
		return ""
	}
	return t.tokens[id]
}

// ID returns the id of a token given as TokenString spells it: an added
// token's content or a byte-level vocabulary string.
func (t *Tokenizer) ID(token string) (int, bool) {
	if id, ok := t.addedIDs[token]; ok {
		return id, true
	}
	id, ok := t.vocab[token]
	return id, ok
}

// AddedTokens returns the added tokens in order of id.
func (t *Tokenizer) AddedTokens() []AddedToken {
	return append([]AddedToken(nil), t.added...)
}

// addedMatcher finds added tokens in text, leftmost first and longest among
// those starting at the same place, like Hugging Face's matcher.
type addedMatcher struct {
	// byFirst lists the candidates by their first byte, longest first.
	byFirst [256][]AddedToken
	count   int
}

func (m *addedMatcher) add(tok AddedToken) {
	c := tok.Content[0]
	list := append(m.byFirst[c], tok)
	// Keep longest first so the first prefix match is the longest one.
	for i := len(list) - 1; i > 0 && len(list[i].Content) > len(list[i-1].Content); i-- {
		list[i], list[i-1] = list[i-1], list[i]
	}
	m.byFirst[c] = list
	m.count++
}

// split calls yield for each piece of s in order: for an added token with
// its id, for the text between tokens with id -1. Empty text is skipped.
func (m *addedMatcher) split(s string, yield func(piece string, id int)) {
	if m.count > 0 {
		start := 0
		for i := 0; i < len(s); i++ {
			for _, tok := range m.byFirst[s[i]] {
				if !strings.HasPrefix(s[i:], tok.Content) {
					continue
				}
				if start < i {
					yield(s[start:i], -1)
				}
				yield(tok.Content, tok.ID)
				i += len(tok.Content) - 1
				start = i + 1
				break
			}
		}
		s = s[start:]
	}
	if s != "" {
		yield(s, -1)
	}
}
