package tokenizer

import (
	"bytes"
	"encoding/json"
	"strings"
	"unicode/utf8"
)

// buildMerges turns the merge list into t.merges, checking that the merge
// parts and results are tokens.
func (p *parser) buildMerges(t *Tokenizer, raw json.RawMessage) error {
	r, ok := newMergeReader(raw)
	if !ok {
		return p.errorf("model.merges is not a list")
	}
	// A pretty-printed merge takes some 30 bytes; sizing the map up front
	// saves rehashing 150k entries.
	t.merges = make(map[mergePair]merge, len(raw)/32)
	var joined []byte
	var err error
	for i := 0; ; i++ {
		left, right, elem, ok, more := r.next()
		if !more {
			return nil
		}
		if !ok {
			return p.errorf("merge %d: %s is not of the form \"a b\" or [\"a\", \"b\"]", i, compactJSON(elem))
		}
		if joined, err = p.addMerge(t, i, left, right, joined); err != nil {
			return err
		}
	}
}

// addMerge records merge i of left and right, checking that both parts and
// the joined result are vocabulary tokens. joined is scratch space, handed
// back for reuse.
func (p *parser) addMerge(t *Tokenizer, i int, left, right, joined []byte) ([]byte, error) {
	// Indexing a map with string(b) does not allocate.
	leftID, ok := t.vocab[string(left)]
	if !ok {
		return joined, p.errorf("merge %d %q: %q is not in the vocab", i, string(left)+" "+string(right), left)
	}
	rightID, ok := t.vocab[string(right)]
	if !ok {
		return joined, p.errorf("merge %d %q: %q is not in the vocab", i, string(left)+" "+string(right), right)
	}
	joined = append(append(joined[:0], left...), right...)
	joinedID, ok := t.vocab[string(joined)]
	if !ok {
		return joined, p.errorf("merge %d %q: result %q is not in the vocab", i, string(left)+" "+string(right), joined)
	}
	// A repeated pair takes its last rank, as in Hugging Face's loader.
	t.merges[mergePair{int32(leftID), int32(rightID)}] = merge{rank: int32(i), id: int32(joinedID)}
	return joined, nil
}

// mergeReader walks model.merges, whose entries are "a b" in older files
// and ["a", "b"] in newer ones. Decoding 150k of them one by one with
// encoding/json would double the time to load a file, so it reads the raw
// array instead. The decoder has already checked that the whole document
// is valid JSON, which leaves only finding where values end.
type mergeReader struct {
	data []byte
	pos  int
}

// newMergeReader starts reading raw, reporting false if it is not an array.
// A missing or null list counts as empty.
func newMergeReader(raw []byte) (*mergeReader, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		raw = []byte("[]")
	}
	if raw[0] != '[' {
		return nil, false
	}
	return &mergeReader{data: raw, pos: 1}, true
}

// next returns the parts of the next merge and the element itself, with
// ok=false if the element is not a merge, or more=false at the end.
func (r *mergeReader) next() (left, right, elem []byte, ok, more bool) {
	r.pos = skipSpace(r.data, r.pos)
	if r.pos >= len(r.data) || r.data[r.pos] == ']' {
		return nil, nil, nil, false, false
	}
	// Valid JSON always gives a non-empty value here; max guards the loop.
	end := max(valueEnd(r.data, r.pos), r.pos+1)
	elem = r.data[r.pos:end]
	r.pos = skipSpace(r.data, end)
	if r.pos < len(r.data) && r.data[r.pos] == ',' {
		r.pos++
	}
	left, right, ok = splitMerge(elem)
	return left, right, elem, ok, true
}

// splitMerge returns the two parts of a merge element, or ok=false.
func splitMerge(elem []byte) (left, right []byte, ok bool) {
	switch elem[0] {
	case '"':
		// Like Hugging Face, split on every space: more than one is an error.
		left, right, ok = bytes.Cut(jsonString(elem), []byte(" "))
		return left, right, ok && bytes.IndexByte(right, ' ') < 0
	case '[':
		i := 0
		left, i, ok = stringAt(elem, skipSpace(elem, 1))
		if ok {
			i = skipSpace(elem, i)
			ok = i < len(elem) && elem[i] == ','
		}
		if ok {
			right, i, ok = stringAt(elem, skipSpace(elem, i+1))
		}
		return left, right, ok && skipSpace(elem, i) == len(elem)-1
	}
	return nil, nil, false
}

// stringAt returns the content of the JSON string at d[i] and the index
// past it, or ok=false if no string starts there.
func stringAt(d []byte, i int) (s []byte, end int, ok bool) {
	if i >= len(d) || d[i] != '"' {
		return nil, i, false
	}
	end = valueEnd(d, i)
	return jsonString(d[i:end]), end, true
}

// jsonString returns the content of a valid JSON string literal. Literals
// without escapes are their own content, provided they are valid UTF-8:
// encoding/json replaces invalid bytes, and so must this.
func jsonString(lit []byte) []byte {
	inner := lit[1 : len(lit)-1]
	if bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
		return inner
	}
	var s string
	_ = json.Unmarshal(lit, &s) // cannot fail: the document was validated
	return []byte(s)
}

func skipSpace(d []byte, i int) int {
	for i < len(d) && (d[i] == ' ' || d[i] == '\t' || d[i] == '\n' || d[i] == '\r') {
		i++
	}
	return i
}

// valueEnd returns the index just past the JSON value that starts at i.
func valueEnd(d []byte, i int) int {
	switch d[i] {
	case '"':
		for i++; i < len(d); i++ {
			switch d[i] {
			case '\\':
				i++ // the escaped byte cannot end the string
			case '"':
				return i + 1
			}
		}
		return len(d)
	case '[', '{':
		depth := 0
		for i < len(d) {
			switch d[i] {
			case '"':
				i = valueEnd(d, i)
				continue
			case '[', '{':
				depth++
			case ']', '}':
				if depth--; depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return len(d)
	default: // number, true, false or null
		for i < len(d) && !strings.ContainsRune(",]} \t\r\n", rune(d[i])) {
			i++
		}
		return i
	}
}

// compactJSON returns a JSON value on one short line, for messages.
func compactJSON(v []byte) string {
	var buf bytes.Buffer
	if json.Compact(&buf, v) != nil {
		buf.Reset()
		buf.Write(v)
	}
	s := buf.String()
	if len(s) > 80 {
		s = strings.ToValidUTF8(s[:77], "") + "..."
	}
	return s
}
