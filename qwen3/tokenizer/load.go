package tokenizer

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"golang.org/x/text/unicode/norm"

	"github.com/qwgpu/qwgpu/weights"
)

// maxID bounds token ids, so that a corrupt file cannot make Parse allocate
// a huge id table. Real vocabularies are below 300k.
const maxID = 1 << 22

// Load reads a Hugging Face tokenizer.json; see Parse.
func Load(path string) (*Tokenizer, error) {
	data, err := weights.ReadFileLimited(path, weights.MaxTokenizerBytes)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	return Parse(data, path)
}

// Parse reads the contents of a Hugging Face tokenizer.json; name is used
// in error messages. The file must describe Qwen3's tokenizer: a BPE model
// with a complete byte-level alphabet, NFC normalization and Qwen2's split
// pattern followed by ByteLevel pre-tokenization. Its vocabulary, merges
// and added tokens may be any that are consistent.
func Parse(data []byte, name string) (*Tokenizer, error) {
	p := parser{name: name}
	return p.parse(data)
}

// fileJSON is the part of tokenizer.json that matters here.
type fileJSON struct {
	AddedTokens  []addedTokenJSON `json:"added_tokens"`
	Normalizer   *componentJSON   `json:"normalizer"`
	PreTokenizer *componentJSON   `json:"pre_tokenizer"`
	Decoder      *componentJSON   `json:"decoder"`
	Model        struct {
		Type                    string          `json:"type"`
		Vocab                   map[string]int  `json:"vocab"`
		Merges                  json.RawMessage `json:"merges"` // see mergeReader
		ContinuingSubwordPrefix string          `json:"continuing_subword_prefix"`
		EndOfWordSuffix         string          `json:"end_of_word_suffix"`
	} `json:"model"`
}

type addedTokenJSON struct {
	ID         int    `json:"id"`
	Content    string `json:"content"`
	SingleWord bool   `json:"single_word"`
	LStrip     bool   `json:"lstrip"`
	RStrip     bool   `json:"rstrip"`
	Normalized bool   `json:"normalized"`
	Special    bool   `json:"special"`
}

// componentJSON covers the normalizer, pre-tokenizer and decoder entries
// that a Qwen3 tokenizer.json uses.
type componentJSON struct {
	Type          string          `json:"type"`
	Pretokenizers []componentJSON `json:"pretokenizers"`
	Pattern       struct {
		Regex string `json:"Regex"`
	} `json:"pattern"`
	Behavior       string `json:"behavior"`
	Invert         bool   `json:"invert"`
	AddPrefixSpace bool   `json:"add_prefix_space"`
	UseRegex       bool   `json:"use_regex"`
}

type parser struct {
	name string
}

func (p *parser) errorf(format string, args ...any) error {
	return fmt.Errorf("tokenizer: %s: %s", p.name, fmt.Sprintf(format, args...))
}

func (p *parser) parse(data []byte) (*Tokenizer, error) {
	var f fileJSON
	if err := json.Unmarshal(data, &f); err != nil {
		if serr, ok := errors.AsType[*json.SyntaxError](err); ok {
			return nil, p.errorf("invalid JSON at byte %d: %v", serr.Offset, serr)
		}
		return nil, p.errorf("invalid tokenizer.json: %v", err)
	}
	if err := p.checkPipeline(&f); err != nil {
		return nil, err
	}

	m := &f.Model
	if len(m.Vocab) == 0 {
		return nil, p.errorf("model.vocab is empty")
	}
	t, err := p.newTokenizer(m.Vocab, f.AddedTokens)
	if err != nil {
		return nil, err
	}
	if err := p.buildMerges(t, m.Merges); err != nil {
		return nil, err
	}
	return t, nil
}

// newTokenizer builds a tokenizer, merges aside, from the BPE vocabulary
// and the added tokens.
func (p *parser) newTokenizer(vocab map[string]int, added []addedTokenJSON) (*Tokenizer, error) {
	t := &Tokenizer{
		vocab:    vocab,
		addedIDs: make(map[string]int),
		cache:    make(map[string][]int),
	}
	if err := p.buildIDTable(t, added); err != nil {
		return nil, err
	}
	for b, r := range byteToRune {
		id, ok := t.vocab[string(r)]
		if !ok {
			return nil, p.errorf("model.vocab lacks %q, the byte-level token for byte 0x%02x", string(r), b)
		}
		t.byteIDs[b] = int32(id)
	}
	return t, nil
}

// checkPipeline rejects files whose normalizer, pre-tokenizer, decoder or
// model options differ from Qwen3's, which is all this package implements.
func (p *parser) checkPipeline(f *fileJSON) error {
	if f.Model.Type != "BPE" {
		return p.errorf("model type %q is not supported (want \"BPE\")", f.Model.Type)
	}
	if f.Model.ContinuingSubwordPrefix != "" || f.Model.EndOfWordSuffix != "" {
		return p.errorf("BPE continuing_subword_prefix and end_of_word_suffix are not supported")
	}
	if f.Normalizer == nil || f.Normalizer.Type != "NFC" {
		return p.errorf("normalizer must be NFC, as in Qwen3's tokenizer.json")
	}
	pre := f.PreTokenizer
	ok := pre != nil && pre.Type == "Sequence" && len(pre.Pretokenizers) == 2
	if ok {
		split, bl := &pre.Pretokenizers[0], &pre.Pretokenizers[1]
		ok = split.Type == "Split" && split.Pattern.Regex == qwen2Pattern &&
			split.Behavior == "Isolated" && !split.Invert &&
			bl.Type == "ByteLevel" && !bl.AddPrefixSpace && !bl.UseRegex
	}
	if !ok {
		return p.errorf("pre_tokenizer must be Qwen2's Split pattern then ByteLevel, as in Qwen3's tokenizer.json")
	}
	if f.Decoder == nil || f.Decoder.Type != "ByteLevel" {
		return p.errorf("decoder must be ByteLevel, as in Qwen3's tokenizer.json")
	}
	return nil
}

// buildIDTable fills t.tokens, t.kinds and the added tokens, checking that
// ids are in range and name one token each.
func (p *parser) buildIDTable(t *Tokenizer, added []addedTokenJSON) error {
	size := 0
	for tok, id := range t.vocab {
		if id < 0 || id >= maxID {
			return p.errorf("vocab token %q has id %d, outside [0, %d)", tok, id, maxID)
		}
		size = max(size, id+1)
	}
	for i, a := range added {
		if a.ID < 0 || a.ID >= maxID {
			return p.errorf("added token %d %q has id %d, outside [0, %d)", i, a.Content, a.ID, maxID)
		}
		size = max(size, a.ID+1)
	}
	t.tokens = make([]string, size)
	t.kinds = make([]tokenKind, size)

	for tok, id := range t.vocab {
		if t.kinds[id] != kindNone {
			// Map order is random: name the pair in a fixed order.
			a, b := min(tok, t.tokens[id]), max(tok, t.tokens[id])
			return p.errorf("duplicate id %d: vocab tokens %q and %q", id, a, b)
		}
		t.tokens[id], t.kinds[id] = tok, kindVocab
	}

	for i, a := range added {
		switch {
		case a.Content == "":
			return p.errorf("added token %d (id %d) is empty", i, a.ID)
		case a.SingleWord || a.LStrip || a.RStrip:
			return p.errorf("added token %q: single_word, lstrip and rstrip are not supported", a.Content)
		case t.kinds[a.ID] == kindAdded:
			return p.errorf("duplicate id %d: added tokens %q and %q", a.ID, t.tokens[a.ID], a.Content)
		case t.kinds[a.ID] == kindVocab && t.tokens[a.ID] != a.Content:
			// Files may list a vocab token as added too, but only as itself.
			return p.errorf("duplicate id %d: added token %q and vocab token %q", a.ID, a.Content, t.tokens[a.ID])
		}
		if _, dup := t.addedIDs[a.Content]; dup {
			return p.errorf("added token %q is listed twice", a.Content)
		}
		t.tokens[a.ID], t.kinds[a.ID] = a.Content, kindAdded
		t.addedIDs[a.Content] = a.ID
		tok := AddedToken{ID: a.ID, Content: a.Content, Special: a.Special}
		t.added = append(t.added, tok)
		if !a.Normalized {
			t.rawAdded.add(tok)
			continue
		}
		// Normalized tokens are looked for in NFC text, so their own NFC
		// form is what must match.
		tok.Content = norm.NFC.String(tok.Content)
		t.normAdded.add(tok)
	}
	slices.SortFunc(t.added, func(a, b AddedToken) int { return a.ID - b.ID })
	return nil
}
