// Package http is Switchboard's HTTP surface: the REST API (v1, JSON, API
// keys per org), the provider webhooks, health and metrics endpoints, the
// OpenAPI document, and the web UI.
package http

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	sb "github.com/switchboard/switchboard"
	"github.com/switchboard/switchboard/chat"
	"github.com/switchboard/switchboard/crm/builtin"
	"github.com/switchboard/switchboard/hub"
	"github.com/switchboard/switchboard/store"
)

// MaxBodyBytes bounds JSON request bodies; bulk sends and CSV imports may be
// larger (MaxBulkBytes).
const (
	MaxBodyBytes = 1 << 20
	MaxBulkBytes = 32 << 20
)

// Server serves Switchboard over HTTP.
type Server struct {
	Hub     *hub.Hub
	DB      *store.DB
	Builtin *builtin.CRM
	Log     *slog.Logger
	// Gatherer serves /metrics.
	Gatherer prometheus.Gatherer
	// Sim, when set, is the embedded simulated carrier mounted at /sim/.
	Sim http.Handler
	// Ready reports whether the service is ready (queue started).
	Ready func() bool
	// UI, when set, serves the web interface under /ui/.
	UI http.Handler
	// Chat, when set, serves the chat conversations API, the chat export
	// settings and log, and the embeddable chat widget.
	Chat *chat.Service
	// Content holds the template, tracked-link and SMS-form services; their
	// routes answer "unavailable" while it is nil.
	Content *Content

	mux *http.ServeMux
}

// Route is one endpoint. Every route is listed in the OpenAPI document.
type Route struct {
	Method, Pattern string
	// Auth is "key" for API-key routes, "" for public ones (webhooks check
	// signatures instead).
	Auth    string
	Handler http.HandlerFunc
}

// routeSets are the groups of routes; each feature's file adds its own in
// an init function.
var routeSets []func(*Server) []Route

func init() { routeSets = append(routeSets, (*Server).coreRoutes) }

// Routes returns every API route (not the UI's pages).
func (s *Server) Routes() []Route {
	var out []Route
	for _, f := range routeSets {
		out = append(out, f(s)...)
	}
	return out
}

func (s *Server) coreRoutes() []Route {
	return []Route{
		{"GET", "/healthz", "", s.healthz},
		{"GET", "/readyz", "", s.readyz},
		{"GET", "/openapi.json", "", s.openapi},
		{"GET", "/metrics", "", s.metrics},

		{"POST", "/webhooks/{provider}/{gateway}/{action}", "", s.webhook},
		{"GET", "/webhooks/{provider}/{gateway}/{action}", "", s.webhook},

		{"POST", "/v1/messages", "key", s.sendMessage},
		{"GET", "/v1/messages", "key", s.listMessages},
		{"GET", "/v1/messages/{id}", "key", s.getMessage},
		{"POST", "/v1/bulk-sends", "key", s.bulkSend},
		{"GET", "/v1/bulk-sends/{id}", "key", s.getBulkSend},
		{"POST", "/v1/segments", "key", s.segments},

		{"GET", "/v1/gateways", "key", s.listGateways},
		{"POST", "/v1/gateways", "key", s.createGateway},
		{"GET", "/v1/gateways/{id}", "key", s.getGateway},
		{"PATCH", "/v1/gateways/{id}", "key", s.updateGateway},

		{"GET", "/v1/org", "key", s.getOrg},
		{"PATCH", "/v1/org/settings", "key", s.updateSettings},
		{"GET", "/v1/me", "key", s.me},
		{"GET", "/v1/users", "key", s.listUsers},
		{"POST", "/v1/users", "key", s.createUser},
		{"PATCH", "/v1/users/{id}", "key", s.updateUser},
		{"GET", "/v1/api-keys", "key", s.listAPIKeys},
		{"POST", "/v1/api-keys", "key", s.createAPIKey},
		{"DELETE", "/v1/api-keys/{id}", "key", s.revokeAPIKey},

		{"GET", "/v1/subscriptions", "key", s.subscriptionView},
		{"POST", "/v1/subscriptions", "key", s.setSubscription},
		{"GET", "/v1/subscriptions/history", "key", s.subscriptionHistory},

		{"GET", "/v1/contacts", "key", s.listContacts},
		{"POST", "/v1/contacts", "key", s.createContact},
		{"POST", "/v1/contacts/import", "key", s.importContacts},
		{"GET", "/v1/contacts/{id}", "key", s.getContact},
		{"PATCH", "/v1/contacts/{id}", "key", s.updateContact},
		{"DELETE", "/v1/contacts/{id}", "key", s.deleteContact},
		{"GET", "/v1/conversations", "key", s.conversation},
	}
}

// Handler returns the server's root handler.
func (s *Server) Handler() http.Handler {
	if s.Log == nil {
		s.Log = slog.Default()
	}
	mux := http.NewServeMux()
	for _, r := range s.Routes() {
		h := r.Handler
		if r.Auth == "key" {
			h = s.withKey(h)
		}
		mux.HandleFunc(r.Method+" "+r.Pattern, h)
	}
	if s.Sim != nil {
		mux.Handle("/sim/", http.StripPrefix("/sim", s.Sim))
	}
	if s.UI != nil {
		mux.Handle("/ui/", s.UI)
		mux.Handle("GET /{$}", http.RedirectHandler("/ui/", http.StatusFound))
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		WriteError(w, sb.Errorf(sb.ENotFound, "no route for %s %s", r.Method, r.URL.Path))
	})
	s.mux = mux
	return s.logRequests(s.recoverPanics(mux))
}

type ctxKey int

const userKey ctxKey = 1

// withKey authenticates the API key (Authorization: Bearer sb_… or
// X-API-Key) and puts its user in the request context.
func (s *Server) withKey(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		key := r.Header.Get("X-API-Key")
		if auth := r.Header.Get("Authorization"); key == "" && auth != "" {
			scheme, val, _ := strings.Cut(auth, " ")
			if strings.EqualFold(scheme, "Bearer") {
				key = strings.TrimSpace(val)
			}
		}
		if key == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="switchboard"`)
			WriteError(w, sb.Errorf(sb.EUnauthorized, "an API key is required (Authorization: Bearer <key>)"))
			return
		}
		u, err := s.DB.Authenticate(r.Context(), key)
		if err != nil {
			WriteError(w, err)
			return
		}
		next(w, r.WithContext(WithUser(r.Context(), u)))
	}
}

// UserFrom returns the authenticated user of a request.
func UserFrom(r *http.Request) *sb.User { return r.Context().Value(userKey).(*sb.User) }

// WithUser returns ctx carrying an authenticated user (the UI's sessions
// use it too).
func WithUser(ctx context.Context, u *sb.User) context.Context {
	return context.WithValue(ctx, userKey, u)
}

// StatusOf maps a domain error code to an HTTP status, once, here (the web
// UI uses it too).
func StatusOf(code string) int {
	switch code {
	case "":
		return http.StatusOK
	case sb.EInvalid:
		return http.StatusBadRequest
	case sb.ENotFound:
		return http.StatusNotFound
	case sb.EConflict:
		return http.StatusConflict
	case sb.EUnauthorized:
		return http.StatusUnauthorized
	case sb.EForbidden:
		return http.StatusForbidden
	case sb.EUnavailable:
		return http.StatusServiceUnavailable
	case sb.ETooLarge:
		return http.StatusRequestEntityTooLarge
	}
	return http.StatusInternalServerError
}

// ErrorBody is the JSON form of every error.
type ErrorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Field   string `json:"field,omitempty"`
	} `json:"error"`
}

// WriteError writes err as the JSON error body with its HTTP status.
func WriteError(w http.ResponseWriter, err error) {
	var body ErrorBody
	body.Error.Code = sb.ErrorCode(err)
	body.Error.Message = sb.ErrorMessage(err)
	var e *sb.Error
	if errors.As(err, &e) {
		body.Error.Field = e.Field
	}
	if body.Error.Code == sb.EInternal {
		// The cause goes to the log (by the request logger), not the client.
		w.Header().Set("X-Error-Cause", "internal")
	}
	WriteJSON(w, StatusOf(body.Error.Code), body)
	if rw, ok := w.(*recorder); ok {
		rw.err = err
	}
}

// WriteJSON writes v as JSON with the status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// Decode reads a JSON body of at most limit bytes into v. Unknown fields
// are errors, so typos are not silently ignored.
func Decode(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return sb.Errorf(sb.EInvalid, "Content-Type must be application/json, not %q", ct)
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &mbe):
			return sb.Errorf(sb.ETooLarge, "request body is larger than %d bytes", limit)
		case errors.As(err, &se):
			return sb.Errorf(sb.EInvalid, "request body is not valid JSON (at byte %d)", se.Offset)
		case errors.As(err, &te):
			return &sb.Error{Code: sb.EInvalid, Field: te.Field, Message: fmt.Sprintf("field %q must be %s", te.Field, te.Type)}
		case strings.HasPrefix(err.Error(), "json: unknown field"):
			return sb.Errorf(sb.EInvalid, "request body has an %s", strings.TrimPrefix(err.Error(), "json: "))
		case errors.Is(err, context.Canceled):
			return err
		default:
			return sb.Errorf(sb.EInvalid, "request body could not be read as JSON: %v", err)
		}
	}
	if dec.More() {
		return sb.Errorf(sb.EInvalid, "request body has more than one JSON value")
	}
	return nil
}

// recorder captures the status and error of a response for the log.
type recorder struct {
	http.ResponseWriter
	status int
	err    error
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

func (r *recorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// logRequests logs each request: method, path (never the query string,
// which may hold a phone number), status and duration; 5xx with the cause.
func (s *Server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &recorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		if rec.status >= 500 {
			s.Log.Error("request failed", "method", r.Method, "path", r.URL.Path, "status", rec.status, "err", rec.err, "ms", time.Since(start).Milliseconds())
		} else if s.Log.Enabled(r.Context(), slog.LevelDebug) {
			s.Log.Debug("request", "method", r.Method, "path", r.URL.Path, "status", rec.status, "ms", time.Since(start).Milliseconds())
		}
	})
}

func (s *Server) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.Log.Error("panic serving request", "path", r.URL.Path, "panic", fmt.Sprint(v))
				WriteError(w, fmt.Errorf("panic: %v", v))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.DB.Ping(ctx); err != nil {
		WriteError(w, sb.Wrap(err, sb.EUnavailable, "database is not reachable"))
		return
	}
	if s.Ready != nil && !s.Ready() {
		WriteError(w, sb.Errorf(sb.EUnavailable, "job workers are not running"))
		return
	}
	WriteJSON(w, http.StatusOK, map[string]string{"status": "ready", "database": string(s.DB.Dialect())})
}

func (s *Server) openapi(w http.ResponseWriter, r *http.Request) {
	doc, err := OpenAPI()
	if err != nil {
		WriteError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(doc)
}

func (s *Server) metrics(w http.ResponseWriter, r *http.Request) {
	g := s.Gatherer
	if g == nil {
		g = prometheus.DefaultGatherer
	}
	promhttp.HandlerFor(g, promhttp.HandlerOpts{}).ServeHTTP(w, r)
}

func (s *Server) webhook(w http.ResponseWriter, r *http.Request) {
	resp, err := s.Hub.Webhook(r.Context(), r.PathValue("provider"), r.PathValue("gateway"), r.PathValue("action"), r)
	if err != nil {
		WriteError(w, err)
		return
	}
	if resp.ContentType != "" {
		w.Header().Set("Content-Type", resp.ContentType)
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(resp.Body)
}

// QueryInt reads a non-negative integer query parameter.
func QueryInt(r *http.Request, name string, def int) (int, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, sb.FieldError(name, "%s must be a non-negative whole number", name)
	}
	return n, nil
}
