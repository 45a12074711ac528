package http_test

import (
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/riverqueue/river"

	"github.com/switchboard/switchboard/chat"
	"github.com/switchboard/switchboard/form"
	sbhttp "github.com/switchboard/switchboard/http"
	"github.com/switchboard/switchboard/hub/hubtest"
	"github.com/switchboard/switchboard/link"
	"github.com/switchboard/switchboard/logging"
	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/store/storetest"
	"github.com/switchboard/switchboard/template"
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

var param = regexp.MustCompile(`\{([a-z]+)(\.\.\.)?\}`)

// TestRoutesRequireCredentials walks every API-key route of the OpenAPI
// document without credentials and with a bad key: always 401.
func TestRoutesRequireCredentials(t *testing.T) {
	e := hubtest.New(t, store.SQLite)
	srv := &sbhttp.Server{}
	for _, rt := range srv.Routes() {
		if rt.Auth != "key" {
			continue
		}
		path := param.ReplaceAllString(rt.Pattern, "x")
		body := any(nil)
		if rt.Method == "POST" || rt.Method == "PATCH" || rt.Method == "PUT" {
			body = map[string]any{}
		}
		for _, c := range []struct{ name, key string }{{"no key", ""}, {"bad key", "sb_0123456789abcdef_nope"}} {
			if r := e.Do(rt.Method, path, c.key, body); r.Status != http.StatusUnauthorized {
				t.Errorf("%s %s with %s: %d %s", rt.Method, path, c.name, r.Status, r.Body)
			}
		}
	}
}

// crossOrgEnv is a Switchboard with every feature wired (chat, templates,
// forms, links) as cmd/switchboard wires them.
func crossOrgEnv(t *testing.T, d store.Dialect) *hubtest.Env {
	t.Helper()
	var (
		chatSvc *chat.Service
		forms   *form.Service
		links   *link.Service
	)
	e := hubtest.New(t, d, hubtest.Options{Setup: func(e *hubtest.Env, cfg *river.Config) {
		chatSvc = chat.New(e.DB, e.Hub.CRMs, logging.Discard())
		chatSvc.Workers(cfg.Workers)
		forms = form.New(e.DB, e.Hub)
		forms.AddWorkers(cfg.Workers)
		links = link.New(e.DB, e.Hub, link.Options{})
		links.AddWorkers(cfg.Workers)
	}})
	t.Cleanup(func() { _ = links.Close(context.Background()) })
	e.HTTP.Chat = chatSvc
	e.HTTP.Content = &sbhttp.Content{Templates: template.New(e.DB, e.Hub.CRMs), Links: links, Forms: forms}
	return e
}

// created posts body as the org's admin and returns the created object's
// field (its id).
func created(t *testing.T, e *hubtest.Env, path string, body any, field string, headers ...string) (string, *hubtest.Response) {
	t.Helper()
	r := e.Do("POST", path, e.Key, body, headers...)
	if r.Status != http.StatusCreated && r.Status != http.StatusAccepted && r.Status != http.StatusOK {
		t.Fatalf("POST %s: %d %s", path, r.Status, r.Body)
	}
	var v map[string]any
	r.JSON(t, &v)
	id, _ := v[field].(string)
	if id == "" {
		t.Fatalf("POST %s: no %s in %s", path, field, r.Body)
	}
	return id, r
}

// TestCrossOrgAccess creates one real object of every kind that a route
// names by id in org A, then calls every route with a path parameter in
// the OpenAPI document with org B's credentials, with bodies org A could
// use: always 403 or 404, never A's data, and nothing of A's changes. The
// same reads with A's credentials succeed, so the ids are real.
func TestCrossOrgAccess(t *testing.T) {
	storetest.Each(t, func(t *testing.T, d store.Dialect) {
		e := crossOrgEnv(t, d)
		ctx := context.Background()
		_, _, otherKey, err := e.Hub.CreateOrg(ctx, "Other Org", "other@example.org", "Other")
		if err != nil {
			t.Fatal(err)
		}
		other := &hubtest.Env{T: t, Server: e.Server}
		other.Key = otherKey

		// Org A's objects; their contents are marked so a leak shows.
		const mark = "OrgAOnly"
		msg := e.Send("+12025550123", "Private "+mark)
		batch, _ := created(t, e, "/v1/bulk-sends", map[string]any{"gateway_id": e.Gateway.ID, "body": "Bulk " + mark,
			"recipients": []map[string]string{{"to": "+12025550124"}}}, "batch_id")
		user, _ := created(t, e, "/v1/users", map[string]any{"email": "staff@example.org", "name": "Staff " + mark, "permissions": []string{"Feature: Inbox"}}, "id")
		keyID, kr := created(t, e, "/v1/api-keys", map[string]any{"name": "ci " + mark}, "id")
		var apiKey struct{ Key string }
		kr.JSON(t, &apiKey)
		contact, _ := created(t, e, "/v1/contacts", map[string]any{"first_name": "Ada " + mark, "phone": "+12025550150"}, "id")
		tmpl, _ := created(t, e, "/v1/templates", map[string]any{"name": "Welcome", "body": "Welcome " + mark}, "id")
		formBody := func(name string) map[string]any {
			return map[string]any{"name": name, "questions": []map[string]any{{"key": "q1", "text": "Coming? " + mark}}, "closing_message": "Thanks"}
		}
		formID, _ := created(t, e, "/v1/forms", formBody("Poll"), "id")
		conv, _ := created(t, e, "/v1/chat/conversations", map[string]any{"fields": map[string]string{"first_name": "Vis " + mark},
			"messages": []map[string]any{{"speaker": "visitor", "text": "Hello " + mark}}}, "id")
		widgetA, _ := created(t, e, "/v1/chat/widget-token", nil, "token")
		r := other.Do("POST", "/v1/chat/widget-token", otherKey, nil)
		var widgetB struct{ Token string }
		r.JSON(t, &widgetB)
		r = e.Do("POST", "/chat/v1/conversations", "", map[string]any{"fields": map[string]string{"name": "Widget " + mark}}, "X-Chat-Token", widgetA)
		var visit struct {
			ConversationID string `json:"conversation_id"`
			VisitorToken   string `json:"visitor_token"`
		}
		r.JSON(t, &visit)
		if r.Status != http.StatusCreated && r.Status != http.StatusOK || visit.ConversationID == "" || widgetB.Token == "" {
			t.Fatalf("widget conversation: %d %s", r.Status, r.Body)
		}

		// Every route with a path parameter: the id it is asked with, and a
		// body its own org could send.
		type call struct {
			id   string
			body any
		}
		hijack := map[string]any{"name": "Hijacked"}
		calls := map[string]call{
			"GET /v1/messages/{id}":                      {msg.ID, nil},
			"GET /v1/bulk-sends/{id}":                    {batch, nil},
			"GET /v1/gateways/{id}":                      {e.Gateway.ID, nil},
			"PATCH /v1/gateways/{id}":                    {e.Gateway.ID, hijack},
			"PATCH /v1/users/{id}":                       {user, hijack},
			"DELETE /v1/api-keys/{id}":                   {keyID, nil},
			"GET /v1/contacts/{id}":                      {contact, nil},
			"PATCH /v1/contacts/{id}":                    {contact, map[string]any{"first_name": "Hijacked"}},
			"DELETE /v1/contacts/{id}":                   {contact, nil},
			"GET /v1/templates/{id}":                     {tmpl, nil},
			"PATCH /v1/templates/{id}":                   {tmpl, map[string]any{"body": "Hijacked"}},
			"DELETE /v1/templates/{id}":                  {tmpl, nil},
			"POST /v1/templates/{id}/preview":            {tmpl, map[string]any{}},
			"GET /v1/forms/{id}":                         {formID, nil},
			"PUT /v1/forms/{id}":                         {formID, formBody("Hijacked")},
			"DELETE /v1/forms/{id}":                      {formID, nil},
			"GET /v1/forms/{id}/sessions":                {formID, nil},
			"GET /v1/chat/conversations/{id}":            {conv, nil},
			"PATCH /v1/chat/conversations/{id}":          {conv, map[string]any{"fields": map[string]string{"first_name": "Hijacked"}}},
			"POST /v1/chat/conversations/{id}/messages":  {conv, map[string]any{"speaker": "agent", "text": "Hijacked"}},
			"POST /v1/chat/conversations/{id}/close":     {conv, nil},
			"POST /v1/chat/conversations/{id}/re-export": {conv, nil},
			"GET /chat/v1/conversations/{id}/messages":   {visit.ConversationID, nil},
			"POST /chat/v1/conversations/{id}/messages":  {visit.ConversationID, map[string]any{"text": "Hijacked"}},
			"PATCH /chat/v1/conversations/{id}":          {visit.ConversationID, map[string]any{"fields": map[string]string{"name": "Hijacked"}}},
			"POST /chat/v1/conversations/{id}/close":     {visit.ConversationID, nil},
		}
		// Routes with a path parameter that name no org object.
		skip := map[string]string{
			"POST /webhooks/{provider}/{gateway}/{action}": "partners' webhooks: signature checked (TestWebhookReplayAndSignature, TestStatusCallbacksThroughServer)",
			"GET /webhooks/{provider}/{gateway}/{action}":  "partners' webhooks: signature checked",
			"GET /l/{code}":              "a short link is public by design: anyone who has it is redirected",
			"OPTIONS /chat/v1/{path...}": "CORS preflight: no data",
		}
		leaks := []string{mark, e.Org.ID, e.Admin.ID, "+12025550150", "+12025550123"}
		seen := map[string]bool{}
		for _, rt := range (&sbhttp.Server{}).Routes() {
			name := rt.Method + " " + rt.Pattern
			if !strings.Contains(rt.Pattern, "{") || skip[name] != "" {
				continue
			}
			c, ok := calls[name]
			if !ok {
				t.Errorf("%s has a path parameter but no object of org A to ask for: add one to this test", name)
				continue
			}
			seen[name] = true
			path := param.ReplaceAllString(rt.Pattern, c.id)
			var r *hubtest.Response
			if strings.HasPrefix(rt.Pattern, "/chat/v1/") {
				// The public widget API: org B's widget token with A's
				// visitor token.
				r = other.Do(rt.Method, path, "", c.body, "X-Chat-Token", widgetB.Token, "X-Visitor-Token", visit.VisitorToken)
			} else {
				r = other.Do(rt.Method, path, otherKey, c.body)
			}
			if r.Status != http.StatusForbidden && r.Status != http.StatusNotFound {
				t.Errorf("%s as org B: %d %s, want 403 or 404", name, r.Status, r.Body)
			}
			for _, l := range leaks {
				if strings.Contains(string(r.Body), l) {
					t.Errorf("%s as org B leaks %q: %s", name, l, r.Body)
				}
			}
			// The same read as org A works: the id is real.
			if rt.Method == "GET" {
				var own *hubtest.Response
				if strings.HasPrefix(rt.Pattern, "/chat/v1/") {
					own = e.Do("GET", path, "", nil, "X-Chat-Token", widgetA, "X-Visitor-Token", visit.VisitorToken)
				} else {
					own = e.Do("GET", path, e.Key, nil)
				}
				if own.Status != http.StatusOK {
					t.Errorf("%s as org A: %d %s", name, own.Status, own.Body)
				}
			}
		}
		for name := range calls {
			if !seen[name] {
				t.Errorf("%s is not served (any more): update this test", name)
			}
		}

		// Nothing of org A changed.
		for _, p := range []string{"/v1/gateways/" + e.Gateway.ID, "/v1/contacts/" + contact, "/v1/templates/" + tmpl, "/v1/forms/" + formID,
			"/v1/chat/conversations/" + conv, "/v1/users"} {
			r := e.API("GET", p, nil)
			if r.Status != http.StatusOK || strings.Contains(string(r.Body), "Hijacked") {
				t.Errorf("GET %s after org B's attempts: %d %s", p, r.Status, r.Body)
			}
		}
		if r := e.API("GET", "/v1/chat/conversations/"+conv, nil); !strings.Contains(string(r.Body), `"state":"open"`) {
			t.Errorf("org B closed org A's conversation: %s", r.Body)
		}
		if u, err := e.DB.Authenticate(ctx, apiKey.Key); err != nil || u.OrgID != e.Org.ID {
			t.Errorf("org B revoked org A's API key: %v", err)
		}
		r = e.Do("GET", "/chat/v1/conversations/"+visit.ConversationID+"/messages", "", nil, "X-Chat-Token", widgetA, "X-Visitor-Token", visit.VisitorToken)
		if r.Status != http.StatusOK || strings.Contains(string(r.Body), "Hijacked") {
			t.Errorf("widget conversation after org B's attempts: %d %s", r.Status, r.Body)
		}

		// Listing endpoints with org B's key show only org B's data.
		for _, p := range []string{"/v1/messages", "/v1/gateways", "/v1/users", "/v1/api-keys", "/v1/contacts", "/v1/org",
			"/v1/templates", "/v1/forms", "/v1/chat/conversations", "/v1/links"} {
			r := other.Do("GET", p, otherKey, nil)
			if r.Status != http.StatusOK || strings.Contains(string(r.Body), e.Gateway.ID) {
				t.Errorf("GET %s as org B: %d %s", p, r.Status, r.Body)
			}
			for _, l := range leaks {
				if strings.Contains(string(r.Body), l) {
					t.Errorf("GET %s as org B leaks %q: %s", p, l, r.Body)
				}
			}
		}
	})
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

// TestUpdateUserPassword: PATCH /v1/users/{id} with a password stores its
// hash with the other changes; a password the rules refuse changes nothing
// and names the field.
func TestUpdateUserPassword(t *testing.T) {
	storetest.Each(t, func(t *testing.T, d store.Dialect) {
		e := crossOrgEnv(t, d)
		ctx := context.Background()
		id, _ := created(t, e, "/v1/users", map[string]any{"email": "advisor@example.org", "name": "Advisor", "permissions": []string{"Feature: Inbox"}}, "id")
		r := e.Do("PATCH", "/v1/users/"+id, e.Key, map[string]any{"name": "Short", "password": "short"})
		if r.Status != http.StatusBadRequest || !strings.Contains(string(r.Body), "password") {
			t.Fatalf("short password: %d %s", r.Status, r.Body)
		}
		u, hash, err := e.DB.UserByEmail(ctx, "advisor@example.org")
		if err != nil || u.Name != "Advisor" || hash != "" {
			t.Fatalf("after a refused change: %+v %q %v", u, hash, err)
		}
		const pw = "correct horse battery staple"
		if r := e.Do("PATCH", "/v1/users/"+id, e.Key, map[string]any{"name": "Advisor Two", "password": pw}); r.Status != http.StatusOK {
			t.Fatalf("update: %d %s", r.Status, r.Body)
		}
		u, hash, err = e.DB.UserByEmail(ctx, "advisor@example.org")
		if err != nil || u.Name != "Advisor Two" || !sbhttp.CheckPassword(hash, pw) {
			t.Fatalf("after the update: %+v %v (password stored: %v)", u, err, sbhttp.CheckPassword(hash, pw))
		}
	})
}
