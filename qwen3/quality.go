package qwen3

import "math"

// Quality accumulates how far a model's next-token distributions lie from
// a reference model's over the same positions: what llama.cpp's perplexity
// --kl-divergence reports, to show what a quantization costs.
type Quality struct {
	Positions  int
	sumKL      float64
	MaxKL      float64 // nats
	Top1Agree  int     // positions whose argmax is the reference's
	MaxLogitAb float64 // max |logit - reference logit|
}

// Add compares one position's logits with the reference's.
func (q *Quality) Add(ref, got []float32) {
	kl := KLDivergence(ref, got)
	q.Positions++
	q.sumKL += kl
	q.MaxKL = max(q.MaxKL, kl)
	if Argmax(ref) == Argmax(got) {
		q.Top1Agree++
	}
	d, _ := MaxAbsDiff(got, ref)
	q.MaxLogitAb = max(q.MaxLogitAb, d)
}

// MeanKL is the mean KL divergence per position, in nats.
func (q *Quality) MeanKL() float64 {
	if q.Positions == 0 {
		return 0
	}
	return q.sumKL / float64(q.Positions)
}

// Top1 is the fraction of positions whose argmax agrees.
func (q *Quality) Top1() float64 {
	if q.Positions == 0 {
		return 0
	}
	return float64(q.Top1Agree) / float64(q.Positions)
}

// KLDivergence is KL(P‖Q) in nats between the softmax distributions of
// reference logits p and logits q, in float64. A non-finite logit gives
// +Inf, so it can never pass a bound.
func KLDivergence(p, q []float32) float64 {
	lp, lq := logSoftmax(p), logSoftmax(q)
	var kl float64
	for i := range lp {
		if math.IsNaN(lq[i]) || math.IsNaN(lp[i]) {
			return math.Inf(1)
		}
		if pi := math.Exp(lp[i]); pi > 0 {
			kl += pi * (lp[i] - lq[i])
		}
	}
	return max(kl, 0) // rounding can leave a tiny negative for equal inputs
}

func logSoftmax(x []float32) []float64 {
	m := math.Inf(-1)
	for _, v := range x {
		m = max(m, float64(v))
	}
	var sum float64
	for _, v := range x {
		sum += math.Exp(float64(v) - m)
	}
	lse := m + math.Log(sum)
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = float64(v) - lse
	}
	return out
}
