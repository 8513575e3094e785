package main

// Bad input, faults and limits: every item gets a clean one-line error
// naming the file, tensor or flag at fault, and a non-zero exit.

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/qwgpu/qwgpu/qwen3"
	"github.com/qwgpu/qwgpu/qwen3/llm"
	"github.com/qwgpu/qwgpu/qwen3/tokenizer"
	"github.com/qwgpu/qwgpu/weights"
)

// header is a safetensors header as JSON values, for editing.
type header map[string]map[string]any

// rewriteHeader replaces the header of a safetensors file with edit's
// result, keeping the data section.
func rewriteHeader(t *testing.T, path string, edit func(h header)) {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	n := binary.LittleEndian.Uint64(b)
	var h header
	require.NoError(t, json.Unmarshal(b[8:8+n], &h))
	data := b[8+n:]
	edit(h)
	hb, err := json.Marshal(h)
	require.NoError(t, err)
	out := binary.LittleEndian.AppendUint64(nil, uint64(len(hb)))
	out = append(append(out, hb...), data...)
	require.NoError(t, os.WriteFile(path, out, 0o644))
}

// rewriteBytes replaces a file's contents with edit's result.
func rewriteBytes(t *testing.T, path string, edit func(b []byte) []byte) {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, edit(b), 0o644))
}

// setValue changes element i of a bf16 tensor among ts.
func setValue(ts []weights.WriteTensor, name string, i int, v float32) {
	for k := range ts {
		if ts[k].Name == name {
			copy(ts[k].Data[2*i:], weights.BF16Bytes([]float32{v}))
			return
		}
	}
	panic("no tensor " + name)
}

const (
	upProj   = "model.layers.0.mlp.up_proj.weight"
	kNorm    = "model.layers.0.self_attn.k_norm.weight"
	normName = "model.norm.weight"
	inNorm   = "model.layers.0.input_layernorm.weight"
)

// runModel is the command the checkpoint cases run.
func runModel(dir string, extra ...string) []string {
	args := []string{"run", "--model", dir, "--raw", "--prompt", "hello", "--greedy", "--max-tokens", "4"}
	return append(append(args, testBackend()...), extra...)
}

func TestBadCheckpoint(t *testing.T) {
	st := func(dir string) string { return filepath.Join(dir, weights.SingleFileName) }
	cases := []struct {
		name  string
		setup func(t *testing.T) string // returns the model directory
		gpu   bool                      // the error comes after the device opens
		wants []string
	}{
		{"truncated", func(t *testing.T) string {
			dir := microModel(t, nil)
			rewriteBytes(t, st(dir), func(b []byte) []byte { return b[:len(b)/2] })
			return dir
		}, false, []string{"model.safetensors", "tensor "}},
		{"header length past the end", func(t *testing.T) string {
			dir := microModel(t, nil)
			rewriteBytes(t, st(dir), func(b []byte) []byte {
				binary.LittleEndian.PutUint64(b, uint64(len(b)))
				return b
			})
			return dir
		}, false, []string{"model.safetensors", "header length", "past the end"}},
		{"absurd header length", func(t *testing.T) string {
			dir := microModel(t, nil)
			rewriteBytes(t, st(dir), func(b []byte) []byte {
				binary.LittleEndian.PutUint64(b, 1<<62)
				return b
			})
			return dir
		}, false, []string{"model.safetensors", "header length 4611686018427387904 exceeds"}},
		{"header not JSON", func(t *testing.T) string {
			dir := microModel(t, nil)
			rewriteBytes(t, st(dir), func(b []byte) []byte {
				n := binary.LittleEndian.Uint64(b)
				copy(b[8:8+n], strings.Repeat("{oops", int(n)/5))
				return b
			})
			return dir
		}, false, []string{"model.safetensors", "JSON"}},
		{"overlapping tensors", func(t *testing.T) string {
			dir := microModel(t, nil)
			rewriteHeader(t, st(dir), func(h header) { h[normName]["data_offsets"] = h[inNorm]["data_offsets"] })
			return dir
		}, false, []string{"model.safetensors", "overlap"}},
		{"offsets past the data", func(t *testing.T) string {
			dir := microModel(t, nil)
			rewriteHeader(t, st(dir), func(h header) { h[normName]["data_offsets"] = []int64{1 << 40, 1<<40 + 128} })
			return dir
		}, false, []string{"model.safetensors", `tensor "model.norm.weight"`}},
		{"unknown dtype", func(t *testing.T) string {
			dir := microModel(t, nil)
			rewriteHeader(t, st(dir), func(h header) { h[kNorm]["dtype"] = "Q4_K" })
			return dir
		}, false, []string{"model.safetensors", `tensor "model.layers.0.self_attn.k_norm.weight"`, "Q4_K"}},
		{"shape differs from config.json", func(t *testing.T) string {
			return microModel(t, func(cfg map[string]any, ts []weights.WriteTensor) []weights.WriteTensor {
				cfg["intermediate_size"] = 96
				return ts
			})
		}, false, []string{"model.safetensors", `"model.layers.0.mlp.gate_proj.weight"`, "[128 64]", "[96 64]"}},
		{"missing tensor", func(t *testing.T) string {
			return microModel(t, func(cfg map[string]any, ts []weights.WriteTensor) []weights.WriteTensor {
				var keep []weights.WriteTensor
				for _, x := range ts {
					if x.Name != kNorm {
						keep = append(keep, x)
					}
				}
				return keep
			})
		}, false, []string{`"model.layers.0.self_attn.k_norm.weight"`, "not found"}},
		{"shard missing", func(t *testing.T) string {
			dir := microModel(t, nil)
			require.NoError(t, os.Remove(st(dir)))
			writeTensors(t, dir, microTensors, 2)
			require.NoError(t, os.Remove(filepath.Join(dir, "model-00002-of-00002.safetensors")))
			return dir
		}, false, []string{"model-00002-of-00002.safetensors", "does not exist"}},
		{"no weights at all", func(t *testing.T) string {
			dir := microModel(t, nil)
			require.NoError(t, os.Remove(st(dir)))
			return dir
		}, false, []string{"model.safetensors", weights.IndexFileName}},
		{"NaN in a weight", func(t *testing.T) string {
			return microModel(t, func(cfg map[string]any, ts []weights.WriteTensor) []weights.WriteTensor {
				setValue(ts, upProj, 77, float32(math.NaN()))
				return ts
			})
		}, true, []string{`"model.layers.0.mlp.up_proj.weight"`, "NaN"}},
		{"Inf in a weight", func(t *testing.T) string {
			return microModel(t, func(cfg map[string]any, ts []weights.WriteTensor) []weights.WriteTensor {
				setValue(ts, normName, 3, float32(math.Inf(-1)))
				return ts
			})
		}, true, []string{`"model.norm.weight"`, "Inf"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.gpu {
				needGPU(t)
			}
			dir := c.setup(t)
			requireCleanError(t, qwgpu(t, runModel(dir)...), c.wants...)
			// validate reports the same problem, by name, without a GPU.
			r := qwgpu(t, "validate", "--model", dir, "--device", "cpu", "--golden", filepath.Join(dir, "none.safetensors"))
			requireCleanError(t, r, c.wants...)
		})
	}
}

func TestBadConfig(t *testing.T) {
	cases := []struct {
		name  string
		edit  func(t *testing.T, dir string)
		wants []string
	}{
		{"missing", func(t *testing.T, dir string) {
			require.NoError(t, os.Remove(filepath.Join(dir, "config.json")))
		}, []string{"config.json", "no such file"}},
		{"malformed", func(t *testing.T, dir string) {
			require.NoError(t, os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"vocab_size": 151936,`), 0o644))
		}, []string{"config.json", "invalid JSON"}},
		{"missing field", func(t *testing.T, dir string) {
			editConfig(t, dir, map[string]any{"num_key_value_heads": nil})
		}, []string{"config.json", `missing field "num_key_value_heads"`}},
		{"wrong type", func(t *testing.T, dir string) {
			editConfig(t, dir, map[string]any{"hidden_size": "64"})
		}, []string{"config.json", "hidden_size"}},
		{"inconsistent sizes", func(t *testing.T, dir string) {
			editConfig(t, dir, map[string]any{"num_key_value_heads": 3})
		}, []string{"config.json", "num_attention_heads (2) is not divisible by num_key_value_heads (3)"}},
		{"mixture of experts", func(t *testing.T, dir string) {
			editConfig(t, dir, map[string]any{"num_experts": 128, "num_experts_per_tok": 8})
		}, []string{"config.json", "mixture of experts", "num_experts"}},
		{"MoE model type", func(t *testing.T, dir string) {
			editConfig(t, dir, map[string]any{"model_type": "qwen3_moe", "architectures": []string{"Qwen3MoeForCausalLM"}})
		}, []string{"config.json", "qwen3_moe"}},
		{"sliding window", func(t *testing.T, dir string) {
			editConfig(t, dir, map[string]any{"use_sliding_window": true, "sliding_window": 4096})
		}, []string{"config.json", "sliding window", "use_sliding_window"}},
		{"rope scaling", func(t *testing.T, dir string) {
			// YaRN runs (TestValidateYarn); other scalings are refused.
			editConfig(t, dir, map[string]any{"rope_scaling": map[string]any{"rope_type": "longrope", "factor": 4.0}})
		}, []string{"config.json", "rope_scaling", "longrope"}},
		{"attention bias", func(t *testing.T, dir string) {
			editConfig(t, dir, map[string]any{"attention_bias": true})
		}, []string{"config.json", "attention_bias"}},
		{"quantized", func(t *testing.T, dir string) {
			editConfig(t, dir, map[string]any{"quantization_config": map[string]any{"quant_method": "awq", "bits": 4}})
		}, []string{"config.json", "quantization_config"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := microModel(t, nil)
			c.edit(t, dir)
			requireCleanError(t, qwgpu(t, runModel(dir)...), c.wants...)
		})
	}
}

// editTokenizer rewrites tokenizer.json's model.merges.
func editMerges(t *testing.T, dir string, edit func(merges []json.RawMessage) []json.RawMessage) {
	t.Helper()
	path := filepath.Join(dir, "tokenizer.json")
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var top, mdl map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(b, &top))
	require.NoError(t, json.Unmarshal(top["model"], &mdl))
	var merges []json.RawMessage
	require.NoError(t, json.Unmarshal(mdl["merges"], &merges))
	mdl["merges"], err = json.Marshal(edit(merges))
	require.NoError(t, err)
	top["model"], err = json.Marshal(mdl)
	require.NoError(t, err)
	b, err = json.Marshal(top)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, b, 0o644))
}

func TestBadTokenizer(t *testing.T) {
	cases := []struct {
		name  string
		edit  func(t *testing.T, dir string)
		wants []string
	}{
		{"missing", func(t *testing.T, dir string) {
			require.NoError(t, os.Remove(filepath.Join(dir, "tokenizer.json")))
		}, []string{"tokenizer.json", "no such file"}},
		{"malformed", func(t *testing.T, dir string) {
			rewriteBytes(t, filepath.Join(dir, "tokenizer.json"), func(b []byte) []byte { return b[:len(b)/3] })
		}, []string{"tokenizer.json"}},
		{"merge of an unknown token", func(t *testing.T, dir string) {
			editMerges(t, dir, func(m []json.RawMessage) []json.RawMessage {
				m[5] = json.RawMessage(`["qwgpu_no_such_token", "n"]`)
				return m
			})
		}, []string{"tokenizer.json", "merge 5", "qwgpu_no_such_token", "not in the vocab"}},
		{"merge of an unknown result", func(t *testing.T, dir string) {
			editMerges(t, dir, func(m []json.RawMessage) []json.RawMessage {
				m[9] = json.RawMessage(`"Ġ Ġqwgpu"`)
				return m
			})
		}, []string{"tokenizer.json", "merge 9"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := microModel(t, nil)
			c.edit(t, dir)
			requireCleanError(t, qwgpu(t, runModel(dir)...), c.wants...)
		})
	}
	t.Run("larger than the model's vocabulary", func(t *testing.T) {
		// A consistent checkpoint of 151000 tokens, with the Qwen3
		// tokenizer's 151669 beside it.
		dir := microModel(t, func(cfg map[string]any, ts []weights.WriteTensor) []weights.WriteTensor {
			cfg["vocab_size"] = 151000
			for i := range ts {
				if ts[i].Name == "model.embed_tokens.weight" {
					ts[i].Shape[0] = 151000
					ts[i].Data = ts[i].Data[:151000*ts[i].Shape[1]*2]
				}
			}
			return ts
		})
		requireCleanError(t, qwgpu(t, runModel(dir)...), "tokenizer.json has 151669 tokens", "vocab_size 151000", "config.json")
	})
	t.Run("tokenize command", func(t *testing.T) {
		r := qwgpu(t, "tokenize", "--tokenizer", filepath.Join(t.TempDir(), "nope.json"), "--text", "hi")
		requireCleanError(t, r, "nope.json")
	})
	t.Run("decode of an unknown id", func(t *testing.T) {
		r := qwgpu(t, "tokenize", "--tokenizer", realTokenizer(t), "--text", "1 2 999999", "--decode")
		requireCleanError(t, r, "999999")
	})
	t.Run("decode of a non-number", func(t *testing.T) {
		r := qwgpu(t, "tokenize", "--tokenizer", realTokenizer(t), "--text", "1 two", "--decode")
		requireCleanError(t, r, "--text", `"two"`)
	})
}

func TestBadRequest(t *testing.T) {
	// Flag errors, found before a model or a GPU is touched.
	builtin := []struct {
		args  []string
		wants []string
	}{
		{[]string{"--temperature", "-1"}, []string{"--temperature must be >= 0", "-1"}},
		{[]string{"--temperature", "NaN"}, []string{"--temperature"}},
		{[]string{"--top-p", "1.5"}, []string{"--top-p must be in (0, 1]", "1.5"}},
		{[]string{"--top-p", "0"}, []string{"--top-p"}},
		{[]string{"--top-k", "-3"}, []string{"--top-k", "-3"}},
		{[]string{"--min-p", "1"}, []string{"--min-p"}},
		{[]string{"--repeat-penalty", "0"}, []string{"--repetition-penalty must be > 0"}},
		{[]string{"--presence-penalty", "Inf"}, []string{"--presence-penalty"}},
		{[]string{"--max-tokens", "-1"}, []string{"--max-tokens"}},
		{[]string{"--ctx", "0"}, []string{"--ctx 0"}},
		{[]string{"--dtype", "int4"}, []string{"--dtype", "int4"}},
		{[]string{"--temperature", "hot"}, []string{"--temperature", "hot"}},
		{[]string{"--no-such-flag"}, []string{"--no-such-flag"}},
		{[]string{"--prompt", "a", "--chat"}, []string{"--prompt", "--chat"}},
		{[]string{"--gpu-memory", "lots"}, []string{"--gpu-memory", "lots"}},
	}
	for _, c := range builtin {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			requireCleanError(t, qwgpu(t, append([]string{"run"}, c.args...)...), c.wants...)
		})
	}

	t.Run("prompt file not UTF-8", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "prompt.txt")
		require.NoError(t, os.WriteFile(path, []byte("hello \xff\xfe world"), 0o644))
		requireCleanError(t, qwgpu(t, "run", "--prompt-file", path), "--prompt-file", path, "not valid UTF-8", "offset 6")
	})
	t.Run("prompt file missing", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "nope.txt")
		requireCleanError(t, qwgpu(t, "run", "--prompt-file", path), "--prompt-file", "nope.txt", "no such file")
	})
	t.Run("prompt on stdin not UTF-8", func(t *testing.T) {
		r := qwgpuWith(t, runOpts{stdin: "ok \xc3"}, "run", "--prompt-file", "-")
		requireCleanError(t, r, "--prompt-file -", "not valid UTF-8", "offset 3")
	})
	t.Run("ctx above max_position_embeddings", func(t *testing.T) {
		dir := microModel(t, nil)
		requireCleanError(t, qwgpu(t, runModel(dir, "--ctx", "50000")...), "--ctx 50000", "max_position_embeddings 40960")
	})
	t.Run("prompt longer than ctx", func(t *testing.T) {
		dir := microModel(t, nil)
		prompt := strings.Repeat("one two three four five ", 10)
		tok, err := tokenizer.Load(realTokenizer(t))
		require.NoError(t, err)
		n := len(tok.Encode(prompt))
		require.Greater(t, n, 32)
		r := qwgpu(t, "run", "--model", dir, "--raw", "--prompt", prompt, "--ctx", "32")
		requireCleanError(t, r, "the prompt is "+strconv.Itoa(n)+" tokens", "--ctx 32")
	})
}

func TestContextFull(t *testing.T) {
	needGPU(t)
	dir := microModel(t, nil)
	const ctx = 24
	r := qwgpu(t, runModel(dir, "--max-tokens", "0", "--ctx", strconv.Itoa(ctx))...)
	requireOK(t, r)
	require.NotEmpty(t, strings.TrimSpace(r.stdout), "the output so far is kept")
	s := parseStats(t, r)
	require.Equal(t, "context full", s.stop)
	// The last token is printed although there is no room to feed it.
	require.Equal(t, ctx+1, s.prompt+s.generated)
	require.Contains(t, r.stderr, "the context is full")
	require.Equal(t, "qwgpu: the context is full; the output so far is kept (raise --ctx for longer runs)", lastLine(r.stderr))
}

// existingAdapter is the name of an adapter info lists.
func existingAdapter(t *testing.T) string {
	needGPU(t)
	return adapters[0].Name
}

func TestBadGPU(t *testing.T) {
	t.Run("unknown backend", func(t *testing.T) {
		requireCleanError(t, qwgpu(t, "run", "--backend", "cuda"), `--backend "cuda"`, "vulkan, metal, dx12 or gl")
	})
	t.Run("backend without adapters", func(t *testing.T) {
		name := existingAdapter(t)
		absent := "metal"
		if runtime.GOOS == "darwin" {
			absent = "dx12"
		}
		requireCleanError(t, qwgpu(t, "run", "--backend", absent), "--backend "+absent, "no adapter on backend "+absent, "adapters that exist", name)
	})
	t.Run("adapter by name", func(t *testing.T) {
		name := existingAdapter(t)
		requireCleanError(t, qwgpu(t, append([]string{"run", "--adapter", "nosuchgpu"}, testBackend()...)...), `--adapter "nosuchgpu"`, name)
	})
	t.Run("adapter by index", func(t *testing.T) {
		name := existingAdapter(t)
		requireCleanError(t, qwgpu(t, append([]string{"run", "--adapter", "17"}, testBackend()...)...), `--adapter "17"`, name)
	})
	t.Run("adapter without a backend", func(t *testing.T) {
		name := existingAdapter(t)
		requireCleanError(t, qwgpu(t, "run", "--adapter", "17"), `--adapter "17": gpu: no adapter "17" on the platform's default backends; adapters there: `, name)
	})
	t.Run("no adapter at all", func(t *testing.T) {
		if runtime.GOOS != "linux" {
			t.Skip("simulated through the Vulkan loader's environment, on Linux")
		}
		none := filepath.Join(t.TempDir(), "no-such-icd.json")
		r := qwgpuWith(t, runOpts{env: []string{"VK_ICD_FILENAMES=" + none, "VK_DRIVER_FILES=" + none}}, "run", "--backend", "vulkan")
		requireCleanError(t, r, "--backend vulkan", "no adapter on backend vulkan", "adapters that exist")
	})
	t.Run("GL without an EGL display", func(t *testing.T) {
		// glvnd's libEGL with no vendor library has no display to give,
		// and wgpu-native 0.17 then aborts the process from Rust while
		// creating a GL instance: the probe in a child process catches it.
		if runtime.GOOS != "linux" {
			t.Skip("simulated through glvnd's environment, on Linux")
		}
		name := existingAdapter(t)
		noVendor := []string{"__EGL_VENDOR_LIBRARY_FILENAMES=" + filepath.Join(t.TempDir(), "no-such-vendor.json")}
		const aborts = "gpu: backend gl: wgpu-native aborts while setting up EGL (called `Option::unwrap()` on a `None` value at wgpu-hal/src/gles/egl.rs:"
		r := qwgpuWith(t, runOpts{env: noVendor}, "run", "--backend", "gl")
		requireCleanError(t, r, "--backend gl: "+aborts)
		// info lists the other backends and says why GL is missing.
		r = qwgpuWith(t, runOpts{env: noVendor}, "info")
		requireOK(t, r)
		require.Len(t, lines(r.stderr), 1, r.stderr)
		require.True(t, strings.HasPrefix(lines(r.stderr)[0], "qwgpu info: gl: "+aborts), r.stderr)
		require.Contains(t, r.stdout, name)
	})
	t.Run("KV cache above the binding limit", func(t *testing.T) {
		needGPU(t)
		// The largest binding any adapter allows, and a ctx past it.
		var limit uint64
		for _, a := range adapters {
			limit = max(limit, a.Limits.MaxStorageBufferBindingSize)
		}
		cfg := microConfig()
		perPos := uint64(cfg.KVDim() * 4)
		ctx := limit/perPos + 1
		if ctx > 1<<25 {
			t.Skipf("binding limit %d allows %d positions; a test past it would need too much host memory", limit, ctx)
		}
		dir := microModel(t, func(c map[string]any, ts []weights.WriteTensor) []weights.WriteTensor {
			c["max_position_embeddings"] = 1 << 26
			return ts
		})
		r := qwgpuWith(t, runOpts{shell: "ulimit -v 4000000;"}, runModel(dir, "--ctx", strconv.FormatUint(ctx, 10))...)
		requireCleanError(t, r, "--ctx "+strconv.FormatUint(ctx, 10), "KV cache", "binding limit", "largest context: "+strconv.FormatUint(ctx-1, 10))
	})
	t.Run("model above --gpu-memory", func(t *testing.T) {
		needGPU(t)
		r := qwgpu(t, append([]string{"bench", "--shape", "8B", "-p", "16", "-n", "8", "--reps", "1", "--gpu-memory", "8GiB"}, testBackend()...)...)
		requireCleanError(t, r, "qwen3 8B needs about 15.", "GiB on the GPU", "--gpu-memory 8GiB")
	})
	t.Run("8B on a software adapter", func(t *testing.T) {
		needGPU(t)
		// Only where the refusal is certain, with a small margin for the
		// RAM that frees or fills meanwhile: on a larger machine this would
		// really load 15 GiB of weights. The address-space limit stops it
		// (with a failure, not an OOM kill) should the margin not be enough.
		cfg := qwen3.Shapes["8B"]
		f := estimateFootprint(&model{cfg: cfg, src: &qwen3.RandomSource{Config: cfg, DType: weights.BF16}}, &modelFlags{dtype: "auto", kvDType: "f32", ctx: 512}, 16)
		avail, ok := llm.AvailableRAM()
		if !ok || llm.SoftwareShare*float64(avail) > 0.98*float64(f.Device()+f.Host) || adapters[0].Type != "cpu" {
			t.Skipf("not a software adapter on a machine too small for 8B (%.1f GiB available)", gib(avail))
		}
		r := qwgpuWith(t, runOpts{shell: "ulimit -v 8000000;"}, append([]string{"bench", "--shape", "8B", "-p", "16", "-n", "8", "--reps", "1"}, testBackend()...)...)
		requireCleanError(t, r, "qwen3 8B needs about 15.", "software adapter", "GiB available")
	})
}
