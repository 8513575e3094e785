package main

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// manifestTensors reads the reference decoder's checksum of every tensor.
func manifestTensors(t *testing.T, file string) map[string]struct{ HF, SHA string } {
	t.Helper()
	data, err := os.ReadFile(ggufFile("manifest.json"))
	require.NoError(t, err)
	var m map[string]struct {
		Tensors []struct {
			GGUF    string `json:"gguf_name"`
			HF      string `json:"hf_name"`
			Dequant struct {
				SHA string `json:"sha256_f32"`
			} `json:"dequant"`
		} `json:"tensors"`
	}
	require.NoError(t, json.Unmarshal(data, &m))
	out := map[string]struct{ HF, SHA string }{}
	for _, tn := range m[file].Tensors {
		out[tn.GGUF] = struct{ HF, SHA string }{tn.HF, tn.Dequant.SHA}
	}
	require.NotEmpty(t, out, file)
	return out
}

// foldedSHA256 hashes float32 little-endian bytes with -0 as +0, as the
// manifest does.
func foldedSHA256(t *testing.T, raw []byte) string {
	t.Helper()
	require.Zero(t, len(raw)%4)
	buf := make([]byte, len(raw))
	for i := 0; i < len(raw); i += 4 {
		v := binary.LittleEndian.Uint32(raw[i:])
		if v == 0x80000000 {
			v = 0
		}
		binary.LittleEndian.PutUint32(buf[i:], v)
	}
	sum := sha256.Sum256(buf)
	return hex.EncodeToString(sum[:])
}

// TestInspectDumpMatchesReferenceDecoder: every tensor of the quantized
// files (Q4_0, Q5_0, Q4_K, Q6_K, F32), dumped by GGUF or Hugging Face
// name, is the reference decoder's float32, bit for bit.
func TestInspectDumpMatchesReferenceDecoder(t *testing.T) {
	for _, file := range []string{"tiny-tied-f32-q4_0.gguf", "small-tied-bf16-q4_k_m.gguf"} {
		i := 0
		for gguf, want := range manifestTensors(t, file) {
			name := gguf
			if i%2 == 1 {
				name = want.HF // both names work
			}
			i++
			r := qwgpu(t, "inspect", "--model", ggufFile(file), "--dump", name)
			requireOK(t, r)
			require.Equal(t, want.SHA, foldedSHA256(t, []byte(r.stdout)), "%s %s", file, name)
		}
	}
}

// TestInspectDumpCheckpointEqualsGGUF: a checkpoint directory's tensor,
// asked for by its GGUF name, dumps to the F32 GGUF's bytes.
func TestInspectDumpCheckpointEqualsGGUF(t *testing.T) {
	a := qwgpu(t, "inspect", "--model", goldenModelDir("tiny-tied-f32"), "--dump", "blk.1.ffn_down.weight")
	requireOK(t, a)
	b := qwgpu(t, "inspect", "--model", ggufFile("tiny-tied-f32-f32.gguf"), "--dump", "model.layers.1.mlp.down_proj.weight")
	requireOK(t, b)
	require.Len(t, a.stdout, 4*64*128)
	require.Equal(t, a.stdout, b.stdout)
}

func TestInspectListing(t *testing.T) {
	r := qwgpu(t, "inspect", "--model", ggufFile("small-tied-bf16-q4_k_m.gguf"))
	requireOK(t, r)
	out := r.stdout
	require.Contains(t, out, "GGUF v3, 23 metadata entries, 46 tensors, alignment 32, data at byte 129696")
	require.Regexp(t, `(?m)^  general.architecture +string +"qwen3"$`, out)
	require.Regexp(t, `(?m)^  qwen3.attention.layer_norm_rms_epsilon +float32 +1e-06$`, out)
	require.Regexp(t, `(?m)^  tokenizer.ggml.tokens +\[string\] +4096: \["!", `, out)
	// Name, HF name, type, HF shape, ne, bytes: 256×256 Q4_K is 256 rows of one 144-byte block.
	require.Regexp(t, `(?m)^  blk.0.attn_k.weight +model.layers.0.self_attn.k_proj.weight +Q4_K +\[256, 256\] +\[256, 256\] +36864$`, out)
	require.Regexp(t, `(?m)^  token_embd.weight +model.embed_tokens.weight +Q6_K +\[4096, 256\] +\[256, 4096\] +860160$`, out)
	require.Regexp(t, `(?m)^  blk.0.attn_output.weight +model.layers.0.self_attn.o_proj.weight +Q4_K +\[256, 512\] +\[512, 256\] +73728$`, out)

	r = qwgpu(t, "inspect", "-m", goldenModelDir("tiny-tied-f32")) // -m as run, bench and tokenize take it
	requireOK(t, r)
	require.Contains(t, r.stdout, "Hugging Face checkpoint, 24 tensors")
	require.Regexp(t, `(?m)^  model.layers.0.mlp.down_proj.weight +blk.0.ffn_down.weight +F32 +\[64, 128\] +32768$`, r.stdout)
}

func TestInspectBadInput(t *testing.T) {
	requireCleanError(t, qwgpu(t, "inspect"), "qwgpu inspect: --model is required")
	requireCleanError(t, qwgpu(t, "inspect", "--model", ggufFile("tiny-tied-f32-q8_0.gguf"), "--dump", "nope"),
		"tiny-tied-f32-q8_0.gguf", `tensor "nope": not found`)
	requireCleanError(t, qwgpu(t, "inspect", "--model", ggufFile("blocks.gguf"), "--dump", "iq2_xs"),
		`tensor "iq2_xs": tensor type IQ2_XS is not supported`)
	data, err := os.ReadFile(ggufFile("tiny-tied-f32-q8_0.gguf"))
	require.NoError(t, err)
	cut := filepath.Join(t.TempDir(), "cut.gguf")
	require.NoError(t, os.WriteFile(cut, data[:len(data)-100], 0o644))
	requireCleanError(t, qwgpu(t, "inspect", "--model", cut), "cut.gguf", "runs past the", "bytes of the data section")
	notGGUF := filepath.Join(t.TempDir(), "x.gguf")
	require.NoError(t, os.WriteFile(notGGUF, []byte("hello there"), 0o644))
	requireCleanError(t, qwgpu(t, "inspect", "--model", notGGUF), "not a GGUF file")
	requireCleanError(t, qwgpu(t, "run", "--model", notGGUF, "--prompt", "x"), "neither a model directory nor a GGUF file")
}
