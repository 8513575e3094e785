//go:build unix

package main

// Hostile inputs, second round (issue 15): files that are not files or
// never end, counts that would allocate the machine away, values that make
// the model meaningless, signals and a closed stdout. Every case: no
// panic, no fault, no hang, one clean line or the documented behaviour.

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/qwgpu/qwgpu/qwen3"
	"github.com/qwgpu/qwgpu/qwen3/llm"
	"github.com/qwgpu/qwgpu/weights"
)

// mkfifo replaces path with a named pipe, which no one writes.
func mkfifo(t *testing.T, path string) {
	t.Helper()
	os.Remove(path)
	require.NoError(t, syscall.Mkfifo(path, 0o644))
}

// sparse makes path a file of size bytes that takes no disk space.
func sparse(t *testing.T, path string, size int64) {
	t.Helper()
	os.Remove(path)
	f, err := os.Create(path)
	require.NoError(t, err)
	require.NoError(t, f.Truncate(size))
	require.NoError(t, f.Close())
}

func TestHostileFiles(t *testing.T) {
	cases := []struct {
		name  string
		edit  func(t *testing.T, dir string)
		wants []string
	}{
		{"config.json a FIFO", func(t *testing.T, dir string) { mkfifo(t, filepath.Join(dir, "config.json")) },
			[]string{"config.json", "not a regular file (a named pipe)"}},
		{"config.json endless", func(t *testing.T, dir string) { sparse(t, filepath.Join(dir, "config.json"), 1<<30) },
			[]string{"config.json", "1073741824 bytes, more than the 4.0 MiB"}},
		{"config.json with a BOM", func(t *testing.T, dir string) {
			rewriteBytes(t, filepath.Join(dir, "config.json"), func(b []byte) []byte { return append([]byte("\xef\xbb\xbf"), b...) })
		}, []string{"config.json", "byte order mark"}},
		{"config.json an array", func(t *testing.T, dir string) {
			rewriteBytes(t, filepath.Join(dir, "config.json"), func(b []byte) []byte { return append(append([]byte("["), b...), ']') })
		}, []string{"config.json", "is a JSON array, not the JSON object a config is"}},
		{"tokenizer.json a FIFO", func(t *testing.T, dir string) { mkfifo(t, filepath.Join(dir, "tokenizer.json")) },
			[]string{"tokenizer.json", "not a regular file (a named pipe)"}},
		{"tokenizer.json endless", func(t *testing.T, dir string) { sparse(t, filepath.Join(dir, "tokenizer.json"), 1<<40) },
			[]string{"tokenizer.json", "more than the 256.0 MiB"}},
		{"generation_config.json a FIFO", func(t *testing.T, dir string) { mkfifo(t, filepath.Join(dir, "generation_config.json")) },
			[]string{"generation_config.json", "not a regular file"}},
		{"generation_config.json endless", func(t *testing.T, dir string) { sparse(t, filepath.Join(dir, "generation_config.json"), 1<<33) },
			[]string{"generation_config.json", "more than the 4.0 MiB"}},
		{"model.safetensors a FIFO", func(t *testing.T, dir string) { mkfifo(t, filepath.Join(dir, "model.safetensors")) },
			[]string{"model.safetensors", "not a regular file (a named pipe)"}},
		{"model.safetensors a dangling link", func(t *testing.T, dir string) {
			p := filepath.Join(dir, "model.safetensors")
			require.NoError(t, os.Remove(p))
			require.NoError(t, os.Symlink("../gone.safetensors", p))
		}, []string{"model.safetensors", "dangling symbolic link to ../gone.safetensors"}},
		{"model.safetensors a link loop", func(t *testing.T, dir string) {
			p := filepath.Join(dir, "model.safetensors")
			require.NoError(t, os.Remove(p))
			require.NoError(t, os.Symlink("model.safetensors", p))
		}, []string{"model.safetensors", "symbolic links loop"}},
		{"index a FIFO", func(t *testing.T, dir string) {
			require.NoError(t, os.Remove(filepath.Join(dir, "model.safetensors")))
			mkfifo(t, filepath.Join(dir, weights.IndexFileName))
		}, []string{weights.IndexFileName, "not a regular file"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := microModel(t, nil)
			c.edit(t, dir)
			// ulimit -v: a read without a bound would fail the test by
			// running out of address space rather than pass by luck.
			r := qwgpuWith(t, runOpts{timeout: 30 * time.Second, shell: "ulimit -v 3000000;"}, runModel(dir)...)
			requireCleanError(t, r, c.wants...)
		})
	}
	t.Run("prompt file a FIFO", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "prompt")
		mkfifo(t, p)
		r := qwgpuWith(t, runOpts{timeout: 30 * time.Second}, "run", "--prompt-file", p)
		requireCleanError(t, r, "--prompt-file", "not a regular file (a named pipe)")
	})
	t.Run("prompt file endless", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "prompt")
		sparse(t, p, 1<<40)
		r := qwgpuWith(t, runOpts{timeout: 30 * time.Second, shell: "ulimit -v 3000000;"}, "run", "-f", p)
		requireCleanError(t, r, "--prompt-file", "more than the 64.0 MiB")
	})
}

func TestHostileConfigValues(t *testing.T) {
	cases := []struct {
		name  string
		set   map[string]any
		wants []string
	}{
		{"a million layers", map[string]any{"num_hidden_layers": 5000000}, []string{"config.json", "num_hidden_layers 5000000 is above the 1024"}},
		{"2^62 positions", map[string]any{"max_position_embeddings": int64(1) << 62}, []string{"config.json", "max_position_embeddings 4611686018427387904 is above"}},
		{"huge vocabulary", map[string]any{"vocab_size": 1 << 30}, []string{"config.json", "vocab_size 1073741824 is above"}},
		{"huge heads", map[string]any{"num_attention_heads": 1 << 20, "num_key_value_heads": 1 << 20}, []string{"config.json", "num_attention_heads 1048576 is above"}},
		{"huge head_dim", map[string]any{"head_dim": 1 << 20}, []string{"config.json", "head_dim 1048576 is above"}},
		{"huge rms_norm_eps", map[string]any{"rms_norm_eps": 0.5}, []string{"config.json", "rms_norm_eps 0.5 is outside [1e-12, 0.1]"}},
		{"tiny rms_norm_eps", map[string]any{"rms_norm_eps": 1e-300}, []string{"config.json", "rms_norm_eps 1e-300 is outside"}},
		{"tiny rope_theta", map[string]any{"rope_theta": 1e-3}, []string{"config.json", "rope_theta 0.001 is outside [100, 1e+12]"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := microModel(t, nil)
			editConfig(t, dir, c.set)
			r := qwgpuWith(t, runOpts{shell: "ulimit -v 3000000;"}, runModel(dir)...)
			requireCleanError(t, r, c.wants...)
		})
	}
}

func TestHostileGenerationConfig(t *testing.T) {
	cases := []struct {
		name    string
		content string
		wants   []string
	}{
		{"top_p out of range", `{"do_sample": true, "top_p": 1.5}`, []string{"generation_config.json", "top_p is 1.5; it must be in (0, 1]"}},
		{"negative temperature", `{"temperature": -1}`, []string{"generation_config.json", "temperature is -1"}},
		{"zero repetition_penalty", `{"repetition_penalty": 0}`, []string{"generation_config.json", "repetition_penalty is 0"}},
		{"temperature a string", `{"temperature": "hot"}`, []string{"generation_config.json", `field "temperature": want a number, got string`}},
		{"eos_token_id a string", `{"eos_token_id": "x"}`, []string{"generation_config.json", `field "eos_token_id"`}},
		{"top_k a float", `{"top_k": 2.5}`, []string{"generation_config.json", `field "top_k": want an integer`}},
		{"an array", `[1, 2]`, []string{"generation_config.json", "not a JSON object"}},
		{"truncated", `{"top_k": 2`, []string{"generation_config.json", "invalid JSON"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := microModel(t, nil)
			require.NoError(t, os.WriteFile(filepath.Join(dir, "generation_config.json"), []byte(c.content), 0o644))
			msg := requireCleanError(t, qwgpu(t, runModel(dir)...), c.wants...)
			// In the file's terms: no flag the user never passed, no Go type.
			for _, bad := range []string{"--", "float64", "int", "Go value", "sample.", "*"} {
				if bad == "int" && strings.Contains(msg, "an integer") {
					continue
				}
				require.NotContains(t, msg, bad)
			}
		})
	}
}

func TestHostileFlags(t *testing.T) {
	dir := microModel(t, nil)
	for _, steps := range []string{"-1", "1000000000"} {
		r := qwgpu(t, "validate", "--model", dir, "--decode-steps", steps)
		requireCleanError(t, r, "--decode-steps "+steps, "want 0 to 65536")
	}
	// An extreme penalty is valid; sampling with it must not crash (it
	// did: an empty distribution indexed). Refused here only for --ctx.
	r := qwgpu(t, "run", "-m", dir, "--repeat-penalty", "1e-310", "-c", "50000", "hi")
	requireCleanError(t, r, "--ctx 50000")
}

// TestTruncatedWhileLoading: the checkpoint shrinks after it was opened
// and checked; reading its tensors then faults the memory map. The
// loading path turns that into an error naming the file.
func TestTruncatedWhileLoading(t *testing.T) {
	dir := microModel(t, nil)
	m, err := openModel(dir, true)
	require.NoError(t, err)
	defer m.close()
	st := filepath.Join(dir, "model.safetensors")
	require.NoError(t, os.Truncate(st, 4096))
	_, err = m.src.Get(qwen3.NameEmbed)
	require.Error(t, err)
	require.ErrorContains(t, err, st)
	require.ErrorContains(t, err, "changed while being read")
}

// TestF16Overflow: a bf16 weight of 1e5 is finite, and would become +Inf
// as f16; --dtype f16 refuses it naming the tensor.
func TestF16Overflow(t *testing.T) {
	dir := microModel(t, func(cfg map[string]any, ts []weights.WriteTensor) []weights.WriteTensor {
		setValue(ts, upProj, 5, 1e5)
		return ts
	})
	m, err := openModel(dir, true)
	require.NoError(t, err)
	defer m.close()
	src := m.src.(*qwen3.CheckedSource)
	_, err = src.Get(upProj)
	require.NoError(t, err, "fine as bf16")
	src.ToF16 = true
	_, err = src.Get(upProj)
	require.ErrorContains(t, err, `tensor "`+upProj+`"`)
	require.ErrorContains(t, err, "element 5 is 99840, beyond float16's range")
	t.Run("through the CLI", func(t *testing.T) {
		needGPU(t)
		requireCleanError(t, qwgpu(t, runModel(dir, "--dtype", "f16")...), upProj, "beyond float16's range")
	})
}

// TestMemoryEstimateAtTheBounds: the largest config the bounds admit
// gives a footprint that has not overflowed: it equals the same sum in
// float64 to within rounding.
func TestMemoryEstimateAtTheBounds(t *testing.T) {
	c := qwen3.Config{VocabSize: qwen3.MaxVocabSize, HiddenSize: qwen3.MaxHiddenSize, IntermediateSize: qwen3.MaxIntermediateSize,
		NumHiddenLayers: qwen3.MaxHiddenLayers, NumAttentionHeads: qwen3.MaxAttentionHeads, NumKeyValueHeads: qwen3.MaxAttentionHeads,
		HeadDim: qwen3.MaxHeadDim, RMSNormEps: 1e-6, RopeTheta: 1e6, MaxPositionEmbeddings: qwen3.MaxPositionEmbeddingsCap}
	require.NoError(t, c.Validate())
	m := &model{cfg: c, src: &qwen3.RandomSource{Config: c, DType: weights.BF16}}
	f := estimateFootprint(m, &modelFlags{dtype: "auto", kvDType: "f32", ctx: c.MaxPositionEmbeddings}, 512)
	L, ctx, kv := float64(c.NumHiddenLayers), float64(c.MaxPositionEmbeddings), float64(c.KVDim())
	require.InEpsilon(t, 2*L*ctx*kv*4, float64(f.KVCache), 1e-12)
	h, q, in, v := float64(c.HiddenSize), float64(c.QDim()), float64(c.IntermediateSize), float64(c.VocabSize)
	// Embedding and (untied) head, the layers' matrices in bf16, the
	// norms in float32.
	hd := float64(c.HeadDim)
	want := 2*(2*v*h+L*((q+2*kv)*h+q*h+3*in*h)) + 4*L*(2*h+2*hd) + 4*h
	require.InEpsilon(t, want, float64(f.Weights), 1e-12)
	require.Greater(t, f.Device(), f.KVCache)
}

// TestInterruptAndClosedStdout runs generateOnce on the CPU reference: a
// SIGINT in the middle ends it with the text so far, a newline and
// errInterrupted (exit 130); a failing stdout ends it with an error.
func TestInterruptAndClosedStdout(t *testing.T) {
	m := openCPUModel(t, 128)
	gen := llm.GenOptions{MaxTokens: 50, Temperature: ptrTo(0.0), Raw: true}
	// generate is "hello" continued, with a real SIGINT to this process
	// at the at-th Token (0: none).
	var res *llm.Result
	generate := func(at int) generateFunc {
		return func(ctx context.Context, g llm.GenOptions, onToken func(llm.Token) error) (*llm.Result, error) {
			tokens := 0
			var err error
			res, err = m.Generate(ctx, "hello", g, func(tk llm.Token) error {
				if tokens++; tokens == at {
					if err := syscall.Kill(os.Getpid(), syscall.SIGINT); err != nil {
						return err
					}
					time.Sleep(100 * time.Millisecond) // delivered before the next step
				}
				return onToken(tk)
			})
			return res, err
		}
	}

	t.Run("SIGINT", func(t *testing.T) {
		// As cmdRun sets it up.
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
		defer stop()
		var buf bytes.Buffer
		out := newOutput(&buf)
		err := generateOnce(ctx, generate(3), gen, out, newReplyPrinter(out.write, false, false), "CPU")
		require.ErrorIs(t, err, errInterrupted)
		require.True(t, strings.HasSuffix(buf.String(), "\n"), "the line is finished")
		require.Equal(t, "cancelled", res.FinishReason)
		require.Less(t, res.CompletionTokens, 50, "stopped early")
		require.GreaterOrEqual(t, res.CompletionTokens, 3, "after the step in flight")
	})
	t.Run("closed stdout", func(t *testing.T) {
		out := newOutput(failingWriter{})
		err := generateOnce(context.Background(), generate(0), gen, out, newReplyPrinter(out.write, false, false), "CPU")
		require.ErrorContains(t, err, "writing the output to stdout: broken pipe")
		require.Less(t, res.CompletionTokens, 10, "generation stopped at the first failed write")
	})
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, syscall.EPIPE }

func TestClosedPipeReported(t *testing.T) {
	// Enough output to fill the pipe after head has gone.
	text := filepath.Join(t.TempDir(), "text")
	require.NoError(t, os.WriteFile(text, []byte(strings.Repeat("hello world ", 50000)), 0o644))
	cmd := exec.Command("bash", "-c", `"$0" tokenize < "$1" | head -c 1 >/dev/null; exit ${PIPESTATUS[0]}`, qwgpuBin, text)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	require.True(t, errors.As(err, &exit), "%v: %s", err, stderr.String())
	require.Equal(t, 1, exit.ExitCode(), "an error, not death by SIGPIPE: %s", stderr.String())
	require.Equal(t, "qwgpu tokenize: writing the output to stdout: broken pipe\n", stderr.String())
}

// TestChatLineTooLong: a line past the bound is skipped and reported,
// never buffered whole; the next line is read normally.
func TestChatLineTooLong(t *testing.T) {
	endless := io.MultiReader(io.LimitReader(repeatReader('a'), weights.MaxPromptBytes+100), strings.NewReader("\nhi\n"))
	lines := readLines(endless)
	first := <-lines
	require.True(t, first.tooLong)
	require.Empty(t, first.text)
	second := <-lines
	require.Equal(t, inputLine{text: "hi"}, second)
	_, open := <-lines
	require.False(t, open)
}

type repeatReader byte

func (r repeatReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r)
	}
	return len(p), nil
}
