// Package ui serves the operator dashboard: pages embedded in the binary
// (our own HTML, CSS and JavaScript, no build step) that call the REST
// gateway and its NDJSON stream, and the login that trades an API token
// for a session cookie, so that a browser presents the token once.
package ui

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/json"
	"io/fs"
	"log/slog"
	"mime"
	"net/http"
	"path"
	"strings"
)

//go:embed assets
var assets embed.FS

// Prefix is the path the dashboard is served under.
const Prefix = "/ui/"

// maxLoginBytes bounds a login's form: a token and its field name.
const maxLoginBytes = 4 << 10

// Identify names the caller of r from what it presents besides a session
// cookie: a verified client certificate, the given Authorization value,
// or in development mode its address. It fails when that names nobody.
type Identify func(r *http.Request, authorization string) (string, error)

// Options configure the handler.
type Options struct {
	Sessions *Sessions
	Identify Identify
	Logger   *slog.Logger
}

// file is an embedded asset, compressed once when the handler is made.
type file struct {
	body, gzipped []byte
	contentType   string
	etag          string
}

type handler struct {
	Options
	files map[string]file // by path under Prefix; "" is the index
}

// New returns the handler of everything under Prefix. The pages need no
// credentials (they hold no data); the session endpoints check their own.
func New(o Options) (http.Handler, error) {
	h := &handler{Options: o, files: map[string]file{}}
	err := fs.WalkDir(assets, "assets", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := assets.ReadFile(p)
		if err != nil {
			return err
		}
		var gz bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
		zw.Write(body)
		zw.Close()
		sum := sha256.Sum256(body)
		name := strings.TrimPrefix(p, "assets/")
		if name == "index.html" {
			name = ""
		}
		h.files[name] = file{body: body, gzipped: gz.Bytes(), contentType: mime.TypeByExtension(path.Ext(p)),
			etag: `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`}
		return nil
	})
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+Prefix, h.serveFile)
	mux.HandleFunc("POST "+Prefix+"login", h.login)
	mux.HandleFunc("POST "+Prefix+"logout", h.logout)
	mux.HandleFunc("GET "+Prefix+"session", h.session)
	return securityHeaders(mux), nil
}

// securityHeaders keep the pages to our own scripts and styles, out of
// other sites' frames, and their URLs out of Referer headers.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		next.ServeHTTP(w, r)
	})
}

// serveFile serves an asset, gzipped when the browser takes it. Pages
// revalidate every time (no-cache) by their ETag, so a new binary's pages
// are seen at once and an unchanged one costs a 304.
func (h *handler) serveFile(w http.ResponseWriter, r *http.Request) {
	f, ok := h.files[strings.TrimPrefix(r.URL.Path, Prefix)]
	if !ok {
		http.NotFound(w, r)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", f.contentType)
	hd.Set("Cache-Control", "no-cache")
	hd.Set("ETag", f.etag)
	hd.Set("Vary", "Accept-Encoding")
	if r.Header.Get("If-None-Match") == f.etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	body := f.body
	if acceptsGzip(r) {
		hd.Set("Content-Encoding", "gzip")
		body = f.gzipped
	}
	_, _ = w.Write(body)
}

func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		coding, q, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(coding, "gzip") && strings.ReplaceAll(q, " ", "") != "q=0" {
			return true
		}
	}
	return false
}

// login trades an API token (form field token) for a session cookie.
func (h *handler) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxLoginBytes)
	token := strings.TrimSpace(r.PostFormValue("token"))
	if token == "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"message": "token: is required (an API token from --api-tokens-file)"})
		return
	}
	caller, err := h.Identify(r, "Bearer "+token)
	if err != nil {
		h.Logger.Warn("dashboard login refused", "remote", r.RemoteAddr)
		writeJSON(w, http.StatusUnauthorized, map[string]string{"message": "that token matches none configured: check it and try again"})
		return
	}
	h.Sessions.Start(w, r, caller)
	h.Logger.Info("dashboard login", "caller", caller, "remote", r.RemoteAddr)
	writeJSON(w, http.StatusOK, map[string]any{"caller": caller, "session": true})
}

func (h *handler) logout(w http.ResponseWriter, r *http.Request) {
	h.Sessions.End(w, r)
	w.WriteHeader(http.StatusNoContent)
}

// session says who the page calls the API as, or that it must log in
// first (with 200: a page asking who it is did nothing wrong).
func (h *handler) session(w http.ResponseWriter, r *http.Request) {
	if caller, ok := h.Sessions.Caller(r); ok {
		writeJSON(w, http.StatusOK, map[string]any{"caller": caller, "session": true})
		return
	}
	caller, err := h.Identify(r, r.Header.Get("Authorization"))
	if err != nil {
		writeJSON(w, http.StatusOK, map[string]any{"login": true})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"caller": caller, "session": false})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
