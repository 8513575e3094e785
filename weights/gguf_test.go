package weights

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func writeTemp(t *testing.T, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(path, data, 0o644))
	return path
}

func TestGGUFSample(t *testing.T) {
	g, err := OpenGGUF(writeTemp(t, "s.gguf", sampleGGUF()))
	require.NoError(t, err)
	defer g.Close()
	arch, err := g.String("general.architecture")
	require.NoError(t, err)
	require.Equal(t, "test", arch)
	a, err := g.Tensor("a")
	require.NoError(t, err)
	require.Equal(t, []int{2, 4}, a.Shape) // ne [4, 2] reversed
	vals, err := a.Float32()
	require.NoError(t, err)
	require.Equal(t, []float32{1, 2, 3, 4, 5, 6, 7, 8}, vals)
	q, err := g.Tensor("q")
	require.NoError(t, err)
	require.Equal(t, Q8_0, q.DType)
	qv, err := q.Float32()
	require.NoError(t, err)
	for i, v := range qv {
		require.Equal(t, float32(i-16)*0.5, v) // q·d by hand
	}
	_, err = g.Uint("general.architecture")
	requireError(t, err, "s.gguf", `"general.architecture"`, "want an integer, got string")
	_, err = g.String("missing.key")
	requireError(t, err, `"missing.key": missing`)
	_, err = g.Tensor("nope")
	requireError(t, err, `"nope"`, "not found")
	require.NoError(t, g.Close())
	_, err = g.Tensor("a")
	requireError(t, err, "closed")
}

// TestGGUFCorrupt: every kind of damaged header gets a one-line error
// naming the file and what is wrong, never a panic.
func TestGGUFCorrupt(t *testing.T) {
	b := func() *ggufBuilder { return &ggufBuilder{} }
	validTail := func(x *ggufBuilder) []byte { return x.Bytes() }
	cases := []struct {
		name string
		data []byte
		want []string
	}{
		{"empty", nil, []string{"not a GGUF file"}},
		{"magic", []byte("GGUX\x03\x00\x00\x00"), []string{"not a GGUF file"}},
		{"version 1", validTail(b().header(1, 0, 0)), []string{"GGUF version 1 is not supported"}},
		{"version 0", validTail(b().header(0, 0, 0)), []string{"GGUF version 0 is not supported"}},
		{"big endian", validTail(b().header(0x03000000, 0, 0)), []string{"big-endian"}},
		{"short counts", []byte("GGUF\x03\x00\x00\x00\x01"), []string{"file ends inside the header"}},
		{"kv count", validTail(b().header(3, 0, 1<<40)), []string{"metadata entries cannot fit"}},
		{"key length", validTail(b().header(3, 0, 1).u64(1 << 50).data(16)), []string{"metadata entry 0", "runs past the end"}},
		{"duplicate key", validTail(b().header(3, 0, 2).kvU32("k", 1).kvU32("k", 2)), []string{`metadata key "k" appears twice`}},
		{"value type", validTail(b().header(3, 0, 1).str("k").u32(77).data(8)), []string{`"k"`, "unknown value type 77"}},
		{"string value", validTail(b().header(3, 0, 1).str("k").u32(uint32(GGUFString)).u64(1 << 40)), []string{`"k"`, "runs past the end"}},
		{"array length", validTail(b().header(3, 0, 1).str("k").u32(uint32(GGUFArray)).u32(uint32(GGUFUint32)).u64(1 << 40)), []string{`"k"`, "array of 1099511627776 uint32 values cannot fit"}},
		{"string array", validTail(b().header(3, 0, 1).str("k").u32(uint32(GGUFArray)).u32(uint32(GGUFString)).u64(2).str("a").u64(99)), []string{`"k"`, "runs past the end"}},
		{"nested array", validTail(b().header(3, 0, 1).str("k").u32(uint32(GGUFArray)).u32(uint32(GGUFArray)).u64(0)), []string{`"k"`, "arrays of arrays"}},
		{"bool", validTail(b().header(3, 0, 1).str("k").u32(uint32(GGUFBool)).raw(2)), []string{`"k"`, "neither 0 nor 1"}},
		{"alignment", validTail(b().header(3, 0, 1).kvU32("general.alignment", 24)), []string{"general.alignment", "not a power of two"}},
		{"alignment zero", validTail(b().header(3, 0, 1).kvU32("general.alignment", 0)), []string{"general.alignment", "not a power of two"}},
		{"alignment type", validTail(b().header(3, 0, 1).kvF32("general.alignment", 32)), []string{"general.alignment", "want a uint32, got float32"}},
		{"tensor count", validTail(b().header(3, 1<<40, 0)), []string{"tensors cannot fit"}},
		{"no dims", validTail(b().header(3, 1, 0).tensor("t", 0, 0).data(64)), []string{`tensor "t"`, "0 dimensions"}},
		{"five dims", validTail(b().header(3, 1, 0).tensor("t", 0, 0, 1, 1, 1, 1, 1).data(64)), []string{`tensor "t"`, "5 dimensions"}},
		{"ggml type", validTail(b().header(3, 1, 0).tensor("t", 99, 0, 4).data(64)), []string{`tensor "t"`, "unknown ggml type 99"}},
		{"partial block", validTail(b().header(3, 1, 0).tensor("t", 8, 0, 48).data(64)), []string{`tensor "t"`, "ne[0] = 48 is not a multiple of the Q8_0 block of 32"}},
		{"huge dim", validTail(b().header(3, 1, 0).tensor("t", 0, 0, 1<<40).data(64)), []string{`tensor "t"`, "ne[0] = 1099511627776 is too large"}},
		{"overflow", validTail(b().header(3, 1, 0).tensor("t", 0, 0, 1<<31-1, 1<<31-1, 1<<31-1).data(64)), []string{`tensor "t"`, "too many"}},
		{"unaligned", validTail(b().header(3, 1, 0).tensor("t", 0, 4, 4).pad(32).data(64)), []string{`tensor "t"`, "offset 4 is not a multiple of the alignment 32"}},
		{"past end", validTail(b().header(3, 1, 0).tensor("t", 0, 32, 16).pad(32).data(64)), []string{`tensor "t"`, "data [32, 96) runs past the 64 bytes"}},
		// b starts inside a's 64 bytes.
		{"overlap", validTail(b().header(3, 2, 0).tensor("a", 0, 0, 16).tensor("b", 0, 32, 8).pad(32).data(96)), []string{`tensor "b"`, `overlaps tensor "a"`}},
		{"duplicate tensor", validTail(b().header(3, 2, 0).tensor("a", 0, 0, 4).tensor("a", 0, 32, 4).pad(32).data(64)), []string{`tensor "a"`, "listed twice"}},
		{"data start", validTail(b().header(3, 1, 0).tensor("t", 0, 0, 4)), []string{"data section at byte", "past the end"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := writeTemp(t, "bad.gguf", c.data)
			g, err := OpenGGUF(path)
			require.Nil(t, g)
			requireError(t, err, append([]string{"bad.gguf: "}, c.want...)...)
		})
	}
}

func TestGGUFOpenErrors(t *testing.T) {
	_, err := OpenGGUF(filepath.Join(t.TempDir(), "missing.gguf"))
	requireError(t, err, "missing.gguf: no such file")
	_, err = OpenGGUF(t.TempDir())
	requireError(t, err, "not a regular file")
}
