package sample

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestExtremePenalties: penalties at the ends of the valid range push
// logits to infinities; the sampler must still give a sensible token (the
// issue-15 case panicked with an index out of range).
func TestExtremePenalties(t *testing.T) {
	logits := []float32{2, 1, -1, 0.5, -3}
	history := []int{0, 2}
	cases := []struct {
		name string
		p    Params
		want []int // the distribution's ids, most likely first
	}{
		// A tiny (denormal) repetition penalty divides token 0's positive
		// logit to +Inf: clamped, it is the certain choice.
		{"repeat 1e-310", Params{Temperature: 0.7, TopP: 0.9, RepetitionPenalty: 1e-310}, []int{0}},
		{"repeat 1e-310 with top-k", Params{Temperature: 0.7, TopK: 3, TopP: 1, RepetitionPenalty: 1e-310}, []int{0}},
		// A huge one sends token 2's negative logit to -Inf and token 0's
		// to about 0: token 1 (logit 1) leads, then 3 (0.5), then 0.
		{"repeat 1e300", Params{Temperature: 1, TopP: 1, RepetitionPenalty: 1e300}, []int{1, 3, 0, 4}},
		{"presence 1e308 twice over", Params{Temperature: 1, TopP: 1, RepetitionPenalty: 1e300, PresencePenalty: math.MaxFloat64}, []int{1, 3, 4}},
		{"presence -1e308", Params{Temperature: 0.5, TopP: 0.5, RepetitionPenalty: 1, PresencePenalty: -math.MaxFloat64}, []int{0}},
		// Tokens 0 and 2 both land near the largest float64, 2 lower by
		// 1e300: its share is exp(-1e300) = 0, and nothing is NaN.
		{"both to overflow", Params{Temperature: 1, TopP: 1, RepetitionPenalty: 1e300, PresencePenalty: -math.MaxFloat64}, []int{0}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			require.NoError(t, c.p.Validate())
			s := New(c.p)
			ids, probs := s.Distribution(logits, history)
			require.Equal(t, c.want, ids)
			var sum float64
			for _, p := range probs {
				require.False(t, math.IsNaN(p) || math.IsInf(p, 0))
				sum += p
			}
			require.InDelta(t, 1, sum, 1e-12)
			for range 50 {
				id, err := s.Sample(logits, history)
				require.NoError(t, err)
				require.Contains(t, c.want, id)
			}
		})
	}
}
