package web

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/chat"
	"github.com/switchboard/switchboard/store"
)

// testKeyPEM returns a new RSA private key in PEM form.
func testKeyPEM(t testing.TB) []byte {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
}

// chatConv starts a conversation with captured fields and closes it.
func (e *testEnv) chatConv(t testing.TB, fields map[string]string) string {
	t.Helper()
	ctx := context.Background()
	v, err := e.Chat.CreateConversation(ctx, e.Admin, chat.CreateRequest{Fields: fields, Messages: []chat.MessageRequest{
		{Speaker: "visitor", Text: "Hi, I'd like to know about admissions."},
		{Speaker: "bot", Text: "Happy to help! What's your email?"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Chat.Close(ctx, e.Admin, v.ID); err != nil {
		t.Fatal(err)
	}
	return v.ID
}

// waitChat waits until a conversation's export ends in state.
func (e *testEnv) waitChat(t testing.TB, id, state string) {
	t.Helper()
	e.WaitFor("conversation "+id+" "+state, func() bool {
		v, err := e.Chat.Conversation(context.Background(), e.Admin, id)
		return err == nil && v.State == state
	})
}

// chatRow returns the export log row of a conversation.
func chatRow(t testing.TB, p *result, id string) string {
	t.Helper()
	m := regexp.MustCompile(`(?s)<tr id="conv-` + regexp.QuoteMeta(id) + `".*?</tr>`).FindString(p.Body)
	if m == "" {
		t.Fatalf("the export log has no row for %s: %s", id, p.Body)
	}
	return m
}

// TestChatExportPages walks the chat export pages through the real
// handler: the settings form (validation, the private key upload, field
// mapping, filter, required fields), the export log with each
// conversation's state and reason, and re-export — one, and all skipped.
func TestChatExportPages(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *testEnv) {
		ctx := context.Background()
		admin := e.signIn(t, "admin")
		p := admin.get("/ui/chat/settings")
		if p.Status != http.StatusOK || !strings.Contains(p.Body, `href="/ui/chat/exports" aria-current="page"`) ||
			!strings.Contains(p.Body, `name="required_first_name" checked`) || strings.Contains(p.Body, `id="chat-enabled" checked`) || !p.has("No private key stored.") {
			t.Fatalf("settings page: %d %s", p.Status, p.Body)
		}
		if p := e.signIn(t, "limited").get("/ui/"); p.has("Chat export") {
			t.Fatal("a Limited Access user sees the chat export link")
		}

		base := url.Values{"enabled": {"on"}, "instance_url": {"https://login.salesforce.com"}, "client_id": {"3MVG9abc"},
			"username": {"api@college.example"}, "default_owner_id": {e.Admin.ID}, "user_assignment": {"chat_user"},
			"required_first_name": {"on"}, "required_last_name": {"on"}, "required_other": {"Student Type"},
			"map_captured": {"Student Type", "", ""}, "map_crm": {"Mongoose_Student_Type__c", "", ""},
			"filter": {"student_type = 'Future Student'"}, "time_zone": {"America/New_York"}, "retention_days": {"30"}}
		key := testKeyPEM(t)

		// The instance URL is checked as the seed says; the form keeps what
		// was typed and marks the field.
		p = admin.postFile("/ui/chat/settings", clone(base), "private_key", "key.pem", key)
		if p.Status != http.StatusBadRequest || !p.has("login.salesforce.com") ||
			!strings.Contains(p.Body, `id="instance_url" name="instance_url" type="url" inputmode="url" value="https://login.salesforce.com"`) ||
			!regexp.MustCompile(`id="instance_url"[^>]*aria-invalid="true"`).MatchString(p.Body) || !p.has("Mongoose_Student_Type__c") {
			t.Fatalf("bad instance URL: %d %s", p.Status, p.Body)
		}
		for _, tc := range []struct {
			set  url.Values
			want string
		}{
			{url.Values{"instance_url": {"https://school.my.salesforce.com"}, "map_crm": {"Not A Field", "", ""}}, "CRM field API name"},
			{url.Values{"instance_url": {"https://school.my.salesforce.com"}, "filter": {"student_type = "}}, "filter"},
			{url.Values{"instance_url": {"https://school.my.salesforce.com"}, "default_owner_id": {"nobody"}}, "not a user of this org"},
			{url.Values{"instance_url": {"https://school.my.salesforce.com"}, "time_zone": {"Mars/Olympus"}}, "IANA time zone"},
		} {
			f := clone(base)
			for k, v := range tc.set {
				f[k] = v
			}
			if p := admin.postFile("/ui/chat/settings", f, "private_key", "key.pem", key); p.Status != http.StatusBadRequest || !p.has(tc.want) {
				t.Errorf("settings %v: %d, want 400 with %q", tc.set, p.Status, tc.want)
			}
		}
		if p := admin.postFile("/ui/chat/settings", url.Values{"instance_url": {"https://school.my.salesforce.com"}, "client_id": {"x"}, "username": {"api@college.example"}},
			"private_key", "key.pem", []byte("not a key")); p.Status != http.StatusBadRequest || !p.has("private_key must be an RSA private key") {
			t.Fatalf("bad key file: %d", p.Status)
		}

		base.Set("instance_url", "https://school.my.salesforce.com")
		p = admin.postFile("/ui/chat/settings", clone(base), "private_key", "key.pem", key)
		if p.Status != http.StatusOK || !p.has("Chat export settings saved.") || !p.has("A private key is stored") || p.has("BEGIN RSA") {
			t.Fatalf("save: %d %s", p.Status, p.Body)
		}
		v, err := e.Chat.Settings(ctx, e.Admin)
		if err != nil {
			t.Fatal(err)
		}
		if !v.Enabled || v.InstanceURL != "https://school.my.salesforce.com" || !v.PrivateKeySet || v.UserAssignment != chat.AssignChatUser ||
			strings.Join(v.RequiredFields, ",") != "first_name,last_name,email,Student Type" || v.FieldMapping["Student Type"] != "Mongoose_Student_Type__c" ||
			v.Filter != "student_type = 'Future Student'" || v.RetentionDays != 30 || v.TimeZone != "America/New_York" || v.DefaultOwnerID != e.Admin.ID {
			t.Fatalf("saved settings: %+v", v)
		}
		// Saving again without a file keeps the key.
		if p := admin.post("/ui/chat/settings", clone(base)); p.Status != http.StatusOK || !p.has("A private key is stored") {
			t.Fatalf("save without a key file: %d", p.Status)
		}

		// Three conversations: exported, missing a field, filtered out.
		full := map[string]string{"first_name": "Ana", "last_name": "Lopez", "email": "ana@example.org", "Student Type": "Future Student"}
		exported := e.chatConv(t, full)
		missing := e.chatConv(t, map[string]string{"first_name": "Ben", "email": "ben@example.org", "Student Type": "Future Student"})
		filtered := e.chatConv(t, map[string]string{"first_name": "Cy", "last_name": "Tran", "email": "cy@example.org", "Student Type": "Alumni"})
		open, err := e.Chat.CreateConversation(ctx, e.Admin, chat.CreateRequest{Fields: map[string]string{"first_name": "Dee"}})
		if err != nil {
			t.Fatal(err)
		}
		e.waitChat(t, exported, store.ChatExported)
		e.waitChat(t, missing, store.ChatSkipped)
		e.waitChat(t, filtered, store.ChatSkipped)

		p = admin.get("/ui/chat/exports")
		if p.Status != http.StatusOK || !p.has("Re-export all skipped (2)") {
			t.Fatalf("export log: %d %s", p.Status, p.Body)
		}
		for _, c := range []struct {
			id, state, reason string
			button            bool
		}{
			{exported, "Exported", "created", false},
			{missing, "Skipped: missing fields", "missing required field(s): last_name", true},
			{filtered, "Skipped: filtered out", "export filter not met", true},
			{open.ID, "Open", "has not closed yet", false},
		} {
			row := chatRow(t, p, c.id)
			if !strings.Contains(row, `data-state="`+c.state+`"`) || !strings.Contains(unescaped(row), c.reason) || strings.Contains(row, "/re-export") != c.button {
				t.Errorf("row of %s: want %q, %q, button %v: %s", c.id, c.state, c.reason, c.button, row)
			}
		}
		if p := admin.get("/ui/chat/exports?state=skipped"); strings.Contains(p.Body, `id="conv-`+exported+`"`) || !strings.Contains(p.Body, `id="conv-`+missing+`"`) {
			t.Fatal("the skipped tab lists an exported conversation, or misses a skipped one")
		}
		if p := admin.get("/ui/chat/exports?state=bogus"); p.Status != http.StatusBadRequest {
			t.Fatalf("bad state filter: %d", p.Status)
		}

		// The filter goes; all skipped are exported again: the filtered one
		// is exported now, the one missing a field is skipped again.
		f := clone(base)
		f.Set("filter", "")
		if p := admin.post("/ui/chat/settings", f); p.Status != http.StatusOK {
			t.Fatalf("drop the filter: %d %s", p.Status, p.Body)
		}
		p = admin.post("/ui/chat/exports/re-export-skipped", nil)
		if p.Status != http.StatusOK || !p.has("2 skipped conversations are being exported again.") {
			t.Fatalf("re-export all skipped: %d %s", p.Status, p.Body)
		}
		e.waitChat(t, filtered, store.ChatExported)
		e.waitChat(t, missing, store.ChatSkipped)

		// Last name no longer required: re-export the one conversation.
		f.Del("required_last_name")
		if p := admin.post("/ui/chat/settings", f); p.Status != http.StatusOK {
			t.Fatalf("settings: %d", p.Status)
		}
		p = admin.post("/ui/chat/exports/"+missing+"/re-export", nil, "HX-Request", "true")
		if p.Status != http.StatusOK || !p.has("Conversation "+missing+" is being exported again.") {
			t.Fatalf("re-export one: %d %s", p.Status, p.Body)
		}
		e.waitChat(t, missing, store.ChatExported)
		// Never twice.
		p = admin.post("/ui/chat/exports/"+exported+"/re-export", nil)
		if p.Status != http.StatusConflict || !p.has("never exported twice") {
			t.Fatalf("re-export of an exported conversation: %d %s", p.Status, p.Body)
		}
		p = admin.get("/ui/chat/exports")
		if strings.Contains(p.Body, "Re-export all skipped") || !strings.Contains(chatRow(t, p, missing), `data-state="Exported"`) {
			t.Fatalf("export log at the end: %s", p.Body)
		}
		contacts, err := e.DB.Contacts(ctx, e.Org.ID, store.ContactFilter{Search: "example.org", Limit: 10})
		if err != nil || len(contacts) != 3 {
			t.Fatalf("built-in CRM contacts: %d %v", len(contacts), err)
		}
	})
}

func clone(v url.Values) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

// unescaped decodes the entities of a page fragment.
func unescaped(s string) string { return (&result{Body: s}).text() }
