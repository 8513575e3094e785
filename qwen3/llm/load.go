package llm

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/qwgpu/qwgpu/qwen3"
	"github.com/qwgpu/qwgpu/qwen3/chat"
	"github.com/qwgpu/qwgpu/qwen3/engine"
	"github.com/qwgpu/qwgpu/qwen3/sample"
	"github.com/qwgpu/qwgpu/qwen3/tokenizer"
	"github.com/qwgpu/qwgpu/weights"
	"github.com/qwgpu/qwgpu/weights/hub"
)

// BuiltinSeed seeds the built-in model's random weights, so that it is
// the same model everywhere (the CLI's default model).
const BuiltinSeed = 20260525

// BuiltinName is how Info names the built-in model.
const BuiltinName = "built-in tiny Qwen3 (random weights)"

// files is a model opened on the host: config, weights, tokenizer and
// generation config, before anything reaches a device.
type files struct {
	name string
	cfg  qwen3.Config
	src  qwen3.Source
	// types answers tensor types from the headers (the checkpoint, the
	// GGUF file, the random source) for the footprint estimate.
	types   qwen3.Source
	tok     *tokenizer.Tokenizer
	gen     sample.GenerationConfig
	builtin bool
	// qwen3Template is false when a GGUF file carries a chat template
	// other than Qwen3's (it is formatted as Qwen3's regardless).
	qwen3Template bool
	close         func() error
}

// openFiles resolves what Open was given: "" for the built-in model, a
// path (directory or GGUF file) that exists, else a Hugging Face repo id
// looked up in the local hub cache.
func openFiles(model string) (*files, error) {
	if model == "" {
		tok, err := tokenizer.Qwen3()
		if err != nil {
			return nil, err
		}
		cfg := qwen3.Shapes["tiny"]
		cfg.MaxPositionEmbeddings = engine.DefaultCtx
		src := &qwen3.RandomSource{Config: cfg, DType: weights.BF16, Seed: BuiltinSeed}
		return &files{name: BuiltinName, cfg: cfg, tok: tok, builtin: true, qwen3Template: true,
			src: src, types: src, close: func() error { return nil }}, nil
	}
	path, name := model, filepath.Base(filepath.Clean(model))
	if _, err := os.Lstat(model); err != nil && hub.IsRepoID(model) {
		cache, err := hub.CacheDir()
		if err != nil {
			return nil, fmt.Errorf("model %s: %v", model, err)
		}
		if path, err = hub.Resolve(cache, model, ""); err != nil {
			return nil, fmt.Errorf("model %s: %v", model, err)
		}
		name = model
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("model: %v", err)
	}
	if !st.IsDir() {
		return openGGUF(path, name)
	}
	return openDir(path, name)
}

func openDir(dir, name string) (*files, error) {
	cfg, err := qwen3.LoadConfigDir(dir)
	if err != nil {
		return nil, err
	}
	ck, err := weights.OpenCheckpoint(dir)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*files, error) {
		ck.Close()
		return nil, err
	}
	// Every tensor the model reads must be there with the shape
	// config.json implies: found from the headers, before a device opens.
	for _, s := range cfg.AllTensors() {
		if _, err := ck.Get(s.Name, s.Shape...); err != nil {
			return fail(err)
		}
	}
	tokPath := filepath.Join(dir, "tokenizer.json")
	tok, err := tokenizer.Load(tokPath)
	if err != nil {
		return fail(err)
	}
	if n := tok.VocabSize(); n > cfg.VocabSize {
		return fail(fmt.Errorf("%s has %d tokens, more than vocab_size %d in %s: they do not belong together",
			tokPath, n, cfg.VocabSize, filepath.Join(dir, "config.json")))
	}
	gen, _, err := sample.LoadGenerationConfigIfExists(filepath.Join(dir, "generation_config.json"))
	if err != nil {
		return fail(err)
	}
	return &files{name: name, cfg: cfg, src: &qwen3.CheckedSource{Source: ck}, types: ck, tok: tok, gen: gen, qwen3Template: true,
		close: func() error { ck.Close(); return nil }}, nil
}

func openGGUF(path, name string) (*files, error) {
	g, err := qwen3.OpenGGUF(path)
	if err != nil {
		if strings.Contains(err.Error(), "no GGUF magic") {
			return nil, fmt.Errorf("model %s: neither a model directory nor a GGUF file", path)
		}
		return nil, err
	}
	tok, err := g.Tokenizer()
	if err != nil {
		g.Close()
		return nil, err
	}
	if n := tok.VocabSize(); n > g.Config.VocabSize {
		g.Close()
		return nil, fmt.Errorf("%s: the tokenizer has %d tokens, more than the %d rows of token_embd.weight", path, n, g.Config.VocabSize)
	}
	return &files{name: name, cfg: g.Config, src: &qwen3.CheckedSource{Source: g}, types: g, tok: tok, close: g.Close,
		qwen3Template: g.ChatTemplate == "" || chat.IsQwen3Template(g.ChatTemplate)}, nil
}

// eos gathers the end-of-sequence ids of config.json and
// generation_config.json, plus <|im_end|> and <|endoftext|>: a chat turn
// ends with either.
func (f *files) eos() []int {
	var ids []int
	add := func(id int) {
		for _, have := range ids {
			if have == id {
				return
			}
		}
		ids = append(ids, id)
	}
	for _, id := range f.cfg.EOSTokenIDs {
		add(id)
	}
	for _, id := range f.gen.EOSTokenIDs {
		add(id)
	}
	for _, s := range []string{chat.ImEnd, "<|endoftext|>"} {
		if id, ok := f.tok.ID(s); ok {
			add(id)
		}
	}
	return ids
}

// cancellableSource stops a load (of a source that needs no checks, the
// built-in model's) at the next tensor once ctx is done.
type cancellableSource struct {
	qwen3.Source
	ctx context.Context
}

func (c *cancellableSource) Get(name string, shape ...int) (*weights.Tensor, error) {
	if err := c.ctx.Err(); err != nil {
		return nil, err
	}
	return c.Source.Get(name, shape...)
}
