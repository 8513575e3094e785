package engine

import (
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/qwgpu/qwgpu/gpu"
	"github.com/qwgpu/qwgpu/gpu/gputest"
	"github.com/qwgpu/qwgpu/qwen3"
	"github.com/qwgpu/qwgpu/weights"
)

// gpuTol is the GPU's bound against transformers' float64 logits and the
// CPU reference: 2e-3 × max(1, max|reference|), the default of
// `qwgpu validate`.
const gpuTol = 2e-3

var (
	devOnce sync.Once
	dev     *gpu.Device
)

// testDevice opens the test backend's device once for the package
// (lavapipe in CI; a missing adapter fails under QWGPU_REQUIRE_GPU=1).
func testDevice(t *testing.T) *gpu.Device {
	t.Helper()
	devOnce.Do(func() { dev = gputest.Open(t) })
	if dev == nil { // the first test already failed or skipped with the reason
		if os.Getenv("QWGPU_REQUIRE_GPU") == "1" {
			t.Fatal("QWGPU_REQUIRE_GPU=1 but no GPU device")
		}
		t.Skip("no GPU device")
	}
	return dev
}

type goldenModel struct {
	cfg   qwen3.Config
	ck    *weights.Checkpoint
	cases []qwen3.GoldenCase
	ref   *qwen3.Model
}

func loadGolden(t *testing.T, name string) *goldenModel {
	t.Helper()
	dir := filepath.Join("..", "..", "testdata", "golden", name)
	cfg, err := qwen3.LoadConfigDir(dir)
	require.NoError(t, err)
	ck, err := weights.OpenCheckpoint(dir)
	require.NoError(t, err)
	t.Cleanup(func() { ck.Close() })
	cases, err := qwen3.LoadGolden(filepath.Join(dir, "golden.safetensors"), cfg)
	require.NoError(t, err)
	w, err := qwen3.LoadWeights(cfg, ck)
	require.NoError(t, err)
	return &goldenModel{cfg: cfg, ck: ck, cases: cases, ref: qwen3.NewModel(cfg, w, 256)}
}

var goldenNames = []string{"tiny-tied-f32", "gqa-untied-extremek-f32", "small-tied-bf16", "yarn-tied-f32"}

// Every position's logits and every hidden state of the GPU prefill pass
// against transformers' float64 answer; then greedy decoding through the
// KV cache on the GPU against transformers' greedy tokens, and each decode
// step's logits against the CPU reference.
func TestEngineMatchesGolden(t *testing.T) {
	d := testDevice(t)
	for _, name := range goldenNames {
		t.Run(name, func(t *testing.T) {
			g := loadGolden(t, name)
			e, err := Load(d, g.cfg, g.ck, Options{Ctx: 128, PrefillChunk: 128})
			require.NoError(t, err)
			defer e.Close()
			H, V := g.cfg.HiddenSize, g.cfg.VocabSize
			for _, gc := range g.cases {
				tr, err := e.ForwardTrace(gc.InputIDs)
				require.NoError(t, err)
				for p := range gc.InputIDs {
					rel := qwen3.RelErr(tr.Logits[p*V:(p+1)*V], gc.Logits[p*V:(p+1)*V])
					require.LessOrEqualf(t, rel, gpuTol, "case %d position %d: logits rel err %.3g", gc.Index, p, rel)
				}
				for i, want := range gc.Hidden {
					for p := range gc.InputIDs {
						rel := qwen3.RelErr(tr.Hidden[i][p*H:(p+1)*H], want[p*H:(p+1)*H])
						require.LessOrEqualf(t, rel, gpuTol, "case %d hidden %d position %d: rel err %.3g", gc.Index, i, p, rel)
					}
				}

				// Decode from the cache the trace left, one greedy step at a time.
				cache := g.ref.NewCache(len(gc.InputIDs) + len(gc.Greedy))
				_, err = g.ref.Prefill(cache, gc.InputIDs, false)
				require.NoError(t, err)
				next := qwen3.Argmax(tr.Logits[(len(gc.InputIDs)-1)*V:])
				for step, want := range gc.Greedy {
					if gc.GreedyMargin[step] >= 1e-3 {
						require.Equalf(t, want, next, "case %d greedy step %d", gc.Index, step)
					}
					// Feed the reference's token so both sides stay on one sequence.
					if step%2 == 0 {
						got, err := e.Feed([]int{want})
						require.NoError(t, err)
						ref, err := g.ref.Step(cache, want)
						require.NoError(t, err)
						rel := qwen3.RelErr(got, ref)
						require.LessOrEqualf(t, rel, gpuTol, "case %d decode step %d: logits rel err %.3g vs CPU", gc.Index, step, rel)
						next = qwen3.Argmax(got)
					} else {
						next = feedID(t, e, []int{want})
						_, err = g.ref.Step(cache, want)
						require.NoError(t, err)
					}
				}
			}
		})
	}
}

// A prompt longer than the prefill chunk runs in several passes and must
// give the logits a single CPU pass gives.
func TestEngineChunkedPrefill(t *testing.T) {
	d := testDevice(t)
	g := loadGolden(t, "gqa-untied-extremek-f32")
	e, err := Load(d, g.cfg, g.ck, Options{Ctx: 96, PrefillChunk: 16})
	require.NoError(t, err)
	defer e.Close()
	prompt := g.cases[1].InputIDs // 64 tokens: four chunks
	got, err := e.Feed(prompt)
	require.NoError(t, err)
	want := g.cases[1].Logits[(len(prompt)-1)*g.cfg.VocabSize:]
	rel := qwen3.RelErr(got, want)
	require.LessOrEqualf(t, rel, gpuTol, "rel err %.3g", rel)
	require.Equal(t, 64, e.Len())

	_, err = e.Feed(make([]int, 40))
	require.ErrorContains(t, err, "exceed the context of 96")
	_, err = e.Feed([]int{g.cfg.VocabSize})
	require.ErrorContains(t, err, "outside the vocabulary")
}

// The same model stored as bf16 and f16 on the GPU (--dtype) still
// matches transformers within the bound (weights rounded to 8 or 11 bits
// change the answer, so this uses the bf16 model converted to f32 and f16,
// whose values bf16 represents exactly in f32 and nearly in f16).
func TestEngineDTypes(t *testing.T) {
	d := testDevice(t)
	g := loadGolden(t, "small-tied-bf16")
	for _, dt := range []string{"f32", "f16"} {
		e, err := Load(d, g.cfg, g.ck, Options{Ctx: 64, PrefillChunk: 64, DType: dt})
		require.NoError(t, err, dt)
		gc := g.cases[0]
		got, err := e.Feed(gc.InputIDs)
		require.NoError(t, err)
		V := g.cfg.VocabSize
		rel := qwen3.RelErr(got, gc.Logits[(len(gc.InputIDs)-1)*V:])
		tol := gpuTol
		if dt == "f16" {
			tol = 2e-2 // bf16 values rounded to f16's 11-bit mantissa (and range)
		}
		require.LessOrEqualf(t, rel, tol, "%s: rel err %.3g", dt, rel)
		e.Close()
	}
	_, err := Load(d, g.cfg, g.ck, Options{DType: "q4"})
	require.ErrorContains(t, err, `weight dtype "q4"`)
	_, err = Load(d, g.cfg, g.ck, Options{Ctx: 1 << 20})
	require.ErrorContains(t, err, "context of 1048576 positions outside")
	_, err = Load(d, g.cfg, g.ck, Options{PrefillChunk: 5000})
	require.ErrorContains(t, err, "prefill chunk of 5000 tokens")
}

// Chained greedy decoding on the GPU (each step fed the previous step's
// argmax on the GPU, submitted before that step is read back) gives the
// CPU reference's greedy tokens.
func TestChainedGreedyMatchesCPU(t *testing.T) {
	d := testDevice(t)
	g := loadGolden(t, "tiny-tied-f32")
	e, err := Load(d, g.cfg, g.ck, Options{Ctx: 128})
	require.NoError(t, err)
	defer e.Close()
	prompt := g.cases[2].InputIDs
	const n = 20

	cache := g.ref.NewCache(len(prompt) + n)
	o, err := g.ref.Prefill(cache, prompt, false)
	require.NoError(t, err)
	want := []int{qwen3.Argmax(o.LogitsAt(o.T - 1))}
	for len(want) < n {
		logits, err := g.ref.Step(cache, want[len(want)-1])
		require.NoError(t, err)
		want = append(want, qwen3.Argmax(logits))
	}

	got := []int{feedID(t, e, prompt)}
	slot, ids := []int{0}, []Want{WantID}
	p, err := e.DecodeStart(slot, got, ids, 0)
	require.NoError(t, err)
	for len(got) < n {
		var next *PendingDecode
		if len(got)+1 < n {
			next, err = e.DecodeStart(slot, nil, ids, 0)
			require.NoError(t, err)
		}
		rows, err := p.Wait()
		require.NoError(t, err)
		require.NoError(t, rows[0].Err)
		got = append(got, rows[0].ID)
		p = next
	}
	require.Equal(t, want, got)
	require.Equal(t, len(prompt)+n-1, e.Len(), "the prompt and every token but the last are fed")
}
