package tokenizer

import "strings"

// Token types of a GGUF vocabulary (llama.cpp's llama_token_type).
const (
	TypeNormal      = 1 // a byte-level BPE token
	TypeUnknown     = 2
	TypeControl     = 3 // a special added token such as <|im_end|>
	TypeUserDefined = 4 // an added token that is ordinary text, such as <think>
	TypeUnused      = 5 // padding of the id space, never produced
	TypeByte        = 6
)

// Vocab is a byte-level BPE tokenizer as lists, the way a GGUF file stores
// it (tokenizer.ggml.tokens, .token_type, .merges): a token's id is its
// index; merges are "left right", ranked by position.
type Vocab struct {
	Tokens []string
	Types  []int32
	Merges []string
}

// FromVocab builds a tokenizer from a Vocab that describes Qwen3's
// tokenizer (GGUF's tokenizer model "gpt2" with pre-tokenizer "qwen2": NFC,
// Qwen2's split pattern, byte-level BPE). Normal tokens form the BPE
// vocabulary; control and user-defined tokens are added tokens, matched as
// wholes in the text as Hugging Face matches Qwen3's (none of which is
// normalized), control ones special; unused ids name no token. name is
// used in error messages.
func FromVocab(v Vocab, name string) (*Tokenizer, error) {
	p := parser{name: name}
	if len(v.Tokens) == 0 {
		return nil, p.errorf("no tokens")
	}
	if len(v.Tokens) >= maxID {
		return nil, p.errorf("%d tokens, more than %d", len(v.Tokens), maxID)
	}
	if len(v.Types) != len(v.Tokens) {
		return nil, p.errorf("%d token types for %d tokens", len(v.Types), len(v.Tokens))
	}
	vocab := make(map[string]int, len(v.Tokens))
	var added []addedTokenJSON
	for id, tok := range v.Tokens {
		switch v.Types[id] {
		case TypeNormal:
			if prev, dup := vocab[tok]; dup {
				return nil, p.errorf("token %q has ids %d and %d", tok, prev, id)
			}
			vocab[tok] = id
		case TypeControl, TypeUserDefined:
			added = append(added, addedTokenJSON{ID: id, Content: tok, Special: v.Types[id] == TypeControl})
		case TypeUnused:
		default:
			return nil, p.errorf("token %d %q has type %d, which a Qwen3 vocabulary does not use (want 1, 3, 4 or 5)", id, tok, v.Types[id])
		}
	}
	t, err := p.newTokenizer(vocab, added)
	if err != nil {
		return nil, err
	}
	t.merges = make(map[mergePair]merge, len(v.Merges))
	var joined []byte
	for i, m := range v.Merges {
		left, right, ok := strings.Cut(m, " ")
		if !ok || left == "" || right == "" || strings.Contains(right, " ") {
			return nil, p.errorf("merge %d %q is not of the form \"a b\"", i, m)
		}
		if joined, err = p.addMerge(t, i, []byte(left), []byte(right), joined); err != nil {
			return nil, err
		}
	}
	return t, nil
}
