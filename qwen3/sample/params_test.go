package sample

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestValidate(t *testing.T) {
	qwen := Params{Temperature: 0.6, TopK: 20, TopP: 0.95, RepetitionPenalty: 1}
	require.NoError(t, qwen.Validate())
	require.NoError(t, Params{Temperature: 0, TopP: 1, RepetitionPenalty: 1}.Validate(), "greedy")
	require.NoError(t, Params{Temperature: 1, TopK: 0, TopP: 1, MinP: 0.99, RepetitionPenalty: 0.5, PresencePenalty: -2}.Validate())

	nan, inf := math.NaN(), math.Inf(1)
	for _, tc := range []struct {
		change func(*Params)
		want   string
	}{
		{func(p *Params) { p.Temperature = -1 }, "--temperature must be >= 0, got -1"},
		{func(p *Params) { p.Temperature = nan }, "--temperature must be >= 0, got NaN"},
		{func(p *Params) { p.Temperature = inf }, "--temperature must be finite, got +Inf"},
		{func(p *Params) { p.TopK = -1 }, "--top-k must be >= 0 (0 disables it), got -1"},
		{func(p *Params) { p.TopP = 1.5 }, "--top-p must be in (0, 1], got 1.5"},
		{func(p *Params) { p.TopP = 0 }, "--top-p must be in (0, 1], got 0"},
		{func(p *Params) { p.TopP = nan }, "--top-p must be in (0, 1], got NaN"},
		{func(p *Params) { p.MinP = 1 }, "--min-p must be in [0, 1), got 1"},
		{func(p *Params) { p.MinP = -0.1 }, "--min-p must be in [0, 1), got -0.1"},
		{func(p *Params) { p.RepetitionPenalty = 0 }, "--repetition-penalty must be > 0, got 0"},
		{func(p *Params) { p.RepetitionPenalty = -1.2 }, "--repetition-penalty must be > 0, got -1.2"},
		{func(p *Params) { p.RepetitionPenalty = inf }, "--repetition-penalty must be finite, got +Inf"},
		{func(p *Params) { p.PresencePenalty = nan }, "--presence-penalty must be finite, got NaN"},
		{func(p *Params) { p.PresencePenalty = -inf }, "--presence-penalty must be finite, got -Inf"},
	} {
		p := qwen
		tc.change(&p)
		assert.EqualError(t, p.Validate(), tc.want)
	}
}
