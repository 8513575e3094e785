package tokenizer

import (
	"slices"
	"strings"
)

// GPT-2's byte-level alphabet gives each byte a printable rune so that BPE
// vocabularies can be stored as text: printable Latin-1 bytes stand for
// themselves, the other 68 bytes (controls, space, DEL, NBSP, soft hyphen)
// take the runes from U+0100 upwards in byte order. Space becomes 'Ġ'.
var byteToRune, runeToByte = byteLevelTables()

// byteRuneLimit bounds the runes of the alphabet: 256 + 68.
const byteRuneLimit = 256 + 68

func byteLevelTables() (b2r [256]rune, r2b [byteRuneLimit]int16) {
	for r := range r2b {
		r2b[r] = -1
	}
	next := rune(256)
	for b := range 256 {
		r := rune(b)
		if !('!' <= b && b <= '~' || 0xA1 <= b && b <= 0xAC || 0xAE <= b && b <= 0xFF) {
			r = next
			next++
		}
		b2r[b] = r
		r2b[r] = int16(b)
	}
	return b2r, r2b
}

// byteOf returns the byte that r stands for in the byte-level alphabet.
func byteOf(r rune) (byte, bool) {
	if r < 0 || r >= byteRuneLimit || runeToByte[r] < 0 {
		return 0, false
	}
	return byte(runeToByte[r]), true
}

type mergePair struct{ left, right int32 }

type merge struct {
	rank int32 // position in the merge list; lower merges first
	id   int32 // id of the joined token
}

// Pre-tokens are mostly words that recur, so their BPE results are cached.
// The cache is emptied when full, which keeps it bounded without the
// bookkeeping of an LRU; long pre-tokens are rare and not cached.
const (
	maxCacheEntries = 1 << 15
	maxCachedLen    = 64
)

// appendWord appends the ids of one pre-token, given as raw bytes.
func (t *Tokenizer) appendWord(ids []int, word string) []int {
	if len(word) == 1 {
		return append(ids, int(t.byteIDs[word[0]]))
	}
	if len(word) > maxCachedLen {
		return t.appendBPE(ids, word)
	}
	t.cacheMu.RLock()
	cached, ok := t.cache[word]
	t.cacheMu.RUnlock()
	if ok {
		return append(ids, cached...)
	}
	start := len(ids)
	ids = t.appendBPE(ids, word)
	t.cacheMu.Lock()
	if len(t.cache) >= maxCacheEntries {
		clear(t.cache)
	}
	// Clone the key: word points into the caller's text, which the cache
	// must not keep alive.
	t.cache[strings.Clone(word)] = slices.Clone(ids[start:])
	t.cacheMu.Unlock()
	return ids
}

// bpeSymbol is a token of a word being merged. The symbols form a linked
// list so merging is O(1); a symbol merged into its left neighbour is dead.
type bpeSymbol struct {
	id         int32 // -1 once dead
	prev, next int32 // indexes of the neighbours, -1 at the ends
}

// appendBPE appends the BPE encoding of word. Like Hugging Face it applies
// one merge at a time, always the lowest-ranked pair present and the
// leftmost if that pair occurs more than once, using a heap of candidate
// merges so long words stay O(n log n).
func (t *Tokenizer) appendBPE(ids []int, word string) []int {
	syms := make([]bpeSymbol, len(word))
	for i := range len(word) {
		syms[i] = bpeSymbol{id: t.byteIDs[word[i]], prev: int32(i - 1), next: int32(i + 1)}
	}
	syms[len(syms)-1].next = -1

	var queue candidateHeap
	for i := range len(syms) - 1 {
		if m, ok := t.merges[mergePair{syms[i].id, syms[i+1].id}]; ok {
			queue.push(candidate{rank: m.rank, pos: int32(i)})
		}
	}
	for len(queue) > 0 {
		c := queue.pop()
		left := &syms[c.pos]
		if left.id < 0 || left.next < 0 {
			continue
		}
		right := &syms[left.next]
		// A candidate goes stale when a neighbour merged first. Ranks are
		// unique per pair, so an equal rank means the same pair.
		m, ok := t.merges[mergePair{left.id, right.id}]
		if !ok || m.rank != c.rank {
			continue
		}
		left.id = m.id
		left.next = right.next
		if right.next >= 0 {
			syms[right.next].prev = c.pos
		}
		right.id = -1

		if left.prev >= 0 {
			if m, ok := t.merges[mergePair{syms[left.prev].id, left.id}]; ok {
				queue.push(candidate{rank: m.rank, pos: left.prev})
			}
		}
		if left.next >= 0 {
			if m, ok := t.merges[mergePair{left.id, syms[left.next].id}]; ok {
				queue.push(candidate{rank: m.rank, pos: c.pos})
			}
		}
	}
	for i := int32(0); i >= 0; i = syms[i].next {
		ids = append(ids, int(syms[i].id))
	}
	return ids
}

// candidate is a possible merge of the symbol at pos with its right
// neighbour.
type candidate struct{ rank, pos int32 }

func (a candidate) less(b candidate) bool {
	return a.rank < b.rank || a.rank == b.rank && a.pos < b.pos
}

// candidateHeap is a binary min-heap, written out rather than using
// container/heap to avoid boxing every candidate in an interface.
type candidateHeap []candidate

func (h *candidateHeap) push(c candidate) {
	q := append(*h, c)
	for i := len(q) - 1; i > 0; {
		parent := (i - 1) / 2
		if !q[i].less(q[parent]) {
			break
		}
		q[i], q[parent] = q[parent], q[i]
		i = parent
	}
	*h = q
}

func (h *candidateHeap) pop() candidate {
	q := *h
	top := q[0]
	last := len(q) - 1
	q[0] = q[last]
	q = q[:last]
	for i := 0; ; {
		smallest := i
		for _, child := range [2]int{2*i + 1, 2*i + 2} {
			if child < len(q) && q[child].less(q[smallest]) {
				smallest = child
			}
		}
		if smallest == i {
			break
		}
		q[i], q[smallest] = q[smallest], q[i]
		i = smallest
	}
	*h = q
	return top
}
