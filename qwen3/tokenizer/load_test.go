package tokenizer

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// fixture returns a small tokenizer.json in Qwen3's format: the 256 byte
// tokens (ids 0..255), three merges and one added token. edit may change
// the decoded document before it is encoded again.
func fixture(t testing.TB, edit func(doc map[string]any)) []byte {
	t.Helper()
	vocab := map[string]any{}
	for b, r := range byteToRune {
		vocab[string(r)] = b
	}
	vocab["ab"], vocab["Ġa"], vocab["Ġab"] = 256, 257, 258
	doc := map[string]any{
		"version": "1.0",
		"added_tokens": []any{
			map[string]any{"id": 259, "content": "<|end|>", "single_word": false, "lstrip": false,
				"rstrip": false, "normalized": false, "special": true},
		},
		"normalizer": map[string]any{"type": "NFC"},
		"pre_tokenizer": map[string]any{"type": "Sequence", "pretokenizers": []any{
			map[string]any{"type": "Split", "pattern": map[string]any{"Regex": qwen2Pattern},
				"behavior": "Isolated", "invert": false},
			map[string]any{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false},
		}},
		"decoder": map[string]any{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false},
		"model": map[string]any{
			"type":   "BPE",
			"vocab":  vocab,
			"merges": []any{"a b", []any{"Ġ", "a"}, "Ġa b"},
		},
	}
	if edit != nil {
		edit(doc)
	}
	data, err := json.Marshal(doc)
	require.NoError(t, err)
	return data
}

func model(doc map[string]any) map[string]any { return doc["model"].(map[string]any) }
func vocab(doc map[string]any) map[string]any { return model(doc)["vocab"].(map[string]any) }

func addMerge(m any) func(map[string]any) {
	return func(doc map[string]any) {
		model(doc)["merges"] = append(model(doc)["merges"].([]any), m)
	}
}

func TestParseFixture(t *testing.T) {
	tok, err := Parse(fixture(t, nil), "fixture.json")
	require.NoError(t, err)
	require.Equal(t, 260, tok.VocabSize())
	space := int(tok.byteIDs[' '])
	// "a b" outranks "Ġ a", so " ab" ends as Ġ + ab, never reaching Ġab.
	require.Equal(t, []int{space, 256}, tok.Encode(" ab"))
	require.Equal(t, []int{257}, tok.Encode(" a"))
	require.Equal(t, []int{256, 259, 256}, tok.Encode("ab<|end|>ab"))
	text, err := tok.Decode([]int{256, 259, space, 256})
	require.NoError(t, err)
	require.Equal(t, "ab<|end|> ab", text)

	// Both spellings of merges mean the same, however spaced or escaped.
	base := string(fixture(t, nil))
	const merges = `"merges":["a b",["Ġ","a"],"Ġa b"]`
	require.Contains(t, base, merges)
	for _, alt := range []string{
		`"merges":[["a","b"],["Ġ","a"],["Ġa","b"]]`,
		"\"merges\" : [\n  [\n    \"a\",\n    \"b\"\n  ],\n  [ \"\\u0120\" , \"a\" ] , \"\\u0120a b\"\n]",
		`"merges":["\u0061 b",["\u0120","\u0061"],"\u0120a\u0020b"]`,
	} {
		tok2, err := Parse([]byte(strings.Replace(base, merges, alt, 1)), "alt.json")
		require.NoError(t, err, alt)
		require.Equal(t, tok.merges, tok2.merges, alt)
	}

	// No merges at all is a valid, if useless, BPE model.
	tok3, err := Parse(fixture(t, func(doc map[string]any) { model(doc)["merges"] = nil }), "null.json")
	require.NoError(t, err)
	require.Equal(t, []int{'a', 'b'}, tok3.Encode("ab")) // fixture ids are byte values
}

func TestParseQuoteToken(t *testing.T) {
	// Byte-level tokens may contain '"' and '\\', which JSON escapes.
	for _, m := range []any{`" a`, []any{`"`, "a"}, `\ a`} {
		data := fixture(t, func(doc map[string]any) {
			vocab(doc)[`"a`] = 300
			vocab(doc)[`\a`] = 301
			addMerge(m)(doc)
		})
		tok, err := Parse(data, "quote.json")
		require.NoError(t, err, "merge %v", m)
		want := 300
		if m == `\ a` {
			want = 301
		}
		text, err := tok.Decode([]int{want})
		require.NoError(t, err)
		require.Equal(t, []int{want}, tok.Encode(text))
	}
}

func TestParseErrors(t *testing.T) {
	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"malformed JSON", []byte(`{"model": {"type": "BPE",`), "invalid JSON"},
		{"not an object", []byte(`[1, 2]`), "invalid tokenizer.json"},
		{"wrong model type", fixture(t, func(doc map[string]any) { model(doc)["type"] = "WordPiece" }),
			`model type "WordPiece" is not supported`},
		{"no model", fixture(t, func(doc map[string]any) { delete(doc, "model") }), `model type "" is not supported`},
		{"empty vocab", fixture(t, func(doc map[string]any) { model(doc)["vocab"] = map[string]any{} }),
			"model.vocab is empty"},
		{"id not a number", fixture(t, func(doc map[string]any) { vocab(doc)["zz"] = "x" }),
			"invalid tokenizer.json"},
		{"merge of unknown token", fixture(t, addMerge("a zz")), `merge 3 "a zz": "zz" is not in the vocab`},
		{"merge of unknown token, pair form", fixture(t, addMerge([]any{"zz", "a"})),
			`merge 3 "zz a": "zz" is not in the vocab`},
		{"merge result missing", fixture(t, addMerge("b a")), `merge 3 "b a": result "ba" is not in the vocab`},
		{"merge of three parts", fixture(t, addMerge("a b c")), `merge 3: "a b c" is not of the form`},
		{"merge of one part", fixture(t, addMerge([]any{"a"})), `merge 3: ["a"] is not of the form`},
		{"merge not a string", fixture(t, addMerge(5)), `merge 3: 5 is not of the form`},
		{"merge an object", fixture(t, addMerge(map[string]any{"a": "b"})), `merge 3: {"a":"b"} is not of the form`},
		{"merge of three strings", fixture(t, addMerge([]any{"a", "b", "c"})), `merge 3: ["a","b","c"] is not of the form`},
		{"merge of a string and a number", fixture(t, addMerge([]any{"a", 1})), `merge 3: ["a",1] is not of the form`},
		{"merges not a list", fixture(t, func(doc map[string]any) { model(doc)["merges"] = map[string]any{} }),
			"model.merges is not a list"},
		{"merge pretty-printed", []byte(strings.Replace(string(fixture(t, addMerge([]any{"a", "b", "c"}))),
			`["a","b","c"]`, "[\n  \"a\",\n  \"b\",\n  \"c\"\n]", 1)), `merge 3: ["a","b","c"] is not of the form`},
		{"duplicate ids", fixture(t, func(doc map[string]any) { vocab(doc)["zz"] = 256 }),
			`duplicate id 256: vocab tokens "ab" and "zz"`},
		{"negative id", fixture(t, func(doc map[string]any) { vocab(doc)["zz"] = -1 }), `"zz" has id -1`},
		{"huge id", fixture(t, func(doc map[string]any) { vocab(doc)["zz"] = 1 << 40 }), `"zz" has id 1099511627776`},
		{"added token on a vocab id", fixture(t, func(doc map[string]any) {
			doc["added_tokens"] = []any{map[string]any{"id": 256, "content": "<x>"}}
		}), `duplicate id 256: added token "<x>" and vocab token "ab"`},
		{"added tokens sharing an id", fixture(t, func(doc map[string]any) {
			doc["added_tokens"] = []any{map[string]any{"id": 300, "content": "<x>"}, map[string]any{"id": 300, "content": "<y>"}}
		}), `duplicate id 300: added tokens "<x>" and "<y>"`},
		{"empty added token", fixture(t, func(doc map[string]any) {
			doc["added_tokens"] = []any{map[string]any{"id": 300, "content": ""}}
		}), `added token 0 (id 300) is empty`},
		{"byte missing", fixture(t, func(doc map[string]any) { delete(vocab(doc), "Ċ") }),
			`model.vocab lacks "Ċ", the byte-level token for byte 0x0a`},
		{"other normalizer", fixture(t, func(doc map[string]any) { doc["normalizer"] = nil }), "normalizer must be NFC"},
		{"other split pattern", fixture(t, func(doc map[string]any) {
			pre := doc["pre_tokenizer"].(map[string]any)["pretokenizers"].([]any)
			pre[0].(map[string]any)["pattern"] = map[string]any{"Regex": `\s+`}
		}), "pre_tokenizer must be Qwen2's Split pattern"},
		{"other decoder", fixture(t, func(doc map[string]any) { doc["decoder"] = map[string]any{"type": "WordPiece"} }),
			"decoder must be ByteLevel"},
	}
	dir := t.TempDir()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "_")+".json")
			require.NoError(t, os.WriteFile(path, c.data, 0o644))
			_, err := Load(path)
			require.Error(t, err)
			msg := err.Error()
			require.True(t, strings.HasPrefix(msg, "tokenizer: "+path+": "), "message %q does not name the file", msg)
			require.Contains(t, msg, c.want)
			require.NotContains(t, msg, "\n")
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope.json")
	_, err := Load(path)
	require.ErrorIs(t, err, os.ErrNotExist)
	require.Contains(t, err.Error(), path)
}

// FuzzParse checks that no input makes Parse panic.
func FuzzParse(f *testing.F) {
	f.Add(fixture(f, nil))
	f.Add([]byte(`{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a a"]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		tok, err := Parse(data, "fuzz.json")
		if err != nil {
			return
		}
		ids := tok.Encode(string(data[:min(len(data), 64)]))
		_, err = tok.Decode(ids)
		require.NoError(t, err)
	})
}
