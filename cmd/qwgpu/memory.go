package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/qwgpu/qwgpu/gpu"
	"github.com/qwgpu/qwgpu/qwen3"
	"github.com/qwgpu/qwgpu/qwen3/engine"
	"github.com/qwgpu/qwgpu/qwen3/llm"
)

// The memory check itself is llm's (llm.EstimateFootprint, llm.CheckMemory):
// run and serve get it through llm.Open; bench and validate, which drive
// the engine directly, call it here. Either way a refusal names the flags.

// estimateFootprint is llm.EstimateFootprint for a model opened here.
func estimateFootprint(m *model, mf *modelFlags, chunk int) llm.Footprint {
	return llm.EstimateFootprint(m.cfg, m.types(), mf.dtype, mf.kvDType, mf.ctx, chunk, 1)
}

// types is a source that answers tensor types from the headers: the
// checkpoint or GGUF file, or the random source before quantization.
func (m *model) types() qwen3.Source {
	switch {
	case m.ck != nil:
		return m.ck
	case m.gguf != nil:
		return m.gguf
	}
	if q, ok := m.src.(qwen3.QuantizedSource); ok {
		return q.Source
	}
	return m.src
}

// checkMemory refuses a model that does not fit the memory budget.
func checkMemory(dev *gpu.Device, m *model, mf *modelFlags, chunk int) error {
	budget, err := gpuMemoryFlag(mf)
	if err != nil {
		return err
	}
	a := dev.Info()
	return flagMemoryError(llm.CheckMemory(m.name(), estimateFootprint(m, mf, chunk), effectiveCtx(m, mf.ctx),
		budget, a.Name, a.Type == "cpu"), mf)
}

// gpuMemoryFlag is --gpu-memory in bytes (0 when not given).
func gpuMemoryFlag(mf *modelFlags) (int64, error) {
	if mf.gpuMemory == "" {
		return 0, nil
	}
	budget, err := parseBytes(mf.gpuMemory)
	if err != nil {
		return 0, fmt.Errorf("--gpu-memory %q: %v", mf.gpuMemory, err)
	}
	return budget, nil
}

// flagMemoryError says llm's refusal in the CLI's terms (--ctx,
// --gpu-memory); other errors pass unchanged.
func flagMemoryError(err error, mf *modelFlags) error {
	var me *llm.MemoryError
	if !errors.As(err, &me) {
		return err
	}
	f := me.Need
	what := fmt.Sprintf("%s needs about %.2f GiB on the GPU (weights %.2f, KV cache %.2f for --ctx %d in %s, activations %.2f)",
		me.Model, gib(f.Device()), gib(f.Weights), gib(f.KVCache), me.Ctx, f.KVDType, gib(f.Activations))
	if me.Budget > 0 {
		return fmt.Errorf("%s, more than --gpu-memory %s (%.2f GiB)", what, mf.gpuMemory, gib(me.Budget))
	}
	return fmt.Errorf("%s plus %.2f GiB of host memory while loading; %s is a software adapter whose memory is this machine's RAM, "+
		"%.2f GiB available, of which at most %.0f%% is used (--gpu-memory overrides)",
		what, gib(f.Host), me.Adapter, gib(me.Available), 100*llm.SoftwareShare)
}

func effectiveCtx(m *model, ctx int) int {
	if ctx <= 0 {
		return min(engine.DefaultCtx, m.cfg.MaxPositionEmbeddings)
	}
	return ctx
}

func gib(n int64) float64 { return llm.GiB(n) }

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
