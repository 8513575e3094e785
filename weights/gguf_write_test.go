package weights

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestWriteGGUFReproducesReferenceFiles: rewriting what the reader read
// from the reference writer's files (metadata in order, tensors in order)
// gives the same bytes, so reader and writer agree with gguf-py's layout.
func TestWriteGGUFReproducesReferenceFiles(t *testing.T) {
	for _, name := range []string{"tiny-tied-f32-q4_0.gguf", "tiny-tied-f32-q8_0.gguf", "small-tied-bf16-q4_k_m.gguf"} {
		want, err := os.ReadFile(filepath.Join(ggufDir, name))
		require.NoError(t, err)
		g, err := OpenGGUF(filepath.Join(ggufDir, name))
		require.NoError(t, err)
		var tensors []WriteTensor
		for _, ti := range g.Tensors {
			tensor, err := g.Tensor(ti.Name)
			require.NoError(t, err)
			tensors = append(tensors, WriteTensor{Name: ti.Name, DType: ti.DType, Shape: ti.Shape, Data: tensor.Raw})
		}
		var buf bytes.Buffer
		require.NoError(t, WriteGGUF(&buf, g.KVs, tensors))
		require.True(t, bytes.Equal(want, buf.Bytes()), "%s: rewritten file differs", name)
		g.Close()
	}
}

func TestWriteGGUFFileRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.gguf")
	q, err := Quantize(Q4_K, make([]float32, 2*256), 2, 256, nil)
	require.NoError(t, err)
	kvs := []GGUFKV{
		{Key: "general.architecture", Type: GGUFString, Value: "test"},
		{Key: "general.alignment", Type: GGUFUint32, Value: uint64(64)},
		{Key: "a.list", Type: GGUFArray, Elem: GGUFInt32, Value: []int64{-1, 2}},
		{Key: "a.f", Type: GGUFFloat32, Value: 0.5},
	}
	tensors := []WriteTensor{
		{Name: "x", DType: BF16, Shape: []int{3, 2}, Data: BF16Bytes([]float32{1, 2, 3, 4, 5, 6})},
		{Name: "q", DType: Q4_K, Shape: []int{2, 256}, Data: q},
	}
	require.NoError(t, WriteGGUFFile(path, kvs, tensors))
	g, err := OpenGGUF(path)
	require.NoError(t, err)
	defer g.Close()
	require.Equal(t, int64(64), g.Alignment)
	ti, ok := g.Info("x")
	require.True(t, ok)
	require.Equal(t, []uint64{2, 3}, ti.NE)
	x, err := g.Tensor("x")
	require.NoError(t, err)
	vals, err := x.Float32()
	require.NoError(t, err)
	require.Equal(t, []float32{1, 2, 3, 4, 5, 6}, vals)
	ints, err := g.Ints("a.list")
	require.NoError(t, err)
	require.Equal(t, []int32{-1, 2}, ints)
	qi, _ := g.Info("q")
	require.Equal(t, int64(64), qi.Offset) // 12 bytes of x, padded to 64

	for _, c := range []struct {
		kvs     []GGUFKV
		tensors []WriteTensor
		want    string
	}{
		{[]GGUFKV{{Key: "k", Type: GGUFUint8, Value: uint64(300)}}, nil, `metadata key "k": value 300 (uint64) is not a uint8`},
		{[]GGUFKV{{Key: "k", Type: GGUFString, Value: "a"}, {Key: "k", Type: GGUFString, Value: "b"}}, nil, `"k" given twice`},
		{nil, []WriteTensor{{Name: "t", DType: BOOL, Shape: []int{1}, Data: []byte{1}}}, "dtype BOOL has no GGUF type"},
		{nil, []WriteTensor{{Name: "t", DType: Q8_0, Shape: []int{1, 48}, Data: make([]byte, 51)}}, "51 bytes of data do not match Q8_0 [1 48]"},
	} {
		err := WriteGGUFFile(filepath.Join(t.TempDir(), "bad.gguf"), c.kvs, c.tensors)
		requireError(t, err, "bad.gguf", c.want)
	}
}
