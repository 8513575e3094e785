package llm

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/qwgpu/qwgpu/gpu/kernels"
	"github.com/qwgpu/qwgpu/qwen3"
	"github.com/qwgpu/qwgpu/qwen3/engine"
	"github.com/qwgpu/qwgpu/weights"
)

// WebGPU does not say how much memory a device has, and a driver that runs
// out may abort the process or, on a software adapter, get it killed by
// the kernel. So before anything is allocated the model's footprint is
// compared with a budget: Options.GPUMemory when given, else, for a
// software adapter (lavapipe, llvmpipe, WARP: its memory is the host's
// RAM), a share of the RAM available. A discrete GPU without a budget is
// not checked; an allocation it refuses is reported by the engine.

// SoftwareShare is the part of the available RAM a model on a software
// adapter may take: the driver, the page cache of the checkpoint and the
// rest of the machine need the remainder.
const SoftwareShare = 0.8

// Footprint is what loading a model takes, in bytes.
type Footprint struct {
	Weights, KVCache, Activations int64  // on the device
	Host                          int64  // transient host memory while uploading
	KVDType                       string // the KV cache's element type ("f32", "f16", "bf16")
}

// Device is what the model holds on the device.
func (f Footprint) Device() int64 { return f.Weights + f.KVCache + f.Activations }

// QuantDTypes are the DType values that quantize every matrix at load
// (the engine's own table).
var QuantDTypes = engine.QuantDTypes

// EstimateFootprint adds up the weights of cfg as they will be stored
// when loaded from src with dtype ("auto", "f32", "bf16", "f16", "q8_0",
// "q4_0", "q4_k"), a KV cache of slots × ctx positions in kvDType ("" is
// f32) and the
// activations of a prefill chunk, as engine.Load allocates them. src is
// asked for each tensor's type only: it must be a source whose Get reads
// headers (a checkpoint, a GGUF file, a qwen3.RandomSource), not one that
// converts or quantizes.
func EstimateFootprint(cfg qwen3.Config, src qwen3.Source, dtype, kvDType string, ctx, chunk, slots int) Footprint {
	c := cfg
	if ctx <= 0 {
		ctx = min(engine.DefaultCtx, c.MaxPositionEmbeddings)
	}
	if chunk <= 0 {
		chunk = engine.DefaultChunk
	}
	chunk = min(chunk, ctx)
	random, isRandom := src.(*qwen3.RandomSource)
	asked := weights.DType(0) // auto
	switch strings.ToLower(dtype) {
	case "f32":
		asked = weights.F32
	case "bf16":
		asked = weights.BF16
	case "f16":
		asked = weights.F16
	default:
		asked = QuantDTypes[strings.ToLower(dtype)]
	}
	// source is a tensor's type as read.
	source := func(name string) weights.DType {
		if isRandom {
			return random.DType
		}
		if src != nil {
			if t, err := src.Get(name); err == nil {
				return t.DType
			}
		}
		return weights.BF16
	}
	var f Footprint
	// The engine uploads one matrix at a time (q, k, v stacked; gate and
	// up stacked): the host holds that matrix packed, and in float32 too
	// when it is generated, converted or quantized.
	unit := func(rows, cols int64, names ...string) {
		host := int64(0)
		for _, name := range names {
			from := source(name)
			to := engine.StoredType(asked, from, int(cols))
			n := kernels.MatrixBytes(to, int(rows), int(cols))
			f.Weights += n
			host += n
			if isRandom || to != from {
				host += rows * cols * 4
			}
		}
		f.Host = max(f.Host, host)
	}
	h, q, kv, in, v := int64(c.HiddenSize), int64(c.QDim()), int64(c.KVDim()), int64(c.IntermediateSize), int64(c.VocabSize)
	unit(v, h, qwen3.NameEmbed)
	for i := 0; i < c.NumHiddenLayers; i++ {
		p := qwen3.LayerPrefix(i)
		unit(q, h, p+"self_attn.q_proj.weight")
		unit(kv, h, p+"self_attn.k_proj.weight")
		unit(kv, h, p+"self_attn.v_proj.weight")
		unit(h, q, p+"self_attn.o_proj.weight")
		unit(in, h, p+"mlp.gate_proj.weight", p+"mlp.up_proj.weight")
		unit(h, in, p+"mlp.down_proj.weight")
		f.Weights += 4 * (2*h + 2*int64(c.HeadDim)) // norms, float32
	}
	f.Weights += 4 * h
	if !c.TieWordEmbeddings {
		unit(v, h, qwen3.NameLMHead)
	}
	if kvDType == "" {
		kvDType = "f32"
	}
	rt := engine.Estimate(c, engine.Options{Ctx: ctx, PrefillChunk: chunk, Slots: slots, KVDType: kvDType}, weights.BF16)
	f.KVCache, f.Activations, f.KVDType = rt.KVCache, rt.Activations, strings.ToLower(kvDType)
	return f
}

// MemoryError is Open's refusal of a model that does not fit the budget.
type MemoryError struct {
	Model     string
	Need      Footprint
	Ctx       int
	Budget    int64 // Options.GPUMemory; 0 when the software adapter's share refused it
	Adapter   string
	Available int64 // the RAM available, for a software adapter
}

func (e *MemoryError) Error() string {
	what := fmt.Sprintf("%s needs about %.2f GiB on the GPU (weights %.2f, KV cache %.2f for a context of %d in %s, activations %.2f)",
		e.Model, GiB(e.Need.Device()), GiB(e.Need.Weights), GiB(e.Need.KVCache), e.Ctx, e.Need.KVDType, GiB(e.Need.Activations))
	if e.Budget > 0 {
		return fmt.Sprintf("%s, more than the budget of %.2f GiB", what, GiB(e.Budget))
	}
	return fmt.Sprintf("%s plus %.2f GiB of host memory while loading; %s is a software adapter whose memory is this machine's RAM, "+
		"%.2f GiB available, of which at most %.0f%% is used (a GPU memory budget overrides)",
		what, GiB(e.Need.Host), e.Adapter, GiB(e.Available), 100*SoftwareShare)
}

// CheckMemory refuses (with a *MemoryError) a footprint above budget, or,
// without one (0), above a software adapter's share of the RAM; adapter
// names the device, software says it is a software adapter. Open calls
// it; tools that drive the engine directly call it too.
func CheckMemory(name string, f Footprint, ctx int, budget int64, adapter string, software bool) error {
	if budget > 0 {
		if f.Device() > budget {
			return &MemoryError{Model: name, Need: f, Ctx: ctx, Budget: budget}
		}
		return nil
	}
	if !software {
		return nil
	}
	avail, ok := AvailableRAM()
	if !ok {
		return nil
	}
	if float64(f.Device()+f.Host) > SoftwareShare*float64(avail) {
		return &MemoryError{Model: name, Need: f, Ctx: ctx, Adapter: adapter, Available: avail}
	}
	return nil
}

// GiB is n bytes in GiB.
func GiB(n int64) float64 { return float64(n) / (1 << 30) }

// AvailableRAM is MemAvailable from /proc/meminfo, bounded by the cgroup's
// memory.max when the process runs in a limited cgroup (v2).
func AvailableRAM() (int64, bool) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0, false
	}
	defer f.Close()
	var avail int64 = -1
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "MemAvailable:" {
			kb, err := strconv.ParseInt(fields[1], 10, 64)
			if err == nil {
				avail = kb << 10
			}
			break
		}
	}
	if avail < 0 {
		return 0, false
	}
	memMax, err1 := os.ReadFile("/sys/fs/cgroup/memory.max")
	cur, err2 := os.ReadFile("/sys/fs/cgroup/memory.current")
	if err1 == nil && err2 == nil {
		lim, errA := strconv.ParseInt(strings.TrimSpace(string(memMax)), 10, 64) // "max" when unlimited
		used, errB := strconv.ParseInt(strings.TrimSpace(string(cur)), 10, 64)
		if errA == nil && errB == nil && lim-used < avail {
			avail = max(lim-used, 0)
		}
	}
	return avail, true
}
