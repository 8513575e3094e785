package main

import (
	"fmt"

	"github.com/qwgpu/qwgpu/qwen3"
)

// reportQuality runs --model (quantized, or quantized at load by --dtype)
// on device ("gpu": the engine, as run and serve use it; "cpu": the CPU
// reference on the same weights) and the unquantized model against on the
// float64 CPU oracle over the same prompts, and prints what the
// quantization costs (on the GPU: plus the GPU's own error), as llama.cpp's
// perplexity --kl-divergence does: the KL divergence of the next-token
// distributions (mean and max over positions), how often the top token
// agrees, and the largest logit error.
func reportQuality(mf *modelFlags, against, goldenPath, prompt, device string) error {
	m, err := openModel(mf.model, false)
	if err != nil {
		return err
	}
	defer m.close()
	if err := m.prepareWeights(mf); err != nil {
		return err
	}
	ref, err := openModel(against, false)
	if err != nil {
		return fmt.Errorf("--against: %w", err)
	}
	defer ref.close()
	if !sameShape(m.cfg, ref.cfg) {
		return fmt.Errorf("--against %s is not the same model shape as --model %s (hidden %d/%d, layers %d/%d, vocab %d/%d)",
			against, mf.model, ref.cfg.HiddenSize, m.cfg.HiddenSize, ref.cfg.NumHiddenLayers, m.cfg.NumHiddenLayers, ref.cfg.VocabSize, m.cfg.VocabSize)
	}

	var prompts [][]int
	switch {
	case goldenPath != "":
		cases, err := qwen3.LoadGolden(goldenPath, ref.cfg)
		if err != nil {
			return err
		}
		for _, c := range cases {
			prompts = append(prompts, c.InputIDs)
		}
	case m.tok != nil || ref.tok != nil:
		tok := m.tok
		if tok == nil {
			tok = ref.tok
		}
		ids := tok.Encode(prompt)
		if len(ids) == 0 {
			return fmt.Errorf("--prompt encodes to no tokens")
		}
		prompts = append(prompts, ids)
	default:
		return fmt.Errorf("neither model has a tokenizer to encode --prompt: give --golden to use its prompts")
	}
	longest := 0
	for _, p := range prompts {
		longest = max(longest, len(p))
	}

	load := func(mm *model) (*qwen3.Model, error) {
		w, err := qwen3.LoadWeights(mm.cfg, mm.src)
		if err != nil {
			return nil, err
		}
		return qwen3.NewModel(mm.cfg, w, longest), nil
	}
	// forward gives --model's logits at every position of a prompt.
	var forward func(ids []int) ([]float32, error)
	where := "CPU reference"
	if device == "gpu" {
		// The whole prompt in one traced prefill (every position's logits).
		mf.ctx = max(mf.ctx, longest)
		dev, err := openDevice(mf, false)
		if err != nil {
			return err
		}
		defer dev.Close()
		e, _, err := loadEngine(dev, m, mf, longest)
		if err != nil {
			return err
		}
		defer e.Close()
		where = describeAdapter(dev)
		forward = func(ids []int) ([]float32, error) {
			tr, err := e.ForwardTrace(ids)
			if err != nil {
				return nil, err
			}
			return tr.Logits, nil
		}
	} else {
		quant, err := load(m)
		if err != nil {
			return err
		}
		forward = func(ids []int) ([]float32, error) {
			o, err := quant.Forward(ids, false)
			if err != nil {
				return nil, err
			}
			return o.Logits, nil
		}
	}
	fmt.Printf("model: %s on %s against %s on the float64 CPU oracle\n", m.name(), where, ref.name())
	base, err := load(ref)
	if err != nil {
		return err
	}
	V := m.cfg.VocabSize
	var total qwen3.Quality
	for i, ids := range prompts {
		want, err := base.Forward(ids, false)
		if err != nil {
			return err
		}
		got, err := forward(ids)
		if err != nil {
			return err
		}
		var q qwen3.Quality
		for p := range ids {
			row := got[p*V : (p+1)*V]
			q.Add(want.LogitsAt(p), row)
			total.Add(want.LogitsAt(p), row)
		}
		fmt.Printf("prompt %d: %d tokens, KL mean %.4g max %.4g, top-1 %d/%d, max logit err %.4g\n",
			i, len(ids), q.MeanKL(), q.MaxKL, q.Top1Agree, q.Positions, q.MaxLogitAb)
	}
	fmt.Printf("KL divergence (nats): mean %.4g, max %.4g over %d positions\n", total.MeanKL(), total.MaxKL, total.Positions)
	fmt.Printf("top-1 agreement: %d/%d (%.1f%%)\n", total.Top1Agree, total.Positions, 100*total.Top1())
	fmt.Printf("max logit error: %.4g\n", total.MaxLogitAb)
	fmt.Printf("validate: ok mean_kl=%.4g max_kl=%.4g top1=%d/%d max_logit_err=%.4g\n",
		total.MeanKL(), total.MaxKL, total.Top1Agree, total.Positions, total.MaxLogitAb)
	return nil
}

// sameShape reports whether two configs describe models whose logits can
// be compared position by position.
func sameShape(a, b qwen3.Config) bool {
	return a.VocabSize == b.VocabSize && a.HiddenSize == b.HiddenSize && a.IntermediateSize == b.IntermediateSize &&
		a.NumHiddenLayers == b.NumHiddenLayers && a.NumAttentionHeads == b.NumAttentionHeads &&
		a.NumKeyValueHeads == b.NumKeyValueHeads && a.HeadDim == b.HeadDim
}
