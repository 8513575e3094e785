package tokenizer

import (
	"fmt"
	"unicode/utf8"
)

// Decode returns the text of ids: added tokens give their content, BPE
// tokens their bytes. Bytes that do not form valid UTF-8, such as half an
// emoji at the end, become U+FFFD, one per maximal ill-formed subsequence
// as Hugging Face (via Rust's lossy conversion) does. An id that names no
// token is an error, since it points at a bug upstream (for example
// sampling from padded embedding rows).
func (t *Tokenizer) Decode(ids []int) (string, error) {
	var buf []byte
	for i, id := range ids {
		var ok bool
		if buf, ok = t.appendTokenBytes(buf, id); !ok {
			return "", fmt.Errorf("tokenizer: decode: id %d at position %d is not a token (vocab size %d)", id, i, len(t.tokens))
		}
	}
	out, _ := appendValidUTF8(nil, buf, false)
	return string(out), nil
}

// appendTokenBytes appends the bytes that id stands for, or reports false
// if no token has that id.
func (t *Tokenizer) appendTokenBytes(dst []byte, id int) ([]byte, bool) {
	if id < 0 || id >= len(t.tokens) {
		return dst, false
	}
	tok := t.tokens[id]
	switch t.kinds[id] {
	case kindAdded:
		return append(dst, tok...), true
	case kindVocab:
		start := len(dst)
		for _, r := range tok {
			b, ok := byteOf(r)
			if !ok {
				// Hugging Face's ByteLevel decoder passes a token with a
				// rune outside the byte alphabet through unchanged.
				return append(dst[:start], tok...), true
			}
			dst = append(dst, b)
		}
		return dst, true
	}
	return dst, false
}

// StreamDecoder turns ids into text one at a time, as a model generates
// them. One character can span several tokens (rarer emoji and CJK do),
// so it holds back the bytes of an incomplete UTF-8 sequence until the
// tokens that finish it arrive. Create one with Tokenizer.NewStreamDecoder;
// it serves one stream at a time.
type StreamDecoder struct {
	t       *Tokenizer
	pending []byte // start of an incomplete UTF-8 sequence
}

// NewStreamDecoder returns a StreamDecoder for t's tokens.
func (t *Tokenizer) NewStreamDecoder() *StreamDecoder {
	return &StreamDecoder{t: t}
}

// Push adds the token id and returns the text it completes, which is always
// valid UTF-8 and often empty. Bytes that cannot become valid UTF-8 come out
// as U+FFFD at once. An id that names no token also gives U+FFFD, so that
// a stream shows the fault instead of stopping.
func (d *StreamDecoder) Push(id int) string {
	buf, ok := d.t.appendTokenBytes(d.pending, id)
	if !ok {
		buf = utf8.AppendRune(buf, utf8.RuneError)
	}
	out, rest := appendValidUTF8(nil, buf, true)
	d.pending = append(buf[:0], rest...)
	return string(out)
}

// Flush returns the bytes still held back, as U+FFFD since the sequence
// they start was never completed, and resets d for a new stream.
func (d *StreamDecoder) Flush() string {
	out, _ := appendValidUTF8(nil, d.pending, false)
	d.pending = d.pending[:0]
	return string(out)
}

// appendValidUTF8 appends b to dst with each maximal ill-formed subsequence
// replaced by U+FFFD. With keepTail, an incomplete but so far well-formed
// sequence at the end of b is not replaced but returned as rest.
func appendValidUTF8(dst, b []byte, keepTail bool) (out, rest []byte) {
	if utf8.Valid(b) {
		return append(dst, b...), nil
	}
	for i := 0; i < len(b); {
		n, need := sequencePrefix(b[i:])
		switch {
		case n == need:
			dst = append(dst, b[i:i+n]...)
		case keepTail && n > 0 && i+n == len(b):
			return dst, b[i:]
		default:
			dst = utf8.AppendRune(dst, utf8.RuneError)
			n = max(n, 1)
		}
		i += n
	}
	return dst, nil
}

// sequencePrefix returns how many leading bytes of the non-empty b form a
// well-formed start of one UTF-8 sequence (0 if b[0] cannot start one) and
// how long that sequence must be. The second byte's range depends on the
// first so that overlong forms, surrogates and values past U+10FFFF count
// as ill-formed, per the Unicode standard's table of well-formed UTF-8.
func sequencePrefix(b []byte) (n, need int) {
	lo, hi := byte(0x80), byte(0xBF)
	switch c := b[0]; {
	case c < 0x80:
		return 1, 1
	case c < 0xC2:
		return 0, 1
	case c < 0xE0:
		need = 2
	case c == 0xE0:
		need, lo = 3, 0xA0
	case c == 0xED:
		need, hi = 3, 0x9F
	case c < 0xF0:
		need = 3
	case c == 0xF0:
		need, lo = 4, 0x90
	case c < 0xF4:
		need = 4
	case c == 0xF4:
		need, hi = 4, 0x8F
	default:
		return 0, 1
	}
	n = 1
	for n < need && n < len(b) && lo <= b[n] && b[n] <= hi {
		n++
		lo, hi = 0x80, 0xBF
	}
	return n, need
}
