package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/qwgpu/qwgpu/gpu"
	"github.com/qwgpu/qwgpu/qwen3"
	"github.com/qwgpu/qwgpu/qwen3/engine"
	"github.com/qwgpu/qwgpu/qwen3/sample"
	"github.com/qwgpu/qwgpu/qwen3/tokenizer"
	"github.com/qwgpu/qwgpu/weights"
	"github.com/qwgpu/qwgpu/weights/hub"
)

// modelFlags are the flags every command that loads a model shares.
type modelFlags struct {
	model, backend, adapter, dtype string
	kvDType                        string // --kv-dtype: the KV cache's element type
	ctx                            int
	gpuMemory                      string
	slots                          int // KV cache slots (bench --parallel); 0 = 1
}

func (m *modelFlags) register(fs *pflag.FlagSet, modelHelp string) {
	fs.StringVarP(&m.model, "model", "m", "", modelHelp)
	fs.StringVar(&m.backend, "backend", "", "GPU backend: vulkan, metal, dx12 or gl (default: the platform's best)")
	fs.StringVar(&m.adapter, "adapter", "", "GPU adapter: index or name substring, as 'qwgpu info' lists them")
	fs.StringVar(&m.dtype, "dtype", "auto", "weight storage: auto (as in the checkpoint), f32, bf16 or f16; q8_0, q4_0 or q4_k quantize every matrix at load (the GPU keeps the blocks)")
	fs.StringVar(&m.kvDType, "kv-dtype", "f32", "KV cache storage: f32, f16 or bf16 (16-bit: half the cache memory and the bytes long-context decoding reads; f16 rounds to 11 bits, bf16 to 8)")
	fs.IntVarP(&m.ctx, "ctx", "c", engine.DefaultCtx, "KV cache length in tokens (bounded by max_position_embeddings)")
	fs.StringVar(&m.gpuMemory, "gpu-memory", "", "refuse models needing more GPU memory than this, e.g. 16GiB (default: unchecked, except software adapters: 80% of free RAM)")
}

// check validates the flags that need no model.
func (m *modelFlags) check(fs *pflag.FlagSet) error {
	if fs.Changed("ctx") && m.ctx < 1 {
		return fmt.Errorf("--ctx %d: must be at least 1", m.ctx)
	}
	switch strings.ToLower(m.dtype) {
	case "auto", "f32", "bf16", "f16", "q8_0", "q4_0", "q4_k":
	default:
		return fmt.Errorf("--dtype %q: want auto, f32, bf16, f16, q8_0, q4_0 or q4_k", m.dtype)
	}
	switch strings.ToLower(m.kvDType) {
	case "f32", "f16", "bf16":
	default:
		return fmt.Errorf("--kv-dtype %q: want f32, f16 or bf16", m.kvDType)
	}
	switch strings.ToLower(m.backend) {
	case "", "vulkan", "metal", "dx12", "gl":
	default:
		return fmt.Errorf("--backend %q: want vulkan, metal, dx12 or gl", m.backend)
	}
	if m.gpuMemory != "" {
		if _, err := parseBytes(m.gpuMemory); err != nil {
			return fmt.Errorf("--gpu-memory %q: %v", m.gpuMemory, err)
		}
	}
	return nil
}

// fit bounds --ctx by the model: the default shrinks to
// max_position_embeddings, a value given must fit it.
func (m *modelFlags) fit(fs *pflag.FlagSet, cfg qwen3.Config) error {
	if !fs.Changed("ctx") {
		m.ctx = min(m.ctx, cfg.MaxPositionEmbeddings)
		return nil
	}
	if m.ctx > cfg.MaxPositionEmbeddings {
		return fmt.Errorf("--ctx %d: above this model's max_position_embeddings %d", m.ctx, cfg.MaxPositionEmbeddings)
	}
	return nil
}

// model is a checkpoint (or the built-in model) opened on the host.
type model struct {
	dir     string // the directory or GGUF file; "" for the built-in model
	cfg     qwen3.Config
	src     qwen3.Source
	ck      *weights.Checkpoint
	gguf    *qwen3.GGUFModel
	tok     *tokenizer.Tokenizer
	gen     sample.GenerationConfig
	builtin bool
	repo    string // the Hugging Face repo id --model gave, if it was one
}

func (m *model) close() {
	if m.ck != nil {
		m.ck.Close()
	}
	if m.gguf != nil {
		m.gguf.Close()
	}
}

// name is how reports name the model.
func (m *model) name() string {
	if m.builtin {
		return "built-in tiny Qwen3 (random weights)"
	}
	if m.repo != "" {
		return m.repo
	}
	return filepath.Base(filepath.Clean(m.dir))
}

// builtinSeed makes the built-in model the same everywhere.
const builtinSeed = 20260525

// openModel reads a model directory: config.json, the safetensors
// checkpoint, tokenizer.json and generation_config.json (optional). With
// dir "" it makes the built-in model: the "tiny" shape with seeded random
// weights and the real Qwen3 tokenizer. Without needTokenizer a missing
// tokenizer.json is allowed (validation against golden ids needs none).
func openModel(dir string, needTokenizer bool) (*model, error) {
	if dir == "" {
		tok, err := tokenizer.Qwen3()
		if err != nil {
			return nil, err
		}
		cfg := qwen3.Shapes["tiny"]
		cfg.MaxPositionEmbeddings = engine.DefaultCtx
		return &model{cfg: cfg, tok: tok, builtin: true,
			src: &qwen3.RandomSource{Config: cfg, DType: weights.BF16, Seed: builtinSeed}}, nil
	}
	name := dir
	dir, err := resolveModel(dir)
	if err != nil {
		return nil, err
	}
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("--model: %v", err)
	}
	if !st.IsDir() {
		return openGGUFModel(dir, needTokenizer)
	}
	cfg, err := qwen3.LoadConfigDir(dir)
	if err != nil {
		return nil, err
	}
	ck, err := weights.OpenCheckpoint(dir)
	if err != nil {
		return nil, err
	}
	// Every tensor the model reads must be there with the shape config.json
	// implies: found from the headers alone, before a GPU is opened.
	for _, s := range cfg.AllTensors() {
		if _, err := ck.Get(s.Name, s.Shape...); err != nil {
			ck.Close()
			return nil, err
		}
	}
	m := &model{dir: dir, cfg: cfg, src: &qwen3.CheckedSource{Source: ck}, ck: ck}
	if name != dir {
		m.repo = name
	}
	tokPath := filepath.Join(dir, "tokenizer.json")
	if _, statErr := os.Stat(tokPath); statErr == nil || needTokenizer {
		if m.tok, err = tokenizer.Load(tokPath); err != nil {
			ck.Close()
			return nil, err
		}
		if n := m.tok.VocabSize(); n > cfg.VocabSize {
			ck.Close()
			return nil, fmt.Errorf("%s has %d tokens, more than vocab_size %d in %s: they do not belong together",
				tokPath, n, cfg.VocabSize, filepath.Join(dir, "config.json"))
		}
	}
	if g, ok, err := sample.LoadGenerationConfigIfExists(filepath.Join(dir, "generation_config.json")); err != nil {
		ck.Close()
		return nil, err
	} else if ok {
		m.gen = g
	}
	return m, nil
}

// openDevice opens the GPU the flags name and says which on stderr.
func openDevice(f *modelFlags, profile bool) (*gpu.Device, error) {
	dev, err := gpu.Open(gpu.Options{Backend: f.backend, Adapter: f.adapter, Profile: profile})
	if err != nil {
		return nil, deviceFlagError(err, f)
	}
	return dev, nil
}

// deviceFlagError names the flag at fault, when one was given, in an
// error of opening the GPU (package gpu's errors start with "gpu: ").
func deviceFlagError(err error, f *modelFlags) error {
	msg := err.Error()
	switch {
	case f.adapter != "" && strings.Contains(msg, fmt.Sprintf("no adapter %q", f.adapter)):
		return fmt.Errorf("--adapter %q: %w", f.adapter, err)
	case f.backend != "" && strings.HasPrefix(msg, "gpu: "):
		return fmt.Errorf("--backend %s: %w", f.backend, err)
	}
	return err
}

// describeAdapter is the one-line adapter description in stats lines.
func describeAdapter(d *gpu.Device) string {
	a := d.Info()
	return fmt.Sprintf("%s (%s, %s)", a.Name, a.Backend, a.Type)
}

// loadEngine uploads the model with a progress bar on a terminal. It is
// for bench and validate, engine-level tools that measure and check the
// engine itself; run and serve load through package llm.
func loadEngine(dev *gpu.Device, m *model, f *modelFlags, chunk int) (*engine.Engine, time.Duration, error) {
	if err := checkMemory(dev, m, f, chunk); err != nil {
		return nil, 0, err
	}
	if fsrc, ok := m.src.(*qwen3.CheckedSource); ok {
		fsrc.ToF16 = strings.EqualFold(f.dtype, "f16")
	}
	start := time.Now()
	bar := newProgress("loading " + m.name())
	e, err := engine.Load(dev, m.cfg, m.src, engine.Options{Ctx: f.ctx, DType: f.dtype, KVDType: f.kvDType, PrefillChunk: chunk, Slots: f.slots,
		Progress: bar.update})
	bar.done()
	if oe := (*engine.OptionError)(nil); errors.As(err, &oe) {
		// Name the flag that set the option.
		switch oe.Option {
		case "Ctx":
			return nil, 0, fmt.Errorf("--ctx %d: %w", f.ctx, err)
		case "DType":
			return nil, 0, fmt.Errorf("--dtype %q: %w", f.dtype, err)
		case "KVDType":
			return nil, 0, fmt.Errorf("--kv-dtype %s: %w", f.kvDType, err)
		}
	}
	if err != nil {
		return nil, 0, err
	}
	return e, time.Since(start), nil
}

// progress draws a bar on stderr when stderr is a terminal.
type progress struct {
	label string
	tty   bool
	last  time.Time
	drawn bool
}

func newProgress(label string) *progress {
	st, err := os.Stderr.Stat()
	return &progress{label: label, tty: err == nil && st.Mode()&os.ModeCharDevice != 0}
}

func (p *progress) update(done, total int64) {
	if !p.tty || total <= 0 || (time.Since(p.last) < 50*time.Millisecond && done < total) {
		return
	}
	p.last = time.Now()
	const width = 30
	frac := min(float64(done)/float64(total), 1)
	n := int(frac * width)
	fmt.Fprintf(os.Stderr, "\r%s [%s%s] %3.0f%% %d/%d MiB", p.label, strings.Repeat("#", n), strings.Repeat(" ", width-n),
		100*frac, done>>20, total>>20)
	p.drawn = true
}

// step shows a stage of a task with no byte count (a bench test's runs).
func (p *progress) step(stage string) {
	if !p.tty {
		return
	}
	fmt.Fprintf(os.Stderr, "\r\033[K%s: %s", p.label, stage)
	p.drawn = true
}

func (p *progress) done() {
	if p.drawn {
		fmt.Fprint(os.Stderr, "\r\033[K")
	}
}

// resolveModel turns what --model names into a model directory: a path
// that exists is used as it is; else a Hugging Face repo id (org/name) is
// looked up in the hub cache, where transformers, huggingface-cli and
// `qwgpu pull` put models.
func resolveModel(name string) (string, error) {
	if _, err := os.Lstat(name); err == nil || !hub.IsRepoID(name) {
		return name, nil
	}
	cache, err := hub.CacheDir()
	if err != nil {
		return "", fmt.Errorf("--model %s: %v", name, err)
	}
	dir, err := hub.Resolve(cache, name, "")
	if err != nil {
		return "", fmt.Errorf("--model %s: %v", name, err)
	}
	return dir, nil
}
