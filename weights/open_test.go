package weights

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestOpenRegularRefusesWhatIsNotAFile(t *testing.T) {
	dir := t.TempDir()
	regular := filepath.Join(dir, "config.json")
	require.NoError(t, os.WriteFile(regular, []byte(`{"a": 1}`), 0o644))
	fifo := filepath.Join(dir, "fifo")
	require.NoError(t, syscall.Mkfifo(fifo, 0o644))
	require.NoError(t, os.Symlink(filepath.Join(dir, "gone"), filepath.Join(dir, "dangling")))
	require.NoError(t, os.Symlink(filepath.Join(dir, "loop2"), filepath.Join(dir, "loop1")))
	require.NoError(t, os.Symlink(filepath.Join(dir, "loop1"), filepath.Join(dir, "loop2")))
	require.NoError(t, os.Symlink(regular, filepath.Join(dir, "link")))

	cases := []struct{ name, want string }{
		{"fifo", "not a regular file (a named pipe)"},
		{"dangling", "dangling symbolic link to"},
		{"loop1", "symbolic links loop"},
		{"missing", "no such file"},
		{".", "not a regular file (a directory)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			done := make(chan error, 1)
			go func() {
				_, err := ReadFileLimited(filepath.Join(dir, c.name), MaxConfigBytes)
				done <- err
			}()
			select {
			case err := <-done:
				require.Error(t, err)
				require.Contains(t, err.Error(), c.want)
				require.NotContains(t, err.Error(), "\n")
			case <-time.After(5 * time.Second):
				t.Fatal("blocked: a non-regular file was opened for reading")
			}
		})
	}
	data, err := ReadFileLimited(filepath.Join(dir, "link"), MaxConfigBytes)
	require.NoError(t, err)
	require.Equal(t, `{"a": 1}`, string(data))
}

func TestReadFileLimitedBound(t *testing.T) {
	path := filepath.Join(t.TempDir(), "big.json")
	require.NoError(t, os.WriteFile(path, []byte(strings.Repeat("x", 2000)), 0o644))
	_, err := ReadFileLimited(path, 1000)
	require.ErrorContains(t, err, "2000 bytes, more than the 1000 B")
	data, err := ReadFileLimited(path, 2000)
	require.NoError(t, err)
	require.Len(t, data, 2000)
}

func TestHumanBytes(t *testing.T) {
	require.Equal(t, "512 B", HumanBytes(512))
	require.Equal(t, "4.0 MiB", HumanBytes(4<<20))
	require.Equal(t, "1.5 GiB", HumanBytes(3<<29))
}
