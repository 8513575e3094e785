package main

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// serveModelDir is a fake Hugging Face hub over real HTTP, serving the
// files of dir as repo at one commit: the revision API with blob metadata
// and /resolve/ downloads, in the hub's URL layout.
func serveModelDir(t *testing.T, repo, dir string) *httptest.Server {
	t.Helper()
	const commit = "0123456789abcdef0123456789abcdef01234567"
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	files := map[string][]byte{}
	var siblings []map[string]any
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		require.NoError(t, err)
		files[e.Name()] = data
		git := sha1.Sum(append([]byte(fmt.Sprintf("blob %d\x00", len(data))), data...))
		s := map[string]any{"rfilename": e.Name(), "size": len(data), "blobId": hex.EncodeToString(git[:])}
		if strings.HasSuffix(e.Name(), ".safetensors") || e.Name() == "tokenizer.json" {
			sum := sha256.Sum256(data)
			s["lfs"] = map[string]any{"sha256": hex.EncodeToString(sum[:]), "size": len(data)}
		}
		siblings = append(siblings, s)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/models/"+repo+"/revision/main" {
			json.NewEncoder(w).Encode(map[string]any{"sha": commit, "siblings": siblings})
			return
		}
		name, ok := strings.CutPrefix(r.URL.Path, "/"+repo+"/resolve/"+commit+"/")
		if data, found := files[name]; ok && found {
			http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(data))
			return
		}
		http.NotFound(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestPullAndModelByRepoID(t *testing.T) {
	dir := microModel(t, nil)
	srv := serveModelDir(t, "Test/Micro-Qwen3", dir)
	env := []string{"HF_ENDPOINT=" + srv.URL, "HF_HOME=" + t.TempDir(), "HF_HUB_CACHE="}
	o := runOpts{env: env}

	// Before the pull: the repo id is looked up and not found.
	r := qwgpuWith(t, o, "tokenize", "-m", "Test/Micro-Qwen3", "--json", "hello")
	requireCleanError(t, r, "--model Test/Micro-Qwen3", "not in the Hugging Face cache", "qwgpu pull Test/Micro-Qwen3")

	r = qwgpuWith(t, o, "pull", "Test/Micro-Qwen3")
	requireOK(t, r)
	snap := strings.TrimSpace(r.stdout)
	require.True(t, strings.HasSuffix(snap, filepath.Join("hub", "models--Test--Micro-Qwen3", "snapshots", "0123456789abcdef0123456789abcdef01234567")), snap)
	for _, name := range []string{"config.json", "tokenizer.json", "model.safetensors", "generation_config.json"} {
		want, err := os.ReadFile(filepath.Join(dir, name))
		require.NoError(t, err)
		got, err := os.ReadFile(filepath.Join(snap, name))
		require.NoError(t, err)
		require.Equal(t, want, got, name)
	}
	require.Contains(t, r.stderr, "model.safetensors", "progress names each file")

	// Now --model takes the repo id, offline: the same ids as the directory.
	byID := qwgpuWith(t, o, "tokenize", "-m", "Test/Micro-Qwen3", "--json", "hello world")
	requireOK(t, byID)
	byDir := qwgpu(t, "tokenize", "-m", dir, "--json", "hello world")
	requireOK(t, byDir)
	require.Equal(t, byDir.stdout, byID.stdout)
	// run reads the model from the cache (refused for --ctx before a GPU opens).
	r = qwgpuWith(t, o, "run", "-m", "Test/Micro-Qwen3", "-c", "50000", "hi")
	requireCleanError(t, r, "--ctx 50000", "max_position_embeddings 40960")

	r = qwgpuWith(t, o, "pull", "not-a-repo")
	requireCleanError(t, r, `"not-a-repo" is not a Hugging Face repo id`)
	r = qwgpuWith(t, o, "pull", "Test/Absent")
	requireCleanError(t, r, "Test/Absent", "404")
}
