package main

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/qwgpu/qwgpu/qwen3"
	"github.com/qwgpu/qwgpu/qwen3/tokenizer"
	"github.com/qwgpu/qwgpu/weights"
)

// statsRE is the stats line `run` ends with on stderr.
var statsRE = regexp.MustCompile(`^qwgpu: prefill (\d+) tokens in [0-9.]+ s \(([0-9.]+) tok/s\) \| decode (\d+) tokens in [0-9.]+ s \(([0-9.]+) tok/s\) \| stop: ([a-z ]+)(?: \| seed \d+)? \| (.+ \((vulkan|metal|dx12|gl), \w+\))$`)

type stats struct {
	prompt, generated  int
	prefillTPS, decode float64
	stop, adapter      string
}

// parseStats finds the stats line in stderr.
func parseStats(t *testing.T, r result) stats {
	t.Helper()
	for _, l := range lines(r.stderr) {
		if m := statsRE.FindStringSubmatch(l); m != nil {
			var s stats
			s.prompt, _ = strconv.Atoi(m[1])
			s.prefillTPS, _ = strconv.ParseFloat(m[2], 64)
			s.generated, _ = strconv.Atoi(m[3])
			s.decode, _ = strconv.ParseFloat(m[4], 64)
			s.stop, s.adapter = m[5], m[6]
			return s
		}
	}
	t.Fatalf("no stats line on stderr:\n%v", r)
	return stats{}
}

func TestRunBuiltinModel(t *testing.T) {
	needGPU(t)
	r := qwgpu(t, append([]string{"run"}, testBackend()...)...)
	requireOK(t, r)
	require.NotEmpty(t, strings.TrimSpace(r.stdout), "streamed text on stdout")
	require.Contains(t, r.stderr, "built-in tiny Qwen3 with random weights")
	s := parseStats(t, r)
	require.Greater(t, s.prompt, 0)
	require.Greater(t, s.prefillTPS, 0.0)
	require.Equal(t, builtinMaxTokens, s.generated, "the built-in model stops at %d tokens", builtinMaxTokens)
	require.Greater(t, s.decode, 0.0)
	require.Equal(t, "max tokens", s.stop)
	require.NotEmpty(t, s.adapter)
}

// cpuGreedy is the independent answer: the CPU reference model, loaded from
// the checkpoint directory, decoding greedily through the shared loop.
func cpuGreedy(t *testing.T, dir, prompt string, maxTokens int) string {
	t.Helper()
	cfg, err := qwen3.LoadConfigDir(dir)
	require.NoError(t, err)
	ck, err := weights.OpenCheckpoint(dir)
	require.NoError(t, err)
	defer ck.Close()
	w, err := qwen3.LoadWeights(cfg, ck)
	require.NoError(t, err)
	tok, err := tokenizer.Load(filepath.Join(dir, "tokenizer.json"))
	require.NoError(t, err)
	// Greedy decoding written out: the reference's logits, the host's
	// argmax, no end token before maxTokens (the fixture has none there).
	ids := tok.Encode(prompt)
	model := qwen3.NewModel(cfg, w, len(ids)+maxTokens)
	cache := model.NewCache(len(ids) + maxTokens)
	o, err := model.Prefill(cache, ids, false)
	require.NoError(t, err)
	logits := o.LogitsAt(o.T - 1)
	var out []int
	for step := range maxTokens {
		first, second := math.Inf(-1), math.Inf(-1)
		for _, v := range logits {
			switch f := float64(v); {
			case f > first:
				first, second = f, first
			case f > second:
				second = f
			}
		}
		// A float32 GPU may pick another token only on a near tie; the
		// fixture's seed and prompt were chosen so that there is none.
		require.Greater(t, first-second, 1e-3, "step %d of the reference is a near tie: pick another prompt", step)
		id := qwen3.Argmax(logits)
		require.NotContains(t, append(slices.Clone(cfg.EOSTokenIDs), 151645, 151643), id, "step %d: an end token", step)
		out = append(out, id)
		if step+1 < maxTokens {
			logits, err = model.Step(cache, id)
			require.NoError(t, err)
		}
	}
	text, err := tok.Decode(out)
	require.NoError(t, err)
	return text
}

func TestRunCheckpointMatchesCPUReference(t *testing.T) {
	needGPU(t)
	single, sharded := tinyCheckpoint(t)
	const prompt, n = "The quick brown fox", 12
	want := cpuGreedy(t, single, prompt, n)
	require.NotEmpty(t, want)
	for _, dir := range []string{single, sharded} {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			args := append([]string{"run", "--model", dir, "--raw", "--prompt", prompt, "--greedy", "--max-tokens", strconv.Itoa(n)}, testBackend()...)
			r := qwgpu(t, args...)
			requireOK(t, r)
			require.Equal(t, want+"\n", r.stdout)
			s := parseStats(t, r)
			require.Equal(t, n, s.generated)
			require.Equal(t, "max tokens", s.stop)
			require.NotContains(t, r.stderr, "built-in")
		})
	}
}

var goldenModels = []string{"tiny-tied-f32", "small-tied-bf16", "gqa-untied-extremek-f32"}

func validateArgs(model, golden string, extra ...string) []string {
	args := []string{"validate", "--model", model, "--golden", golden}
	return append(append(args, extra...), testBackend()...)
}

func lastLine(s string) string {
	ls := lines(s)
	if len(ls) == 0 {
		return ""
	}
	return ls[len(ls)-1]
}

func TestValidateGolden(t *testing.T) {
	for _, device := range []string{"gpu", "cpu"} {
		for _, name := range goldenModels {
			t.Run(device+"/"+name, func(t *testing.T) {
				if device == "gpu" {
					needGPU(t)
				}
				dir := repoRoot("testdata", "golden", name)
				r := qwgpu(t, validateArgs(dir, filepath.Join(dir, "golden.safetensors"), "--device", device)...)
				requireOK(t, r)
				last := lastLine(r.stdout)
				require.True(t, strings.HasPrefix(last, "validate: ok "), "%v", r)
				// Every greedy step of the golden data with a clear margin matched.
				m := regexp.MustCompile(`greedy=(\d+)/(\d+)`).FindStringSubmatch(last)
				require.NotNil(t, m, last)
				require.Equal(t, m[2], m[1])
				require.NotEqual(t, "0", m[2])
				if device == "gpu" {
					// The layer table puts the GPU's error beside float32
					// rounding's, both against the float64 oracle.
					row := regexp.MustCompile(`(?m)^logits +(\S+) +(\S+) +(\S+) +(\S+)`).FindStringSubmatch(r.stdout)
					require.NotNil(t, row, r.stdout)
					f32, err := strconv.ParseFloat(row[3], 64)
					require.NoError(t, err)
					require.Greater(t, f32, 0.0, "float32 rounding costs something on every model")
					require.Less(t, f32, 1e-4)
				}
			})
		}
	}
}

// The YaRN model validates on the CPU oracle against transformers to 1e-6,
// and on the GPU (the same RoPE tables uploaded) within the GPU bound.
func TestValidateYarn(t *testing.T) {
	dir := repoRoot("testdata", "golden", "yarn-tied-f32")
	golden := filepath.Join(dir, "golden.safetensors")
	r := qwgpu(t, validateArgs(dir, golden, "--device", "cpu", "--tol", "1e-6")...)
	requireOK(t, r)
	last := lastLine(r.stdout)
	require.True(t, strings.HasPrefix(last, "validate: ok "), "%v", r)
	m := regexp.MustCompile(`greedy=(\d+)/(\d+)`).FindStringSubmatch(last)
	require.NotNil(t, m, last)
	require.Equal(t, m[2], m[1])
	needGPU(t)
	r = qwgpu(t, validateArgs(dir, golden)...)
	requireOK(t, r)
	last = lastLine(r.stdout)
	require.True(t, strings.HasPrefix(last, "validate: ok "), "%v", r)
	m = regexp.MustCompile(`greedy=(\d+)/(\d+)`).FindStringSubmatch(last)
	require.NotNil(t, m, last)
	require.Equal(t, m[2], m[1])
}

func TestValidateFails(t *testing.T) {
	dir := repoRoot("testdata", "golden", "tiny-tied-f32")
	golden := filepath.Join(dir, "golden.safetensors")

	t.Run("tolerance", func(t *testing.T) {
		needGPU(t)
		r := qwgpu(t, validateArgs(dir, golden, "--tol", "1e-12")...)
		require.NotEqual(t, 0, r.code, "%v", r)
		require.True(t, strings.HasPrefix(lastLine(r.stdout), "validate: FAIL "), "%v", r)
		require.Contains(t, lastLine(r.stdout), "above 1e-12")
	})

	t.Run("perturbed golden logits", func(t *testing.T) {
		// One logit of case 0 moved by 0.5: the reference must disagree there.
		f, err := weights.Open(golden)
		require.NoError(t, err)
		defer f.Close()
		var ts []weights.WriteTensor
		for _, name := range f.Names() {
			x, err := f.Tensor(name)
			require.NoError(t, err)
			data := slices.Clone(x.Raw)
			if name == "case0.logits" {
				v, err := x.Float32()
				require.NoError(t, err)
				v[17] += 0.5
				data = weights.F32Bytes(v)
			}
			ts = append(ts, weights.WriteTensor{Name: name, DType: x.DType, Shape: x.Shape, Data: data})
		}
		bad := filepath.Join(t.TempDir(), "golden.safetensors")
		require.NoError(t, weights.WriteFile(bad, ts, f.Metadata()))
		r := qwgpu(t, validateArgs(dir, bad, "--device", "cpu")...)
		require.NotEqual(t, 0, r.code, "%v", r)
		last := lastLine(r.stdout)
		require.True(t, strings.HasPrefix(last, "validate: FAIL golden case 0 position 0: logits error"), "%v", r)
		requireCleanError(t, r, "validation failed: golden case 0 position 0")
	})
}

type goldenTokens struct {
	Text string `json:"text"`
	IDs  []int  `json:"ids"`
}

func TestTokenize(t *testing.T) {
	tok := realTokenizer(t)
	b, err := os.ReadFile(repoRoot("testdata", "golden", "tokens.json"))
	require.NoError(t, err)
	var cases []goldenTokens
	require.NoError(t, json.Unmarshal(b, &cases))
	require.Greater(t, len(cases), 8)
	// The first few (prose, contractions, whitespace runs), code, and the
	// last ones (the non-Latin and chat-markup cases).
	picked := []goldenTokens{cases[0], cases[2], cases[3], cases[6], cases[len(cases)-2], cases[len(cases)-1]}
	for i, c := range picked {
		t.Run(strconv.Itoa(i), func(t *testing.T) {
			r := qwgpu(t, "tokenize", "--tokenizer", tok, "--text", c.Text, "--json")
			requireOK(t, r)
			var got []int
			require.NoError(t, json.Unmarshal([]byte(r.stdout), &got), r.stdout)
			require.Equal(t, c.IDs, got, "%q", c.Text)

			ids, _ := json.Marshal(c.IDs)
			r = qwgpu(t, "tokenize", "--tokenizer", tok, "--text", string(ids), "--decode")
			requireOK(t, r)
			require.Equal(t, c.Text+"\n", r.stdout)
		})
	}
}

func TestInfo(t *testing.T) {
	needGPU(t)
	r := qwgpu(t, append([]string{"info"}, testBackend()...)...)
	requireOK(t, r)
	require.Regexp(t, `(?m)^(vulkan|metal|dx12|gl) adapter 0: .+\n  backend (vulkan|metal|dx12|gl), type (discrete|integrated|cpu|unknown), driver`, r.stdout)

	r = qwgpu(t, append([]string{"info", "--json"}, testBackend()...)...)
	requireOK(t, r)
	var list []struct {
		Index               int
		Name, Backend, Type string
		Limits              struct{ MaxStorageBufferBindingSize uint64 }
		Features            []string
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &list), r.stdout)
	require.NotEmpty(t, list)
	next := map[string]int{} // indices count per backend, as --adapter takes them
	for _, a := range list {
		require.Equal(t, next[a.Backend], a.Index, "%s adapter", a.Backend)
		next[a.Backend]++
		require.NotEmpty(t, a.Name)
		require.Contains(t, []string{"vulkan", "metal", "dx12", "gl"}, a.Backend)
		require.Greater(t, a.Limits.MaxStorageBufferBindingSize, uint64(0))
	}
}

// benchJSON is the part of `bench --json` the CI smoke test relies on.
type benchJSON struct {
	Machine struct {
		Hostname, OS, Arch string
		CPUs               int
	}
	Backend, Adapter, Driver, Date, Commit, Model, DType string
	AdapterType                                          string `json:"adapter_type"`
	Params                                               int64
	SizeBytes                                            int64 `json:"size_bytes"`
	SoftwareAdapter                                      *bool `json:"software_adapter"`
	Results                                              []struct {
		Test      string
		Tokens    int
		TokPerSec float64 `json:"tokens_per_second"`
		Samples   []float64
		Depth     int
	}
	Config  map[string]string
	Profile *struct {
		DispatchesPerToken int     `json:"dispatches_per_token"`
		GPUTimeUS          float64 `json:"gpu_time_per_token_us"`
		Kernels            []struct {
			Role       string  `json:"role"`
			Dispatches int     `json:"dispatches"`
			Nanos      float64 `json:"ns"` // per token
		}
		BatchRows    int `json:"batch_rows"`
		BatchKernels []struct {
			Role       string  `json:"role"`
			Dispatches int     `json:"dispatches"`
			Nanos      float64 `json:"ns"`
		} `json:"batch_kernels"`
		BytesPerToken  int64   `json:"bytes_per_token"`
		OnePassStepUS  float64 `json:"one_pass_step_us"`
		EffectiveGBs   float64 `json:"effective_gb_per_s"`
		FractionOfCopy float64 `json:"fraction_of_copy_bandwidth"`
		FractionOfRead float64 `json:"fraction_of_read_bandwidth"`
		Tune           string  `json:"tune"`
		InPass         []struct {
			Role       string  `json:"role"`
			Dispatches int     `json:"dispatches"`
			Nanos      float64 `json:"ns"`
		} `json:"in_pass"`
		BatchInPass []struct {
			Role       string  `json:"role"`
			Dispatches int     `json:"dispatches"`
			Nanos      float64 `json:"ns"`
		} `json:"batch_in_pass"`
	}
	CopyBandwidth float64 `json:"copy_bandwidth_bytes_per_second"`
	ReadBandwidth float64 `json:"read_bandwidth_bytes_per_second"`
	FloorUS       float64 `json:"dispatch_floor_us"`
}

// runBenchJSON runs `qwgpu bench ARGS --json` on the test backend and
// decodes its report.
func runBenchJSON(t *testing.T, args ...string) benchJSON {
	t.Helper()
	r := qwgpu(t, append(append([]string{"bench"}, args...), append([]string{"--json"}, testBackend()...)...)...)
	requireOK(t, r)
	var b benchJSON
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &b), r.stdout)
	return b
}

func TestBenchJSON(t *testing.T) {
	needGPU(t)
	for _, profile := range []bool{false, true} {
		name := "smoke"
		args := []string{"--shape", "tiny", "-p", "16", "-n", "8", "--reps", "1"}
		if profile {
			name = "profile"
			args = append(args, "--profile")
		}
		t.Run(name, func(t *testing.T) {
			b := runBenchJSON(t, args...)
			require.NotEmpty(t, b.Machine.OS)
			require.NotEmpty(t, b.Machine.Arch)
			require.Greater(t, b.Machine.CPUs, 0)
			require.Contains(t, []string{"vulkan", "metal", "dx12", "gl"}, b.Backend)
			require.NotEmpty(t, b.Adapter)
			require.NotEmpty(t, b.Driver)
			require.Regexp(t, `^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`, b.Date)
			require.Equal(t, "clitest", b.Commit, "the commit set at build time")
			require.Equal(t, "qwen3 tiny", b.Model)
			require.Equal(t, "bf16", b.DType)
			require.Equal(t, qwen3.Shapes["tiny"].NumParams(), b.Params)
			require.NotNil(t, b.SoftwareAdapter)
			require.Equal(t, b.AdapterType == "cpu", *b.SoftwareAdapter)
			if strings.Contains(b.Adapter, "llvmpipe") {
				require.True(t, *b.SoftwareAdapter, "lavapipe is a software adapter")
			}
			require.Len(t, b.Results, 2)
			for i, want := range []string{"pp16", "tg8"} {
				res := b.Results[i]
				require.Equal(t, want, res.Test)
				require.Greater(t, res.TokPerSec, 0.0)
				require.Len(t, res.Samples, 1)
			}
			require.Equal(t, 16, b.Results[0].Tokens)
			require.Equal(t, 8, b.Results[1].Tokens)
			if !profile {
				require.Nil(t, b.Profile)
				return
			}
			require.NotNil(t, b.Profile)
			p := b.Profile
			sum, gpuTime := 0, 0.0
			for _, k := range p.Kernels {
				require.NotEmpty(t, k.Role)
				require.Greater(t, k.Dispatches, 0)
				sum += k.Dispatches
				gpuTime += k.Nanos / 1e3
			}
			require.Equal(t, p.DispatchesPerToken, sum)
			require.InDelta(t, p.GPUTimeUS, gpuTime, 1e-6*gpuTime+1e-9)
			// Whatever the kernels fuse, each layer takes at least one
			// dispatch, and the LM head one more.
			require.Greater(t, sum, qwen3.Shapes["tiny"].NumHiddenLayers)
			require.Greater(t, gpuTime, 0.0)
			// The effective rate is the bytes a token reads over the
			// one-pass step, against both measured yardsticks.
			require.Greater(t, b.CopyBandwidth, 0.0)
			require.Greater(t, b.ReadBandwidth, 0.0)
			require.Greater(t, b.FloorUS, 0.0)
			// One dispatch's floor is below a whole step of them.
			require.Less(t, b.FloorUS, p.OnePassStepUS)
			require.Greater(t, p.OnePassStepUS, 0.0)
			eff := float64(p.BytesPerToken) / (p.OnePassStepUS * 1e-6)
			require.InEpsilon(t, eff/1e9, p.EffectiveGBs, 1e-9)
			require.InEpsilon(t, eff/b.CopyBandwidth, p.FractionOfCopy, 1e-9)
			require.InEpsilon(t, eff/b.ReadBandwidth, p.FractionOfRead, 1e-9)
		})
	}
}

// -d adds the decode test after that many tokens in the cache, filled in
// chunks of at least the engine's default 512 tokens even with -p 0 (a
// chunk of one token made a 32K fill take minutes on the H200).
func TestBenchDepth(t *testing.T) {
	needGPU(t)
	b := runBenchJSON(t, "--shape", "tiny", "-p", "0", "-n", "4", "-d", "40", "--reps", "2")
	require.Len(t, b.Results, 2)
	for i, want := range []struct {
		test  string
		depth int
	}{{"tg4", 0}, {"tg4 @ d40", 40}} {
		res := b.Results[i]
		require.Equal(t, want.test, res.Test)
		require.Equal(t, want.depth, res.Depth)
		require.Equal(t, 4, res.Tokens)
		require.Len(t, res.Samples, 2)
		require.Greater(t, res.TokPerSec, 0.0)
	}
	require.Equal(t, "512", b.Config["prefill_chunk"])
}

// --parallel adds a decode test of N sequences decoding together, whose
// tokens count every sequence's.
func TestBenchParallel(t *testing.T) {
	needGPU(t)
	b := runBenchJSON(t, "--shape", "tiny", "-p", "0", "-n", "4", "--reps", "1", "--parallel", "3,9")
	require.Len(t, b.Results, 3)
	for i, want := range []struct {
		test   string
		tokens int
	}{{"tg4", 4}, {"tg4 x3", 12}, {"tg4 x9", 36}} {
		require.Equal(t, want.test, b.Results[i].Test)
		require.Equal(t, want.tokens, b.Results[i].Tokens)
		require.Greater(t, b.Results[i].TokPerSec, 0.0)
	}
	r := qwgpu(t, "bench", "--shape", "tiny", "-n", "0", "--parallel", "2")
	requireCleanError(t, r, "--parallel needs the decode test")

	// --profile with --parallel also times the largest batch's step, kernel
	// by kernel: the same layers as the one-token step, each batched.
	b = runBenchJSON(t, "--shape", "tiny", "-p", "0", "-n", "4", "--reps", "1", "--parallel", "3", "--profile")
	require.NotNil(t, b.Profile)
	require.Equal(t, 3, b.Profile.BatchRows)
	dispatches := 0
	for _, k := range b.Profile.BatchKernels {
		require.NotEmpty(t, k.Role)
		require.Greater(t, k.Nanos, 0.0)
		dispatches += k.Dispatches
	}
	require.Greater(t, dispatches, qwen3.Shapes["tiny"].NumHiddenLayers)
	// Each role timed alone in one pass too, for one row and the batch:
	// the same roles and dispatch counts as the timestamps' profiles.
	one, oneIn, batch, batchIn := map[string]int{}, map[string]int{}, map[string]int{}, map[string]int{}
	for _, k := range b.Profile.Kernels {
		one[k.Role] = k.Dispatches
	}
	for _, k := range b.Profile.InPass {
		require.GreaterOrEqual(t, k.Nanos, 0.0)
		oneIn[k.Role] = k.Dispatches
	}
	for _, k := range b.Profile.BatchKernels {
		batch[k.Role] = k.Dispatches
	}
	for _, k := range b.Profile.BatchInPass {
		require.GreaterOrEqual(t, k.Nanos, 0.0)
		batchIn[k.Role] = k.Dispatches
	}
	require.Equal(t, one, oneIn)
	require.Equal(t, batch, batchIn)
}

// --tune runs every test once per layout setting on the one loaded model,
// each result named with its setting; a bad setting is a clean error.
func TestBenchTune(t *testing.T) {
	needGPU(t)
	b := runBenchJSON(t, "--shape", "tiny", "-p", "0", "-n", "4", "--reps", "1", "--parallel", "3",
		"--tune", "matvec_rows=2;;matvec_wg=64,matvec_tpr=8")
	want := []string{"tg4 [matvec_rows=2]", "tg4 x3 [matvec_rows=2]", "tg4 []", "tg4 x3 []",
		"tg4 [matvec_wg=64,matvec_tpr=8]", "tg4 x3 [matvec_wg=64,matvec_tpr=8]"}
	require.Len(t, b.Results, len(want))
	for i, w := range want {
		require.Equal(t, w, b.Results[i].Test)
		require.Greater(t, b.Results[i].TokPerSec, 0.0)
	}
	r := qwgpu(t, append([]string{"bench", "--shape", "tiny", "-p", "0", "-n", "4", "--reps", "1", "--tune", "matvec_rows=2;nope=1"}, testBackend()...)...)
	requireCleanError(t, r, `--tune "nope=1": unknown key "nope"`)

	// A setting whose layout a kernel refuses (threads a row group must be
	// a power of two) is reported where it fails and the sweep goes on; the
	// command fails at the end, naming it.
	r = qwgpu(t, append([]string{"bench", "--shape", "tiny", "-p", "0", "-n", "4", "--reps", "1", "--tune", "matvec_rows=2;matvec_tpr=3;"}, testBackend()...)...)
	require.NotEqual(t, 0, r.code, "%v", r)
	require.Regexp(t, `\| tg4 \[matvec_rows=2\] +\|`, r.stdout)
	require.Regexp(t, `\| tg4 \[\] +\|`, r.stdout)
	require.NotContains(t, r.stdout, "tg4 [matvec_tpr=3]")
	var errs []string
	for _, l := range lines(r.stderr) {
		if strings.HasPrefix(l, "qwgpu ") {
			errs = append(errs, l)
		}
	}
	require.Len(t, errs, 2, "%v", r)
	require.Regexp(t, `^qwgpu bench: --tune "matvec_tpr=3": .*bad layout: 2 rows of 3 threads a group`, errs[0])
	require.Equal(t, "qwgpu bench: --tune: 1 of 3 settings failed (matvec_tpr=3)", errs[1])

	// The table's test column fits the longest setting: every line of the
	// table is as wide as its header.
	r = qwgpu(t, append([]string{"bench", "--shape", "tiny", "-p", "0", "-n", "2", "--reps", "1", "--parallel", "2",
		"--tune", ";matvec_maxr=4,matvec_rows=4,matvec_tpr=16"}, testBackend()...)...)
	requireOK(t, r)
	var table []string
	for _, l := range lines(r.stdout) {
		if strings.HasPrefix(l, "|") {
			table = append(table, l)
		}
	}
	require.Len(t, table, 6, r.stdout) // header, rule, tg2 and tg2 x2 for each setting
	for _, l := range table {
		require.Equal(t, utf8.RuneCountInString(table[0]), utf8.RuneCountInString(l), "%q", l)
	}
	require.Regexp(t, `\| tg2 x2 \[matvec_maxr=4,matvec_rows=4,matvec_tpr=16\] +\|`, table[5])

	// --profile with --tune profiles the last setting and says so (run 16
	// read such a profile as the default layouts'); without --tune it
	// names none.
	b = runBenchJSON(t, "--shape", "tiny", "-p", "0", "-n", "2", "--reps", "1", "--profile", "--tune", ";matvec_rows=2")
	require.Equal(t, "matvec_rows=2", b.Profile.Tune)
	r = qwgpu(t, append([]string{"bench", "--shape", "tiny", "-p", "0", "-n", "2", "--reps", "1", "--profile", "--tune", "matvec_rows=2;"}, testBackend()...)...)
	requireOK(t, r)
	require.NotContains(t, r.stdout, "profiled with the last --tune setting")
	r = qwgpu(t, append([]string{"bench", "--shape", "tiny", "-p", "0", "-n", "2", "--reps", "1", "--profile", "--tune", ";matvec_rows=2"}, testBackend()...)...)
	requireOK(t, r)
	require.Contains(t, r.stdout, "profiled with the last --tune setting, not the default layouts: [matvec_rows=2]")
}
