package sample

import (
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// plain is sampling at temperature 1 with every filter and penalty off.
var plain = Params{Temperature: 1, TopP: 1, RepetitionPenalty: 1}

func with(f func(*Params)) Params {
	p := plain
	f(&p)
	return p
}

func requireDist(t *testing.T, p Params, logits []float32, history []int, wantIDs []int, wantProbs []float64) {
	t.Helper()
	ids, probs := New(p).Distribution(logits, history)
	require.Equal(t, wantIDs, ids)
	require.Len(t, probs, len(wantProbs))
	for i := range wantProbs {
		assert.InDelta(t, wantProbs[i], probs[i], 1e-12, "probability of id %d", ids[i])
	}
}

var e = math.Exp

func TestSoftmaxAtTemperature(t *testing.T) {
	logits := []float32{1, 2, 3, 4}

	z := e(1) + e(2) + e(3) + e(4)
	requireDist(t, plain, logits, nil,
		[]int{3, 2, 1, 0}, []float64{e(4) / z, e(3) / z, e(2) / z, e(1) / z})

	// Temperature 2 halves every logit before the softmax.
	z2 := e(0.5) + e(1) + e(1.5) + e(2)
	requireDist(t, with(func(p *Params) { p.Temperature = 2 }), logits, nil,
		[]int{3, 2, 1, 0}, []float64{e(2) / z2, e(1.5) / z2, e(1) / z2, e(0.5) / z2})
}

func TestTopK(t *testing.T) {
	logits := []float32{1, 2, 3, 4}
	z := e(4) + e(3)
	requireDist(t, with(func(p *Params) { p.TopK = 2 }), logits, nil,
		[]int{3, 2}, []float64{e(4) / z, e(3) / z})

	// A top-k as large as the vocabulary keeps everything.
	assert.Len(t, ids(with(func(p *Params) { p.TopK = 4 }), logits), 4)

	// On a tie at the cut, the lower ids stay.
	assert.Equal(t, []int{1, 2}, ids(with(func(p *Params) { p.TopK = 2 }), []float32{1, 3, 3, 3, 0}))
}

func ids(p Params, logits []float32) []int {
	got, _ := New(p).Distribution(logits, nil)
	return got
}

func TestTopP(t *testing.T) {
	logits := []float32{1, 2, 3, 4}
	// softmax([1,2,3,4]) ≈ [0.0321, 0.0871, 0.2369, 0.6439]; cumulative from
	// the top: 0.6439, 0.8808, 0.9679, 1.
	z := e(1) + e(2) + e(3) + e(4)
	p3, p2, p1 := e(4)/z, e(3)/z, e(2)/z
	require.InDelta(t, 0.6439, p3, 1e-4)
	require.InDelta(t, 0.8808, p3+p2, 1e-4)
	require.InDelta(t, 0.9679, p3+p2+p1, 1e-4)

	topP := func(v float64) Params { return with(func(p *Params) { p.TopP = v }) }
	requireDist(t, topP(0.5), logits, nil, []int{3}, []float64{1})
	requireDist(t, topP(0.7), logits, nil, []int{3, 2}, []float64{p3 / (p3 + p2), p2 / (p3 + p2)})
	s := p3 + p2 + p1
	requireDist(t, topP(0.9), logits, nil, []int{3, 2, 1}, []float64{p3 / s, p2 / s, p1 / s})
	// Even a tiny top-p keeps the most likely token.
	requireDist(t, topP(1e-9), logits, nil, []int{3}, []float64{1})
}

func TestMinP(t *testing.T) {
	logits := []float32{1, 2, 3, 4}
	// The max probability is e^4/Z, so min-p compares e^i against
	// min_p × e^4: e^3/e^4 ≈ 0.368, e^2/e^4 ≈ 0.135, e^1/e^4 ≈ 0.0498.
	minP := func(v float64) Params { return with(func(p *Params) { p.MinP = v }) }

	z := e(4) + e(3)
	requireDist(t, minP(0.2), logits, nil, []int{3, 2}, []float64{e(4) / z, e(3) / z})
	z = e(4) + e(3) + e(2)
	requireDist(t, minP(0.1), logits, nil, []int{3, 2, 1}, []float64{e(4) / z, e(3) / z, e(2) / z})
	requireDist(t, minP(0.5), logits, nil, []int{3}, []float64{1})
}

func TestFiltersInOrder(t *testing.T) {
	// Top-k 3 leaves [4,3,2] with probabilities e^4, e^3, e^2 over their
	// own sum ≈ [0.665, 0.245, 0.090]; top-p 0.8 then keeps two, and min-p
	// 0.4 (threshold 0.4 × 0.665 = 0.266) keeps one.
	logits := []float32{1, 2, 3, 4}
	z := e(4) + e(3)
	requireDist(t, with(func(p *Params) { p.TopK, p.TopP = 3, 0.8 }), logits, nil,
		[]int{3, 2}, []float64{e(4) / z, e(3) / z})
	requireDist(t, with(func(p *Params) { p.TopK, p.TopP, p.MinP = 3, 0.8, 0.4 }), logits, nil,
		[]int{3}, []float64{1})
}

func TestRepetitionPenalty(t *testing.T) {
	// Id 0 (positive) is divided by 2, id 1 (negative) multiplied by 2, each
	// once although id 0 occurs twice; ids out of the vocabulary are ignored.
	logits := []float32{2, -1, 0.5, 1}
	history := []int{0, 1, 0, 99, -1}
	// Penalised: [1, -2, 0.5, 1]; ids 0 and 3 tie, the lower id first.
	z := e(1) + e(-2) + e(0.5) + e(1)
	requireDist(t, with(func(p *Params) { p.RepetitionPenalty = 2 }), logits, history,
		[]int{0, 3, 2, 1}, []float64{e(1) / z, e(1) / z, e(0.5) / z, e(-2) / z})
}

func TestPresencePenalty(t *testing.T) {
	logits := []float32{1, 2, 3, 4}
	// 1.5 comes off ids 3 and 1, once each: [1, 0.5, 3, 2.5].
	z := e(1) + e(0.5) + e(3) + e(2.5)
	requireDist(t, with(func(p *Params) { p.PresencePenalty = 1.5 }), logits, []int{3, 3, 1},
		[]int{2, 3, 0, 1}, []float64{e(3) / z, e(2.5) / z, e(1) / z, e(0.5) / z})
}

func TestPenaltiesTogether(t *testing.T) {
	// Repetition first, then presence: 4/2-1 = 1, and a zero logit counts
	// as not positive: 0×2-1 = -1.
	logits := []float32{4, 0, 2}
	z := e(1) + e(-1) + e(2)
	requireDist(t, with(func(p *Params) { p.RepetitionPenalty, p.PresencePenalty = 2, 1 }), logits, []int{0, 1},
		[]int{2, 0, 1}, []float64{e(2) / z, e(1) / z, e(-1) / z})
}

func TestGreedy(t *testing.T) {
	greedy := with(func(p *Params) { p.Temperature = 0 })
	s := New(greedy)
	for range 10 {
		id, err := s.Sample([]float32{1, 5, 5, 2}, nil)
		require.NoError(t, err)
		assert.Equal(t, 1, id, "a tie goes to the lowest id")
	}
	requireDist(t, greedy, []float32{1, 5, 5, 2}, nil, []int{1}, []float64{1})

	// Unvalidated Params with a negative temperature fall back to greedy.
	id, err := New(Params{Temperature: -1}).Sample([]float32{1, 5, 5, 2}, nil)
	require.NoError(t, err)
	assert.Equal(t, 1, id)

	// The penalties apply before the argmax: 5/2 = 2.5 loses to 5.
	greedy.RepetitionPenalty = 2
	id, err = New(greedy).Sample([]float32{1, 5, 5, 2}, []int{1})
	require.NoError(t, err)
	assert.Equal(t, 2, id)
}

func TestNaNAndInf(t *testing.T) {
	nan := float32(math.NaN())
	inf := float32(math.Inf(1))
	z := e(1) + e(0)
	requireDist(t, plain, []float32{nan, 1, -inf, 0}, nil, []int{1, 3}, []float64{e(1) / z, e(0) / z})

	s := New(plain)
	for range 1000 {
		id, err := s.Sample([]float32{nan, 1, -inf, 0}, nil)
		require.NoError(t, err)
		require.Contains(t, []int{1, 3}, id)
	}

	// +Inf logits share all the probability.
	requireDist(t, plain, []float32{0, inf, 1, inf}, nil, []int{1, 3}, []float64{0.5, 0.5})

	greedy := with(func(p *Params) { p.Temperature = 0 })
	id, err := New(greedy).Sample([]float32{nan, -1, nan, 3}, nil)
	require.NoError(t, err)
	assert.Equal(t, 3, id)

	for _, p := range []Params{plain, greedy, with(func(p *Params) { p.TopK = 1 })} {
		for _, logits := range [][]float32{{nan, -inf, nan}, {}} {
			_, err := New(p).Sample(logits, nil)
			assert.ErrorIs(t, err, ErrNoCandidates)
			ids, probs := New(p).Distribution(logits, nil)
			assert.Nil(t, ids)
			assert.Nil(t, probs)
		}
	}
}

func TestLogitsNotModified(t *testing.T) {
	logits := []float32{2, -1, float32(math.NaN()), 1, 0.5}
	before := slices.Clone(logits)
	p := Params{Temperature: 0.7, TopK: 3, TopP: 0.9, MinP: 0.05, RepetitionPenalty: 1.3, PresencePenalty: 0.5}
	s := New(p)
	_, err := s.Sample(logits, []int{0, 1, 2, 3})
	require.NoError(t, err)
	s.Distribution(logits, []int{0, 1, 2, 3})
	for i := range logits {
		if math.IsNaN(float64(before[i])) {
			assert.True(t, math.IsNaN(float64(logits[i])))
			continue
		}
		assert.Equal(t, before[i], logits[i])
	}
}

func TestDrawFrequencies(t *testing.T) {
	logits := []float32{1, 2, 3, 4, 0.5, -3}
	p := Params{Temperature: 0.8, TopK: 5, TopP: 1, RepetitionPenalty: 1.1, Seed: 7}
	history := []int{2}
	wantIDs, wantProbs := New(p).Distribution(logits, history)
	require.Len(t, wantIDs, 5)

	const n = 100000
	s := New(p)
	counts := map[int]int{}
	for range n {
		id, err := s.Sample(logits, history)
		require.NoError(t, err)
		counts[id]++
	}
	var chi2 float64
	var seen int
	for i, id := range wantIDs {
		freq := float64(counts[id]) / n
		assert.InDelta(t, wantProbs[i], freq, 0.01, "token %d", id)
		want := wantProbs[i] * n
		d := float64(counts[id]) - want
		chi2 += d * d / want
		seen += counts[id]
	}
	assert.Equal(t, n, seen, "only tokens of the distribution are drawn")
	// 20.52 is the chi-square critical value for 4 degrees of freedom at
	// p = 0.0004; the seed is fixed, so this is a check, not a flaky test.
	assert.Less(t, chi2, 20.52)
}

func TestSeedReproducible(t *testing.T) {
	logits := []float32{0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8}
	draw := func(seed uint64) []int {
		s := New(with(func(p *Params) { p.Seed = seed }))
		out := make([]int, 1000)
		for i := range out {
			id, err := s.Sample(logits, nil)
			require.NoError(t, err)
			out[i] = id
		}
		return out
	}
	assert.Equal(t, draw(42), draw(42))
	assert.NotEqual(t, draw(42), draw(43))
}

// qwenLogits is a vocabulary-sized logit vector with a few clear favourites
// among noise, roughly the shape a language model produces.
func qwenLogits() []float32 {
	r := rand.New(rand.NewPCG(1, 2))
	logits := make([]float32, 151936)
	for i := range logits {
		logits[i] = float32(r.NormFloat64() * 2)
	}
	for _, id := range []int{17, 42000, 151000, 9} {
		logits[id] += 12
	}
	return logits
}

func TestLargeVocabularyMatchesFullSort(t *testing.T) {
	logits := qwenLogits()
	byValue := make([]int, len(logits))
	for i := range byValue {
		byValue[i] = i
	}
	sort.SliceStable(byValue, func(a, b int) bool { return logits[byValue[a]] > logits[byValue[b]] })

	got := ids(with(func(p *Params) { p.TopK = 20 }), logits)
	assert.Equal(t, byValue[:20], got)

	// Top-p with no top-k: the smallest prefix of the full sort whose
	// probability reaches 0.9.
	p := with(func(p *Params) { p.TopP = 0.9 })
	gotIDs, gotProbs := New(p).Distribution(logits, nil)
	var z float64
	for _, l := range logits {
		z += math.Exp(float64(l))
	}
	var cum float64
	n := 0
	for cum < 0.9 {
		cum += math.Exp(float64(logits[byValue[n]])) / z
		n++
	}
	assert.Equal(t, byValue[:n], gotIDs)
	var sum float64
	for _, q := range gotProbs {
		sum += q
	}
	assert.InDelta(t, 1, sum, 1e-12)
}

func benchmarkSample(b *testing.B, p Params) {
	logits := qwenLogits()
	history := make([]int, 2048)
	for i := range history {
		history[i] = i * 61 % len(logits)
	}
	s := New(p)
	b.ResetTimer()
	for range b.N {
		if _, err := s.Sample(logits, history); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSampleQwen3Defaults(b *testing.B) {
	benchmarkSample(b, Params{Temperature: 0.6, TopK: 20, TopP: 0.95, RepetitionPenalty: 1.1})
}

func BenchmarkSampleTopPOnly(b *testing.B) {
	benchmarkSample(b, Params{Temperature: 0.8, TopP: 0.95, RepetitionPenalty: 1})
}

func BenchmarkSampleGreedy(b *testing.B) {
	benchmarkSample(b, Params{RepetitionPenalty: 1, TopP: 1})
}
