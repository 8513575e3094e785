package hub

import (
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
)

// maxInfoBytes bounds the hub's JSON answer about a repo.
const maxInfoBytes = 16 << 20

// Progress is told how far each file's download is; total is the file's
// size from the hub's metadata.
type Progress func(file string, done, total int64)

// PullOptions configure Pull; the zero value pulls main from Endpoint()
// into CacheDir().
type PullOptions struct {
	Revision string       // branch, tag or commit; default "main"
	Endpoint string       // default Endpoint()
	Cache    string       // default CacheDir()
	Client   *http.Client // default http.DefaultClient
	Progress Progress
	// Files chooses what to download among the repo's files; default
	// ModelFile.
	Files func(name string) bool
}

// ModelFile is what a Qwen3 checkpoint needs: the configs, the tokenizer
// and the safetensors weights (with their index when sharded).
func ModelFile(name string) bool {
	switch name {
	case "config.json", "generation_config.json", "tokenizer.json", "model.safetensors.index.json":
		return true
	}
	return !strings.Contains(name, "/") && strings.HasSuffix(name, ".safetensors")
}

// repoInfo is the part of GET /api/models/{repo}/revision/{rev}?blobs=true
// that Pull reads.
type repoInfo struct {
	SHA      string `json:"sha"`
	Siblings []struct {
		Name   string `json:"rfilename"`
		Size   *int64 `json:"size"`
		BlobID string `json:"blobId"` // git blob sha1
		LFS    *struct {
			SHA256 string `json:"sha256"`
			Size   int64  `json:"size"`
		} `json:"lfs"`
	} `json:"siblings"`
}

// remoteFile is one file to fetch, with what it must hash to.
type remoteFile struct {
	name string
	size int64
	blob string // the blob's name in the cache: sha256 (LFS) or git sha1
	lfs  bool
}

// Pull downloads repo's model files into the cache and returns the
// snapshot directory. A file already in the cache is not fetched again; a
// partial download (blobs/<hash>.incomplete) is resumed with a range
// request. Each file is checked against the hub's metadata before it
// enters the cache: its size, and its sha256 (LFS files) or git blob id.
func Pull(ctx context.Context, repo string, opt PullOptions) (string, error) {
	if !IsRepoID(repo) {
		return "", fmt.Errorf("%q is not a Hugging Face repo id (org/name)", repo)
	}
	if opt.Revision == "" {
		opt.Revision = "main"
	}
	if !revisionRE.MatchString(opt.Revision) || strings.Contains(opt.Revision, "..") {
		return "", fmt.Errorf("revision %q: not a branch, tag or commit name", opt.Revision)
	}
	if opt.Endpoint == "" {
		opt.Endpoint = Endpoint()
	}
	if opt.Cache == "" {
		c, err := CacheDir()
		if err != nil {
			return "", err
		}
		opt.Cache = c
	}
	if opt.Client == nil {
		opt.Client = http.DefaultClient
	}
	if opt.Files == nil {
		opt.Files = ModelFile
	}
	info, err := fetchInfo(ctx, repo, opt)
	if err != nil {
		return "", err
	}
	files, err := info.files(repo, opt.Files)
	if err != nil {
		return "", err
	}
	dir := repoDir(opt.Cache, repo)
	snap := filepath.Join(dir, "snapshots", info.SHA)
	for _, d := range []string{filepath.Join(dir, "blobs"), snap, filepath.Join(dir, "refs")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return "", err
		}
	}
	for _, f := range files {
		if err := fetchFile(ctx, repo, info.SHA, dir, f, opt); err != nil {
			return "", err
		}
		if err := linkSnapshot(dir, snap, f); err != nil {
			return "", err
		}
	}
	if !commitRE.MatchString(opt.Revision) {
		ref := filepath.Join(dir, "refs", filepath.FromSlash(opt.Revision))
		if err := os.MkdirAll(filepath.Dir(ref), 0o755); err != nil {
			return "", err
		}
		if err := os.WriteFile(ref, []byte(info.SHA), 0o644); err != nil {
			return "", err
		}
	}
	return snap, nil
}

func fetchInfo(ctx context.Context, repo string, opt PullOptions) (*repoInfo, error) {
	u := fmt.Sprintf("%s/api/models/%s/revision/%s?blobs=true", opt.Endpoint, repo, url.PathEscape(opt.Revision))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := opt.Client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", repo, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s at %s: the hub answered %s", repo, opt.Revision, resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxInfoBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%s: reading the hub's answer: %v", repo, err)
	}
	if len(data) > maxInfoBytes {
		return nil, fmt.Errorf("%s: the hub's answer is larger than %d bytes", repo, maxInfoBytes)
	}
	var info repoInfo
	if err := json.Unmarshal(data, &info); err != nil {
		return nil, fmt.Errorf("%s: the hub's answer is not the expected JSON: %v", repo, err)
	}
	if !commitRE.MatchString(info.SHA) {
		return nil, fmt.Errorf("%s: the hub gave no commit id (%q)", repo, info.SHA)
	}
	return &info, nil
}

// files picks the wanted files and checks what the hub says about them:
// their names become paths and their hashes file names, so neither may
// escape the cache.
func (info *repoInfo) files(repo string, want func(string) bool) ([]remoteFile, error) {
	var out []remoteFile
	for _, s := range info.Siblings {
		if !want(s.Name) {
			continue
		}
		if s.Name == "" || path.IsAbs(s.Name) || path.Clean(s.Name) != s.Name || strings.HasPrefix(s.Name, "../") ||
			strings.Contains(s.Name, "\\") || s.Name == ".." {
			return nil, fmt.Errorf("%s: the hub lists a file named %q, which is not a plain relative path", repo, s.Name)
		}
		f := remoteFile{name: s.Name}
		switch {
		case s.LFS != nil:
			f.blob, f.size, f.lfs = strings.ToLower(s.LFS.SHA256), s.LFS.Size, true
		case s.Size != nil:
			f.blob, f.size = strings.ToLower(s.BlobID), *s.Size
		default:
			return nil, fmt.Errorf("%s: %s: the hub gave no size (metadata needed for the check)", repo, s.Name)
		}
		if !hexRE.MatchString(f.blob) || (f.lfs && len(f.blob) != 64) || (!f.lfs && len(f.blob) != 40) {
			return nil, fmt.Errorf("%s: %s: the hub gave no usable hash (%q)", repo, s.Name, f.blob)
		}
		if f.size < 0 {
			return nil, fmt.Errorf("%s: %s: negative size %d", repo, s.Name, f.size)
		}
		out = append(out, f)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: none of the repo's files is a model file (config.json, tokenizer.json, *.safetensors)", repo)
	}
	return out, nil
}

// fetchFile makes sure blobs/<hash> holds f, resuming a partial download.
func fetchFile(ctx context.Context, repo, commit, dir string, f remoteFile, opt PullOptions) error {
	blob := filepath.Join(dir, "blobs", f.blob)
	if st, err := os.Stat(blob); err == nil && st.Mode().IsRegular() && st.Size() == f.size {
		report(opt.Progress, f.name, f.size, f.size)
		return nil
	}
	part := blob + ".incomplete"
	out, err := os.OpenFile(part, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	defer out.Close()
	h := newHasher(f)
	have, err := io.Copy(h, out) // what an earlier attempt left
	if err != nil {
		return fmt.Errorf("%s: %v", part, err)
	}
	if have > f.size {
		// Not a prefix of this file: start over.
		if err := out.Truncate(0); err != nil {
			return err
		}
		if _, err := out.Seek(0, io.SeekStart); err != nil {
			return err
		}
		h, have = newHasher(f), 0
	}
	if have < f.size {
		if err := download(ctx, repo, commit, f, opt, out, h, have); err != nil {
			return err
		}
	}
	if err := h.check(f); err != nil {
		// A corrupt partial download must not be resumed again.
		out.Close()
		os.Remove(part)
		return fmt.Errorf("%s: %s: %v", repo, f.name, err)
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Rename(part, blob)
}

// download appends bytes from offset have to out and h.
func download(ctx context.Context, repo, commit string, f remoteFile, opt PullOptions, out *os.File, h *hasher, have int64) error {
	u := fmt.Sprintf("%s/%s/resolve/%s/%s", opt.Endpoint, repo, commit, escapePath(f.name))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	if have > 0 {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(have, 10)+"-")
	}
	resp, err := opt.Client.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %s: %v", repo, f.name, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusPartialContent && have > 0:
	case resp.StatusCode == http.StatusOK:
		// The server ignored the range: start from the beginning.
		if have > 0 {
			if err := out.Truncate(0); err != nil {
				return err
			}
			if _, err := out.Seek(0, io.SeekStart); err != nil {
				return err
			}
			*h, have = *newHasher(f), 0
		}
	default:
		return fmt.Errorf("%s: %s: the hub answered %s", repo, f.name, resp.Status)
	}
	// Never more than the metadata promised: a server sending more is wrong.
	body := io.LimitReader(resp.Body, f.size-have+1)
	buf := make([]byte, 1<<20)
	for {
		n, rerr := body.Read(buf)
		if n > 0 {
			if _, err := out.Write(buf[:n]); err != nil {
				return err
			}
			h.Write(buf[:n])
			have += int64(n)
			report(opt.Progress, f.name, min(have, f.size), f.size)
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return fmt.Errorf("%s: %s: download interrupted at %d of %d bytes (run pull again to resume): %v", repo, f.name, have, f.size, rerr)
		}
	}
	return nil
}

// hasher computes what the hub's metadata names a file by: sha256 for LFS
// files, the git blob id (sha1 of "blob <size>\x00" and the contents) for
// the others.
type hasher struct {
	hash.Hash
	n int64
}

func newHasher(f remoteFile) *hasher {
	if f.lfs {
		return &hasher{Hash: sha256.New()}
	}
	h := sha1.New()
	fmt.Fprintf(h, "blob %d\x00", f.size)
	return &hasher{Hash: h}
}

func (h *hasher) Write(p []byte) (int, error) {
	h.n += int64(len(p))
	return h.Hash.Write(p)
}

func (h *hasher) check(f remoteFile) error {
	if h.n != f.size {
		return fmt.Errorf("%d bytes, but the hub says %d", h.n, f.size)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != f.blob {
		what := "git blob id"
		if f.lfs {
			what = "sha256"
		}
		return fmt.Errorf("%s %s, but the hub says %s: the download is corrupt and was removed", what, got, f.blob)
	}
	return nil
}

// linkSnapshot makes snapshots/<commit>/<name> point at the blob, with a
// relative symbolic link as huggingface_hub does (a copy where links are
// not allowed).
func linkSnapshot(dir, snap string, f remoteFile) error {
	dst := filepath.Join(snap, filepath.FromSlash(f.name))
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	blob := filepath.Join(dir, "blobs", f.blob)
	rel, err := filepath.Rel(filepath.Dir(dst), blob)
	if err != nil {
		return err
	}
	os.Remove(dst)
	if err := os.Symlink(rel, dst); err == nil {
		return nil
	}
	return copyFile(blob, dst)
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func escapePath(name string) string {
	parts := strings.Split(name, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return strings.Join(parts, "/")
}

func report(p Progress, name string, done, total int64) {
	if p != nil {
		p(name, done, total)
	}
}
