// Package llm runs Qwen3 models in one call: Open loads a model (a
// checkpoint directory, a GGUF file, a Hugging Face repo id found in the
// local hub cache, or the built-in tiny model), and Generate, Chat and
// ChatStream generate from it, streaming tokens, with the model's own
// end-of-sequence ids and sampling defaults.
//
// A Model is safe for concurrent use. One scheduler goroutine owns the
// engine: requests queue, up to Options.Parallel of them decode together
// in one batched step (continuous batching: a request joins between steps,
// its prompt prefilled in chunks interleaved with the others' decoding,
// and leaves at once when it finishes or is cancelled), and each slot of
// the KV cache remembers its tokens, so that a request whose prompt
// continues a slot's (the next turn of a chat) feeds only the rest.
//
//	m, err := llm.Open(ctx, "Qwen/Qwen3-0.6B", llm.Options{})
//	if err != nil { ... }
//	defer m.Close()
//	res, err := m.Chat(ctx, []llm.Message{{Role: "user", Content: "Hi"}}, llm.GenOptions{},
//		func(t llm.Token) error { fmt.Print(t.Text); return nil })
package llm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/qwgpu/qwgpu/gpu"
	"github.com/qwgpu/qwgpu/qwen3"
	"github.com/qwgpu/qwgpu/qwen3/engine"
	"github.com/qwgpu/qwgpu/qwen3/sample"
	"github.com/qwgpu/qwgpu/qwen3/tokenizer"
	"github.com/qwgpu/qwgpu/weights"
)

// Options controls how Open loads a model. The zero value is the
// platform's default GPU, the engine's default context, the checkpoint's
// dtype and one sequence at a time.
type Options struct {
	// Backend ("vulkan", "metal", "dx12", "gl") and Adapter (an index or
	// a name substring) choose the GPU; "" is the platform's default.
	Backend, Adapter string
	// Device is "gpu" (default) or "cpu": the CPU reference model, exact
	// and slow, for checking or for machines without a GPU.
	Device string
	// Ctx is the context of each sequence in positions (0: the engine's
	// default, bounded by the model's max_position_embeddings).
	Ctx int
	// DType stores the weight matrices as "f32", "bf16" or "f16", or
	// quantizes every matrix at load to "q8_0", "q4_0" or "q4_k" (the GPU
	// keeps the blocks); "" or "auto" keeps the checkpoint's dtype (a
	// quantized GGUF file's blocks included).
	DType string
	// KVDType stores the KV cache as "f32" ("" too), "f16" or "bf16"
	// (engine.Options.KVDType; the CPU device keeps float64/float32).
	KVDType string
	// Parallel is the number of sequences decoded together, each in its
	// own KV cache slot (0: 1).
	Parallel int
	// MaxQueue bounds the requests waiting for a slot: one more is refused
	// at once with a *QueueFullError (ErrQueueFull). 0: no bound.
	MaxQueue int
	// Progress, if set, is called as the weights load with the bytes done
	// and the total.
	Progress func(done, total int64)
	// QuantizeProgress, if set and DType quantizes, is called after each
	// matrix is quantized with the type it got (its own when its rows are
	// not whole blocks).
	QuantizeProgress func(name string, stored weights.DType)
	// GPUMemory, when > 0, refuses a model whose estimated footprint on
	// the GPU (Info.Footprint) is larger, in bytes, before anything is
	// allocated. When 0 a software adapter (its memory is the host's RAM)
	// is still checked against SoftwareShare of the RAM available; a
	// discrete GPU is not. The refusal is a *MemoryError.
	GPUMemory int64
	// BeforeDevice, if set, is called once the model's files are read and
	// before a device opens; an error it returns ends Open. A caller can
	// refuse there what cannot work (a prompt longer than the context)
	// without the cost of opening the GPU and uploading the weights.
	BeforeDevice func(Plan) error
}

// Plan is what Open knows before a device opens.
type Plan struct {
	Name      string
	BuiltIn   bool
	Config    qwen3.Config
	Tokenizer *tokenizer.Tokenizer
	Ctx       int       // positions per sequence
	Footprint Footprint // the estimate on the GPU
	// Sampling is what GenOptions' nil fields will mean (Info.Sampling).
	Sampling sample.Params
}

// Info describes a loaded model.
type Info struct {
	Name        string // the directory's or file's base name, the repo id, or BuiltinName
	BuiltIn     bool   // the built-in tiny model with random weights
	Config      qwen3.Config
	Device      string // "gpu" or "cpu"
	Adapter     string // the GPU: "name (backend, type)"; "CPU reference" on the CPU
	DType       string // how the weights are stored ("bf16", ...)
	WeightBytes int64
	// Footprint is the estimate of what the model holds on the GPU
	// (weights, KV cache, activations), as the memory check counts it.
	Footprint Footprint
	Ctx       int // positions per sequence
	Parallel  int // sequences decoded together
	EOS       []int
	// Sampling is what GenOptions' nil fields mean: the model's
	// generation_config.json (Qwen3: temperature 0.6, top-k 20, top-p 0.95).
	Sampling sample.Params
	// Qwen3Template is false when a GGUF file ships another chat template;
	// Chat formats conversations as Qwen3's template does regardless.
	Qwen3Template bool
	LoadTime      time.Duration
}

// ErrClosed is returned for requests made on, or still queued at, a
// closed Model.
var ErrClosed = errors.New("llm: the model is closed")

// ErrPromptTooLong is returned (wrapped) when a prompt leaves no room to
// generate in the context.
var ErrPromptTooLong = errors.New("prompt too long")

// Model is a loaded model and its scheduler.
type Model struct {
	info    Info
	tok     *tokenizer.Tokenizer
	dev     *gpu.Device    // nil on the CPU
	eng     *engine.Engine // nil on the CPU
	closeFn func() error   // the model files
	s       *scheduler

	closeOnce sync.Once
	closeErr  error
}

// Open loads a model: model is a checkpoint directory (config.json,
// *.safetensors, tokenizer.json, generation_config.json), a GGUF file, a
// Hugging Face repo id ("Qwen/Qwen3-0.6B") found in the local hub cache
// ($HF_HUB_CACHE, $HF_HOME/hub or ~/.cache/huggingface/hub; nothing is
// downloaded), or "" for the built-in tiny model (random weights, the
// real Qwen3 tokenizer). Cancelling ctx stops the load at the next tensor.
func Open(ctx context.Context, model string, opt Options) (_ *Model, err error) {
	if ctx == nil {
		ctx = context.Background()
	}
	device := strings.ToLower(opt.Device)
	switch device {
	case "", "gpu":
		device = "gpu"
	case "cpu":
	default:
		return nil, fmt.Errorf("device %q: want gpu or cpu", opt.Device)
	}
	if kv := strings.ToLower(opt.KVDType); device == "cpu" && kv != "" && kv != "f32" {
		return nil, fmt.Errorf("Options.KVDType %q: the CPU reference keeps its own cache; a 16-bit KV cache is a GPU option", opt.KVDType)
	}
	if opt.Parallel < 0 {
		return nil, fmt.Errorf("parallel %d: must be >= 0", opt.Parallel)
	}
	if opt.MaxQueue < 0 {
		return nil, fmt.Errorf("max queue %d: must be >= 0 (0: no bound)", opt.MaxQueue)
	}
	if opt.Ctx < 0 {
		return nil, fmt.Errorf("context of %d positions: must be >= 0", opt.Ctx)
	}
	dtype := strings.ToLower(opt.DType)
	switch dtype {
	case "", "auto", "f32", "bf16", "f16", "q8_0", "q4_0", "q4_k":
	default:
		return nil, fmt.Errorf("weight dtype %q: want auto, f32, bf16, f16, q8_0, q4_0 or q4_k", opt.DType)
	}
	if opt.GPUMemory < 0 {
		return nil, fmt.Errorf("GPU memory budget %d: must be >= 0", opt.GPUMemory)
	}
	start := time.Now()
	f, err := openFiles(model)
	if err != nil {
		return nil, err
	}
	m := &Model{tok: f.tok, closeFn: f.close}
	defer func() {
		if err != nil {
			m.release()
		}
	}()
	if err := engine.CheckRequantize(f.types, dtype); err != nil {
		return nil, libraryOptionError(err, opt)
	}
	slots := max(opt.Parallel, 1)
	ctxLen := opt.Ctx
	if ctxLen == 0 {
		ctxLen = min(engine.DefaultCtx, f.cfg.MaxPositionEmbeddings)
	}
	if ctxLen > f.cfg.MaxPositionEmbeddings {
		return nil, fmt.Errorf("context of %d positions: above the model's max_position_embeddings %d", ctxLen, f.cfg.MaxPositionEmbeddings)
	}
	info := Info{Name: f.name, BuiltIn: f.builtin, Config: f.cfg, Device: device, Ctx: ctxLen, Parallel: slots,
		EOS: f.eos(), Sampling: f.gen.Defaults(), Qwen3Template: f.qwen3Template,
		Footprint: EstimateFootprint(f.cfg, f.types, dtype, opt.KVDType, ctxLen, 0, slots)}
	if opt.BeforeDevice != nil {
		if err := opt.BeforeDevice(Plan{Name: f.name, BuiltIn: f.builtin, Config: f.cfg, Tokenizer: f.tok,
			Ctx: ctxLen, Footprint: info.Footprint, Sampling: info.Sampling}); err != nil {
			return nil, err
		}
	}
	if fs, ok := f.src.(*qwen3.CheckedSource); ok {
		fs.ToF16, fs.Ctx = dtype == "f16", ctx
	} else {
		f.src = &cancellableSource{Source: f.src, ctx: ctx}
	}
	if dt, ok := QuantDTypes[dtype]; ok {
		// Quantized as each matrix is read (after the finiteness check),
		// for the GPU, which keeps the blocks, and the CPU reference alike.
		f.src = qwen3.QuantizedSource{Source: f.src, DType: dt, Progress: opt.QuantizeProgress}
	}
	var b backend
	if device == "cpu" {
		w, err := qwen3.LoadWeights(f.cfg, f.src)
		if err != nil {
			return nil, err
		}
		info.Adapter, info.DType = "CPU reference", "f32"
		for _, s := range f.cfg.AllTensors() {
			n := int64(4)
			for _, d := range s.Shape {
				n *= int64(d)
			}
			info.WeightBytes += n
		}
		b = newCPUBackend(qwen3.NewModel(f.cfg, w, ctxLen), ctxLen, slots)
	} else {
		if m.dev, err = gpu.Open(gpu.Options{Backend: opt.Backend, Adapter: opt.Adapter}); err != nil {
			return nil, err
		}
		a := m.dev.Info()
		info.Adapter = fmt.Sprintf("%s (%s, %s)", a.Name, a.Backend, a.Type)
		if err := CheckMemory(f.name, info.Footprint, ctxLen, opt.GPUMemory, a.Name, a.Type == "cpu"); err != nil {
			return nil, err
		}
		m.eng, err = engine.Load(m.dev, f.cfg, f.src, engine.Options{Ctx: ctxLen, DType: dtype, KVDType: opt.KVDType, Slots: slots, Progress: opt.Progress})
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, libraryOptionError(err, opt)
		}
		info.DType, info.WeightBytes, info.Ctx = m.eng.WeightDType(), m.eng.WeightBytes(), m.eng.Context()
		b = gpuBackend{m.eng}
	}
	info.LoadTime = time.Since(start)
	m.info = info
	pb := &progressBackend{backend: b}
	m.s = newScheduler(pb, slots, info.Ctx)
	pb.s = m.s
	m.s.maxQueue = opt.MaxQueue
	go m.s.run()
	return m, nil
}

// libraryOptionError names the Options field an engine option error is
// about, in the library's terms.
func libraryOptionError(err error, opt Options) error {
	var oe *engine.OptionError
	if !errors.As(err, &oe) {
		return err
	}
	switch oe.Option {
	case "Ctx":
		return fmt.Errorf("Options.Ctx: %w", err)
	case "DType":
		return fmt.Errorf("Options.DType %q: %w", opt.DType, err)
	case "Slots":
		return fmt.Errorf("Options.Parallel %d: %w", opt.Parallel, err)
	case "KVDType":
		return fmt.Errorf("Options.KVDType %q: %w", opt.KVDType, err)
	}
	return err
}

// release frees what Open made, in reverse order.
func (m *Model) release() error {
	if m.eng != nil {
		m.eng.Close()
	}
	if m.dev != nil {
		m.dev.Close()
	}
	if m.closeFn != nil {
		return m.closeFn()
	}
	return nil
}

// Close stops the scheduler (requests in flight or queued end with
// ErrClosed), then frees the device and the model files. It is safe to
// call more than once.
func (m *Model) Close() error {
	m.closeOnce.Do(func() {
		m.s.stop()
		m.closeErr = m.release()
	})
	return m.closeErr
}

// Info describes the model.
func (m *Model) Info() Info {
	i := m.info
	i.EOS = append([]int(nil), i.EOS...)
	return i
}

// Tokenizer is the model's tokenizer.
func (m *Model) Tokenizer() *tokenizer.Tokenizer { return m.tok }

// Message is one turn of a conversation, as the OpenAI chat API has it.
// Role is "system", "user", "assistant" or "tool".
type Message struct {
	Role, Content string
	// ReasoningContent is an assistant turn's thinking; when empty, a
	// <think> block in Content is taken as it (as Qwen3's template does).
	ReasoningContent string
	ToolCalls        []ToolCall // an assistant turn's calls
	// ToolCallID and Name identify the call a "tool" message answers
	// (Qwen3's template renders neither).
	ToolCallID, Name string
}

// Tool is a function the model may call.
type Tool struct {
	Name, Description string
	Parameters        json.RawMessage // a JSON Schema object; nil for none
}

// ToolCall is a call the model made (or made in an earlier turn).
type ToolCall struct {
	ID, Name  string
	Arguments json.RawMessage // a JSON value, normally an object
}
