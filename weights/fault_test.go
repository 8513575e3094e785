//go:build unix

package weights

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestDetachTruncated: a file truncated after it was opened faults on
// access to the vanished pages; Detach reports that as an error naming
// the file and the tensor instead of dying of SIGBUS.
func TestDetachTruncated(t *testing.T) {
	path := filepath.Join(t.TempDir(), "model.safetensors")
	data := make([]float32, 1<<18) // 1 MiB: many pages past the header
	for i := range data {
		data[i] = float32(i)
	}
	require.NoError(t, WriteFile(path, []WriteTensor{{Name: "w", DType: F32, Shape: []int{len(data)}, Data: F32Bytes(data)}}, nil))
	f, err := Open(path)
	require.NoError(t, err)
	defer f.Close()
	w, err := f.Tensor("w")
	require.NoError(t, err)

	// Intact, the copy holds the same bytes and no longer aliases the map.
	d, err := w.Detach()
	require.NoError(t, err)
	require.Equal(t, w.Raw, d.Raw)
	require.NotSame(t, &w.Raw[0], &d.Raw[0])

	require.NoError(t, os.Truncate(path, 4096))
	_, err = w.Detach()
	require.Error(t, err)
	require.ErrorContains(t, err, path)
	require.ErrorContains(t, err, `tensor "w"`)
	require.ErrorContains(t, err, "changed while being read")
}
