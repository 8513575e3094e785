package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/qwgpu/qwgpu/gpu"
	"github.com/qwgpu/qwgpu/gpu/kernels"
	"github.com/qwgpu/qwgpu/qwen3"
	"github.com/qwgpu/qwgpu/qwen3/engine"
	"github.com/qwgpu/qwgpu/weights"
)

// WebGPU does not say how much memory a device has, and a driver that runs
// out may abort the process or, on a software adapter, get it killed by
// the kernel. So before anything is allocated the model's footprint is
// compared with a budget: --gpu-memory when given, else, for a software
// adapter (lavapipe, llvmpipe, WARP: its memory is the host's RAM), a
// share of the RAM available. A discrete GPU without --gpu-memory is not
// checked; an allocation it refuses is reported with the same estimate.

// softwareShare is the part of the available RAM a model on a software
// adapter may take: the driver, the page cache of the checkpoint and the
// rest of the machine need the remainder.
const softwareShare = 0.8

// footprint is what loading a model takes, in bytes.
type footprint struct {
	weights, cache, act int64 // on the device
	host                int64 // transient host memory while uploading
}

func (f footprint) device() int64 { return f.weights + f.cache + f.act }

// estimateFootprint adds up the weights as they will be stored (--dtype),
// the KV cache of --ctx positions (in --kv-dtype) and the activations of a
// prefill chunk, like engine.Load will allocate them.
func estimateFootprint(m *model, mf *modelFlags, chunk int) footprint {
	c, dtype, ctx := m.cfg, mf.dtype, mf.ctx
	if ctx <= 0 {
		ctx = min(engine.DefaultCtx, c.MaxPositionEmbeddings)
	}
	if chunk <= 0 {
		chunk = engine.DefaultChunk
	}
	chunk = min(chunk, ctx)
	random, isRandom := m.src.(*qwen3.RandomSource)
	asked := weights.DType(0) // auto
	switch strings.ToLower(dtype) {
	case "f32":
		asked = weights.F32
	case "bf16":
		asked = weights.BF16
	case "f16":
		asked = weights.F16
	default:
		asked = quantDTypes[strings.ToLower(dtype)]
	}
	// source is a tensor's type as read.
	source := func(name string) weights.DType {
		switch {
		case isRandom:
			return random.DType
		case m.ck != nil:
			if t, err := m.ck.Get(name); err == nil {
				return t.DType
			}
		case m.gguf != nil:
			if t, err := m.gguf.Get(name); err == nil {
				return t.DType
			}
		}
		return weights.BF16
	}
	var f footprint
	// The engine uploads one matrix at a time (q, k, v stacked; gate and
	// up stacked): the host holds that matrix packed, and in float32 too
	// when it is generated, converted or quantized.
	unit := func(rows, cols int64, names ...string) {
		host := int64(0)
		for _, name := range names {
			from := source(name)
			to := engine.StoredType(asked, from, int(cols))
			n := kernels.MatrixBytes(to, int(rows), int(cols))
			f.weights += n
			host += n
			if isRandom || to != from {
				host += rows * cols * 4
			}
		}
		f.host = max(f.host, host)
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
		f.weights += 4 * (2*h + 2*int64(c.HeadDim)) // norms, float32
	}
	f.weights += 4 * h
	if !c.TieWordEmbeddings {
		unit(v, h, qwen3.NameLMHead)
	}
	rt := engine.Estimate(c, engine.Options{Ctx: ctx, PrefillChunk: chunk, KVDType: mf.kvDType}, weights.BF16)
	f.cache, f.act = rt.KVCache, rt.Activations
	return f
}

// checkMemory refuses a model that does not fit the memory budget.
func checkMemory(dev *gpu.Device, m *model, mf *modelFlags, chunk int) error {
	f := estimateFootprint(m, mf, chunk)
	need := f.device()
	what := fmt.Sprintf("%s needs about %.2f GiB on the GPU (weights %.2f, KV cache %.2f for --ctx %d in %s, activations %.2f)",
		m.name(), gib(need), gib(f.weights), gib(f.cache), effectiveCtx(m, mf.ctx), strings.ToLower(mf.kvDType), gib(f.act))
	if mf.gpuMemory != "" {
		budget, err := parseBytes(mf.gpuMemory)
		if err != nil {
			return fmt.Errorf("--gpu-memory %q: %v", mf.gpuMemory, err)
		}
		if need > budget {
			return fmt.Errorf("%s, more than --gpu-memory %s (%.2f GiB)", what, mf.gpuMemory, gib(budget))
		}
		return nil
	}
	if dev.Info().Type != "cpu" {
		return nil
	}
	avail, ok := availableRAM()
	if !ok {
		return nil
	}
	if float64(need+f.host) > softwareShare*float64(avail) {
		return fmt.Errorf("%s plus %.2f GiB of host memory while loading; %s is a software adapter whose memory is this machine's RAM, "+
			"%.2f GiB available, of which at most %.0f%% is used (--gpu-memory overrides)",
			what, gib(f.host), dev.Info().Name, gib(avail), 100*softwareShare)
	}
	return nil
}

func effectiveCtx(m *model, ctx int) int {
	if ctx <= 0 {
		return min(engine.DefaultCtx, m.cfg.MaxPositionEmbeddings)
	}
	return ctx
}

func gib(n int64) float64 { return float64(n) / (1 << 30) }

// availableRAM is MemAvailable from /proc/meminfo, bounded by the cgroup's
// memory.max when the process runs in a limited cgroup (v2).
func availableRAM() (int64, bool) {
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

// parseBytes reads a size such as "16GiB", "16G", "800MiB" or "1e9".
func parseBytes(s string) (int64, error) {
	t := strings.TrimSpace(strings.ToUpper(s))
	mult := 1.0
	for _, u := range []struct {
		suffix string
		mult   float64
	}{{"TIB", 1 << 40}, {"GIB", 1 << 30}, {"MIB", 1 << 20}, {"KIB", 1 << 10},
		{"TB", 1e12}, {"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3},
		{"T", 1 << 40}, {"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}, {"B", 1}} {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || !(v > 0) || v*mult > 1<<62 {
		return 0, fmt.Errorf("want a positive size such as 16GiB, 24G or 8000MiB")
	}
	return int64(v * mult), nil
}
