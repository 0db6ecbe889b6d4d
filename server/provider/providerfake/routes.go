package providerfake

import (
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/accounthealth/accounthealth/server/provider/accountobject"
)

// routes builds the handler: the provider's routes behind faults and
// authentication, the control routes behind authentication only (a fault
// must not lock its author out), and JSON 404s for the rest.
func (f *Fake) routes() http.Handler {
	mux := http.NewServeMux()
	api := map[string]http.HandlerFunc{
		"GET /v2/accounts/{id}":    f.getAccount,
		"GET /v2/accounts":         f.listAccounts,
		"DELETE /v2/accounts/{id}": f.deleteAccount,
		"POST /v2/webhooks":        f.createWebhook,
		"GET /v2/webhooks":         f.listWebhooks,
		"DELETE /v2/webhooks/{id}": f.deleteWebhook,
		"POST /v2/user-tokens":     f.createUserToken,
		"GET /v2/invites":          f.listInvites,
		"POST /v2/invites/{id}":    f.resendInvite,
	}
	f.faultRoutes = map[string]bool{}
	for pattern, h := range api {
		mux.Handle(pattern, f.faulty(f.authenticated(h)))
		_, path, _ := strings.Cut(pattern, " ")
		f.faultRoutes[pattern], f.faultRoutes[path] = true, true
	}
	control := map[string]http.HandlerFunc{
		"POST /_fake/faults":                 f.postFault,
		"DELETE /_fake/faults":               f.deleteFaults,
		"POST /_fake/accounts":               seedRoute(f.AddAccount, func(s AccountSeed) any { return render(s) }),
		"POST /_fake/accounts/{id}/{action}": f.postAction,
		"POST /_fake/accounts/{id}/scan":     f.postScan,
		"POST /_fake/invites":                seedRoute(f.AddInvite, func(s InviteSeed) any { return renderInvite(s, "") }),
	}
	for pattern, h := range control {
		mux.Handle(pattern, f.authenticated(h))
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) { writeDetail(w, http.StatusNotFound, "Not found.") })
	return mux
}

// authenticated checks the API key as HTTP Basic auth, in constant time,
// answering 401 with the provider's kind of body.
func (f *Fake) authenticated(next http.Handler) http.Handler {
	id, secret := []byte(f.opts.KeyID), []byte(f.opts.KeySecret)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotID, gotSecret, ok := r.BasicAuth()
		if !ok {
			w.Header().Set("WWW-Authenticate", `Basic realm="api"`)
			writeDetail(w, http.StatusUnauthorized, "Authentication credentials were not provided.")
			return
		}
		idOK := subtle.ConstantTimeCompare([]byte(gotID), id)
		secretOK := subtle.ConstantTimeCompare([]byte(gotSecret), secret)
		if idOK&secretOK != 1 {
			w.Header().Set("WWW-Authenticate", `Basic realm="api"`)
			writeDetail(w, http.StatusUnauthorized, "Invalid username/password.")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (f *Fake) getAccount(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	a := f.accounts[r.PathValue("id")]
	var obj json.RawMessage
	if a != nil {
		obj = render(a.AccountSeed)
	}
	f.mu.Unlock()
	if a == nil {
		writeDetail(w, http.StatusNotFound, "Not found.")
		return
	}
	writeJSON(w, http.StatusOK, obj)
}

func (f *Fake) listAccounts(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	var entries []entry
	for _, a := range f.sortedAccounts(r.URL.Query().Get("user")) {
		seed := a.AccountSeed
		entries = append(entries, entry{seq: a.seq, obj: func() any { return render(seed) }})
	}
	f.mu.Unlock()
	servePage(w, r, entries)
}

func (f *Fake) deleteAccount(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	f.mu.Lock()
	f.deletes[id]++
	err := f.remove(id, nil)
	f.mu.Unlock()
	if err != nil {
		writeDetail(w, http.StatusNotFound, "Not found.")
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (f *Fake) createWebhook(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Events []string `json:"events"`
		Name   string   `json:"name"`
		URL    string   `json:"url"`
		Secret string   `json:"secret"`
		Config struct {
			IncludeResource bool     `json:"include_resource"`
			Items           []string `json:"items"`
		} `json:"config"`
	}
	if !decode(w, r, &in) {
		return
	}
	problems := map[string][]string{}
	if len(in.Events) == 0 {
		problems["events"] = []string{"This field is required."}
	}
	if in.Name == "" {
		problems["name"] = []string{"This field is required."}
	}
	if u, err := url.Parse(in.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		problems["url"] = []string{"Enter a valid URL."}
	}
	if in.Config.IncludeResource && slices.Contains(in.Events, "*") {
		problems["config"] = []string{`include_resource cannot be used with the "*" event.`}
	}
	// As the provider documents items.updated: its own subscription, with
	// 1 to 30 items.
	if slices.Contains(in.Events, "items.updated") && (len(in.Config.Items) == 0 || len(in.Config.Items) > 30) {
		problems["config"] = []string{"items.updated needs config.items, a list of 1 to 30 item ids."}
	}
	if len(problems) > 0 {
		writeJSON(w, http.StatusBadRequest, problems)
		return
	}
	now := accountobject.Time(accountobject.Truncate(f.opts.Clock()))
	s := &subscription{ID: newID(), Name: in.Name, Events: in.Events, Secret: nullable(in.Secret), URL: in.URL, CreatedAt: now, UpdatedAt: now}
	s.Config.IncludeResource, s.Config.Items = in.Config.IncludeResource, in.Config.Items
	f.mu.Lock()
	f.seq++
	s.seq = f.seq
	f.webhooks[s.ID] = s
	out := *s
	f.mu.Unlock()
	f.log.Info("webhook subscription created", "id", out.ID, "url", out.URL, "events", out.Events)
	writeJSON(w, http.StatusCreated, out)
}

func (f *Fake) listWebhooks(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	var entries []entry
	for _, s := range f.sortedSubscriptions() {
		sub := *s
		entries = append(entries, entry{seq: s.seq, obj: func() any { return sub }})
	}
	f.mu.Unlock()
	servePage(w, r, entries)
}

func (f *Fake) deleteWebhook(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	f.mu.Lock()
	s := f.webhooks[id]
	delete(f.webhooks, id)
	f.mu.Unlock()
	if s == nil {
		writeDetail(w, http.StatusNotFound, "Not found.")
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (f *Fake) postFault(w http.ResponseWriter, r *http.Request) {
	var x Fault
	if !decode(w, r, &x) {
		return
	}
	if err := f.AddFault(x); err != nil {
		writeDetail(w, http.StatusBadRequest, err.Error())
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (f *Fake) deleteFaults(w http.ResponseWriter, _ *http.Request) {
	f.ClearFaults()
	w.WriteHeader(http.StatusNoContent)
}

// seedRoute serves a control route that adds what its JSON body describes
// and answers 201 with the object as the API shows it (show), 400 naming
// the field add refuses, or 409 when add refuses the seed otherwise.
func seedRoute[S any](add func(S) (S, error), show func(S) any) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var s S
		if !decode(w, r, &s) {
			return
		}
		s, err := add(s)
		var field *FieldError
		switch {
		case errors.As(err, &field):
			writeFieldError(w, field)
			return
		case err != nil:
			writeDetail(w, http.StatusConflict, err.Error())
			return
		}
		writeJSON(w, http.StatusCreated, show(s))
	}
}

// delivering is the part of a change route's body that says which of its
// webhooks are delivered: "silently": true none, "drop": [...] all but
// those.
type delivering struct {
	Silently bool     `json:"silently"`
	Drop     []string `json:"drop"`
}

func (d delivering) options() []ChangeOption {
	opts := []ChangeOption{Dropping(d.Drop...)}
	if d.Silently {
		opts = append(opts, Silently())
	}
	return opts
}

// postAction runs a simulation helper: connect, fail, disconnect or
// remove, with an optional body {"error_code": "..."} for fail and
// disconnect, and the delivering options.
func (f *Fake) postAction(w http.ResponseWriter, r *http.Request) {
	var in struct {
		ErrorCode string `json:"error_code"`
		delivering
	}
	if !decode(w, r, &in) {
		return
	}
	opts := in.options()
	id := r.PathValue("id")
	var err error
	switch r.PathValue("action") {
	case "connect":
		err = f.Connect(id, opts...)
	case "fail":
		err = f.Fail(id, in.ErrorCode, opts...)
	case "disconnect":
		err = f.Disconnect(id, in.ErrorCode, opts...)
	case "remove":
		err = f.Remove(id, opts...)
	default:
		writeDetail(w, http.StatusNotFound, "Unknown action: use connect, fail, disconnect, remove or scan.")
		return
	}
	if err != nil {
		writeDetail(w, http.StatusNotFound, err.Error())
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// postScan plays a periodic scan (Scan) of the account, with an optional
// body {ScanResult} and the delivering options.
func (f *Fake) postScan(w http.ResponseWriter, r *http.Request) {
	var in struct {
		ScanResult
		delivering
	}
	if !decode(w, r, &in) {
		return
	}
	err := f.Scan(r.PathValue("id"), in.ScanResult, in.options()...)
	var field *FieldError
	switch {
	case errors.As(err, &field):
		writeFieldError(w, field)
	case errors.Is(err, ErrUnknownAccount):
		writeDetail(w, http.StatusNotFound, err.Error())
	case err != nil:
		writeDetail(w, http.StatusConflict, err.Error())
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}

// decode reads a JSON request body into v; an empty body leaves v as is.
// On failure it answers 400 and returns false.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		writeDetail(w, http.StatusBadRequest, "JSON parse error: "+err.Error())
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeFieldError answers 400 the way the provider names a bad field:
// {"<field>": ["<problem>"]}.
func writeFieldError(w http.ResponseWriter, e *FieldError) {
	writeJSON(w, http.StatusBadRequest, map[string][]string{e.Field: {e.Problem}})
}

// writeDetail answers an error the way the provider does: {"detail": ...}.
func writeDetail(w http.ResponseWriter, status int, detail string) {
	writeJSON(w, status, map[string]string{"detail": detail})
}

// entry is one item of a list, positioned by its creation sequence.
type entry struct {
	seq int64
	// obj renders the object, for the page's entries only: rendering
	// every account for each page would make a walk quadratic.
	obj func() any
}

// listPage is the provider's list envelope.
type listPage struct {
	Next     *string `json:"next"`
	Previous *string `json:"previous"`
	Results  []any   `json:"results"`
}

// servePage answers one page of entries (ordered by seq) as selected by
// the limit and cursor query parameters. A cursor names a position, not an
// offset, so that deletions between pages skip or repeat nothing.
func servePage(w http.ResponseWriter, r *http.Request, entries []entry) {
	q := r.URL.Query()
	limit := 10
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		switch {
		case err != nil:
			writeJSON(w, http.StatusBadRequest, map[string][]string{"limit": {"A valid integer is required."}})
			return
		case n < 1 || n > 200:
			writeJSON(w, http.StatusBadRequest, map[string][]string{"limit": {"Ensure this value is between 1 and 200."}})
			return
		}
		limit = n
	}
	lo, hi := 0, min(limit, len(entries))
	if c := q.Get("cursor"); c != "" {
		forward, at, err := parseCursor(c)
		if err != nil {
			writeDetail(w, http.StatusBadRequest, "Invalid cursor.")
			return
		}
		// The page starts after at (forward) or ends before it (backward).
		i := sort.Search(len(entries), func(i int) bool {
			return entries[i].seq > at || (!forward && entries[i].seq == at)
		})
		if forward {
			lo, hi = i, min(i+limit, len(entries))
		} else {
			lo, hi = max(i-limit, 0), i
		}
	}
	p := listPage{Results: []any{}}
	for _, e := range entries[lo:hi] {
		p.Results = append(p.Results, e.obj())
	}
	if lo < hi && hi < len(entries) {
		p.Next = pageLink(r, formatCursor(true, entries[hi-1].seq))
	}
	if lo < hi && lo > 0 {
		p.Previous = pageLink(r, formatCursor(false, entries[lo].seq))
	}
	writeJSON(w, http.StatusOK, p)
}

// A cursor is opaque to clients: "n<seq>" means after seq, "p<seq>"
// before it.
func formatCursor(forward bool, seq int64) string {
	dir := "p"
	if forward {
		dir = "n"
	}
	return base64.RawURLEncoding.EncodeToString([]byte(dir + strconv.FormatInt(seq, 10)))
}

func parseCursor(c string) (forward bool, seq int64, err error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil || len(b) < 2 || (b[0] != 'n' && b[0] != 'p') {
		return false, 0, fmt.Errorf("invalid cursor %q", c)
	}
	seq, err = strconv.ParseInt(string(b[1:]), 10, 64)
	return b[0] == 'n', seq, err
}

// pageLink is the absolute URL of the same list at cursor, as the
// provider's next and previous links are.
func pageLink(r *http.Request, cursor string) *string {
	u := url.URL{Scheme: "http", Host: r.Host, Path: r.URL.Path}
	if r.TLS != nil {
		u.Scheme = "https"
	}
	q := r.URL.Query()
	q.Set("cursor", cursor)
	u.RawQuery = q.Encode()
	s := u.String()
	return &s
}
