package engine

import (
	"cmp"
	"fmt"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/qwgpu/qwgpu/qwen3"
	"github.com/qwgpu/qwgpu/weights"
)

// hostTopK ranks a row on the host: larger logit, then lower id.
func hostTopK(logits []float32, k int) []Candidate {
	ids := make([]int, len(logits))
	for i := range ids {
		ids[i] = i
	}
	slices.SortStableFunc(ids, func(a, b int) int { return cmp.Compare(logits[b], logits[a]) })
	var out []Candidate
	for _, id := range ids[:k] {
		out = append(out, Candidate{ID: id, Logit: logits[id]})
	}
	return out
}

// The small reads of a step (the argmax id, the top-k candidates) are
// what the whole rows of the same step give on the host, for a prefill's
// last token and for batched decode steps on the matvec and the matmul
// paths.
func TestReadsMatchLogits(t *testing.T) {
	d := testDevice(t)
	g := loadGolden(t, "gqa-untied-extremek-f32")
	const k = 20
	for _, batch := range []int{3, 10} {
		t.Run(fmt.Sprint(batch), func(t *testing.T) {
			e, err := Load(d, g.cfg, g.ck, Options{Ctx: 96, PrefillChunk: 32, Slots: batch})
			require.NoError(t, err)
			defer e.Close()
			slots, tokens := make([]int, batch), make([]int, batch)
			for i := range slots {
				ids := g.cases[i%len(g.cases)].InputIDs
				p := ids[:max(1, len(ids)-i%5)]
				slots[i] = i
				whole, err := e.FeedRead(i, p, WantLogits, 0)
				require.NoError(t, err)
				require.NoError(t, e.Truncate(i, 0))
				small, err := e.FeedRead(i, p, WantTopK, k)
				require.NoError(t, err)
				require.NoError(t, small.Err)
				require.Equal(t, qwen3.Argmax(whole.Logits), small.ID)
				require.Equal(t, hostTopK(whole.Logits, k), small.TopK)
				tokens[i] = small.ID
			}
			for step := range 3 {
				whole, err := e.DecodeRead(slots, tokens, slices.Repeat([]Want{WantLogits}, batch), 0)
				require.NoError(t, err)
				for _, s := range slots {
					require.NoError(t, e.Truncate(s, e.SlotLen(s)-1))
				}
				want := make([]Want, batch)
				for i := range want {
					want[i] = []Want{WantID, WantTopK, WantLogits}[(i+step)%3]
				}
				small, err := e.DecodeRead(slots, tokens, want, k)
				require.NoError(t, err)
				for i, r := range small {
					require.NoError(t, r.Err)
					require.Equal(t, qwen3.Argmax(whole[i].Logits), r.ID, "row %d", i)
					switch want[i] {
					case WantID:
						require.Nil(t, r.TopK)
						require.Nil(t, r.Logits)
					case WantTopK:
						require.Equal(t, hostTopK(whole[i].Logits, k), r.TopK, "row %d", i)
					case WantLogits:
						require.Equal(t, whole[i].Logits, r.Logits, "row %d", i)
					}
					tokens[i] = r.ID
				}
			}
			_, err = e.DecodeRead(slots, tokens, slices.Repeat([]Want{WantTopK}, batch), 65)
			require.ErrorContains(t, err, "top-k read of 65 candidates: want 1 to 64")
		})
	}
}

// hugeNorm makes the final norm's weights overflow float32 on the way to
// the logits.
type hugeNorm struct{ qwen3.Source }

func (h hugeNorm) Get(name string, shape ...int) (*weights.Tensor, error) {
	t, err := h.Source.Get(name, shape...)
	if err != nil || name != "model.norm.weight" {
		return t, err
	}
	v := make([]float32, t.Shape[0])
	for i := range v {
		v[i] = 3e38
	}
	return &weights.Tensor{Name: name, DType: weights.F32, Shape: t.Shape, Raw: weights.F32Bytes(v)}, nil
}

// Every kind of read reports non-finite logits as the row's error, with
// the position, instead of a token drawn from them.
func TestReadsFlagNonFinite(t *testing.T) {
	d := testDevice(t)
	cfg := qwen3.Shapes["tiny"]
	cfg.MaxPositionEmbeddings = 64
	e, err := Load(d, cfg, hugeNorm{&qwen3.RandomSource{Config: cfg, DType: weights.BF16, Seed: 1}}, Options{Ctx: 32, Slots: 3})
	require.NoError(t, err)
	defer e.Close()
	for i, w := range []Want{WantID, WantTopK, WantLogits} {
		r, err := e.FeedRead(i, []int{1, 2, 3}, w, 20)
		require.NoError(t, err)
		require.ErrorContains(t, r.Err, "the logits at position 2 are not finite", "read %d", w)
	}
	rows, err := e.DecodeRead([]int{0, 1, 2}, []int{4, 5, 6}, []Want{WantID, WantTopK, WantLogits}, 20)
	require.NoError(t, err)
	for i, r := range rows {
		require.ErrorContains(t, r.Err, "the logits at position 3 are not finite", "row %d", i)
	}
}

// Chained decode steps, each submitted before the previous one is waited
// for and fed its argmax rows on the GPU, give the tokens of steps fed
// by the host; a chain must keep its slots.
func TestDecodeStartChained(t *testing.T) {
	d := testDevice(t)
	g := loadGolden(t, "gqa-untied-extremek-f32")
	const batch, steps = 3, 5
	e, err := Load(d, g.cfg, g.ck, Options{Ctx: 96, PrefillChunk: 32, Slots: batch})
	require.NoError(t, err)
	defer e.Close()
	slots, first := []int{2, 0, 1}, make([]int, batch)
	for i, s := range slots {
		r, err := e.FeedRead(s, g.cases[i%len(g.cases)].InputIDs, WantID, 0)
		require.NoError(t, err)
		first[i] = r.ID
	}
	start := make([]int, batch)
	for i, s := range slots {
		start[i] = e.SlotLen(s)
	}
	want := slices.Repeat([]Want{WantID}, batch)
	var byHost [][]int
	tokens := first
	for range steps {
		rows, err := e.DecodeRead(slots, tokens, want, 0)
		require.NoError(t, err)
		tokens = make([]int, batch)
		for i, r := range rows {
			require.NoError(t, r.Err)
			tokens[i] = r.ID
		}
		byHost = append(byHost, tokens)
	}
	for i, s := range slots {
		require.NoError(t, e.Truncate(s, start[i]))
	}
	p, err := e.DecodeStart(slots, first, want, 0)
	require.NoError(t, err)
	for k := range steps {
		var next *PendingDecode
		if k+1 < steps {
			next, err = e.DecodeStart(slots, nil, want, 0)
			require.NoError(t, err)
		}
		rows, err := p.Wait()
		require.NoError(t, err)
		for i, r := range rows {
			require.NoError(t, r.Err)
			require.Equal(t, byHost[k][i], r.ID, "step %d row %d", k, i)
		}
		p = next
	}
	for i, s := range slots {
		require.Equal(t, start[i]+steps, e.SlotLen(s))
	}
	_, err = e.DecodeStart([]int{0, 1}, nil, want[:2], 0)
	require.ErrorContains(t, err, "a chained decode step of slots [0 1] after a step of slots [2 0 1]")
	_, err = e.FeedRead(0, []int{1}, WantID, 0)
	require.NoError(t, err)
	_, err = e.DecodeStart(slots, nil, want, 0)
	require.ErrorContains(t, err, "after a step of slots []")
}
