package main

import (
	"fmt"
	"github.com/qwgpu/qwgpu/weights"
	"math"

	"github.com/spf13/pflag"

	"github.com/qwgpu/qwgpu/qwen3"
	"github.com/qwgpu/qwgpu/qwen3/engine"
)

// validatePrompt is the default text compared layer by layer.
const validatePrompt = "The quick brown fox jumps over the lazy dog. Qwen3 normalises q and k before RoPE."

// greedyMarginMin: a greedy step is compared only where the reference's
// top-1 / top-2 margin leaves no doubt about the argmax.
const greedyMarginMin = 1e-3

// maxDecodeSteps bounds --decode-steps: each step is compared on the CPU
// reference too, and the cache is sized by it.
const maxDecodeSteps = 1 << 16

func cmdValidate(args []string) error {
	fs := newFlags("validate")
	var mf modelFlags
	mf.register(fs, "model directory (required)")
	device := fs.String("device", "gpu", "what to check: gpu (against the float64 CPU oracle and --golden) or cpu (the oracle alone, needs --golden)")
	golden := fs.String("golden", "", "golden.safetensors made by transformers (see testdata/golden/README.md)")
	prompt := fs.String("prompt", validatePrompt, "text compared layer by layer, GPU against CPU")
	tol := fs.Float64("tol", 0, "bound on |err| / max(1, max|reference|) (default 2e-3 on the GPU against the float64 CPU oracle, 1e-4 for --device cpu against --golden)")
	decodeSteps := fs.Int("decode-steps", 8, "KV-cache decode steps compared after the prompt")
	against := fs.String("against", "", "unquantized model (directory or GGUF) to report --model's quality against: KL divergence, top-1 agreement, max logit error over the --golden prompts (or --prompt); --model runs on --device, the unquantized model on the float64 CPU oracle")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if mf.model == "" {
		return fmt.Errorf("--model is required")
	}
	if *decodeSteps < 0 || *decodeSteps > maxDecodeSteps {
		return fmt.Errorf("--decode-steps %d: want 0 to %d", *decodeSteps, maxDecodeSteps)
	}
	if *against != "" {
		if *device != "gpu" && *device != "cpu" {
			return fmt.Errorf("--device %q: want gpu or cpu", *device)
		}
		if err := mf.check(fs); err != nil {
			return err
		}
		return reportQuality(&mf, *against, *golden, *prompt, *device)
	}
	if *device != "gpu" && *device != "cpu" {
		return fmt.Errorf("--device %q: want gpu or cpu", *device)
	}
	if err := mf.check(fs); err != nil {
		return err
	}
	if *device == "cpu" && *golden == "" {
		return fmt.Errorf("--device cpu checks the reference against --golden, which is missing")
	}
	if !fs.Changed("tol") {
		*tol = 2e-3
		if *device == "cpu" {
			*tol = 1e-4
		}
	}
	v := &validator{tol: *tol, fs: fs}
	err := v.run(&mf, *device, *golden, *prompt, *decodeSteps)
	// The verdict is the last line of stdout; stderr's one line says why.
	if err != nil {
		fmt.Printf("validate: FAIL %s\n", oneLine(err.Error()))
		return err
	}
	if v.failed != "" {
		fmt.Printf("validate: FAIL %s\n", v.failed)
		return fmt.Errorf("validation failed: %s", v.failed)
	}
	fmt.Printf("validate: ok max_logit_err=%.3g greedy=%d/%d\n", v.maxLogitErr, v.greedyMatched, v.greedyTotal)
	return nil
}

type validator struct {
	fs                         *pflag.FlagSet
	tol                        float64
	maxLogitErr                float64
	greedyMatched, greedyTotal int
	failed                     string // first failure
}

func (v *validator) fail(format string, args ...any) {
	if v.failed == "" {
		v.failed = fmt.Sprintf(format, args...)
	}
}

// logits compares one position's logits and records the error.
func (v *validator) logits(what string, got, want []float32) {
	rel := qwen3.RelErr(got, want)
	if math.IsNaN(rel) || rel > v.maxLogitErr || math.IsInf(rel, 1) {
		v.maxLogitErr = rel
	}
	if !(rel <= v.tol) {
		v.fail("%s: logits error %.3g above %.3g", what, rel, v.tol)
	}
}

// backend is what validate runs the golden cases on.
type backend interface {
	trace(ids []int) (logits []float32, hidden [][]float32, err error)
	step(id int) ([]float32, error)
}

type cpuBackend struct {
	m     *qwen3.Model
	cache *qwen3.Cache
}

func (c *cpuBackend) trace(ids []int) ([]float32, [][]float32, error) {
	c.cache = c.m.NewCache(c.m.Rope.MaxPos)
	o, err := c.m.Prefill(c.cache, ids, true)
	if err != nil {
		return nil, nil, err
	}
	return o.Logits, o.Hidden, nil
}

func (c *cpuBackend) step(id int) ([]float32, error) { return c.m.Step(c.cache, id) }

type gpuBackend struct{ e *engine.Engine }

func (g *gpuBackend) trace(ids []int) ([]float32, [][]float32, error) {
	tr, err := g.e.ForwardTrace(ids)
	if err != nil {
		return nil, nil, err
	}
	return tr.Logits, tr.Hidden, nil
}

func (g *gpuBackend) step(id int) ([]float32, error) { return g.e.Feed([]int{id}) }

func (v *validator) run(mf *modelFlags, device, goldenPath, prompt string, decodeSteps int) error {
	m, err := openModel(mf.model, false)
	if err != nil {
		return err
	}
	defer m.close()
	if err := m.prepareWeights(mf); err != nil {
		return err
	}
	cfg := m.cfg
	if err := mf.fit(v.fs, cfg); err != nil {
		return err
	}
	fmt.Printf("model: %s; loading the CPU reference (float64 oracle)\n", m.name())
	// m.src refuses tensors holding NaN or Inf, naming them: such weights
	// would make every comparison meaningless.
	w, err := qwen3.LoadWeights(cfg, m.src)
	if err != nil {
		return err
	}
	ctx := min(mf.ctx, cfg.MaxPositionEmbeddings)
	ref := qwen3.NewModel(cfg, w, ctx)

	var under backend = &cpuBackend{m: ref}
	if device == "gpu" {
		dev, err := openDevice(mf, false)
		if err != nil {
			return err
		}
		defer dev.Close()
		e, _, err := loadEngine(dev, m, mf, 0)
		if err != nil {
			return err
		}
		defer e.Close()
		fmt.Printf("device: %s, weights %s (%s), kv cache %s\n", describeAdapter(dev), e.WeightDType(), weights.HumanBytes(e.WeightBytes()), e.KVDType())
		under = &gpuBackend{e: e}
		var ids []int
		switch {
		case m.tok != nil:
			ids = m.tok.Encode(prompt)
		case goldenPath != "":
			// No tokenizer.json (golden test models): compare on the first golden prompt.
			cases, err := qwen3.LoadGolden(goldenPath, cfg)
			if err != nil {
				return err
			}
			ids = cases[0].InputIDs
		default:
			return fmt.Errorf("%s has no tokenizer.json to encode --prompt (give --golden to compare on its prompts)", mf.model)
		}
		f32 := qwen3.NewFloat32ActivationsModel(cfg, w, ctx)
		if err := v.layers(ref, f32, e, ids, decodeSteps); err != nil {
			return err
		}
	}
	if goldenPath != "" {
		return v.golden(under, cfg, goldenPath)
	}
	return nil
}

// layers compares the GPU with the float64 oracle on a prompt: every
// layer's hidden state, the logits, then decode steps through the cache.
// Beside each GPU error it prints what float32 rounding alone costs there
// (the float32-activation CPU path against the same oracle), so that a GPU
// error far above that figure is the GPU's, and one near it is the model's
// sensitivity to float32 arithmetic.
func (v *validator) layers(ref, f32 *qwen3.Model, e *engine.Engine, ids []int, decodeSteps int) error {
	if len(ids) == 0 {
		return fmt.Errorf("--prompt encodes to no tokens")
	}
	cfg := ref.Config
	want, err := ref.Forward(ids, true)
	if err != nil {
		return err
	}
	round, err := f32.Forward(ids, true)
	if err != nil {
		return err
	}
	tr, err := e.ForwardTrace(ids)
	if err != nil {
		return err
	}
	fmt.Printf("prompt: %d tokens; GPU against the float64 CPU oracle (rel = max|err| / max(1, max|oracle|));\n", len(ids))
	fmt.Printf("float32 rel: the float32-activation CPU path against the same oracle (float32 rounding alone)\n")
	fmt.Printf("%-14s %12s %12s %12s %9s\n", "stage", "max abs err", "GPU rel", "float32 rel", "GPU/f32")
	for i := range want.Hidden {
		name := fmt.Sprintf("layer %d", i)
		switch i {
		case 0:
			name = "embedding"
		case cfg.NumHiddenLayers:
			name = "final norm"
		}
		abs, _ := qwen3.MaxAbsDiff(tr.Hidden[i], want.Hidden[i])
		rel := qwen3.RelErr(tr.Hidden[i], want.Hidden[i])
		f32rel := qwen3.RelErr(round.Hidden[i], want.Hidden[i])
		fmt.Printf("%-14s %12.3g %12.3g %12.3g %9s\n", name, abs, rel, f32rel, ratio(rel, f32rel))
		if !(rel <= v.tol) {
			v.fail("%s: hidden state error %.3g above %.3g (float32 rounding alone: %.3g)", name, rel, v.tol, f32rel)
		}
	}
	V := cfg.VocabSize
	agree := 0
	for t := range ids {
		g, w := tr.Logits[t*V:(t+1)*V], want.LogitsAt(t)
		v.logits(fmt.Sprintf("prompt position %d", t), g, w)
		if qwen3.Argmax(g) == qwen3.Argmax(w) {
			agree++
		}
	}
	abs, _ := qwen3.MaxAbsDiff(tr.Logits, want.Logits)
	rel, f32rel := qwen3.RelErr(tr.Logits, want.Logits), qwen3.RelErr(round.Logits, want.Logits)
	fmt.Printf("%-14s %12.3g %12.3g %12.3g %9s   top-1 agreement %d/%d\n", "logits", abs, rel, f32rel, ratio(rel, f32rel), agree, len(ids))

	// Decode through the KV cache, feeding the reference's greedy choice.
	cache := ref.NewCache(min(len(ids)+decodeSteps+1, e.Context()+1))
	_, _ = ref.Prefill(cache, ids, false)
	next := qwen3.Argmax(want.LogitsAt(len(ids) - 1))
	for s := 0; s < decodeSteps && e.Len() < e.Context(); s++ {
		g, err := e.Feed([]int{next})
		if err != nil {
			return err
		}
		w, err := ref.Step(cache, next)
		if err != nil {
			return err
		}
		v.logits(fmt.Sprintf("decode step %d", s), g, w)
		same := qwen3.Argmax(g) == qwen3.Argmax(w)
		fmt.Printf("decode %-7d %12s %12.3g %12s %9s   top-1 %v\n", s, "", qwen3.RelErr(g, w), "", "", same)
		next = qwen3.Argmax(w)
	}
	return nil
}

// golden checks every case of a golden file: all prompt logits, then the
// greedy continuation through the KV cache (teacher-forced on the
// reference's tokens so that one ambiguous step cannot derail the rest).
func (v *validator) golden(b backend, cfg qwen3.Config, path string) error {
	cases, err := qwen3.LoadGolden(path, cfg)
	if err != nil {
		return err
	}
	V := cfg.VocabSize
	for _, gc := range cases {
		logits, _, err := b.trace(gc.InputIDs)
		if err != nil {
			return err
		}
		caseErr := 0.0
		for t := range gc.InputIDs {
			g, w := logits[t*V:(t+1)*V], gc.Logits[t*V:(t+1)*V]
			v.logits(fmt.Sprintf("golden case %d position %d", gc.Index, t), g, w)
			caseErr = math.Max(caseErr, qwen3.RelErr(g, w))
		}
		last := logits[(len(gc.InputIDs)-1)*V:]
		matched, total := 0, 0
		for s, want := range gc.Greedy {
			got := qwen3.Argmax(last)
			if float64(gc.GreedyMargin[s]) >= greedyMarginMin {
				total++
				if got == want {
					matched++
				} else {
					v.fail("golden case %d greedy step %d: got token %d, want %d (margin %.3g)", gc.Index, s, got, want, gc.GreedyMargin[s])
				}
			}
			if s+1 < len(gc.Greedy) {
				if last, err = b.step(want); err != nil {
					return err
				}
			}
		}
		v.greedyMatched += matched
		v.greedyTotal += total
		fmt.Printf("golden case %d: %d prompt tokens, max logit err %.3g, greedy %d/%d\n", gc.Index, len(gc.InputIDs), caseErr, matched, total)
	}
	return nil
}

// ratio prints how many times float32 rounding's error the GPU's is.
func ratio(gpu, f32 float64) string {
	switch {
	case gpu == 0:
		return "0"
	case f32 == 0:
		return "inf"
	}
	return fmt.Sprintf("%.2g", gpu/f32)
}
