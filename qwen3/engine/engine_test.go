package engine

import (
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/qwgpu/qwgpu/gpu"
	"github.com/qwgpu/qwgpu/gpu/gputest"
	"github.com/qwgpu/qwgpu/qwen3"
	"github.com/qwgpu/qwgpu/qwen3/generate"
	"github.com/qwgpu/qwgpu/qwen3/sample"
	"github.com/qwgpu/qwgpu/qwen3/tokenizer"
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
						next, err = e.FeedArgmax([]int{want})
						require.NoError(t, err)
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

// Pipelined greedy decoding (the GPU feeding itself its argmax) gives the
// tokens of one-step-at-a-time decoding, leaves the cache where the
// caller stopped, and decoding continues correctly from there.
func TestDecodeGreedyMatchesStepByStep(t *testing.T) {
	d := testDevice(t)
	g := loadGolden(t, "gqa-untied-extremek-f32")
	e, err := Load(d, g.cfg, g.ck, Options{Ctx: 96, PrefillChunk: 64})
	require.NoError(t, err)
	defer e.Close()
	prompt := g.cases[0].InputIDs

	first, err := e.FeedArgmax(prompt)
	require.NoError(t, err)
	want := []int{}
	tok := first
	for range 12 {
		tok, err = e.FeedArgmax([]int{tok})
		require.NoError(t, err)
		want = append(want, tok)
	}

	e.Reset()
	first2, err := e.FeedArgmax(prompt)
	require.NoError(t, err)
	require.Equal(t, first, first2)
	var got []int
	require.NoError(t, e.DecodeGreedy(first, 12, func(id int) bool { got = append(got, id); return true }))
	require.Equal(t, want, got)
	require.Equal(t, len(prompt)+12, e.Len(), "the prompt, first and 11 yielded tokens are fed; the 12th is not")

	// Stop after 3: the cache holds first and two yielded tokens, and the
	// next feed continues the same sequence.
	e.Reset()
	_, err = e.FeedArgmax(prompt)
	require.NoError(t, err)
	got = nil
	require.NoError(t, e.DecodeGreedy(first, 12, func(id int) bool { got = append(got, id); return len(got) < 3 }))
	require.Equal(t, want[:3], got)
	require.Equal(t, len(prompt)+3, e.Len())
	next, err := e.FeedArgmax([]int{got[2]})
	require.NoError(t, err)
	require.Equal(t, want[3], next)
}

// The generation loop over the GPU engine (pipelined greedy path) prints
// what it prints over the CPU reference, stops on an end token and on
// --max-tokens the same way, and leaves the cache consistent with Unfed.
func TestGenerateOnGPUEqualsCPU(t *testing.T) {
	d := testDevice(t)
	g := loadGolden(t, "tiny-tied-f32")
	tok, err := tokenizer.Qwen3()
	require.NoError(t, err)
	e, err := Load(d, g.cfg, g.ck, Options{Ctx: 128})
	require.NoError(t, err)
	defer e.Close()
	greedy := sample.Params{Temperature: 0, TopP: 1, RepetitionPenalty: 1}
	prompt := g.cases[2].InputIDs

	cpu, err := generate.Generate(generate.NewCPU(g.ref, 128), tok, prompt, nil, generate.Options{Sampling: greedy, MaxTokens: 20})
	require.NoError(t, err)
	gpuRes, err := generate.Generate(e, tok, prompt, nil, generate.Options{Sampling: greedy, MaxTokens: 20})
	require.NoError(t, err)
	require.Equal(t, cpu.Tokens, gpuRes.Tokens)
	require.Equal(t, cpu.Text, gpuRes.Text)
	require.Equal(t, generate.StopMaxTokens, gpuRes.StopReason)
	require.Equal(t, len(prompt)+19, e.Len())
	require.Equal(t, gpuRes.Tokens[19:], gpuRes.Unfed)

	// The first token that is new to the sequence, taken as an end
	// token: everything before it printed, all of it fed.
	stop := 1
	for slices.Contains(cpu.Tokens[:stop], cpu.Tokens[stop]) {
		stop++
	}
	e.Reset()
	res, err := generate.Generate(e, tok, prompt, nil, generate.Options{Sampling: greedy, EOS: []int{cpu.Tokens[stop]}})
	require.NoError(t, err)
	require.Equal(t, generate.StopEOS, res.StopReason)
	require.Equal(t, cpu.Tokens[:stop], res.Tokens)
	require.Equal(t, len(prompt)+len(res.Tokens), e.Len())
	require.Empty(t, res.Unfed)
}
