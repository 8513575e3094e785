package sample

import (
	"cmp"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

// bestFirst returns the n most likely tokens of a row by a full sort, the
// order a GPU top-k pass returns them in (larger logit, then lower id).
func bestFirst(row []float32, n int) ([]int, []float32) {
	idx := make([]int, len(row))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return cmp.Compare(row[b], row[a]) })
	ids := idx[:n]
	vals := make([]float32, n)
	for i, id := range ids {
		vals[i] = row[id]
	}
	return ids, vals
}

// SampleTopK, given a row's best logits only, draws the very tokens that
// Sample draws from the whole row with the same seed, over many draws and
// settings, on rows with ties at the top-k boundary.
func TestSampleTopKMatchesSample(t *testing.T) {
	const vocab, have, draws = 3000, 64, 300
	r := rand.New(rand.NewPCG(7, 8))
	rows := make([][]float32, draws)
	for i := range rows {
		rows[i] = make([]float32, vocab)
		for j := range rows[i] {
			rows[i][j] = float32(r.NormFloat64() * 3)
		}
		if i%3 == 0 { // coarse values: ties everywhere, at the boundary too
			for j := range rows[i] {
				rows[i][j] = float32(int(rows[i][j]))
			}
		}
	}
	for _, p := range []Params{
		{Temperature: 0.6, TopK: 20, TopP: 0.95, RepetitionPenalty: 1, Seed: 1}, // Qwen3's defaults
		{Temperature: 1, TopK: 40, TopP: 1, RepetitionPenalty: 1, Seed: 2},
		{Temperature: 1.5, TopK: 64, TopP: 0.5, MinP: 0.05, RepetitionPenalty: 1, Seed: 3},
		{Temperature: 0.3, TopK: 1, TopP: 1, RepetitionPenalty: 1, Seed: 4},
		{Temperature: 2, TopK: 7, TopP: 0.9, MinP: 0.2, RepetitionPenalty: 1, Seed: 5},
	} {
		require.True(t, p.TopKSuffices(have, vocab), "%+v", p)
		full, top := New(p), New(p)
		differ := 0
		for i, row := range rows {
			want, err := full.Sample(row, nil)
			require.NoError(t, err)
			ids, vals := bestFirst(row, have)
			got, err := top.SampleTopK(ids, vals)
			require.NoError(t, err)
			require.Equal(t, want, got, "params %+v, draw %d", p, i)
			if want != ids[0] {
				differ++
			}
		}
		if p.TopK > 1 {
			require.Greater(t, differ, 0, "params %+v never drew but the most likely token: the test shows nothing", p)
		}
	}
}

// TopKSuffices refuses what the candidates cannot answer exactly.
func TestTopKSuffices(t *testing.T) {
	base := Params{Temperature: 0.6, TopK: 20, TopP: 0.95, RepetitionPenalty: 1}
	require.True(t, base.TopKSuffices(20, 151936))
	for name, p := range map[string]Params{
		"greedy":         with2(base, func(p *Params) { p.Temperature = 0 }),
		"top-k off":      with2(base, func(p *Params) { p.TopK = 0 }),
		"top-k above n":  with2(base, func(p *Params) { p.TopK = 21 }),
		"repetition":     with2(base, func(p *Params) { p.RepetitionPenalty = 1.1 }),
		"presence":       with2(base, func(p *Params) { p.PresencePenalty = 0.5 }),
		"k ≥ vocabulary": with2(base, func(p *Params) { p.TopK = 20 }),
	} {
		vocab := 151936
		if name == "k ≥ vocabulary" {
			vocab = 20
		}
		require.False(t, p.TopKSuffices(20, vocab), name)
	}
	_, err := New(base).SampleTopK([]int{1, 2}, []float32{3, 2})
	require.ErrorContains(t, err, "at least top-k candidates")
}

func with2(p Params, f func(*Params)) Params { f(&p); return p }
