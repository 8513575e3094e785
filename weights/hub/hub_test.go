package hub

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestIsRepoID(t *testing.T) {
	for _, s := range []string{"Qwen/Qwen3-0.6B", "a/b", "org-1/model_name.v2"} {
		require.True(t, IsRepoID(s), s)
	}
	for _, s := range []string{"", "Qwen3-0.6B", "/abs/path", "a/b/c", "./a", "a/..", "../a", "a//b", "Qwen/", "/Qwen", "a/.b", "a/b.."} {
		require.False(t, IsRepoID(s), s)
	}
}

func TestCacheDir(t *testing.T) {
	t.Setenv("HF_HUB_CACHE", "")
	t.Setenv("HF_HOME", "/x/hf")
	d, err := CacheDir()
	require.NoError(t, err)
	require.Equal(t, filepath.FromSlash("/x/hf/hub"), d)
	t.Setenv("HF_HUB_CACHE", "/y/cache")
	d, _ = CacheDir()
	require.Equal(t, "/y/cache", d)
	t.Setenv("HF_HUB_CACHE", "")
	t.Setenv("HF_HOME", "")
	t.Setenv("XDG_CACHE_HOME", "/z")
	d, _ = CacheDir()
	require.Equal(t, filepath.FromSlash("/z/huggingface/hub"), d)
}

// testRepo is a small model repo: real files would do no better, since
// only bytes and hashes matter here.
func testRepo() *fakeHub {
	h := newFakeHub("Org/Tiny-Model")
	h.files["config.json"] = []byte(`{"model_type": "qwen3"}`)
	h.files["README.md"] = []byte("# not a model file\n")
	w := make([]byte, 3<<20+17)
	for i := range w {
		w[i] = byte(i * 7 % 251)
	}
	h.files["model.safetensors"] = w
	h.lfs["model.safetensors"] = true
	return h
}

func TestPullAndResolve(t *testing.T) {
	h := testRepo()
	srv := h.start()
	defer srv.Close()
	cache := t.TempDir()
	var progress []int64
	snap, err := Pull(context.Background(), h.repo, PullOptions{Endpoint: srv.URL, Cache: cache,
		Progress: func(name string, done, total int64) {
			if name == "model.safetensors" {
				require.Equal(t, int64(len(h.files[name])), total)
				progress = append(progress, done)
			}
		}})
	require.NoError(t, err)
	require.Equal(t, filepath.Join(cache, "models--Org--Tiny-Model", "snapshots", h.commit), snap)
	for _, name := range []string{"config.json", "model.safetensors"} {
		got, err := os.ReadFile(filepath.Join(snap, name))
		require.NoError(t, err)
		require.Equal(t, h.files[name], got, name)
		// A link into blobs/, named by the hash transformers uses.
		target, err := os.Readlink(filepath.Join(snap, name))
		require.NoError(t, err)
		require.True(t, strings.HasPrefix(target, filepath.FromSlash("../../blobs/")), target)
	}
	sum := sha256.Sum256(h.files["model.safetensors"])
	_, err = os.Stat(filepath.Join(cache, "models--Org--Tiny-Model", "blobs", hex.EncodeToString(sum[:])))
	require.NoError(t, err, "LFS blobs are named by their sha256")
	_, err = os.Stat(filepath.Join(snap, "README.md"))
	require.True(t, os.IsNotExist(err), "only model files are pulled")
	require.Greater(t, len(progress), 1)
	require.Equal(t, int64(len(h.files["model.safetensors"])), progress[len(progress)-1])
	ref, err := os.ReadFile(filepath.Join(cache, "models--Org--Tiny-Model", "refs", "main"))
	require.NoError(t, err)
	require.Equal(t, h.commit, string(ref))

	// Resolve finds it offline, by branch and by commit.
	got, err := Resolve(cache, h.repo, "")
	require.NoError(t, err)
	require.Equal(t, snap, got)
	got, err = Resolve(cache, h.repo, h.commit)
	require.NoError(t, err)
	require.Equal(t, snap, got)
	_, err = Resolve(cache, "Org/Other", "")
	require.ErrorIs(t, err, ErrNotCached)
	require.ErrorContains(t, err, "qwgpu pull Org/Other")

	// A second pull asks for metadata only.
	n := len(h.log())
	_, err = Pull(context.Background(), h.repo, PullOptions{Endpoint: srv.URL, Cache: cache})
	require.NoError(t, err)
	for _, r := range h.log()[n:] {
		require.NotContains(t, r, "/resolve/", "nothing downloaded again")
	}
}

func TestPullResume(t *testing.T) {
	h := testRepo()
	h.cutAfter["model.safetensors"] = 1 << 20
	srv := h.start()
	defer srv.Close()
	cache := t.TempDir()
	_, err := Pull(context.Background(), h.repo, PullOptions{Endpoint: srv.URL, Cache: cache})
	require.ErrorContains(t, err, "model.safetensors")
	require.ErrorContains(t, err, "run pull again to resume")
	// The second attempt asks for the rest only.
	n := len(h.log())
	snap, err := Pull(context.Background(), h.repo, PullOptions{Endpoint: srv.URL, Cache: cache})
	require.NoError(t, err)
	got, err := os.ReadFile(filepath.Join(snap, "model.safetensors"))
	require.NoError(t, err)
	require.Equal(t, h.files["model.safetensors"], got)
	require.Contains(t, h.log()[n:], "GET /Org/Tiny-Model/resolve/"+h.commit+"/model.safetensors bytes=1048576-")

	// A server that ignores ranges still gives the right file.
	h2 := testRepo()
	h2.cutAfter["model.safetensors"] = 1 << 20
	h2.noRange = true
	srv2 := h2.start()
	defer srv2.Close()
	cache2 := t.TempDir()
	_, err = Pull(context.Background(), h2.repo, PullOptions{Endpoint: srv2.URL, Cache: cache2})
	require.Error(t, err)
	snap, err = Pull(context.Background(), h2.repo, PullOptions{Endpoint: srv2.URL, Cache: cache2})
	require.NoError(t, err)
	got, err = os.ReadFile(filepath.Join(snap, "model.safetensors"))
	require.NoError(t, err)
	require.Equal(t, h2.files["model.safetensors"], got)
}

func TestPullRefusesBadData(t *testing.T) {
	t.Run("corrupt LFS file", func(t *testing.T) {
		h := testRepo()
		bad := append([]byte(nil), h.files["model.safetensors"]...)
		bad[12345] ^= 1
		h.corrupt["model.safetensors"] = bad
		srv := h.start()
		defer srv.Close()
		cache := t.TempDir()
		_, err := Pull(context.Background(), h.repo, PullOptions{Endpoint: srv.URL, Cache: cache})
		require.ErrorContains(t, err, "model.safetensors: sha256")
		require.ErrorContains(t, err, "corrupt")
		blobs, _ := os.ReadDir(filepath.Join(cache, "models--Org--Tiny-Model", "blobs"))
		for _, b := range blobs {
			require.NotContains(t, b.Name(), ".incomplete", "a corrupt download is not kept for resuming")
			require.NotEqual(t, 64, len(b.Name()), "no blob under the sha256 name")
		}
	})
	t.Run("corrupt small file", func(t *testing.T) {
		h := testRepo()
		h.corrupt["config.json"] = []byte(`{"model_type": "qwen2"}`)
		srv := h.start()
		defer srv.Close()
		_, err := Pull(context.Background(), h.repo, PullOptions{Endpoint: srv.URL, Cache: t.TempDir()})
		require.ErrorContains(t, err, "config.json: git blob id")
	})
	t.Run("file name escaping the cache", func(t *testing.T) {
		h := testRepo()
		h.extraSiblings = []map[string]any{{"rfilename": "../../evil.safetensors", "size": 3, "blobId": strings.Repeat("0", 40)}}
		srv := h.start()
		defer srv.Close()
		_, err := Pull(context.Background(), h.repo, PullOptions{Endpoint: srv.URL, Cache: t.TempDir(),
			Files: func(string) bool { return true }})
		require.ErrorContains(t, err, `"../../evil.safetensors"`)
	})
	t.Run("hash that is not one", func(t *testing.T) {
		h := testRepo()
		h.extraSiblings = []map[string]any{{"rfilename": "x.safetensors", "size": 3, "lfs": map[string]any{"sha256": "../../etc", "size": 3}}}
		srv := h.start()
		defer srv.Close()
		_, err := Pull(context.Background(), h.repo, PullOptions{Endpoint: srv.URL, Cache: t.TempDir()})
		require.ErrorContains(t, err, "no usable hash")
	})
	t.Run("unknown revision", func(t *testing.T) {
		h := testRepo()
		srv := h.start()
		defer srv.Close()
		_, err := Pull(context.Background(), h.repo, PullOptions{Endpoint: srv.URL, Cache: t.TempDir(), Revision: "v9"})
		require.ErrorContains(t, err, "404")
	})
	t.Run("not a repo id", func(t *testing.T) {
		_, err := Pull(context.Background(), "../etc", PullOptions{Endpoint: "http://127.0.0.1:1", Cache: t.TempDir()})
		require.ErrorContains(t, err, "not a Hugging Face repo id")
	})
}
