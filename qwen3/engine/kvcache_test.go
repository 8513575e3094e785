package engine

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/qwgpu/qwgpu/qwen3"
	"github.com/qwgpu/qwgpu/weights"
)

// kvRound rounds a value as a cache of type kv holds it.
var kvRound = map[string]func(float64) float64{
	"f16":  func(x float64) float64 { return float64(weights.F16ToFloat32(weights.Float32ToF16(float32(x)))) },
	"bf16": func(x float64) float64 { return float64(weights.BF16ToFloat32(weights.Float32ToBF16(float32(x)))) },
}

// kvDecodeBound is how far decoding with a 16-bit KV cache may move the
// logits from decoding with the float32 cache, as qwen3.RelErr (|err| /
// max(1, max|reference|)), over a prompt and 16 golden greedy tokens. Each
// cached key and value is rounded once (relative 2⁻¹² for f16, 2⁻⁹ for
// bf16); a score moves by about that times |q|·|k|, so the effect grows
// with the k_norm weights. Measured on lavapipe (largest over the steps):
//
//	model                     max k_norm   f16      bf16
//	tiny-tied-f32             ~1.6         3e-4     2.9e-3
//	yarn-tied-f32             ~1.6         5.7e-4   4.4e-3
//	gqa-untied-extremek-f32   90           3.5e-2   0.13
//	small-tied-bf16           90           4.7e-2   0.39
//
// The extremek models are built to be sensitive (an eighth of k_norm in
// [20, 90], scores of hundreds, near-one-hot softmax): there a rounded key
// can move a softmax weight by tens of percent. That those errors are the
// rounding's and not a kernel's is checked against the CPU oracle holding
// the same rounded values (kvOracleTol). The bounds leave a factor of 3–5.
var kvDecodeBound = map[string]map[string]float64{
	"tiny-tied-f32":           {"f16": 2e-3, "bf16": 1.5e-2},
	"yarn-tied-f32":           {"f16": 2e-3, "bf16": 1.5e-2},
	"gqa-untied-extremek-f32": {"f16": 0.15, "bf16": 0.6},
	"small-tied-bf16":         {"f16": 0.15, "bf16": 1.2},
}

// kvOracleTol bounds the GPU with a 16-bit cache against the float64 CPU
// oracle whose cache holds the same rounded values (qwen3.Model.KVRound):
// validate's 2e-3, except on small-tied-bf16 (measured 3.3e-3 for f16 and
// 8.5e-3 for bf16), where a key the GPU (float32) and the oracle
// (float64) round to neighbouring 16-bit values moves the sharp softmax.
// Elsewhere the measured errors are 2e-4 (f16) and 5e-5 (bf16) at most.
var kvOracleTol = map[string]map[string]float64{
	"tiny-tied-f32":           {"f16": gpuTol, "bf16": gpuTol},
	"yarn-tied-f32":           {"f16": gpuTol, "bf16": gpuTol},
	"gqa-untied-extremek-f32": {"f16": gpuTol, "bf16": gpuTol},
	"small-tied-bf16":         {"f16": 1e-2, "bf16": 2.5e-2},
}

// Prefill and decoding with a 16-bit KV cache: within kvDecodeBound of the
// float32 cache and within kvOracleTol of the oracle holding the same
// rounded keys and values, on every golden model.
func TestKVDTypeDecodeMatchesF32(t *testing.T) {
	d := testDevice(t)
	for _, name := range goldenNames {
		g := loadGolden(t, name)
		gc := g.cases[len(g.cases)-1]
		steps := gc.Greedy[:min(16, len(gc.Greedy))]
		run := func(kv string) [][]float32 {
			e, err := Load(d, g.cfg, g.ck, Options{Ctx: 128, PrefillChunk: 128, KVDType: kv})
			require.NoError(t, err, kv)
			defer e.Close()
			require.Equal(t, kv, e.KVDType())
			logits, err := e.Feed(gc.InputIDs)
			require.NoError(t, err)
			out := [][]float32{logits}
			for _, id := range steps {
				logits, err := e.Feed([]int{id})
				require.NoError(t, err)
				out = append(out, logits)
			}
			return out
		}
		oracle := func(kv string) [][]float32 {
			ref := *g.ref
			ref.KVRound = kvRound[kv]
			cache := ref.NewCache(len(gc.InputIDs) + len(steps))
			o, err := ref.Prefill(cache, gc.InputIDs, false)
			require.NoError(t, err)
			V := g.cfg.VocabSize
			out := [][]float32{o.Logits[(len(gc.InputIDs)-1)*V:]}
			for _, id := range steps {
				logits, err := ref.Step(cache, id)
				require.NoError(t, err)
				out = append(out, logits)
			}
			return out
		}
		want := run("f32")
		for _, kv := range []string{"f16", "bf16"} {
			t.Run(fmt.Sprint(name, "/", kv), func(t *testing.T) {
				got, ref := run(kv), oracle(kv)
				worst, worstRef, at, atRef := 0.0, 0.0, 0, 0
				errs := make([]string, len(want))
				for i := range want {
					rel := qwen3.RelErr(got[i], want[i])
					relRef := qwen3.RelErr(got[i], ref[i])
					errs[i] = fmt.Sprintf("%.2g/%.2g", rel, relRef)
					if rel > worst {
						worst, at = rel, i
					}
					if relRef > worstRef {
						worstRef, atRef = relRef, i
					}
				}
				t.Logf("%s cache: logits rel err per step (0: the prompt) against the f32 cache / the rounded oracle: %s", kv, strings.Join(errs, " "))
				require.LessOrEqualf(t, worstRef, kvOracleTol[name][kv], "step %d: logits rel err %.3g against the oracle with a %s cache", atRef, worstRef, kv)
				require.LessOrEqualf(t, worst, kvDecodeBound[name][kv], "step %d: logits rel err %.3g against the f32 cache", at, worst)
			})
		}
	}
}

// scaledKNorm serves a checkpoint with every k_norm weight multiplied.
type scaledKNorm struct {
	qwen3.Source
	by float32
}

func (s scaledKNorm) Get(name string, shape ...int) (*weights.Tensor, error) {
	t, err := s.Source.Get(name, shape...)
	if err != nil || !strings.HasSuffix(name, "k_norm.weight") {
		return t, err
	}
	v, err := t.Float32()
	if err != nil {
		return nil, err
	}
	for i := range v {
		v[i] *= s.by
	}
	return &weights.Tensor{Name: t.Name, DType: weights.F32, Shape: t.Shape, Raw: weights.F32Bytes(v)}, nil
}

// The KV dtype option: a bad name and keys beyond f16's range are option
// errors naming KVDType; bf16 takes those keys; the estimate halves.
func TestKVDTypeOption(t *testing.T) {
	d := testDevice(t)
	g := loadGolden(t, "gqa-untied-extremek-f32") // k_norm weights up to 90, head_dim 32
	var oe *OptionError
	_, err := Load(d, g.cfg, g.ck, Options{Ctx: 64, KVDType: "f8"})
	require.True(t, errors.As(err, &oe) && oe.Option == "KVDType", "%v", err)
	require.ErrorContains(t, err, `kv cache dtype "f8"`)

	// √32 · 90 · 200 ≈ 1e5 > 65504: refused for f16, fine for bf16.
	big := scaledKNorm{Source: g.ck, by: 200}
	_, err = Load(d, g.cfg, big, Options{Ctx: 64, KVDType: "f16"})
	require.True(t, errors.As(err, &oe) && oe.Option == "KVDType", "%v", err)
	require.ErrorContains(t, err, "beyond f16's ±65504")
	e, err := Load(d, g.cfg, big, Options{Ctx: 64, KVDType: "bf16"})
	require.NoError(t, err)
	e.Close()

	f32 := Estimate(g.cfg, Options{Ctx: 1000}, weights.F32)
	for _, kv := range []string{"f16", "bf16"} {
		f := Estimate(g.cfg, Options{Ctx: 1000, KVDType: kv}, weights.F32)
		require.Equal(t, f32.KVCache/2, f.KVCache, kv)
		require.Equal(t, f32.Weights, f.Weights, kv)
	}
	// 3 layers · K and V · 1000 positions · 1 kv head · head_dim 32 · 4 bytes
	require.Equal(t, int64(3*2*1000*32*4), f32.KVCache)
}
