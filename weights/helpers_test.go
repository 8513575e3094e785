package weights

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// requireError asserts that err is a one-line weights error containing each
// of parts.
func requireError(t *testing.T, err error, parts ...string) {
	t.Helper()
	require.Error(t, err)
	msg := err.Error()
	require.True(t, strings.HasPrefix(msg, "weights: "), "message %q lacks the package prefix", msg)
	require.NotContains(t, msg, "\n", "message must be one line")
	for _, p := range parts {
		require.Contains(t, msg, p)
	}
}

// sampleTensors is a small valid file's content: 16 + 12 + 8 bytes of data.
func sampleTensors() []WriteTensor {
	return []WriteTensor{
		{Name: "a", DType: F32, Shape: []int{2, 2}, Data: F32Bytes([]float32{1, 2, 3, 4})},
		{Name: "b", DType: F32, Shape: []int{3}, Data: F32Bytes([]float32{-1, 0.5, 8})},
		{Name: "c", DType: I32, Shape: []int{2}, Data: I32Bytes([]int32{7, -7})},
	}
}

// encode returns the bytes of a safetensors file.
func encode(t testing.TB, tensors []WriteTensor, metadata map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, Write(&buf, tensors, metadata))
	return buf.Bytes()
}

// rawFile assembles a file from a literal header and data, for headers that
// Write would refuse to produce.
func rawFile(header string, data []byte) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	b = append(b, header...)
	return append(b, data...)
}

// splitFile returns the header JSON and data of a file built by encode.
func splitFile(t *testing.T, file []byte) (header, data []byte) {
	t.Helper()
	n := binary.LittleEndian.Uint64(file)
	return file[8 : 8+n], file[8+n:]
}

// editHeader rebuilds a valid file with its header changed by edit. Numbers
// stay json.Number so that integers survive the round trip unchanged.
func editHeader(t *testing.T, file []byte, edit func(h map[string]any)) []byte {
	t.Helper()
	header, data := splitFile(t, file)
	dec := json.NewDecoder(bytes.NewReader(header))
	dec.UseNumber()
	var h map[string]any
	require.NoError(t, dec.Decode(&h))
	edit(h)
	out, err := json.Marshal(h)
	require.NoError(t, err)
	return rawFile(string(out), data)
}

// entry returns the header entry of a tensor for editing.
func entry(h map[string]any, name string) map[string]any {
	return h[name].(map[string]any)
}

// writeBytes writes content to dir/name and returns the path.
func writeBytes(t *testing.T, dir, name string, content []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(path, content, 0o644))
	return path
}
