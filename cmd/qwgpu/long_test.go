package main

// Long runs: many generated tokens in one process, and many load/unload
// cycles, watching the process's resident memory and Go heap. A leak of
// GPU objects shows up in RSS (lavapipe keeps device memory in host
// memory), one of Go objects in the heap. QWGPU_LONG=1 runs the full
// version (10,000 tokens, 100 cycles); CI runs a short one.

import (
	"bufio"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/qwgpu/qwgpu/gpu"
	"github.com/qwgpu/qwgpu/qwen3"
	"github.com/qwgpu/qwgpu/qwen3/engine"
	"github.com/qwgpu/qwgpu/qwen3/generate"
	"github.com/qwgpu/qwgpu/qwen3/sample"
	"github.com/qwgpu/qwgpu/qwen3/tokenizer"
	"github.com/qwgpu/qwgpu/weights"
)

func longRun() bool { return os.Getenv("QWGPU_LONG") == "1" }

// memSample is the process's memory at one point.
type memSample struct {
	rss, rssAnon int64 // bytes, from /proc/self/status
	heap         uint64
	goroutines   int
}

func (m memSample) String() string {
	return "rss " + mib(m.rss) + " (anon " + mib(m.rssAnon) + "), go heap " + mib(int64(m.heap)) +
		", goroutines " + strconv.Itoa(m.goroutines)
}

func mib(n int64) string { return strconv.FormatFloat(float64(n)/(1<<20), 'f', 1, 64) + " MiB" }

// sampleMem collects garbage first so that the heap is what is live.
func sampleMem(t *testing.T) memSample {
	t.Helper()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	s := memSample{heap: ms.HeapAlloc, goroutines: runtime.NumGoroutine()}
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return s // not Linux: the heap alone
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		kb, _ := strconv.ParseInt(fields[1], 10, 64)
		switch fields[0] {
		case "VmRSS:":
			s.rss = kb << 10
		case "RssAnon:":
			s.rssAnon = kb << 10
		}
	}
	return s
}

// openTestDevice opens the test backend's device in this process.
func openTestDevice(t *testing.T) *gpu.Device {
	t.Helper()
	dev, err := gpu.Open(gpu.Options{Backend: os.Getenv("QWGPU_TEST_BACKEND")})
	if err != nil {
		if os.Getenv("QWGPU_REQUIRE_GPU") == "1" {
			t.Fatalf("QWGPU_REQUIRE_GPU=1 but no device: %v", err)
		}
		t.Skipf("no GPU device: %v", err)
	}
	return dev
}

type goldenSource struct {
	cfg qwen3.Config
	ck  *weights.Checkpoint
}

func openGoldenModel(t *testing.T, name string) goldenSource {
	t.Helper()
	dir := repoRoot("testdata", "golden", name)
	cfg, err := qwen3.LoadConfigDir(dir)
	require.NoError(t, err)
	ck, err := weights.OpenCheckpoint(dir)
	require.NoError(t, err)
	t.Cleanup(func() { ck.Close() })
	return goldenSource{cfg, ck}
}

// TestLongGeneration generates many tokens in one process: generations of
// up to a full context each, alternately greedy (the GPU picks the token
// and one id is read back) and sampled (the logits are read back), with
// the cache reset between them.
func TestLongGeneration(t *testing.T) {
	total, warm := 300, 100
	if longRun() {
		total, warm = 10_000, 500
	}
	dev := openTestDevice(t)
	defer dev.Close()
	m := openGoldenModel(t, "tiny-tied-f32") // vocab 512, max_position_embeddings 4096
	const ctx = 4096
	e, err := engine.Load(dev, m.cfg, m.ck, engine.Options{Ctx: ctx})
	require.NoError(t, err)
	defer e.Close()
	tok, err := tokenizer.Qwen3() // its first 512 ids are byte tokens and merges
	require.NoError(t, err)

	start := time.Now()
	var base memSample
	var samples []memSample
	done, gens := 0, 0
	prompt := []int{39, 68, 75, 75, 78} // ids of the golden model's 512
	for done < total {
		params := sample.Params{Temperature: 0, TopP: 1, RepetitionPenalty: 1}
		if gens%2 == 1 {
			params = sample.Params{Temperature: 0.9, TopK: 40, TopP: 0.95, RepetitionPenalty: 1.1, Seed: uint64(gens)}
		}
		// Stop at the warm-up point once, then at the end.
		n := min(total-done, ctx-len(prompt))
		if done < warm {
			n = min(n, warm-done)
		}
		e.Reset()
		res, err := generate.Generate(e, tok, prompt, nil, generate.Options{Sampling: params, MaxTokens: n})
		require.NoError(t, err)
		require.Len(t, res.Tokens, n, "no end token is set, so every generation runs to MaxTokens")
		done += n
		gens++
		if done == warm {
			base = sampleMem(t)
			samples = append(samples, base)
			t.Logf("after %5d tokens (warm-up): %v", done, base)
		} else {
			s := sampleMem(t)
			samples = append(samples, s)
			t.Logf("after %5d tokens: %v", done, s)
		}
	}
	elapsed := time.Since(start)
	end := samples[len(samples)-1]
	t.Logf("%d tokens in %d generations, %.1f s (%.0f tok/s); RSS %+.1f MiB, heap %+.2f MiB after the warm-up",
		done, gens, elapsed.Seconds(), float64(done)/elapsed.Seconds(),
		float64(end.rss-base.rss)/(1<<20), (float64(end.heap)-float64(base.heap))/(1<<20))
	// Every step reads back through a mapped staging buffer; one left
	// mapped or unreleased per token would add kilobytes per token.
	require.Less(t, end.rss-base.rss, int64(32<<20), "RSS grew by %s", mib(end.rss-base.rss))
	require.Less(t, int64(end.heap)-int64(base.heap), int64(4<<20), "Go heap grew")
	require.LessOrEqual(t, end.goroutines, base.goroutines+2)
}

// TestLoadUnloadCycles opens a device, loads a model, generates a few
// tokens and frees everything, many times over in one process.
func TestLoadUnloadCycles(t *testing.T) {
	cycles := 10
	if longRun() {
		cycles = 100
	}
	dev := openTestDevice(t) // only to fail or skip early without an adapter
	dev.Close()
	m := openGoldenModel(t, "small-tied-bf16") // 4 layers, 10 MiB of bf16 weights
	tok, err := tokenizer.Qwen3()
	require.NoError(t, err)
	cycle := func(i int) {
		dev := openTestDevice(t)
		defer dev.Close()
		e, err := engine.Load(dev, m.cfg, m.ck, engine.Options{Ctx: 256})
		require.NoError(t, err)
		defer e.Close()
		res, err := generate.Generate(e, tok, []int{1, 2, 3, i % 512}, nil,
			generate.Options{Sampling: sample.Params{Temperature: 0, TopP: 1, RepetitionPenalty: 1}, MaxTokens: 8})
		require.NoError(t, err)
		require.Len(t, res.Tokens, 8)
	}
	start := time.Now()
	cycle(0)
	base := sampleMem(t)
	t.Logf("after cycle 1 (warm-up): %v", base)
	var end memSample
	for i := 1; i < cycles; i++ {
		cycle(i)
		if (i+1)%max(1, cycles/10) == 0 || i == cycles-1 {
			end = sampleMem(t)
			t.Logf("after cycle %d: %v", i+1, end)
		}
	}
	t.Logf("%d cycles in %.1f s; RSS %+.1f MiB, heap %+.2f MiB after the first",
		cycles, time.Since(start).Seconds(), float64(end.rss-base.rss)/(1<<20), (float64(end.heap)-float64(base.heap))/(1<<20))
	// A cycle uploads ~10 MiB of weights and ~2 MiB of cache and
	// activations: leaking them would pass this bound within a few cycles.
	require.Less(t, end.rss-base.rss, int64(32<<20), "RSS grew by %s", mib(end.rss-base.rss))
	require.Less(t, int64(end.heap)-int64(base.heap), int64(4<<20), "Go heap grew")
	require.LessOrEqual(t, end.goroutines, base.goroutines+2)
}
