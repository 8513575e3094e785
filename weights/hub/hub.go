// Package hub finds and downloads models in the Hugging Face hub's layout:
// a repo id such as "Qwen/Qwen3-0.6B" names a model, and the files live in
// the same cache directory transformers and huggingface-cli use,
//
//	$HF_HUB_CACHE (default $HF_HOME/hub, default ~/.cache/huggingface/hub)
//	  models--Qwen--Qwen3-0.6B/
//	    refs/main                      the commit that "main" resolved to
//	    blobs/<sha256 or git blob id>  file contents, named by their hash
//	    snapshots/<commit>/config.json symbolic links into blobs/
//
// so a model downloaded by any of them is found without a copy, and one
// pulled here is found by them.
package hub

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/qwgpu/qwgpu/weights"
)

// DefaultEndpoint is the hub's address; HF_ENDPOINT overrides it, as it
// does for huggingface_hub (mirrors, and the tests' fake hub).
const DefaultEndpoint = "https://huggingface.co"

var (
	repoPart = `[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?`
	repoRE   = regexp.MustCompile(`^` + repoPart + `/` + repoPart + `$`)
	commitRE = regexp.MustCompile(`^[0-9a-f]{40}$`)
	hexRE    = regexp.MustCompile(`^[0-9a-f]{40,64}$`)
	// revisionRE: a branch, tag or commit, as a ref file name.
	revisionRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._/-]{0,199}$`)
)

// IsRepoID reports whether s has the form of a hub repo id, "org/name".
// (A local path of that form is for the caller to prefer.)
func IsRepoID(s string) bool {
	return repoRE.MatchString(s) && !strings.Contains(s, "..")
}

// CacheDir is the hub cache directory: HF_HUB_CACHE, else HF_HOME/hub,
// else $XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub.
func CacheDir() (string, error) {
	if d := os.Getenv("HF_HUB_CACHE"); d != "" {
		return d, nil
	}
	if d := os.Getenv("HF_HOME"); d != "" {
		return filepath.Join(d, "hub"), nil
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "huggingface", "hub"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("no Hugging Face cache: set HF_HOME (%v)", err)
	}
	return filepath.Join(home, ".cache", "huggingface", "hub"), nil
}

// Endpoint is HF_ENDPOINT or DefaultEndpoint.
func Endpoint() string {
	if e := os.Getenv("HF_ENDPOINT"); e != "" {
		return strings.TrimRight(e, "/")
	}
	return DefaultEndpoint
}

// repoDir is models--Org--Name under cache.
func repoDir(cache, repo string) string {
	return filepath.Join(cache, "models--"+strings.ReplaceAll(repo, "/", "--"))
}

// ErrNotCached is returned (wrapped) by Resolve for a model not in the cache.
var ErrNotCached = errors.New("not in the Hugging Face cache")

// Resolve returns the snapshot directory of repo at revision ("" for
// main) in the cache, without any network access.
func Resolve(cache, repo, revision string) (string, error) {
	if !IsRepoID(repo) {
		return "", fmt.Errorf("%q is not a Hugging Face repo id (org/name)", repo)
	}
	if revision == "" {
		revision = "main"
	}
	if !revisionRE.MatchString(revision) || strings.Contains(revision, "..") {
		return "", fmt.Errorf("revision %q: not a branch, tag or commit name", revision)
	}
	dir := repoDir(cache, repo)
	commit := revision
	if !commitRE.MatchString(revision) {
		ref := filepath.Join(dir, "refs", filepath.FromSlash(revision))
		if _, err := os.Lstat(ref); errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("%s: %w (%s): run 'qwgpu pull %s'", repo, ErrNotCached, cache, repo)
		}
		data, err := weights.ReadFileLimited(ref, 256)
		if err != nil {
			return "", err
		}
		commit = strings.TrimSpace(string(data))
		if !commitRE.MatchString(commit) {
			return "", fmt.Errorf("%s: holds %q, not a commit id", ref, commit)
		}
	}
	snap := filepath.Join(dir, "snapshots", commit)
	st, err := os.Stat(snap)
	if err != nil || !st.IsDir() {
		return "", fmt.Errorf("%s at %s: %w (%s): run 'qwgpu pull %s'", repo, revision, ErrNotCached, cache, repo)
	}
	return snap, nil
}
