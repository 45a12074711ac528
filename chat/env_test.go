package chat_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/riverqueue/river"

	sb "github.com/switchboard/switchboard"
	"github.com/switchboard/switchboard/chat"
	"github.com/switchboard/switchboard/hub/hubtest"
	"github.com/switchboard/switchboard/logging"
	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/store/storetest"
)

// resolver picks the CRM of an org for the test: the built-in CRM, or the
// Salesforce client for orgs set to Salesforce; wrap, when set, wraps the
// chosen CRM (fault injection).
type resolver struct {
	mu      sync.Mutex
	builtin sb.CRM
	sf      sb.CRM
	wrap    func(sb.CRM) sb.CRM
}

func (r *resolver) For(_ context.Context, org *sb.Org) (sb.CRM, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.builtin
	if org.Settings.CRM == sb.CRMSalesforce {
		if r.sf == nil {
			return nil, &sb.CRMError{Code: "not_connected", Message: "no Salesforce client", Offline: true}
		}
		c = r.sf
	}
	if r.wrap != nil {
		c = r.wrap(c)
	}
	return c, nil
}

func (r *resolver) setWrap(w func(sb.CRM) sb.CRM) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.wrap = w
}

// env is a whole Switchboard with the chat service wired as the lead
// wires it: workers through the queue config, the purge job appended, the
// service on the HTTP server.
type env struct {
	*hubtest.Env
	svc  *chat.Service
	crms *resolver
}

const maxAttempts = 4

func newEnv(t *testing.T, d store.Dialect) *env {
	t.Helper()
	r := &resolver{}
	var svc *chat.Service
	he := hubtest.New(t, d, hubtest.Options{CRMs: r, Setup: func(e *hubtest.Env, cfg *river.Config) {
		svc = chat.New(e.DB, r, logging.Discard())
		svc.HoldFor = 20 * time.Millisecond
		svc.Backoff = func(int) time.Duration { return 10 * time.Millisecond }
		svc.MaxAttempts = maxAttempts
		svc.Workers(cfg.Workers)
		if cfg.FetchPollInterval == 0 {
			// PostgreSQL: look for jobs as often as on SQLite, so that
			// tests do not wait for the default poll.
			cfg.FetchPollInterval, cfg.FetchCooldown = 50*time.Millisecond, 10*time.Millisecond
		}
		cfg.PeriodicJobs = append(cfg.PeriodicJobs, svc.PeriodicJobs()...)
	}})
	r.mu.Lock()
	r.builtin = he.Builtin
	r.mu.Unlock()
	he.HTTP.Chat = svc
	return &env{Env: he, svc: svc, crms: r}
}

// each runs f once per dialect with a fresh env.
func each(t *testing.T, f func(t *testing.T, e *env)) {
	storetest.Each(t, func(t *testing.T, d store.Dialect) { f(t, newEnv(t, d)) })
}

// call makes an API request as the admin and checks the status.
func (e *env) call(method, path string, body any, want int) *hubtest.Response {
	e.T.Helper()
	r := e.API(method, path, body)
	if r.Status != want {
		e.T.Fatalf("%s %s: %d %s (want %d)", method, path, r.Status, r.Body, want)
	}
	return r
}

// settings replaces the export settings; the export is enabled unless the
// map says otherwise.
func (e *env) settings(s map[string]any) chat.SettingsView {
	e.T.Helper()
	if _, ok := s["enabled"]; !ok {
		s["enabled"] = true
	}
	var v chat.SettingsView
	e.call("PUT", "/v1/chat/export-settings", s, http.StatusOK).JSON(e.T, &v)
	return v
}

type view struct {
	store.ChatConversation
	Fields   map[string]string   `json:"fields"`
	Messages []store.ChatMessage `json:"messages"`
	Export   *store.ChatExport   `json:"export"`
}

// start creates a conversation with fields and a short exchange.
func (e *env) start(fields map[string]string, extra ...map[string]any) view {
	e.T.Helper()
	body := map[string]any{"fields": fields, "messages": []map[string]any{
		{"speaker": "bot", "text": "Hi! How can I help?"},
		{"speaker": "visitor", "text": "Tell me about admissions."},
	}}
	for _, x := range extra {
		for k, v := range x {
			body[k] = v
		}
	}
	var v view
	e.call("POST", "/v1/chat/conversations", body, http.StatusCreated).JSON(e.T, &v)
	return v
}

func (e *env) get(id string) view {
	e.T.Helper()
	var v view
	e.call("GET", "/v1/chat/conversations/"+id, nil, http.StatusOK).JSON(e.T, &v)
	return v
}

func (e *env) close(id string) view {
	e.T.Helper()
	var v view
	e.call("POST", "/v1/chat/conversations/"+id+"/close", nil, http.StatusOK).JSON(e.T, &v)
	return v
}

// exports returns the export log of a conversation, newest round first.
func (e *env) exports(id string) []store.ChatExport {
	e.T.Helper()
	var out struct {
		Exports []store.ChatExport `json:"exports"`
	}
	e.call("GET", "/v1/chat/exports?conversation_id="+id, nil, http.StatusOK).JSON(e.T, &out)
	return out.Exports
}

// waitExport waits until the conversation's latest export round has the
// status and returns it.
func (e *env) waitExport(id, status string) store.ChatExport {
	e.T.Helper()
	var last store.ChatExport
	e.WaitFor(fmt.Sprintf("export of %s to be %s", id, status), func() bool {
		ex := e.exports(id)
		if len(ex) == 0 {
			return false
		}
		last = ex[0]
		return last.Status == status
	})
	return last
}

// export closes a conversation and waits for its export to end with the
// status.
func (e *env) export(id, status string) store.ChatExport {
	e.T.Helper()
	e.close(id)
	return e.waitExport(id, status)
}

// contacts returns the built-in CRM's contacts with the email.
func (e *env) contacts(email string) []*sb.CRMRecord {
	e.T.Helper()
	cs, err := e.DB.ContactsWhere(context.Background(), e.Org.ID, "email", email)
	if err != nil {
		e.T.Fatal(err)
	}
	return cs
}

// tasks returns the built-in CRM's tasks of a contact.
func (e *env) tasks(contactID string) []sb.CRMTask {
	e.T.Helper()
	ts, err := e.DB.Tasks(context.Background(), e.Org.ID, contactID)
	if err != nil {
		e.T.Fatal(err)
	}
	return ts
}

// addContact stores a built-in CRM contact.
func (e *env) addContact(c *sb.CRMRecord) *sb.CRMRecord {
	e.T.Helper()
	ctx := context.Background()
	if err := e.DB.Tx(ctx, func(tx *store.Tx) error { return tx.SaveContact(ctx, e.Org.ID, c) }); err != nil {
		e.T.Fatal(err)
	}
	return c
}

// addUser adds a user with an API key.
func (e *env) addUser(email, crmID string, perms ...sb.Permission) (*sb.User, string) {
	e.T.Helper()
	ctx := context.Background()
	u := &sb.User{OrgID: e.Org.ID, Email: email, Name: strings.Split(email, "@")[0], Permissions: perms, CRMUserID: crmID}
	var key string
	err := e.DB.Tx(ctx, func(tx *store.Tx) error {
		if err := tx.CreateUser(ctx, u, ""); err != nil {
			return err
		}
		var err error
		_, key, err = tx.CreateAPIKey(ctx, e.Org.ID, u.ID, "test")
		return err
	})
	if err != nil {
		e.T.Fatal(err)
	}
	return u, key
}

// errorField returns the code and field of an error answer.
func errorField(t *testing.T, r *hubtest.Response) (string, string, string) {
	t.Helper()
	var b struct {
		Error struct{ Code, Message, Field string } `json:"error"`
	}
	r.JSON(t, &b)
	return b.Error.Code, b.Error.Field, b.Error.Message
}

// crmFunc wraps a CRM with replaced methods (fault injection).
type crmFunc struct {
	sb.CRM
	find func(ctx context.Context, org *sb.Org, email string) ([]sb.CRMRecord, error)
	save func(ctx context.Context, org *sb.Org, c *sb.CRMRecord, t *sb.CRMTask) (string, string, error)
}

func (c crmFunc) FindContactsByEmail(ctx context.Context, org *sb.Org, email string) ([]sb.CRMRecord, error) {
	if c.find != nil {
		return c.find(ctx, org, email)
	}
	return c.CRM.FindContactsByEmail(ctx, org, email)
}

func (c crmFunc) SaveContactAndTask(ctx context.Context, org *sb.Org, rec *sb.CRMRecord, t *sb.CRMTask) (string, string, error) {
	if c.save != nil {
		return c.save(ctx, org, rec, t)
	}
	return c.CRM.SaveContactAndTask(ctx, org, rec, t)
}
