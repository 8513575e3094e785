package sample

import (
	"cmp"
	"container/heap"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
)

// ErrNoCandidates is returned when no token can be drawn because every
// logit is -Inf or NaN (or there are no logits).
var ErrNoCandidates = errors.New("sample: every logit is -Inf or NaN")

// Sampler picks the next token from a model's logits. The pipeline, in the
// order transformers applies it:
//
//  1. Repetition penalty, once for each distinct token in the history: a
//     positive logit is divided by the penalty, a negative one multiplied,
//     so that both move towards "less likely".
//  2. Presence penalty, subtracted once from each distinct token in the
//     history.
//  3. Temperature 0: the token with the highest logit (the lowest id on a
//     tie), and nothing below applies.
//  4. Top-k: only the TopK highest logits stay.
//  5. Softmax of logit/Temperature over those, in float64 after
//     subtracting the largest logit so that nothing overflows.
//  6. Top-p: the smallest set of most likely tokens whose probabilities add
//     up to at least TopP; the most likely token always stays.
//  7. Min-p: tokens less likely than MinP times the most likely one go
//     (and so do tokens whose probability underflowed to 0).
//  8. The survivors' probabilities are renormalised and one is drawn.
//
// llama.cpp's default chain applies the temperature after top-k, top-p and
// min-p instead, so for a temperature other than 1 its top-p and min-p keep
// a different set of tokens than this Sampler (and transformers) do.
//
// NaN logits count as -Inf, so those tokens are never chosen.
//
// A Sampler keeps its random generator and scratch buffers between calls, so
// it is not safe for concurrent use.
type Sampler struct {
	p   Params
	rng *rand.Rand

	// Scratch reused across calls: at a 151936-token vocabulary, allocating
	// these for every token would cost more than the sampling itself.
	logits []float64
	cands  []candidate
	seen   tokenSet
}

// candidate is a token still in the running. Its score is the logit until
// the softmax and the probability after it; both order tokens the same way.
type candidate struct {
	id    int
	score float64
}

// better orders candidates by falling score, the lower id first on a tie,
// so that results never depend on how the candidates were gathered.
func better(a, b candidate) int {
	if c := cmp.Compare(b.score, a.score); c != 0 {
		return c
	}
	return cmp.Compare(a.id, b.id)
}

// New returns a Sampler whose random draws are fully determined by p.Seed.
// New does not validate p; call p.Validate first. Params that would fail
// it still give defined behaviour: an out-of-range filter or penalty is
// skipped, and a temperature that is not positive means greedy decoding.
func New(p Params) *Sampler {
	// PCG takes two words of seed; fixing the second one lets the single
	// user-visible Seed determine the whole stream.
	return &Sampler{p: p, rng: rand.New(rand.NewPCG(p.Seed, 0))}
}

// Params returns the settings the Sampler was made with.
func (s *Sampler) Params() Params { return s.p }

// Sample returns the next token id for logits, given the tokens in history
// that the penalties apply to (the caller chooses the window: transformers
// penalises the whole context, llama.cpp the last 64 tokens by default).
// Ids in history outside the vocabulary are ignored. logits is not modified.
// The only error is ErrNoCandidates.
func (s *Sampler) Sample(logits []float32, history []int) (int, error) {
	cands, err := s.distribution(logits, history)
	if err != nil {
		return 0, err
	}
	return s.draw(cands)
}

// SampleTopK is Sample for a row of logits of which only the best are
// known (computed on the GPU, so that the row is not read back): ids and
// logits hold at least the TopK most likely tokens, best first (larger
// logit, then lower id: the order in which Sample ranks them). When
// p.TopKSuffices(len(ids), vocabulary) holds, it returns what Sample
// returns for the whole row and no history, and consumes the same
// randomness: Sample keeps only those TopK tokens too, in the same order,
// and everything after (softmax, top-p, min-p, the draw) looks at them
// alone. Logits that are NaN or -Inf count as absent.
func (s *Sampler) SampleTopK(ids []int, logits []float32) (int, error) {
	k := s.p.TopK
	if k <= 0 || s.p.Greedy() || len(ids) != len(logits) || len(ids) < k {
		return 0, fmt.Errorf("sample: SampleTopK needs sampling with top-k and at least top-k candidates (top-k %d, temperature %g, %d ids, %d logits)",
			k, s.p.Temperature, len(ids), len(logits))
	}
	cands := s.cands[:0]
	for i := range k {
		v := float64(logits[i])
		if math.IsNaN(v) || math.IsInf(v, -1) {
			continue
		}
		if math.IsInf(v, 1) {
			v = math.MaxFloat64 // as penalised does
		}
		cands = append(cands, candidate{ids[i], v})
	}
	s.cands = cands
	if len(cands) == 0 {
		return 0, ErrNoCandidates
	}
	return s.draw(s.truncate(cands, true))
}

// TopKSuffices reports whether SampleTopK with n candidates of a row of
// vocab logits gives exactly what Sample gives: sampling (not greedy) with
// a top-k of at most n and below the vocabulary (Sample keeps every token
// otherwise, in another order), and no penalty (penalties change the
// logits of tokens that may lie outside the candidates).
func (p Params) TopKSuffices(n, vocab int) bool {
	return !p.Greedy() && p.TopK > 0 && p.TopK <= n && p.TopK < vocab && !p.Penalised()
}

// Penalised reports whether the repetition or presence penalty changes
// the logits of tokens in the history (as Sample applies them).
func (p Params) Penalised() bool {
	rp, pp := p.RepetitionPenalty, p.PresencePenalty
	return (rp > 0 && rp != 1 && !math.IsInf(rp, 0)) || (pp != 0 && !math.IsNaN(pp) && !math.IsInf(pp, 0))
}

// draw picks one of the final candidates by their probabilities.
func (s *Sampler) draw(cands []candidate) (int, error) {
	if len(cands) == 1 {
		// A single candidate needs no draw; greedy decoding always lands
		// here, so it never touches the random generator.
		return cands[0].id, nil
	}
	if len(cands) == 0 {
		return 0, ErrNoCandidates
	}
	u := s.rng.Float64()
	var cum float64
	for _, c := range cands {
		cum += c.score
		if u < cum {
			return c.id, nil
		}
	}
	// Rounding can leave the sum a hair under 1 and u above it.
	return cands[len(cands)-1].id, nil
}

// Distribution returns the final, renormalised distribution that Sample
// draws from for the same arguments: the surviving token ids and their
// probabilities, most likely first (the lower id first on a tie). Under
// greedy decoding it is the single chosen token with probability 1. It
// returns nil slices when every logit is -Inf or NaN. The slices belong to
// the caller; logits is not modified, and no randomness is consumed.
func (s *Sampler) Distribution(logits []float32, history []int) (ids []int, probs []float64) {
	cands, err := s.distribution(logits, history)
	if err != nil {
		return nil, nil
	}
	slices.SortFunc(cands, better)
	ids = make([]int, len(cands))
	probs = make([]float64, len(cands))
	for i, c := range cands {
		ids[i], probs[i] = c.id, c.score
	}
	return ids, probs
}

// distribution runs the pipeline and returns the survivors with their
// probabilities, in no promised order. The slice is the Sampler's scratch
// buffer, valid until the next call.
func (s *Sampler) distribution(logits []float32, history []int) ([]candidate, error) {
	l := s.penalised(logits, history)

	if s.p.Greedy() {
		best := argmax(l)
		if best < 0 {
			return nil, ErrNoCandidates
		}
		s.cands = append(s.cands[:0], candidate{id: best, score: 1})
		return s.cands, nil
	}

	var cands []candidate
	sorted := false
	if k := s.p.TopK; k > 0 && k < len(l) {
		cands = topK(s.cands[:0], l, k)
		sorted = true
	} else {
		cands = s.cands[:0]
		for id, v := range l {
			if !math.IsInf(v, -1) {
				cands = append(cands, candidate{id, v})
			}
		}
	}
	s.cands = cands
	if len(cands) == 0 {
		return nil, ErrNoCandidates
	}
	return s.truncate(cands, sorted), nil
}

// truncate turns the candidates' logits into the final renormalised
// distribution: softmax, top-p, min-p. sorted says whether cands are
// already in better's order (top-k sorts them).
func (s *Sampler) truncate(cands []candidate, sorted bool) []candidate {
	maxProb := softmax(cands, s.p.Temperature)

	if p := s.p.TopP; p > 0 && p < 1 {
		if !sorted {
			cands = nucleusSuperset(cands, p)
			slices.SortFunc(cands, better)
		}
		var cum float64
		for i, c := range cands {
			cum += c.score
			if cum >= p {
				cands = cands[:i+1]
				break
			}
		}
	}

	// Min-p, and in any case drop tokens whose probability underflowed to
	// 0: they can never be drawn and would only clutter the distribution.
	// Min-p compares against the most likely token's probability before
	// top-p's cut; the ratio is all that matters, and no cut changes it.
	var threshold float64
	if s.p.MinP > 0 && s.p.MinP < 1 {
		threshold = s.p.MinP * maxProb
	}
	kept := cands[:0]
	var total float64
	for _, c := range cands {
		if c.score > 0 && c.score >= threshold {
			kept = append(kept, c)
			total += c.score
		}
	}
	for i := range kept {
		kept[i].score /= total
	}
	return kept
}

// softmax turns the candidates' logits into probabilities at the given
// temperature, in place, and returns the largest probability.
func softmax(cands []candidate, temperature float64) float64 {
	maxLogit := math.Inf(-1)
	for _, c := range cands {
		maxLogit = max(maxLogit, c.score)
	}
	var total float64
	for i, c := range cands {
		w := math.Exp((c.score - maxLogit) / temperature)
		cands[i].score = w
		total += w
	}
	for i := range cands {
		cands[i].score /= total
	}
	// The most likely token's weight was exp(0) = 1.
	return 1 / total
}

// nucleusSuperset returns, in place, a subset of cands that surely contains
// the top-p nucleus, so that only the subset has to be sorted. The tokens
// below t = (1-p)/n hold less than n·t = 1-p of the mass between them, so
// the tokens at or above t hold more than p: being every token at least as
// likely as t, they are a prefix of the sorted order, and the nucleus is a
// prefix of them. At a 151936-token vocabulary this usually leaves a small
// fraction of the tokens to sort.
func nucleusSuperset(cands []candidate, p float64) []candidate {
	t := (1 - p) / float64(len(cands))
	kept := cands[:0]
	for _, c := range cands {
		if c.score >= t {
			kept = append(kept, c)
		}
	}
	return kept
}

// penalised copies logits into the scratch buffer as float64, maps NaN to
// -Inf, and applies the repetition and presence penalties.
func (s *Sampler) penalised(logits []float32, history []int) []float64 {
	l := slices.Grow(s.logits[:0], len(logits))[:len(logits)]
	s.logits = l
	for i, v := range logits {
		x := float64(v)
		switch {
		case math.IsNaN(x):
			x = math.Inf(-1)
		case math.IsInf(x, 1):
			// +Inf would turn the softmax into Inf-Inf = NaN; the largest
			// finite value keeps such tokens the certain choice instead.
			x = math.MaxFloat64
		}
		l[i] = x
	}

	rp := s.p.RepetitionPenalty
	applyRP := rp > 0 && rp != 1 && !math.IsInf(rp, 0)
	pp := s.p.PresencePenalty
	applyPP := pp != 0 && !math.IsNaN(pp) && !math.IsInf(pp, 0)
	if !applyRP && !applyPP {
		return l
	}
	s.seen.reset(len(l))
	for _, id := range history {
		if id < 0 || id >= len(l) || !s.seen.add(id) {
			continue
		}
		x := l[id]
		if applyRP {
			if x > 0 {
				x /= rp
			} else {
				x *= rp
			}
		}
		if applyPP {
			x -= pp
		}
		// An extreme penalty can push a finite logit to an infinity (or a
		// NaN); clamped, the token stays in the running at the extreme.
		switch {
		case math.IsNaN(x) || math.IsInf(x, -1):
			x = -math.MaxFloat64
		case math.IsInf(x, 1):
			x = math.MaxFloat64
		}
		if math.IsInf(l[id], -1) {
			x = l[id] // a token that was out stays out
		}
		l[id] = x
	}
	return l
}

// argmax returns the id of the largest logit, the lowest id on a tie, or -1
// when every logit is -Inf.
func argmax(l []float64) int {
	best := -1
	bestV := math.Inf(-1)
	for id, v := range l {
		if v > bestV {
			best, bestV = id, v
		}
	}
	return best
}

// topK appends to dst the k candidates with the largest finite logits,
// ordered by better. It keeps a heap of the best k seen so far whose root
// is the worst of them: most tokens lose to the root with one comparison,
// so this costs O(n) plus O(k log k), where a full sort is O(n log n).
func topK(dst []candidate, l []float64, k int) []candidate {
	h := &worstFirst{dst}
	for id, v := range l {
		switch {
		case math.IsInf(v, -1):
		case len(h.c) < k:
			h.c = append(h.c, candidate{id, v})
			if len(h.c) == k {
				heap.Init(h)
			}
		case v > h.c[0].score:
			// Ids arrive in increasing order, so a later token that only
			// ties the root would lose the tie: strictly greater is right.
			h.c[0] = candidate{id, v}
			heap.Fix(h, 0)
		}
	}
	slices.SortFunc(h.c, better)
	return h.c
}

// worstFirst is a heap of candidates whose root is the least likely one.
// topK never grows or shrinks it through the heap package; Push and Pop are
// there only to satisfy heap.Interface.
type worstFirst struct{ c []candidate }

func (h *worstFirst) Len() int           { return len(h.c) }
func (h *worstFirst) Less(i, j int) bool { return better(h.c[i], h.c[j]) > 0 }
func (h *worstFirst) Swap(i, j int)      { h.c[i], h.c[j] = h.c[j], h.c[i] }
func (h *worstFirst) Push(x any)         { h.c = append(h.c, x.(candidate)) }
func (h *worstFirst) Pop() any {
	last := h.c[len(h.c)-1]
	h.c = h.c[:len(h.c)-1]
	return last
}

// tokenSet is a set of token ids that empties in O(1): an id is a member
// when its mark equals the current epoch, so emptying the set only bumps the
// epoch instead of clearing a vocabulary-sized array for every token.
type tokenSet struct {
	mark  []uint32
	epoch uint32
}

// reset empties the set and makes room for ids below n.
func (t *tokenSet) reset(n int) {
	if len(t.mark) < n {
		t.mark = make([]uint32, n)
		t.epoch = 0
	}
	t.epoch++
	if t.epoch == 0 {
		// The counter wrapped: stale marks could now match, so clear them.
		clear(t.mark)
		t.epoch = 1
	}
}

// add inserts id and reports whether it was not already present.
func (t *tokenSet) add(id int) bool {
	if t.mark[id] == t.epoch {
		return false
	}
	t.mark[id] = t.epoch
	return true
}
