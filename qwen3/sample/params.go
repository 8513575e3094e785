// Package sample turns a model's next-token logits into a token id: the
// repetition and presence penalties, greedy decoding, and temperature
// sampling with top-k, top-p and min-p truncation. It also reads the sampling
// defaults that a model publishes in its generation_config.json.
package sample

import (
	"fmt"
	"math"
)

// Params are the sampling settings. The zero value is not valid (top-p and
// the repetition penalty must be positive); start from
// GenerationConfig.Defaults or set every field.
type Params struct {
	// Temperature divides the logits before the softmax. 0 means greedy
	// decoding: the most likely token, and no randomness at all.
	Temperature float64
	// TopK keeps only the TopK most likely tokens; 0 keeps them all.
	TopK int
	// TopP keeps the smallest set of most likely tokens whose probabilities
	// add up to at least TopP; 1 keeps them all.
	TopP float64
	// MinP drops tokens less likely than MinP times the most likely token's
	// probability; 0 keeps them all.
	MinP float64
	// RepetitionPenalty scales down the logits of tokens already in the
	// history; 1 leaves them alone.
	RepetitionPenalty float64
	// PresencePenalty is subtracted from the logit of every token already in
	// the history; 0 leaves them alone.
	PresencePenalty float64
	// Seed seeds the random generator, so that a run can be repeated exactly.
	Seed uint64
}

// Validate reports the first invalid field as a one-line error that names
// the command-line flag setting it.
func (p Params) Validate() error {
	// The comparisons are written so that NaN fails them too.
	switch {
	case !(p.Temperature >= 0):
		return fmt.Errorf("--temperature must be >= 0, got %g", p.Temperature)
	case math.IsInf(p.Temperature, 0):
		return fmt.Errorf("--temperature must be finite, got %g", p.Temperature)
	case p.TopK < 0:
		return fmt.Errorf("--top-k must be >= 0 (0 disables it), got %d", p.TopK)
	case !(p.TopP > 0 && p.TopP <= 1):
		return fmt.Errorf("--top-p must be in (0, 1], got %g", p.TopP)
	case !(p.MinP >= 0 && p.MinP < 1):
		return fmt.Errorf("--min-p must be in [0, 1), got %g", p.MinP)
	case !(p.RepetitionPenalty > 0):
		return fmt.Errorf("--repetition-penalty must be > 0, got %g", p.RepetitionPenalty)
	case math.IsInf(p.RepetitionPenalty, 0):
		return fmt.Errorf("--repetition-penalty must be finite, got %g", p.RepetitionPenalty)
	case math.IsNaN(p.PresencePenalty) || math.IsInf(p.PresencePenalty, 0):
		return fmt.Errorf("--presence-penalty must be finite, got %g", p.PresencePenalty)
	}
	return nil
}

// Greedy reports whether p selects greedy decoding: Temperature 0, or for
// Params that fail Validate, any temperature that is not positive.
func (p Params) Greedy() bool { return !(p.Temperature > 0) }
