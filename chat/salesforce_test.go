package chat_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	sb "github.com/switchboard/switchboard"
	"github.com/switchboard/switchboard/chat"
	"github.com/switchboard/switchboard/crm/salesforce"
	"github.com/switchboard/switchboard/crm/salesforce/sftest"
	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/store/storetest"
)

// loseAnswer passes requests to Salesforce but, when armed, drops the
// answer to the next composite request: the CRM saved, the caller saw a
// timeout.
type loseAnswer struct {
	base  http.RoundTripper
	mu    sync.Mutex
	armed bool
}

func (l *loseAnswer) arm() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.armed = true
}

func (l *loseAnswer) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := l.base.RoundTrip(r)
	l.mu.Lock()
	defer l.mu.Unlock()
	if err == nil && l.armed && r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/composite") {
		l.armed = false
		resp.Body.Close()
		return nil, errors.New("simulated timeout: the answer was lost")
	}
	return resp, err
}

type sfEnv struct {
	*env
	sf     *sftest.Server
	client *salesforce.Client
	lose   *loseAnswer
	owner  string
	conn   map[string]any
}

// newSFEnv is an env whose org uses Salesforce (the fake), connected with
// the JWT bearer flow through the export settings API.
func newSFEnv(t *testing.T, d store.Dialect) *sfEnv {
	t.Helper()
	e := newEnv(t, d)
	sf := sftest.NewServer(t)
	lose := &loseAnswer{base: sf.HTTPClient().Transport}
	client := salesforce.New(salesforce.Config{
		ClientID:   sf.ClientID(),
		HTTPClient: &http.Client{Transport: lose, Timeout: 30 * time.Second},
		MaxRetries: -1, // 5xx answers go back to the export job, which retries
		Sleep:      func(ctx context.Context, _ time.Duration) error { return ctx.Err() },
		Logger:     slog.New(slog.DiscardHandler),
	}, salesforce.NewMemStore())
	e.crms.mu.Lock()
	e.crms.sf = client
	e.crms.mu.Unlock()
	e.svc.Connector = client
	e.call("PATCH", "/v1/org/settings", map[string]any{"crm": "salesforce"}, http.StatusOK)

	key, pemKey := newKeyPEM(t)
	sf.RegisterJWTKey(sf.ClientID(), &key.PublicKey)
	sf.AddField("Contact", sftest.Field{Name: "Mongoose_Student_Type__c", Type: "string", Createable: true, Updateable: true})
	s := &sfEnv{env: e, sf: sf, client: client, lose: lose, owner: sf.UserID(sftest.DefaultUsername)}
	s.conn = map[string]any{"instance_url": sf.InstanceURL(), "client_id": sf.ClientID(), "username": sftest.DefaultUsername,
		"default_owner_id": s.owner, "field_mapping": map[string]string{"Student Type": "Mongoose_Student_Type__c"}}
	body := map[string]any{"private_key": pemKey}
	for k, v := range s.conn {
		body[k] = v
	}
	v := e.settings(body)
	if v.Connection == nil || !v.Connection.Connected || v.Connection.Username != sftest.DefaultUsername || v.Connection.InstanceURL != sf.InstanceURL() {
		t.Fatalf("connecting through the settings: %+v", v.Connection)
	}
	m := salesforce.DefaultMapping()
	m.TaskExternalIDField = "Switchboard_Chat_Id__c"
	if err := client.SetMapping(context.Background(), e.Org.ID, m); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *sfEnv) records(object, field, value string) []sftest.Record {
	var out []sftest.Record
	for _, r := range s.sf.Records(object) {
		if r[field] == value {
			out = append(out, r)
		}
	}
	return out
}

func TestSalesforceExport(t *testing.T) {
	storetest.Each(t, func(t *testing.T, d store.Dialect) {
		s := newSFEnv(t, d)
		fields := func(email string) map[string]string {
			return map[string]string{"first_name": "Ada", "last_name": "Lovelace", "email": email, "phone": "+12025550123", "Student Type": "Future Student"}
		}

		t.Run("a new contact and its task in one composite request", func(t *testing.T) {
			conv := s.start(fields("ada@example.org"))
			s.sf.ResetCounters()
			ex := s.export(conv.ID, store.ChatExported)
			if got := s.sf.CallCounts(); got["POST /composite"] != 1 || got["GET /query"] != 1 || s.sf.DataCalls() != 2 {
				t.Errorf("Salesforce calls %v, want one query and one composite request", got)
			}
			contacts := s.records("Contact", "Email", "ada@example.org")
			if len(contacts) != 1 {
				t.Fatalf("%d contacts", len(contacts))
			}
			c := contacts[0]
			if c["Id"] != ex.ContactID || c["FirstName"] != "Ada" || c["LastName"] != "Lovelace" || c["MobilePhone"] != "+12025550123" ||
				c["Mongoose_Student_Type__c"] != "Future Student" || c["OwnerId"] != s.owner || ex.ContactAction != "created" {
				t.Errorf("contact %v, log %+v", c, ex)
			}
			tasks := s.records("Task", "WhoId", ex.ContactID)
			if len(tasks) != 1 {
				t.Fatalf("%d tasks", len(tasks))
			}
			task := tasks[0]
			date := s.get(conv.ID).ClosedAt.UTC().Format("2006-01-02")
			if task["Id"] != ex.TaskIDs[0] || task["Subject"] != "Chat transcript "+date || task["Status"] != "Completed" || task["ActivityDate"] != date ||
				task["OwnerId"] != s.owner || task["Switchboard_Chat_Id__c"] != conv.ID+"-1" {
				t.Errorf("task %v", task)
			}
			if d, _ := task["Description"].(string); !strings.Contains(d, "Ada Lovelace (visitor): Tell me about admissions.") || !strings.Contains(d, "Student Type: Future Student") {
				t.Errorf("task description %q", d)
			}
		})

		t.Run("an existing contact is updated and its owner gets the task", func(t *testing.T) {
			advisor := s.sf.AddUser("advisor@acme.example")
			id := s.sf.AddRecord("Contact", map[string]any{"LastName": "Ng", "Email": "ng@example.org", "OwnerId": advisor})
			conv := s.start(fields("ng@example.org"))
			s.sf.ResetCounters()
			ex := s.export(conv.ID, store.ChatExported)
			c, _ := s.sf.Record(id)
			if ex.ContactID != id || ex.ContactAction != "updated" || c["FirstName"] != "Ada" || c["LastName"] != "Ng" || c["Mongoose_Student_Type__c"] != "Future Student" {
				t.Errorf("contact %v after export %+v", c, ex)
			}
			tasks := s.records("Task", "WhoId", id)
			if len(tasks) != 1 || tasks[0]["OwnerId"] != advisor || s.sf.Calls("POST /composite") != 1 {
				t.Errorf("tasks %v (want one owned by the contact's owner) after %v", tasks, s.sf.CallCounts())
			}
			if n := len(s.records("Contact", "Email", "ng@example.org")); n != 1 {
				t.Errorf("%d contacts with the email", n)
			}
		})

		t.Run("several contacts: the first created", func(t *testing.T) {
			first := s.sf.AddRecord("Contact", map[string]any{"LastName": "One", "Email": "twins@example.org"})
			second := s.sf.AddRecord("Contact", map[string]any{"LastName": "Two", "Email": "twins@example.org"})
			ex := s.export(s.start(fields("twins@example.org")).ID, store.ChatExported)
			if ex.ContactID != first || len(s.records("Task", "WhoId", second)) != 0 || !strings.Contains(ex.Note, "2 contacts have the email; the one created first ("+first+")") {
				t.Errorf("log %+v", ex)
			}
		})

		t.Run("REQUIRED_FIELD_MISSING fails with the reason and writes nothing", func(t *testing.T) {
			s.sf.SetRequired("Contact", "AccountId", true)
			defer s.sf.SetRequired("Contact", "AccountId", false)
			ex := s.export(s.start(fields("required@example.org")).ID, store.ChatFailed)
			if !strings.Contains(ex.Reason, "REQUIRED_FIELD_MISSING") || !strings.Contains(ex.Reason, "AccountId") || ex.Attempts != 1 {
				t.Errorf("log %+v", ex)
			}
			if len(s.records("Contact", "Email", "required@example.org")) != 0 || len(s.sf.Records("Task")) != 3 {
				t.Error("a refused export left records behind")
			}
		})

		t.Run("503 is retried with back-off", func(t *testing.T) {
			conv := s.start(fields("busy@example.org"))
			s.sf.FailNext(2, http.StatusServiceUnavailable)
			ex := s.export(conv.ID, store.ChatExported)
			if ex.Attempts != 3 || len(s.records("Task", "Switchboard_Chat_Id__c", conv.ID+"-1")) != 1 {
				t.Errorf("log %+v", ex)
			}
		})

		t.Run("a lost answer is retried without a second task", func(t *testing.T) {
			conv := s.start(fields("lost@example.org"))
			s.lose.arm()
			s.sf.ResetCounters()
			ex := s.export(conv.ID, store.ChatExported)
			if ex.Attempts != 2 || s.sf.Calls("POST /composite") != 2 {
				t.Errorf("log %+v after calls %v", ex, s.sf.CallCounts())
			}
			if c, tk := s.records("Contact", "Email", "lost@example.org"), s.records("Task", "Switchboard_Chat_Id__c", conv.ID+"-1"); len(c) != 1 || len(tk) != 1 || tk[0]["Id"] != ex.TaskIDs[0] {
				t.Errorf("%d contacts and %d tasks after a retried export, want one of each", len(c), len(tk))
			}
		})

		t.Run("a revoked authorization holds the export until reconnected", func(t *testing.T) {
			conv := s.start(fields("held@example.org"))
			s.sf.ExpireAccessTokens()
			s.sf.FailNextToken("invalid_grant", "user hasn't approved this consumer")
			ex := s.export(conv.ID, store.ChatHeld)
			if !strings.Contains(ex.Reason, "the CRM is offline") || !strings.Contains(ex.Reason, "invalid_grant") {
				t.Errorf("held log %+v", ex)
			}
			if v := s.get(conv.ID); v.State != store.ChatHeld {
				t.Errorf("state %s", v.State)
			}
			body := map[string]any{"reconnect": true}
			for k, v := range s.conn {
				body[k] = v
			}
			if v := s.settings(body); v.Connection == nil || !v.Connection.Connected {
				t.Fatalf("reconnect: %+v", v.Connection)
			}
			ex = s.waitExport(conv.ID, store.ChatExported)
			if len(s.records("Task", "Switchboard_Chat_Id__c", conv.ID+"-1")) != 1 {
				t.Errorf("after reconnecting: %+v", ex)
			}
		})

		t.Run("settings checked against Salesforce", func(t *testing.T) {
			bad := map[string]any{}
			for k, v := range s.conn {
				bad[k] = v
			}
			bad["default_owner_id"] = "0000000000abcde"
			r := s.API("PUT", "/v1/chat/export-settings", bad)
			if code, field, msg := errorField(t, r); r.Status != http.StatusBadRequest || code != sb.EInvalid || field != "default_owner_id" || !strings.Contains(msg, "Salesforce user id") {
				t.Errorf("a non-user owner id: %d %s", r.Status, r.Body)
			}
			_, other := newKeyPEM(t)
			body := map[string]any{"private_key": other}
			for k, v := range s.conn {
				body[k] = v
			}
			r = s.API("PUT", "/v1/chat/export-settings", body)
			if code, field, msg := errorField(t, r); r.Status != http.StatusBadRequest || code != sb.EInvalid || field != "connection" || !strings.Contains(msg, "Salesforce refused") {
				t.Errorf("a key Salesforce does not know: %d %s", r.Status, r.Body)
			}
			var v chat.SettingsView
			s.call("GET", "/v1/chat/export-settings", nil, http.StatusOK).JSON(t, &v)
			if !v.PrivateKeySet || !v.Enabled {
				t.Errorf("a refused connection changed the settings: %+v", v)
			}
		})
	})
}
