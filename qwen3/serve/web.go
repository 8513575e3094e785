package serve

import (
	_ "embed"
	"net/http"
)

// chatPage is the chat page at /: one HTML file, no build step.
//
//go:embed web/index.html
var chatPage []byte

func (s *Server) page(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'")
	w.Write(chatPage)
}
