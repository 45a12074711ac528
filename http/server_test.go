package http_test

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"

	sbhttp "github.com/switchboard/switchboard/http"
	"github.com/switchboard/switchboard/hub/hubtest"
	"github.com/switchboard/switchboard/store"
)

type openAPIDoc struct {
	OpenAPI string                                `json:"openapi"`
	Paths   map[string]map[string]json.RawMessage `json:"paths"`
}

func loadDoc(t *testing.T) openAPIDoc {
	t.Helper()
	b, err := sbhttp.OpenAPI()
	if err != nil {
		t.Fatal(err)
	}
	var doc openAPIDoc
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

// TestEveryRouteIsDocumented checks the OpenAPI document lists every route
// the server serves, and nothing it does not.
func TestEveryRouteIsDocumented(t *testing.T) {
	doc := loadDoc(t)
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi version %q", doc.OpenAPI)
	}
	srv := &sbhttp.Server{}
	served := map[string]bool{}
	for _, r := range srv.Routes() {
		// A Go wildcard {rest...} is an OpenAPI path parameter {rest}.
		pattern := strings.ReplaceAll(r.Pattern, "...}", "}")
		key := strings.ToLower(r.Method) + " " + pattern
		served[key] = true
		ops, ok := doc.Paths[pattern]
		if !ok {
			t.Errorf("route %s %s is not in the OpenAPI document", r.Method, r.Pattern)
			continue
		}
		if _, ok := ops[strings.ToLower(r.Method)]; !ok {
			t.Errorf("route %s %s: method not in the OpenAPI document", r.Method, r.Pattern)
		}
	}
	for path, ops := range doc.Paths {
		for method := range ops {
			if method == "parameters" {
				continue
			}
			if !served[method+" "+path] {
				t.Errorf("OpenAPI documents %s %s, which is not served", method, path)
			}
		}
	}
}

// TestOpenAPIServed checks /openapi.json through the real handler.
func TestOpenAPIServed(t *testing.T) {
	e := hubtest.New(t, store.SQLite)
	r := e.Do("GET", "/openapi.json", "", nil)
	var doc openAPIDoc
	r.JSON(t, &doc)
	if r.Status != 200 || len(doc.Paths) < 20 {
		t.Fatalf("openapi.json: %d, %d paths", r.Status, len(doc.Paths))
	}
}

var param = regexp.MustCompile(`\{([a-z]+)\}`)

// TestRoutesRequireCredentials walks every API-key route of the OpenAPI
// document without credentials, with a bad key, and with another org's key
// on this org's objects: never data, always 401/403/404 (or 400 for a
// request the other org could make about its own, empty, data).
func TestRoutesRequireCredentials(t *testing.T) {
	e := hubtest.New(t, store.SQLite)
	// Another org with its own admin key.
	_, _, otherKey, err := e.Hub.CreateOrg(t.Context(), "Other Org", "other@example.org", "Other")
	if err != nil {
		t.Fatal(err)
	}
	// One object of each kind in this org, to be asked for by id.
	msg := e.Send("+12025550123", "hello")
	ids := map[string]string{"id": msg.ID}
	srv := &sbhttp.Server{}
	for _, rt := range srv.Routes() {
		if rt.Auth != "key" {
			continue
		}
		path := param.ReplaceAllStringFunc(rt.Pattern, func(p string) string {
			if v, ok := ids[strings.Trim(p, "{}")]; ok {
				return v
			}
			return "x"
		})
		if strings.Contains(rt.Pattern, "/gateways/{id}") {
			path = strings.Replace(rt.Pattern, "{id}", e.Gateway.ID, 1)
		}
		body := any(nil)
		if rt.Method == "POST" || rt.Method == "PATCH" || rt.Method == "PUT" {
			body = map[string]any{}
		}
		for _, c := range []struct {
			name, key string
			want      []int
		}{
			{"no key", "", []int{401}},
			{"bad key", "sb_0123456789abcdef_nope", []int{401}},
		} {
			r := e.Do(rt.Method, path, c.key, body)
			if !contains(c.want, r.Status) {
				t.Errorf("%s %s with %s: %d %s", rt.Method, path, c.name, r.Status, r.Body)
			}
		}
		// Another org's admin never sees this org's objects.
		if strings.Contains(rt.Pattern, "{") {
			r := e.Do(rt.Method, path, otherKey, body)
			if r.Status < 400 {
				t.Errorf("%s %s with another org's key: %d %s", rt.Method, path, r.Status, r.Body)
			}
			if strings.Contains(string(r.Body), e.Org.ID) || strings.Contains(string(r.Body), e.Admin.ID) {
				t.Errorf("%s %s leaks this org's data to another org: %s", rt.Method, path, r.Body)
			}
		}
	}
	// Listing endpoints with another org's key show only that org's data.
	for _, p := range []string{"/v1/messages", "/v1/gateways", "/v1/users", "/v1/api-keys", "/v1/contacts", "/v1/org"} {
		r := e.Do("GET", p, otherKey, nil)
		if r.Status != 200 || strings.Contains(string(r.Body), e.Org.ID) || strings.Contains(string(r.Body), e.Gateway.ID) {
			t.Errorf("GET %s as another org: %d %s", p, r.Status, r.Body)
		}
	}
}

func contains(xs []int, x int) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

func TestBadInput(t *testing.T) {
	e := hubtest.New(t, store.SQLite)
	cases := []struct {
		name, method, path string
		body               any
		headers            []string
		status             int
		code               string
	}{
		{"malformed JSON", "POST", "/v1/messages", []byte(`{"to":`), nil, 400, "invalid"},
		{"two JSON values", "POST", "/v1/messages", []byte(`{} {}`), nil, 400, "invalid"},
		{"wrong type", "POST", "/v1/messages", []byte(`{"to": 5}`), nil, 400, "invalid"},
		{"wrong content type", "POST", "/v1/messages", []byte(`{}`), []string{"Content-Type", "text/plain"}, 400, "invalid"},
		{"oversized body", "POST", "/v1/messages", []byte(`{"body":"` + strings.Repeat("a", 2<<20) + `"}`), nil, 413, "too_large"},
		{"unknown route", "GET", "/v1/nothing", nil, nil, 404, "not_found"},
		{"unknown message", "GET", "/v1/messages/does-not-exist", nil, nil, 404, "not_found"},
		{"bad limit", "GET", "/v1/messages?limit=-3", nil, nil, 400, "invalid"},
		{"bad direction", "GET", "/v1/messages?direction=sideways", nil, nil, 400, "invalid"},
		{"bad phone filter", "GET", "/v1/messages?phone=abc", nil, nil, 400, "invalid"},
		{"bad gateway provider", "POST", "/v1/gateways", map[string]any{"provider": "pigeon", "number": "+12025550111"}, nil, 400, "invalid"},
		{"bad gateway number", "POST", "/v1/gateways", map[string]any{"provider": "sim", "number": "12"}, nil, 400, "invalid"},
		{"bad gateway rate", "POST", "/v1/gateways", map[string]any{"provider": "sim", "number": "+12025550111", "rate": -1}, nil, 400, "invalid"},
		{"bad opt-in mode", "PATCH", "/v1/org/settings", map[string]any{"opt_in_mode": "sometimes"}, nil, 400, "invalid"},
		{"bad permission", "POST", "/v1/users", map[string]any{"email": "x@example.org", "name": "X", "permissions": []string{"Root"}}, nil, 400, "invalid"},
		{"bad csv", "POST", "/v1/contacts/import", []byte("name\nx\n"), []string{"Content-Type", "text/csv"}, 400, "invalid"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			hdr := c.headers
			r := e.Do(c.method, c.path, e.Key, c.body, hdr...)
			if r.Status != c.status || r.ErrorCode() != c.code {
				t.Fatalf("%d %s", r.Status, r.Body)
			}
			var eb sbhttp.ErrorBody
			r.JSON(t, &eb)
			if eb.Error.Message == "" {
				t.Fatal("error without a message")
			}
		})
	}
}

func TestHealthEndpoints(t *testing.T) {
	e := hubtest.New(t, store.SQLite)
	for _, p := range []string{"/healthz", "/readyz", "/metrics"} {
		if r := e.Do("GET", p, "", nil); r.Status != http.StatusOK {
			t.Errorf("%s: %d %s", p, r.Status, r.Body)
		}
	}
}
