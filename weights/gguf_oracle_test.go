package weights

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// ggufDir holds GGUF files written and decoded by the GGUF reference
// implementation (see testdata/gguf/README.md).
const ggufDir = "../testdata/gguf"

// ggufManifest is the part of manifest.json the tests compare with.
type ggufManifest map[string]struct {
	KV         map[string]any `json:"kv"`
	Alignment  int64          `json:"alignment"`
	DataOffset int64          `json:"data_offset"`
	Version    uint32         `json:"gguf_version"`
	NTensors   int            `json:"n_tensors"`
	Tensors    []struct {
		GGUFName   string   `json:"gguf_name"`
		HFName     string   `json:"hf_name"`
		Type       string   `json:"ggml_type"`
		TypeID     uint32   `json:"ggml_type_id"`
		NE         []uint64 `json:"ne"`
		HFShape    []int    `json:"hf_shape"`
		DataOffset int64    `json:"data_offset"`
		NBytes     int64    `json:"nbytes"`
		Dequant    struct {
			SHA256 string  `json:"sha256_f32"`
			Sum    float64 `json:"sum"`
			SumPos float64 `json:"sum_pos_weighted"`
		} `json:"dequant"`
	} `json:"tensors"`
}

func loadManifest(t *testing.T) ggufManifest {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(ggufDir, "manifest.json"))
	require.NoError(t, err)
	var m ggufManifest
	require.NoError(t, json.Unmarshal(data, &m))
	return m
}

// sha256F32 hashes float32 values as manifest.json does: little endian,
// with -0 folded into +0.
func sha256F32(vals []float32) string {
	buf := make([]byte, 4*len(vals))
	for i, v := range vals {
		if v == 0 {
			v = 0
		}
		binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(v))
	}
	sum := sha256.Sum256(buf)
	return hex.EncodeToString(sum[:])
}

// TestGGUFModelFilesMatchManifest reads every model GGUF kept in testdata
// and checks the header against the reference reader's view and every
// tensor's decoding against the reference decoder's checksum.
func TestGGUFModelFilesMatchManifest(t *testing.T) {
	manifest := loadManifest(t)
	files := []string{"tiny-tied-f32-f32.gguf", "tiny-tied-f32-q8_0.gguf", "tiny-tied-f32-q4_0.gguf", "small-tied-bf16-q4_k_m.gguf"}
	seenTypes := map[DType]bool{}
	for _, name := range files {
		t.Run(name, func(t *testing.T) {
			want, ok := manifest[name]
			require.True(t, ok, "manifest lacks %s", name)
			g, err := OpenGGUF(filepath.Join(ggufDir, name))
			require.NoError(t, err)
			defer g.Close()
			require.Equal(t, want.Version, g.Version)
			require.Equal(t, want.Alignment, g.Alignment)
			require.Equal(t, want.DataOffset, g.DataStart)
			require.Len(t, g.Tensors, want.NTensors)
			for key, v := range want.KV {
				kv, ok := g.Lookup(key)
				require.True(t, ok, "key %s", key)
				switch v := v.(type) {
				case string:
					if strings.HasPrefix(v, "[") { // a summarized array
						continue
					}
					require.Equal(t, v, kv.Value, key)
				case float64:
					switch got := kv.Value.(type) {
					case float64:
						require.Equal(t, v, got, key)
					case uint64:
						require.Equal(t, v, float64(got), key)
					default:
						t.Fatalf("%s: %T", key, got)
					}
				case bool:
					require.Equal(t, v, kv.Value, key)
				}
			}
			for _, wt := range want.Tensors {
				ti, ok := g.Info(wt.GGUFName)
				require.True(t, ok, wt.GGUFName)
				require.Equal(t, wt.TypeID, ti.TypeID, wt.GGUFName)
				require.Equal(t, wt.Type, ti.TypeName(), wt.GGUFName)
				require.Equal(t, wt.NE, ti.NE, wt.GGUFName)
				require.Equal(t, wt.HFShape, ti.Shape, wt.GGUFName)
				require.Equal(t, wt.DataOffset, g.DataStart+ti.Offset, wt.GGUFName)
				require.Equal(t, wt.NBytes, ti.Size, wt.GGUFName)
				tensor, err := g.Tensor(wt.GGUFName)
				require.NoError(t, err)
				vals, err := tensor.Float32()
				require.NoError(t, err)
				require.Equal(t, wt.Dequant.SHA256, sha256F32(vals), "%s (%s) decodes to other values", wt.GGUFName, wt.Type)
				require.NoError(t, tensor.CheckFinite())
				seenTypes[ti.DType] = true
			}
		})
	}
	for _, d := range []DType{F32, Q8_0, Q4_0, Q5_0, Q4_K, Q6_K} {
		require.True(t, seenTypes[d], "no model tensor of type %v was checked", d)
	}
}

// TestDequantizeBlockOracle decodes the random valid blocks of every type
// this package supports and compares with the reference decoding bit for
// bit (as values, so -0 equals +0). The blocks come twice: as raw bytes in
// blocks.safetensors (decoded without the GGUF reader) and in blocks.gguf.
func TestDequantizeBlockOracle(t *testing.T) {
	st, err := Open(filepath.Join(ggufDir, "blocks.safetensors"))
	require.NoError(t, err)
	defer st.Close()
	g, err := OpenGGUF(filepath.Join(ggufDir, "blocks.gguf"))
	require.NoError(t, err)
	defer g.Close()
	for _, d := range []DType{F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K} {
		name := strings.ToLower(d.String())
		t.Run(name, func(t *testing.T) {
			want := f32Tensor(t, st, name)
			raw, err := st.Tensor(name + ".raw")
			require.NoError(t, err)
			wantShape := want.Shape
			fromRaw := &Tensor{Name: name, DType: d, Shape: wantShape, Raw: raw.Raw}
			got, err := fromRaw.Float32()
			require.NoError(t, err)
			wantVals, err := want.Float32()
			require.NoError(t, err)
			requireSameValues(t, wantVals, got)

			gt, err := g.Tensor(name)
			require.NoError(t, err)
			require.Equal(t, d, gt.DType)
			require.Equal(t, wantShape, gt.Shape)
			require.Equal(t, raw.Raw, gt.Raw)
		})
	}
}

// TestGGUFUnsupportedTypeIsNamed: blocks.gguf also holds IQ and other
// types; the file opens, and asking for such a tensor names its type.
func TestGGUFUnsupportedTypeIsNamed(t *testing.T) {
	g, err := OpenGGUF(filepath.Join(ggufDir, "blocks.gguf"))
	require.NoError(t, err)
	defer g.Close()
	ti, ok := g.Info("iq2_xxs")
	require.True(t, ok)
	require.Equal(t, "IQ2_XXS", ti.TypeName())
	require.Equal(t, []int{4, 512}, ti.Shape)
	require.Equal(t, int64(4*2*66), ti.Size)
	_, err = g.Tensor("iq2_xxs")
	requireError(t, err, "blocks.gguf", `"iq2_xxs"`, "IQ2_XXS is not supported")
}

func f32Tensor(t *testing.T, f *File, name string) *Tensor {
	t.Helper()
	tensor, err := f.Tensor(name)
	require.NoError(t, err)
	require.Equal(t, F32, tensor.DType, name)
	return tensor
}

// requireSameValues compares float32 slices exactly, -0 equal to +0.
func requireSameValues(t *testing.T, want, got []float32) {
	t.Helper()
	require.Len(t, got, len(want))
	for i := range want {
		if want[i] != got[i] && !(math.IsNaN(float64(want[i])) && math.IsNaN(float64(got[i]))) {
			t.Fatalf("value %d: got %v (%#08x), want %v (%#08x)", i, got[i], math.Float32bits(got[i]), want[i], math.Float32bits(want[i]))
		}
	}
}
