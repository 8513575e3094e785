package hub

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"
)

// fakeHub serves the hub's URL layout for one repo over real HTTP: the
// revision API with blob metadata and /resolve/ downloads with ranges.
type fakeHub struct {
	repo, commit string
	files        map[string][]byte // name -> contents
	lfs          map[string]bool   // which are LFS files
	// corrupt, when set, replaces a file's served bytes (the metadata
	// still describes the real ones).
	corrupt map[string][]byte
	// cutAfter stops a download after this many bytes of the body.
	cutAfter map[string]int
	// noRange ignores Range headers, as some mirrors do.
	noRange bool
	// extraSiblings are listed as they are (hostile metadata).
	extraSiblings []map[string]any

	mu       sync.Mutex
	requests []string // "GET path range"
}

func newFakeHub(repo string) *fakeHub {
	return &fakeHub{repo: repo, commit: strings.Repeat("ab12", 10), files: map[string][]byte{}, lfs: map[string]bool{},
		corrupt: map[string][]byte{}, cutAfter: map[string]int{}}
}

func (h *fakeHub) start() *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(h.serve))
}

func (h *fakeHub) log() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.requests...)
}

func (h *fakeHub) serve(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	h.requests = append(h.requests, strings.TrimSpace(r.Method+" "+r.URL.Path+" "+r.Header.Get("Range")))
	h.mu.Unlock()
	api := "/api/models/" + h.repo + "/revision/"
	if rev, ok := strings.CutPrefix(r.URL.Path, api); ok {
		if rev != "main" && rev != h.commit {
			http.Error(w, "Revision Not Found", http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(h.info())
		return
	}
	prefix := "/" + h.repo + "/resolve/" + h.commit + "/"
	name, ok := strings.CutPrefix(r.URL.Path, prefix)
	data, found := h.files[name]
	if !ok || !found {
		http.NotFound(w, r)
		return
	}
	if c, bad := h.corrupt[name]; bad {
		data = c
	}
	if h.noRange {
		r.Header.Del("Range")
	}
	if n, cut := h.cutAfter[name]; cut {
		delete(h.cutAfter, name) // only the first attempt fails
		w.Header().Set("Content-Length", fmt.Sprint(len(data)))
		w.WriteHeader(http.StatusOK)
		w.Write(data[:n])
		// Hijack-free way to end early: the handler returns with the
		// body short of Content-Length, so the client sees an error.
		return
	}
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(data))
}

func (h *fakeHub) info() map[string]any {
	var sib []map[string]any
	for name, data := range h.files {
		gitSum := sha1.Sum(append([]byte(fmt.Sprintf("blob %d\x00", len(data))), data...))
		s := map[string]any{"rfilename": name, "size": len(data), "blobId": hex.EncodeToString(gitSum[:])}
		if h.lfs[name] {
			sum := sha256.Sum256(data)
			s["lfs"] = map[string]any{"sha256": hex.EncodeToString(sum[:]), "size": len(data), "pointerSize": 134}
		}
		sib = append(sib, s)
	}
	sib = append(sib, h.extraSiblings...)
	return map[string]any{"id": h.repo, "sha": h.commit, "siblings": sib}
}
