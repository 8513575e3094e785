package engine

import (
	"fmt"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/qwgpu/qwgpu/gpu/kernels"
	"github.com/qwgpu/qwgpu/qwen3"
	"github.com/qwgpu/qwgpu/weights"
)

// A batched decode step gives each sequence the logits it gets decoded
// alone, for batches on the matvec path (2, 3, 10, and kernels.MaxMatVecBatch)
// and on the matmul path (one more), with sequences at different
// positions in their own slots, and greedy continuations stay identical;
// and so with standalone norms in front of a batch's matvecs (matvec_norm).
func TestBatchedDecodeMatchesSingle(t *testing.T) {
	d := testDevice(t)
	g := loadGolden(t, "gqa-untied-extremek-f32")
	const steps = 6
	type run struct {
		tune  string
		batch int
	}
	runs := []run{{"", 2}, {"", 3}, {"", 10}, {"", kernels.MaxMatVecBatch}, {"", kernels.MaxMatVecBatch + 1},
		{"matvec_norm=1", 3}, {"matvec_norm=32", 10}}
	for _, r := range runs {
		batch, name := r.batch, fmt.Sprint(r.batch)
		if r.tune != "" {
			name += "," + r.tune
		}
		t.Run(name, func(t *testing.T) {
			require.NoError(t, kernels.SetTune(r.tune))
			defer func() { require.NoError(t, kernels.SetTune("")) }()
			e, err := Load(d, g.cfg, g.ck, Options{Ctx: 96, PrefillChunk: 32, Slots: batch})
			require.NoError(t, err)
			defer e.Close()
			if r.tune == "matvec_norm=1" || r.tune == "matvec_norm=32" {
				// the knob is in the graph: a standalone norm before the
				// q/k/v and gate/up matvecs of each layer (by default from
				// 9 rows on: matvec_norm=32 takes them away at 10)
				g1, err := e.decodeGraph(batch)
				require.NoError(t, err)
				ops := g1.ops()
				require.NoError(t, kernels.SetTune(""))
				require.NoError(t, e.Rebuild())
				g0, err := e.decodeGraph(batch)
				require.NoError(t, err)
				want := g0.ops() + 2*g.cfg.NumHiddenLayers
				if r.tune == "matvec_norm=32" {
					want = g0.ops() - 2*g.cfg.NumHiddenLayers
				}
				require.Equal(t, want, ops)
				require.NoError(t, kernels.SetTune(r.tune))
				require.NoError(t, e.Rebuild())
			}
			// Sequence i: a prefix of case i%len of a different length, so
			// that positions differ across the batch.
			prompts := make([][]int, batch)
			for i := range prompts {
				ids := g.cases[i%len(g.cases)].InputIDs
				prompts[i] = ids[:max(1, len(ids)-i%5)]
			}
			// Alone: each sequence through slot 0, one token a step.
			want := make([][][]float32, batch)
			wantTok := make([][]int, batch)
			for i, p := range prompts {
				require.NoError(t, e.Truncate(0, 0))
				logits, err := e.Feed(p)
				require.NoError(t, err)
				for range steps {
					tok := qwen3.Argmax(logits)
					wantTok[i] = append(wantTok[i], tok)
					if logits, err = e.Feed([]int{tok}); err != nil {
						t.Fatal(err)
					}
					want[i] = append(want[i], logits)
				}
			}
			// Together: prefill each into its own slot, then batched steps.
			slots := make([]int, batch)
			next := make([]int, batch)
			for i, p := range prompts {
				slots[i] = i
				require.NoError(t, e.Truncate(i, 0))
				next[i] = qwen3.Argmax(feedLogits(t, e, i, p))
			}
			for k := range steps {
				for i := range next {
					require.Equal(t, wantTok[i][k], next[i], "sequence %d step %d", i, k)
				}
				for i, logits := range decodeLogits(t, e, slots, next) {
					rel := qwen3.RelErr(logits, want[i][k])
					// Alone, a step fuses the q/k/v projection into the norm
					// and RoPE kernel; batched, a matvec or matmul projects
					// first: the same float32 sums in another order (this
					// model's k_norm weights near 100 magnify them: 2.4e-5
					// seen on lavapipe), far inside validate's 2e-3.
					require.LessOrEqualf(t, rel, 1e-4, "sequence %d step %d: batched and alone differ by %.3g", i, k, rel)
					next[i] = qwen3.Argmax(logits)
				}
			}
			for i, p := range prompts {
				require.Equal(t, len(p)+steps, e.SlotLen(i))
			}
			// The GPU argmax of a batched step picks what the host picks
			// from its logits.
			for i := range next {
				require.NoError(t, e.Truncate(i, len(prompts[i])+steps-1))
			}
			rows, err := e.DecodeRead(slots, lastTokens(wantTok), slices.Repeat([]Want{WantID}, batch), 0)
			require.NoError(t, err)
			for i, r := range rows {
				require.NoError(t, r.Err)
				require.Equal(t, next[i], r.ID, "sequence %d", i)
			}
		})
	}
	// Bad batches are refused before anything runs.
	e, err := Load(d, g.cfg, g.ck, Options{Ctx: 16, PrefillChunk: 8, Slots: 2})
	require.NoError(t, err)
	defer e.Close()
	ids := []Want{WantID, WantID}
	_, err = e.DecodeRead([]int{0, 0}, []int{1, 2}, ids, 0)
	require.ErrorContains(t, err, "slot 0 twice")
	_, err = e.DecodeRead([]int{0, 2}, []int{1, 2}, ids, 0)
	require.ErrorContains(t, err, "slot 2 outside")
	_, err = e.DecodeRead([]int{0}, []int{1, 2}, ids[:1], 0)
	require.ErrorContains(t, err, "decode of 1 slots with 2 tokens")
	_, err = e.DecodeRead([]int{0}, nil, ids[:1], 0)
	require.ErrorContains(t, err, "decode of 1 slots without tokens")
}

// One token with standalone norms before its normalising matvecs
// (matvec_norm=-1, for measurements: the quads' loads of the norm weights
// go) gives the default's logits within float32 rounding, with one more
// dispatch a layer (gate_up's; the fused q/k/v kernel keeps its own norm).
func TestOneTokenStandaloneNorm(t *testing.T) {
	g := loadGolden(t, "gqa-untied-extremek-f32")
	inside, ops := oneTokenLogits(t, g, g.ck)
	require.NoError(t, kernels.SetTune("matvec_norm=-1"))
	defer func() { require.NoError(t, kernels.SetTune("")) }()
	standalone, ops1 := oneTokenLogits(t, g, g.ck)
	require.Equal(t, ops+g.cfg.NumHiddenLayers, ops1)
	rel := qwen3.RelErr(standalone, inside)
	require.LessOrEqualf(t, rel, 1e-4, "standalone and fused norms differ by %.3g", rel)
}

// One token of Q4_K weights in the x-in-registers layout with standalone
// norms (the default for rows of 2,048 values or more; forced here with
// matvec_xreg=4, the test model's rows being 256 and 768 values) gives the
// quads' logits (matvec_xreg=-1, fused norms) within float32 rounding,
// with a standalone norm before each layer's gate_up and q/k/v; so does
// the layout with the norm inside (matvec_norm=8), with the quads' ops.
func TestOneTokenXRegQ4K(t *testing.T) {
	g := loadGolden(t, "small-tied-bf16")
	src := qwen3.QuantizedSource{Source: g.ck, DType: weights.Q4_K}
	logits := func(tune string) ([]float32, int) {
		require.NoError(t, kernels.SetTune(tune))
		defer func() { require.NoError(t, kernels.SetTune("")) }()
		return oneTokenLogits(t, g, src)
	}
	quads, ops := logits("matvec_xreg=-1")
	xreg, ops1 := logits("matvec_xreg=4")
	require.Equal(t, ops+2*g.cfg.NumHiddenLayers, ops1)
	rel := qwen3.RelErr(xreg, quads)
	require.LessOrEqualf(t, rel, 1e-4, "x in registers and the quads differ by %.3g", rel)
	// the norm inside (matvec_norm=8): x² summed from the units' own loads
	fused, ops2 := logits("matvec_xreg=4,matvec_norm=8")
	require.Equal(t, ops, ops2)
	rel = qwen3.RelErr(fused, quads)
	require.LessOrEqualf(t, rel, 1e-4, "x in registers with the norm inside and the quads differ by %.3g", rel)
	// and both are the model: against the CPU reference on the same blocks
	// within the bound of validate (GPU against CPU on quantized weights)
	w, err := qwen3.LoadWeights(g.cfg, src)
	require.NoError(t, err)
	ref := qwen3.NewModel(g.cfg, w, 64)
	c := ref.NewCache(64)
	_, err = ref.Prefill(c, g.cases[0].InputIDs, false)
	require.NoError(t, err)
	want, err := ref.Step(c, g.cases[0].InputIDs[0])
	require.NoError(t, err)
	rel = qwen3.RelErr(xreg, want)
	require.LessOrEqualf(t, rel, gpuTol, "x in registers against the CPU reference: %.3g", rel)
}

// The unfused one-token qkv path (matvec, then the rows variant; chosen by
// QWGPU_TUNE=qkv_fused=false for measurements) computes what the fused
// kernel does.
func TestUnfusedQKVDecode(t *testing.T) {
	g := loadGolden(t, "gqa-untied-extremek-f32")
	fused, _ := oneTokenLogits(t, g, g.ck)
	kernels.FusedQKVDecode = false
	defer func() { kernels.FusedQKVDecode = true }()
	unfused, _ := oneTokenLogits(t, g, g.ck)
	rel := qwen3.RelErr(unfused, fused)
	require.LessOrEqualf(t, rel, 1e-4, "fused and unfused qkv differ by %.3g", rel)
	require.Greater(t, rel, 0.0, "the two paths sum in different orders; identical results mean the knob did nothing")
}

// oneTokenLogits loads g's model with the weights of src (g.ck, or a
// quantized view of it) in the kernels' layouts as they are now, feeds
// its first case's prompt and then one token, and returns that token's
// logits and the one-token decode graph's dispatch count.
func oneTokenLogits(t *testing.T, g *goldenModel, src qwen3.Source) ([]float32, int) {
	t.Helper()
	prompt := g.cases[0].InputIDs
	e, err := Load(testDevice(t), g.cfg, src, Options{Ctx: 64, PrefillChunk: 32})
	require.NoError(t, err)
	defer e.Close()
	_, err = e.Feed(prompt)
	require.NoError(t, err)
	logits, err := e.Feed([]int{prompt[0]})
	require.NoError(t, err)
	g1, err := e.decodeGraph(1)
	require.NoError(t, err)
	return logits, g1.ops()
}

func lastTokens(toks [][]int) []int {
	out := make([]int, len(toks))
	for i, t := range toks {
		out[i] = t[len(t)-1]
	}
	return out
}

// feedLogits feeds tokens to a slot and returns the last one's logits.
func feedLogits(t *testing.T, e *Engine, slot int, tokens []int) []float32 {
	t.Helper()
	row, err := e.FeedRead(slot, tokens, WantLogits, 0)
	require.NoError(t, err)
	require.NoError(t, row.Err)
	return row.Logits
}

// feedID feeds tokens to slot 0 and returns the GPU's argmax of the last
// one's logits.
func feedID(t *testing.T, e *Engine, tokens []int) int {
	t.Helper()
	row, err := e.FeedRead(0, tokens, WantID, 0)
	require.NoError(t, err)
	require.NoError(t, row.Err)
	return row.ID
}

// decodeLogits runs one batched decode step and returns each row's logits.
func decodeLogits(t *testing.T, e *Engine, slots, tokens []int) [][]float32 {
	t.Helper()
	rows, err := e.DecodeRead(slots, tokens, slices.Repeat([]Want{WantLogits}, len(slots)), 0)
	require.NoError(t, err)
	out := make([][]float32, len(rows))
	for i, r := range rows {
		require.NoError(t, r.Err)
		out[i] = r.Logits
	}
	return out
}

// Rebuild takes a layout with more attention splits than the scratch was
// made for (shorter tiles, more splits: QWGPU_TUNE's chunk, attn_splits):
// it grows the scratch, and decoding gives the logits of the layout loaded.
func TestRebuildGrowsAttentionScratch(t *testing.T) {
	d := testDevice(t)
	g := loadGolden(t, "gqa-untied-extremek-f32")
	e, err := Load(d, g.cfg, g.ck, Options{Ctx: 256, PrefillChunk: 64})
	require.NoError(t, err)
	defer e.Close()
	prompt := make([]int, 200) // 200 keys: two 128-row tiles by default, seven 32-row ones
	for i := range prompt {
		prompt[i] = (7 * i) % g.cfg.VocabSize
	}
	_, err = e.Feed(prompt)
	require.NoError(t, err)
	want := feedLogits(t, e, 0, []int{5})

	require.NoError(t, kernels.SetTune("chunk=32,attn_splits=64"))
	defer func() {
		require.NoError(t, kernels.SetTune(""))
	}()
	before := e.a.scratch.Size()
	require.NoError(t, e.Rebuild())
	require.Greater(t, e.a.scratch.Size(), before)
	require.NoError(t, e.Truncate(0, len(prompt)))
	got := feedLogits(t, e, 0, []int{5})
	rel := qwen3.RelErr(got, want)
	// The same sums over other splits: float32 reordering only.
	require.LessOrEqualf(t, rel, 1e-5, "logits after the rebuild differ by %.3g", rel)
}

// DecodeRoleTimes covers every dispatch of the step once, role by role
// (the layer roles once a layer, the head's once), for one row and for a
// batch, and refuses more rows than slots.
func TestDecodeRoleTimes(t *testing.T) {
	d := testDevice(t)
	g := loadGolden(t, "gqa-untied-extremek-f32")
	e, err := Load(d, g.cfg, g.ck, Options{Ctx: 64, PrefillChunk: 16, Slots: 3})
	require.NoError(t, err)
	defer e.Close()
	layers := g.cfg.NumHiddenLayers
	for _, rows := range []int{1, 3} {
		times, err := e.DecodeRoleTimes(rows, 2)
		require.NoError(t, err)
		graph, err := e.decodeGraph(rows)
		require.NoError(t, err)
		per := map[string]int{}
		n := 0
		for _, k := range times {
			require.GreaterOrEqual(t, k.Nanos, 0.0, k.Role)
			per[k.Role] = k.Dispatches
			n += k.Dispatches
		}
		require.Equal(t, graph.ops(), n, "rows %d: every dispatch once", rows)
		require.Equal(t, layers, per["o_proj"], "rows %d", rows)
		require.Equal(t, layers, per["down_proj"], "rows %d", rows)
		require.Equal(t, 1, per["lm_head"], "rows %d", rows)
		require.Equal(t, 1, per["embedding"], "rows %d", rows)
	}
	_, err = e.DecodeRoleTimes(4, 2)
	require.ErrorContains(t, err, "role times of 4 rows (3 slots)")
}
