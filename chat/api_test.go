package chat_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	sb "github.com/switchboard/switchboard"
	"github.com/switchboard/switchboard/store"
)

func TestConversationAPI(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		agent, _ := e.addUser("agent@example.org", "")
		at := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
		var v view
		e.call("POST", "/v1/chat/conversations", map[string]any{
			"user_id": agent.ID,
			"fields":  map[string]string{"First Name": " Ada ", "email": "ADA@Example.org", "phone": "(202) 555-0123", "Student Type": "Future Student"},
			"messages": []map[string]any{
				{"speaker": "bot", "name": "Switchbot", "text": "Hi! How can I help?", "at": at.Format(time.RFC3339)},
				{"speaker": "Visitor", "text": "Admissions, please.", "at": at.Add(time.Minute).Format(time.RFC3339)},
			},
		}, http.StatusCreated).JSON(t, &v)
		if v.State != store.ChatOpen || v.UserID != agent.ID || v.MessageCount != 2 || v.Source != "api" || v.Round != 0 || v.Export != nil {
			t.Fatalf("new conversation: %+v", v)
		}
		wantFields := map[string]string{"first_name": "Ada", "email": "ada@example.org", "phone": "+12025550123", "Student Type": "Future Student"}
		if !equalMaps(v.Fields, wantFields) {
			t.Errorf("captured fields %v, want %v (normalized)", v.Fields, wantFields)
		}
		if len(v.Messages) != 2 || v.Messages[0].Name != "Switchbot" || v.Messages[1].Speaker != "visitor" || !v.Messages[0].At.Equal(at) || v.Messages[1].Seq != 2 {
			t.Errorf("messages %+v", v.Messages)
		}

		// Append, set fields (merge; "" removes), change the handling user.
		var m store.ChatMessage
		e.call("POST", "/v1/chat/conversations/"+v.ID+"/messages", map[string]any{"speaker": "agent", "text": "Hello Ada,\nhow can I help?"}, http.StatusCreated).JSON(t, &m)
		if m.Seq != 3 || m.Speaker != "agent" || m.At.IsZero() {
			t.Errorf("appended message %+v", m)
		}
		id := v.ID
		v = view{}
		e.call("PATCH", "/v1/chat/conversations/"+id, map[string]any{"fields": map[string]string{"last_name": "Lovelace", "student_type": "Transfer", "phone": ""}, "user_id": "-"}, http.StatusOK).JSON(t, &v)
		wantFields = map[string]string{"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.org", "student_type": "Transfer"}
		if !equalMaps(v.Fields, wantFields) || v.UserID != "" {
			t.Errorf("after PATCH: fields %v user %q; want %v and no user", v.Fields, v.UserID, wantFields)
		}

		// Bad input names the field.
		bad := []struct {
			method, path string
			body         any
			field, msg   string
		}{
			{"POST", "/v1/chat/conversations", map[string]any{"user_id": "nobody"}, "user_id", "is not a user of this org"},
			{"POST", "/v1/chat/conversations", map[string]any{"fields": map[string]string{"email": "not an email"}}, "fields.email", "email must be an email address"},
			{"POST", "/v1/chat/conversations", map[string]any{"fields": map[string]string{"phone": "12"}}, "fields.phone", "phone number"},
			{"POST", "/v1/chat/conversations", map[string]any{"fields": map[string]string{"a{b": "x"}}, "fields.a{b", "contains '{'"},
			{"POST", "/v1/chat/conversations", map[string]any{"fields": map[string]string{"Student Type": "a", "student_type": "b"}}, "fields.student_type", "name the same field"},
			{"POST", "/v1/chat/conversations", map[string]any{"messages": []map[string]any{{"speaker": "robot", "text": "x"}}}, "messages[0].speaker", "visitor, bot or agent"},
			{"POST", "/v1/chat/conversations/" + v.ID + "/messages", map[string]any{"speaker": "bot", "text": "  "}, "text", "text is required"},
			{"POST", "/v1/chat/conversations/" + v.ID + "/messages", map[string]any{"speaker": "bot", "text": strings.Repeat("x", 8001)}, "text", "longer than 8000"},
			{"POST", "/v1/chat/conversations/" + v.ID + "/messages", map[string]any{"speaker": "bot", "text": "x", "at": time.Now().Add(time.Hour)}, "at", "in the future"},
			{"POST", "/v1/chat/conversations/" + v.ID + "/messages", map[string]any{"speaker": "bot", "text": "x", "mood": "happy"}, "", "unknown field"},
			{"GET", "/v1/chat/conversations?state=done", nil, "state", "state must be"},
			{"GET", "/v1/chat/exports?status=done", nil, "status", "status must be"},
		}
		for _, b := range bad {
			r := e.API(b.method, b.path, b.body)
			code, field, msg := errorField(t, r)
			if r.Status != http.StatusBadRequest || code != sb.EInvalid || field != b.field || !strings.Contains(msg, b.msg) {
				t.Errorf("%s %s %v: %d %s %q %q; want 400 naming %q with %q", b.method, b.path, b.body, r.Status, code, field, msg, b.field, b.msg)
			}
		}

		// Close: the export round is queued with the close; closing again
		// and concurrent closes change nothing.
		other := e.start(map[string]string{"email": "x@example.org"})
		e.close(v.ID)
		var wg sync.WaitGroup
		for range 5 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if r := e.API("POST", "/v1/chat/conversations/"+other.ID+"/close", nil); r.Status != http.StatusOK {
					t.Errorf("concurrent close: %d %s", r.Status, r.Body)
				}
			}()
		}
		wg.Wait()
		again := e.close(v.ID)
		if again.Round != 1 || again.ClosedAt == nil || again.Export == nil || again.Export.Round != 1 {
			t.Errorf("closed twice: %+v", again.ChatConversation)
		}
		for _, id := range []string{v.ID, other.ID} {
			e.waitExport(id, store.ChatSkipped) // the export is not enabled
			if ex := e.exports(id); len(ex) != 1 {
				t.Errorf("conversation %s has %d export rounds after several closes, want 1", id, len(ex))
			}
		}
		// A closed conversation cannot change.
		for _, c := range []struct {
			method, path string
			body         any
		}{
			{"POST", "/v1/chat/conversations/" + v.ID + "/messages", map[string]any{"speaker": "bot", "text": "late"}},
			{"PATCH", "/v1/chat/conversations/" + v.ID, map[string]any{"fields": map[string]string{"email": "b@example.org"}}},
		} {
			if r := e.API(c.method, c.path, c.body); r.Status != http.StatusConflict || !strings.Contains(string(r.Body), "is closed") {
				t.Errorf("%s %s on a closed conversation: %d %s", c.method, c.path, r.Status, r.Body)
			}
		}

		// List and filter.
		var list struct {
			Conversations []store.ChatConversation `json:"conversations"`
			Next          string                   `json:"next"`
		}
		open := e.start(map[string]string{"first_name": "Open"})
		e.call("GET", "/v1/chat/conversations?state=open", nil, http.StatusOK).JSON(t, &list)
		if len(list.Conversations) != 1 || list.Conversations[0].ID != open.ID {
			t.Errorf("open conversations: %+v", list.Conversations)
		}
		e.call("GET", "/v1/chat/conversations?limit=2", nil, http.StatusOK).JSON(t, &list)
		if len(list.Conversations) != 2 || list.Next == "" || list.Conversations[0].ID != open.ID {
			t.Fatalf("first page: %+v next %q", list.Conversations, list.Next)
		}
		e.call("GET", "/v1/chat/conversations?limit=2&before="+list.Next, nil, http.StatusOK).JSON(t, &list)
		if len(list.Conversations) != 1 || list.Conversations[0].ID != v.ID {
			t.Errorf("second page: %+v", list.Conversations)
		}

		// Another org sees none of it.
		_, _, key2, err := e.Hub.CreateOrg(context.Background(), "Other College", "admin@other.example", "Other Admin")
		if err != nil {
			t.Fatal(err)
		}
		if r := e.Do("GET", "/v1/chat/conversations/"+v.ID, key2, nil); r.Status != http.StatusNotFound {
			t.Errorf("another org reads a conversation: %d", r.Status)
		}
		if r := e.Do("POST", "/v1/chat/conversations/"+open.ID+"/close", key2, nil); r.Status != http.StatusNotFound {
			t.Errorf("another org closes a conversation: %d", r.Status)
		}
		if r := e.Do("GET", "/v1/chat/conversations", "", nil); r.Status != http.StatusUnauthorized {
			t.Errorf("no API key: %d", r.Status)
		}

		// Content is sealed: no readable name, email or text in any chat table.
		for _, table := range []string{"chat_conversations", "chat_messages", "chat_exports", "chat_settings"} {
			raw, err := e.DB.RawScan(context.Background(), table)
			if err != nil {
				t.Fatal(err)
			}
			for _, secret := range []string{"Lovelace", "ada@example.org", "Admissions, please", "Hello Ada", "Switchbot", "Transfer"} {
				if bytes.Contains(raw, []byte(secret)) {
					t.Errorf("table %s holds %q readable", table, secret)
				}
			}
		}
	})
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// newKeyPEM returns an RSA key and its PKCS #8 PEM.
func newKeyPEM(t *testing.T) (*rsa.PrivateKey, string) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return key, string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

func TestExportSettingsAPI(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		// Defaults before anything is saved.
		var v map[string]any
		e.call("GET", "/v1/chat/export-settings", nil, http.StatusOK).JSON(t, &v)
		if v["enabled"] != false || v["user_assignment"] != "contact_owner" || v["retention_days"] != float64(7) || v["time_zone"] != "UTC" ||
			len(v["required_fields"].([]any)) != 3 || v["private_key_set"] != false {
			t.Errorf("default settings %v", v)
		}
		// System Admin only.
		_, key := e.addUser("staff@example.org", "", sb.PermLimitedAccess)
		for _, m := range []string{"GET", "PUT"} {
			if r := e.Do(m, "/v1/chat/export-settings", key, map[string]any{}); r.Status != http.StatusForbidden {
				t.Errorf("%s settings as Limited Access: %d", m, r.Status)
			}
		}

		_, pemKey := newKeyPEM(t)
		conn := map[string]any{"instance_url": "https://school.my.salesforce.com", "client_id": "3MVGabc", "username": "api@school.edu", "private_key": pemKey}
		with := func(extra map[string]any) map[string]any {
			out := map[string]any{}
			for k, v := range extra {
				out[k] = v
			}
			return out
		}
		withConn := func(k string, val any) map[string]any {
			out := with(conn)
			if val == nil {
				delete(out, k)
			} else {
				out[k] = val
			}
			return out
		}
		bad := []struct {
			body       map[string]any
			field, msg string
		}{
			{withConn("instance_url", "https://login.salesforce.com"), "instance_url", "not login.salesforce.com"},
			{withConn("instance_url", "http://school.my.salesforce.com"), "instance_url", "must start with https://"},
			{withConn("instance_url", "https://school.salesforce.com.evil.example"), "instance_url", "ending in .salesforce.com"},
			{withConn("instance_url", "https://school.my.salesforce.com/home"), "instance_url", "without a path"},
			{withConn("instance_url", nil), "instance_url", "instance_url is required"},
			{withConn("client_id", nil), "client_id", "client_id"},
			{withConn("client_id", "has space"), "client_id", "consumer key"},
			{withConn("username", "api"), "username", "looks like an email"},
			{withConn("private_key", "not a key"), "private_key", "RSA private key in PEM"},
			{withConn("private_key", nil), "private_key", "private_key (the PEM private key"},
			{map[string]any{"default_owner_id": "nobody"}, "default_owner_id", "not a user of this org"},
			{map[string]any{"user_assignment": "round_robin"}, "user_assignment", `"contact_owner" or "chat_user"`},
			{map[string]any{"required_fields": []string{"first_name"}}, "required_fields", "must include email"},
			{map[string]any{"required_fields": []string{"email", ""}}, "required_fields[1]", "must not be empty"},
			{map[string]any{"field_mapping": map[string]string{"Student Type": "Student Type"}}, "field_mapping.Student Type", "CRM field API name"},
			{map[string]any{"field_mapping": map[string]string{"Student Type": "Bad___Name__c"}}, "field_mapping.Student Type", "CRM field API name"},
			{map[string]any{"field_mapping": map[string]string{"email": "Email__c"}}, "field_mapping.email", "custom fields only"},
			{map[string]any{"field_mapping": map[string]string{"Owner": "OwnerId"}}, "field_mapping.Owner", "written by the export itself"},
			{map[string]any{"field_mapping": map[string]string{"a": "X__c", "b": "X__c"}}, "field_mapping.b", "both mapped to X__c"},
			{map[string]any{"filter": "student_type = Future"}, "filter", "expected a quoted value"},
			{map[string]any{"retention_days": -1}, "retention_days", "between 0 and 365"},
			{map[string]any{"retention_days": 400}, "retention_days", "between 0 and 365"},
			{map[string]any{"time_zone": "Mars/Olympus"}, "time_zone", "IANA time zone"},
		}
		for _, b := range bad {
			r := e.API("PUT", "/v1/chat/export-settings", b.body)
			code, field, msg := errorField(t, r)
			if r.Status != http.StatusBadRequest || code != sb.EInvalid || field != b.field || !strings.Contains(msg, b.msg) {
				t.Errorf("PUT %v: %d %s field %q %q; want 400 naming %q with %q", b.body, r.Status, code, field, msg, b.field, b.msg)
			}
		}

		// A good PUT: normalized, the key write-only and sealed.
		good := with(conn)
		good["enabled"] = true
		good["default_owner_id"] = e.Admin.ID
		good["user_assignment"] = "chat_user"
		good["required_fields"] = []string{"Email", "Last Name", "email", "Student Type"}
		good["field_mapping"] = map[string]string{"Student Type": " Mongoose_Student_Type__c "}
		good["filter"] = `"Student Type" = "Future Student" AND (phone is set OR email is set)`
		good["retention_days"] = 0
		good["time_zone"] = "America/Chicago"
		r := e.call("PUT", "/v1/chat/export-settings", good, http.StatusOK)
		if bytes.Contains(r.Body, []byte("PRIVATE KEY")) {
			t.Error("the private key is shown")
		}
		v = nil
		e.call("GET", "/v1/chat/export-settings", nil, http.StatusOK).JSON(t, &v)
		want := map[string]any{
			"enabled": true, "instance_url": "https://school.my.salesforce.com", "client_id": "3MVGabc", "username": "api@school.edu",
			"default_owner_id": e.Admin.ID, "user_assignment": "chat_user", "filter": `'Student Type' = 'Future Student' and (phone is set or email is set)`,
			"retention_days": float64(0), "time_zone": "America/Chicago", "private_key_set": true, "updated_by": e.Admin.ID,
		}
		for k, w := range want {
			if v[k] != w {
				t.Errorf("setting %s = %v, want %v", k, v[k], w)
			}
		}
		if rf := v["required_fields"].([]any); len(rf) != 3 || rf[0] != "email" || rf[1] != "last_name" || rf[2] != "Student Type" {
			t.Errorf("required fields %v", rf)
		}
		if fm := v["field_mapping"].(map[string]any); len(fm) != 1 || fm["Student Type"] != "Mongoose_Student_Type__c" {
			t.Errorf("field mapping %v", fm)
		}
		raw, err := e.DB.RawScan(context.Background(), "chat_settings")
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(raw, []byte("PRIVATE KEY")) || bytes.Contains(raw, []byte(strings.Split(pemKey, "\n")[1])) {
			t.Error("chat_settings holds the private key readable")
		}
		// Without private_key the stored key stays; "" removes it (and the
		// connection settings then lack it).
		keep := with(conn)
		delete(keep, "private_key")
		v = nil
		e.call("PUT", "/v1/chat/export-settings", keep, http.StatusOK).JSON(t, &v)
		if v["private_key_set"] != true {
			t.Error("a PUT without private_key dropped the stored key")
		}
		keep["private_key"] = ""
		if r := e.API("PUT", "/v1/chat/export-settings", keep); r.Status != http.StatusBadRequest {
			t.Errorf("removing the key but keeping the connection: %d %s", r.Status, r.Body)
		}
		v = nil
		e.call("PUT", "/v1/chat/export-settings", map[string]any{"private_key": ""}, http.StatusOK).JSON(t, &v)
		if v["private_key_set"] != false || v["instance_url"] != nil {
			t.Errorf("after removing the connection: %v", v)
		}
	})
}
