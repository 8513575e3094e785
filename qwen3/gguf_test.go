package qwen3

import (
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/qwgpu/qwgpu/weights"
)

func ggufPath(name string) string { return filepath.Join("..", "testdata", "gguf", name) }

func openGGUF(t *testing.T, name string) *GGUFModel {
	t.Helper()
	m, err := OpenGGUF(ggufPath(name))
	require.NoError(t, err)
	t.Cleanup(func() { m.Close() })
	return m
}

// TestGGUFConfigMatchesConfigJSON: the qwen3.* metadata gives the config
// the model's config.json gives.
func TestGGUFConfigMatchesConfigJSON(t *testing.T) {
	for _, c := range []struct{ gguf, golden string }{
		{"tiny-tied-f32-f32.gguf", "tiny-tied-f32"},
		{"tiny-tied-f32-q8_0.gguf", "tiny-tied-f32"},
		{"small-tied-bf16-q4_k_m.gguf", "small-tied-bf16"},
	} {
		m := openGGUF(t, c.gguf)
		want, err := LoadConfigDir(goldenDir(c.golden))
		require.NoError(t, err)
		got := m.Config
		want.EOSTokenIDs, got.EOSTokenIDs, want.TorchDtype = nil, nil, ""
		// The converter writes the context length it was given; the golden
		// models' config.json says 4096 too.
		require.Equal(t, want, got, c.gguf)
		require.Contains(t, m.ChatTemplate, "<|im_start|>")
	}
}

// TestGGUFNameTable: the one name table maps every tensor as the GGUF
// reference converter named it (manifest.json lists both names).
func TestGGUFNameTable(t *testing.T) {
	data, err := os.ReadFile(ggufPath("manifest.json"))
	require.NoError(t, err)
	var manifest map[string]struct {
		Tensors []struct {
			GGUF string `json:"gguf_name"`
			HF   string `json:"hf_name"`
		} `json:"tensors"`
	}
	require.NoError(t, json.Unmarshal(data, &manifest))
	n := 0
	for _, f := range manifest {
		for _, tn := range f.Tensors {
			g, ok := GGUFName(tn.HF)
			require.True(t, ok, tn.HF)
			require.Equal(t, tn.GGUF, g)
			h, ok := HFName(tn.GGUF)
			require.True(t, ok, tn.GGUF)
			require.Equal(t, tn.HF, h)
			n++
		}
	}
	require.Greater(t, n, 100)
	g, ok := GGUFName(NameLMHead)
	require.True(t, ok)
	require.Equal(t, "output.weight", g)
	for _, bad := range []string{"model.layers.x.mlp.up_proj.weight", "model.layers.01.mlp.up_proj.weight", "model.layers.1.mlp.nope", "blk.-1.attn_q.weight", "x"} {
		_, ok1 := GGUFName(bad)
		_, ok2 := HFName(bad)
		require.False(t, ok1 || ok2, bad)
	}
}

// TestGGUFF32MatchesSafetensors: the F32 GGUF decodes exactly to the
// golden model's weights, so the CPU reference gives the same logits,
// bit for bit, and those match transformers' as the safetensors model's do.
func TestGGUFF32MatchesSafetensors(t *testing.T) {
	ref, cases := loadGoldenModel(t, "tiny-tied-f32")
	m := openGGUF(t, "tiny-tied-f32-f32.gguf")
	requireSameLogits(t, ref, m, cases)
}

// requireSameLogits: the CPU reference on m's weights gives ref's logits
// bit for bit on every golden case, within refTol of transformers'.
func requireSameLogits(t *testing.T, ref *Model, m *GGUFModel, cases []GoldenCase) {
	t.Helper()
	w, err := LoadWeights(m.Config, m)
	require.NoError(t, err)
	model := NewModel(m.Config, w, 256)
	for _, gc := range cases {
		want, err := ref.Forward(gc.InputIDs, false)
		require.NoError(t, err)
		got, err := model.Forward(gc.InputIDs, false)
		require.NoError(t, err)
		require.Equal(t, want.Logits, got.Logits)
		require.LessOrEqual(t, RelErr(got.Logits, gc.Logits), refTol)
	}
}

// TestGGUFQuantizedLogits runs the quantized GGUF models on the CPU
// reference against the unquantized golden logits. That every quantized
// tensor decodes exactly as the reference decoder does is established in
// package weights; these bounds are sanity bounds, about twice what was
// measured: random weights have no structure that quantization could
// preserve, and the golden models' large k_norm weights (20–90, as in real
// Qwen3) magnify the error of k_proj, so 4-bit formats move these logits
// far more than they move a trained model's. A wrong tensor mapping or
// layout gives KL divergences of nats and top-1 near chance.
func TestGGUFQuantizedLogits(t *testing.T) {
	for _, c := range []struct {
		gguf, golden string
		maxRel       float64 // max |logit error| / max(1, max|logit|)
		maxMeanKL    float64
		minTop1      float64
	}{
		{"tiny-tied-f32-q8_0.gguf", "tiny-tied-f32", 0.05, 1e-4, 0.9},     // measured 0.021, 4.2e-5, 0.98
		{"tiny-tied-f32-q4_0.gguf", "tiny-tied-f32", 0.5, 0.012, 0.5},     // measured 0.26, 0.0058, 0.61
		{"small-tied-bf16-q4_k_m.gguf", "small-tied-bf16", 2.5, 0.7, 0.1}, // measured 1.12, 0.34, 0.16
	} {
		t.Run(c.gguf, func(t *testing.T) {
			_, cases := loadGoldenModel(t, c.golden)
			m := openGGUF(t, c.gguf)
			w, err := LoadWeights(m.Config, m)
			require.NoError(t, err)
			model := NewModel(m.Config, w, 256)
			var q Quality
			worst := 0.0
			V := m.Config.VocabSize
			for _, gc := range cases {
				out, err := model.Forward(gc.InputIDs, false)
				require.NoError(t, err)
				for p := range gc.InputIDs {
					q.Add(gc.Logits[p*V:(p+1)*V], out.LogitsAt(p))
				}
				worst = max(worst, RelErr(out.Logits, gc.Logits))
			}
			t.Logf("%s: max rel %.4g, mean KL %.3g, max KL %.3g, top-1 %.3f over %d positions",
				c.gguf, worst, q.MeanKL(), q.MaxKL, q.Top1(), q.Positions)
			require.Greater(t, worst, 0.0, "quantized logits cannot equal the originals")
			require.LessOrEqual(t, worst, c.maxRel)
			require.LessOrEqual(t, q.MeanKL(), c.maxMeanKL)
			require.GreaterOrEqual(t, q.Top1(), c.minTop1)
		})
	}
}

// TestGGUFTokenizerEncodesGolden builds the tokenizer from the vocab-only
// GGUF of Qwen3 and encodes the golden texts to transformers' ids.
func TestGGUFTokenizerEncodesGolden(t *testing.T) {
	zf, err := os.Open(ggufPath("qwen3-vocab.gguf.gz"))
	require.NoError(t, err)
	defer zf.Close()
	zr, err := gzip.NewReader(zf)
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "qwen3-vocab.gguf")
	out, err := os.Create(path)
	require.NoError(t, err)
	_, err = io.Copy(out, zr)
	require.NoError(t, err)
	require.NoError(t, out.Close())
	f, err := weights.OpenGGUF(path)
	require.NoError(t, err)
	defer f.Close()
	tok, err := GGUFTokenizer(f)
	require.NoError(t, err)
	require.Equal(t, 151669, tok.VocabSize()) // the PAD ids name no token

	data, err := os.ReadFile(filepath.Join("..", "testdata", "golden", "tokens.json"))
	require.NoError(t, err)
	var golden []struct {
		Text string `json:"text"`
		IDs  []int  `json:"ids"`
	}
	require.NoError(t, json.Unmarshal(data, &golden))
	require.NotEmpty(t, golden)
	for _, g := range golden {
		require.Equal(t, g.IDs, tok.Encode(g.Text), "%q", g.Text)
	}
	id, ok := tok.ID("<|im_end|>")
	require.True(t, ok)
	require.Equal(t, 151645, id)
	special := 0
	for _, a := range tok.AddedTokens() {
		if a.Special {
			special++
		}
	}
	require.Equal(t, 20, special) // the CONTROL tokens
	require.Len(t, tok.AddedTokens(), 26)
}

// TestGGUFTokenizerOfModel: the tiny model's own 512-token vocabulary.
func TestGGUFTokenizerOfModel(t *testing.T) {
	m := openGGUF(t, "tiny-tied-f32-q8_0.gguf")
	tok, err := m.Tokenizer()
	require.NoError(t, err)
	require.LessOrEqual(t, tok.VocabSize(), m.Config.VocabSize)
	ids := tok.Encode("hello world")
	text, err := tok.Decode(ids)
	require.NoError(t, err)
	require.Equal(t, "hello world", text)
}

// patchedCopy copies a testdata GGUF with one byte string replaced by
// another of the same length, for files the loader must refuse.
func patchedCopy(t *testing.T, name, old, new string) string {
	t.Helper()
	require.Len(t, new, len(old))
	data, err := os.ReadFile(ggufPath(name))
	require.NoError(t, err)
	i := indexOf(data, old)
	require.GreaterOrEqual(t, i, 0, "%q not in %s", old, name)
	copy(data[i:], new)
	path := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(path, data, 0o644))
	return path
}

func indexOf(data []byte, s string) int {
	for i := 0; i+len(s) <= len(data); i++ {
		if string(data[i:i+len(s)]) == s {
			return i
		}
	}
	return -1
}

func TestGGUFRefusals(t *testing.T) {
	_, err := OpenGGUF(patchedCopy(t, "tiny-tied-f32-f32.gguf", "\x05\x00\x00\x00\x00\x00\x00\x00qwen3", "\x05\x00\x00\x00\x00\x00\x00\x00llama"))
	require.ErrorContains(t, err, `tiny-tied-f32-f32.gguf: general.architecture "llama": only dense "qwen3" models are supported`)
	_, err = OpenGGUF(patchedCopy(t, "tiny-tied-f32-f32.gguf", "blk.1.ffn_up.weight", "blk.1.ffn_uq.weight"))
	require.ErrorContains(t, err, `tensor "blk.1.ffn_up.weight": not found (model.layers.1.mlp.up_proj.weight)`)
	_, err = OpenGGUF(patchedCopy(t, "tiny-tied-f32-f32.gguf", "qwen3.block_count", "qwen3.block_cOunt"))
	require.ErrorContains(t, err, `metadata key "qwen3.block_count": missing`)
	m := openGGUF(t, "tiny-tied-f32-f32.gguf")
	_, err = m.Get("model.layers.0.mlp.up_proj.weight", 64, 128)
	require.ErrorContains(t, err, `tensor "blk.0.ffn_up.weight": shape [128 64] (ne [64 128]), want [64 128]`)
	require.True(t, m.Has("model.layers.1.mlp.up_proj.weight"))
	require.False(t, m.Has(NameLMHead))
}

// TestGGUFQ8_0EqualsQuantizedCheckpoint: the golden safetensors model with
// every matrix quantized to Q8_0 by package weights is the Q8_0 GGUF model
// (the reference quantizer's bytes), so the logits are the same bits.
func TestGGUFQ8_0EqualsQuantizedCheckpoint(t *testing.T) {
	m := openGGUF(t, "tiny-tied-f32-q8_0.gguf")
	w, err := LoadWeights(m.Config, m)
	require.NoError(t, err)
	fromGGUF := NewModel(m.Config, w, 256)

	ck, err := weights.OpenCheckpoint(goldenDir("tiny-tied-f32"))
	require.NoError(t, err)
	defer ck.Close()
	cfg, err := LoadConfigDir(goldenDir("tiny-tied-f32"))
	require.NoError(t, err)
	wq, err := LoadWeights(cfg, QuantizedSource{Source: ck, DType: weights.Q8_0})
	require.NoError(t, err)
	fromCheckpoint := NewModel(cfg, wq, 256)

	ids := []int{1, 7, 300, 42, 511, 0, 99}
	a, err := fromGGUF.Forward(ids, false)
	require.NoError(t, err)
	b, err := fromCheckpoint.Forward(ids, false)
	require.NoError(t, err)
	require.Equal(t, a.Logits, b.Logits)
}

func TestQuantizedSourceFallback(t *testing.T) {
	ck, err := weights.OpenCheckpoint(goldenDir("tiny-tied-f32"))
	require.NoError(t, err)
	defer ck.Close()
	got := map[string]weights.DType{}
	src := QuantizedSource{Source: ck, DType: weights.Q4_K, Progress: func(n string, d weights.DType) { got[n] = d }}
	q, err := src.Get("model.layers.0.mlp.up_proj.weight", 128, 64)
	require.NoError(t, err)
	require.Equal(t, weights.Q4_0, q.DType) // rows of 64 are no Q4_K block
	require.Equal(t, weights.Q4_0, got["model.layers.0.mlp.up_proj.weight"])
	n, err := src.Get("model.norm.weight", 64)
	require.NoError(t, err)
	require.Equal(t, weights.F32, n.DType)
}

// writeBF16GGUF writes the small golden model's BF16 weights as a GGUF
// file with the metadata of the reference converter's file for the same
// model (the shared BF16 file was left out of testdata to keep it small).
func writeBF16GGUF(t *testing.T) string {
	t.Helper()
	meta := openGGUF(t, "small-tied-bf16-q4_k_m.gguf")
	ck, err := weights.OpenCheckpoint(goldenDir("small-tied-bf16"))
	require.NoError(t, err)
	defer ck.Close()
	var tensors []weights.WriteTensor
	for _, s := range meta.Config.AllTensors() {
		tensor, err := ck.Get(s.Name, s.Shape...)
		require.NoError(t, err)
		require.Equal(t, weights.BF16, tensor.DType)
		tensors = append(tensors, weights.WriteTensor{Name: s.GGUF, DType: tensor.DType, Shape: tensor.Shape, Data: tensor.Raw})
	}
	path := filepath.Join(t.TempDir(), "small-tied-bf16-bf16.gguf")
	require.NoError(t, weights.WriteGGUFFile(path, meta.File.KVs, tensors))
	return path
}

// TestGGUFBF16MatchesSafetensors: BF16 tensors pass through a GGUF file
// unchanged, so the CPU reference gives the safetensors model's logits.
func TestGGUFBF16MatchesSafetensors(t *testing.T) {
	ref, cases := loadGoldenModel(t, "small-tied-bf16")
	m, err := OpenGGUF(writeBF16GGUF(t))
	require.NoError(t, err)
	defer m.Close()
	q, err := m.Get("model.layers.2.self_attn.q_proj.weight")
	require.NoError(t, err)
	require.Equal(t, weights.BF16, q.DType)
	requireSameLogits(t, ref, m, cases)
}
