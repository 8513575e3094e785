package main

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/qwgpu/qwgpu/qwen3"
	"github.com/qwgpu/qwgpu/qwen3/engine"
	"github.com/qwgpu/qwgpu/qwen3/llm"
	"github.com/qwgpu/qwgpu/weights"
)

// openGGUFModel opens a GGUF file given as --model: config, weights and
// tokenizer all come from the one file. A file that is not GGUF is told
// apart from a damaged one by its magic.
func openGGUFModel(path string, needTokenizer bool) (*model, error) {
	g, err := qwen3.OpenGGUF(path)
	if err != nil {
		if strings.Contains(err.Error(), "no GGUF magic") {
			return nil, fmt.Errorf("--model %s: neither a model directory nor a GGUF file", path)
		}
		return nil, err
	}
	m := &model{dir: path, cfg: g.Config, src: &qwen3.CheckedSource{Source: g}, gguf: g}
	if _, ok := g.File.Lookup("tokenizer.ggml.tokens"); ok || needTokenizer {
		if m.tok, err = g.Tokenizer(); err != nil {
			g.Close()
			return nil, err
		}
		if n := m.tok.VocabSize(); n > m.cfg.VocabSize {
			g.Close()
			return nil, fmt.Errorf("%s: the tokenizer has %d tokens, more than the %d rows of token_embd.weight", path, n, m.cfg.VocabSize)
		}
	}
	return m, nil
}

// prepareWeights applies --dtype to the model's weights for bench and
// validate, which load the engine themselves (run and serve pass --dtype
// to llm): a q* dtype quantizes every matrix as it is loaded, with
// progress on stderr, for the GPU (which keeps the blocks) and the CPU
// reference alike.
func (m *model) prepareWeights(mf *modelFlags) error {
	dt, quantize := llm.QuantDTypes[strings.ToLower(mf.dtype)]
	if !quantize {
		return nil
	}
	if m.gguf != nil {
		if err := engine.CheckRequantize(m.gguf, mf.dtype); err != nil {
			return fmt.Errorf("--dtype %q: %w", mf.dtype, err)
		}
	}
	p := newQuantProgress(m.cfg, dt)
	m.src = qwen3.QuantizedSource{Source: m.src, DType: dt, Progress: p.update}
	return nil
}

func newQuantProgress(cfg qwen3.Config, dt weights.DType) *quantProgress {
	total := 0
	for _, s := range cfg.AllTensors() {
		if len(s.Shape) == 2 {
			total++
		}
	}
	return &quantProgress{dtype: dt, total: total, start: time.Now(), tty: isTerminal(os.Stderr)}
}

// quantProgress reports quantization at load on stderr: a counter redrawn
// in place on a terminal, one line at the end either way, saying which
// matrices did not get the type asked for (rows not whole blocks).
type quantProgress struct {
	dtype       weights.DType
	done, total int
	other       map[weights.DType]int
	start       time.Time
	tty         bool
}

func (p *quantProgress) update(name string, dt weights.DType) {
	p.done++
	if dt != p.dtype {
		if p.other == nil {
			p.other = map[weights.DType]int{}
		}
		p.other[dt]++
	}
	if p.tty {
		fmt.Fprintf(os.Stderr, "\rquantizing to %v: %d/%d matrices", p.dtype, p.done, p.total)
	}
	if p.done != p.total {
		return
	}
	if p.tty {
		fmt.Fprint(os.Stderr, "\r\033[K")
	}
	var notes []string
	for dt, n := range p.other {
		notes = append(notes, fmt.Sprintf("%d as %v", n, dt))
	}
	note := ""
	if len(notes) > 0 {
		slices.Sort(notes)
		note = fmt.Sprintf(" (%s: rows not whole %v blocks)", strings.Join(notes, ", "), p.dtype)
	}
	fmt.Fprintf(os.Stderr, "qwgpu: quantized %d matrices to %v in %.2f s%s\n", p.total, p.dtype, time.Since(p.start).Seconds(), note)
}
