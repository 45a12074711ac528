package http_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	sb "github.com/switchboard/switchboard"
	"github.com/switchboard/switchboard/crm/builtin"
	"github.com/switchboard/switchboard/hub/hubtest"
	"github.com/switchboard/switchboard/store"
)

// newUserKey creates a user of the env's org with the permissions and
// returns it with an API key of its own.
func newUserKey(t *testing.T, e *hubtest.Env, email string, perms ...sb.Permission) (*sb.User, string) {
	t.Helper()
	ctx := context.Background()
	u := &sb.User{OrgID: e.Org.ID, Email: email, Name: strings.Split(email, "@")[0], Permissions: perms}
	var key string
	if err := e.DB.Tx(ctx, func(tx *store.Tx) error {
		if err := tx.CreateUser(ctx, u, ""); err != nil {
			return err
		}
		var err error
		_, key, err = tx.CreateAPIKey(ctx, e.Org.ID, u.ID, "test")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return u, key
}

func importCSV(t *testing.T, e *hubtest.Env, key, csv string) builtin.ImportResult {
	t.Helper()
	r := e.Do("POST", "/v1/contacts/import", key, []byte(csv), "Content-Type", "text/csv")
	if r.Status != http.StatusOK {
		t.Fatalf("import: %d %s", r.Status, r.Body)
	}
	var res builtin.ImportResult
	r.JSON(t, &res)
	return res
}

// contactsByKey lists the org's contacts by email, or phone when they have
// none.
func contactsByKey(t *testing.T, e *hubtest.Env) map[string]sb.CRMRecord {
	t.Helper()
	r := e.API("GET", "/v1/contacts?limit=1000", nil)
	var list struct{ Contacts []sb.CRMRecord }
	r.JSON(t, &list)
	out := map[string]sb.CRMRecord{}
	for _, c := range list.Contacts {
		k := c.Email
		if k == "" {
			k = c.Phone
		}
		if _, dup := out[k]; dup {
			t.Fatalf("two contacts for %s: %+v", k, list.Contacts)
		}
		out[k] = c
	}
	return out
}

// TestContactsImport imports contacts through POST /v1/contacts/import:
// bad rows are reported by line with the reason, duplicates within the file
// and on re-import update one contact (by email, or by phone when there is
// no email), only the cells the file gives change a contact, and new
// contacts are owned by the importing user or the owner_id column.
func TestContactsImport(t *testing.T) {
	hubtest.Each(t, func(t *testing.T, e *hubtest.Env) {
		importer, key := newUserKey(t, e, "importer@example.org", sb.PermSystemAdmin)
		bob, _ := newUserKey(t, e, "bob@example.org")
		csv := "first_name,last_name,email,phone,opt_out,owner_id,Student Type\n" +
			"Ada,Lovelace,ada@example.org,(202) 555-0150,true,,Future Student\n" + // line 2
			"Ada,Byron,ADA@example.org,,,,\n" + // line 3: the same contact, by email
			",,,2025550151,,BOB,\n" + // line 4: phone only, owned by Bob
			"Bad,Phone,bad@example.org,12,,,\n" + // line 5
			"No,Key,,,,,\n" + // line 6
			"Eve,Owner,eve@example.org,,,nobody,\n" + // line 7
			"Opt,Bad,opt@example.org,,maybe,,\n" + // line 8
			"Not,Mail,not-an-email,,,,\n" // line 9
		csv = strings.Replace(csv, "BOB", bob.ID, 1)
		res := importCSV(t, e, key, csv)
		if res.Created != 2 || res.Updated != 1 {
			t.Fatalf("first import: created %d, updated %d, errors %+v; want 2 created, 1 updated", res.Created, res.Updated, res.Errors)
		}
		wantErrs := []struct {
			line int
			msg  string
		}{{5, "phone"}, {6, "neither phone nor email"}, {7, `owner_id "nobody" is not a user`}, {8, `opt_out must be true or false, not "maybe"`}, {9, "not an email address"}}
		if len(res.Errors) != len(wantErrs) {
			t.Fatalf("errors %+v, want %d", res.Errors, len(wantErrs))
		}
		for i, w := range wantErrs {
			if got := res.Errors[i]; got.Line != w.line || !strings.Contains(got.Message, w.msg) {
				t.Errorf("error %d = %+v, want line %d naming %q", i, got, w.line, w.msg)
			}
		}
		check := func(stage string) map[string]sb.CRMRecord {
			t.Helper()
			cs := contactsByKey(t, e)
			if len(cs) != 2 {
				t.Fatalf("%s: %d contacts, want 2: %v", stage, len(cs), cs)
			}
			return cs
		}
		cs := check("first import")
		ada, phoneOnly := cs["ada@example.org"], cs["+12025550151"]
		if ada.FirstName != "Ada" || ada.LastName != "Byron" || ada.Phone != "+12025550150" || !ada.OptOut ||
			ada.OwnerID != importer.ID || ada.Fields["Student Type"] != "Future Student" {
			t.Errorf("Ada after the first import: %+v (owner want the importer %s)", ada, importer.ID)
		}
		if phoneOnly.OwnerID != bob.ID || phoneOnly.Email != "" {
			t.Errorf("phone-only contact: %+v, want owned by Bob %s", phoneOnly, bob.ID)
		}

		// The same file again creates nothing and changes nothing.
		res = importCSV(t, e, key, csv)
		if res.Created != 0 || res.Updated != 3 || len(res.Errors) != len(wantErrs) {
			t.Fatalf("re-import: %+v, want 0 created, 3 updated", res)
		}
		cs = check("re-import")
		if got := cs["ada@example.org"]; got.LastName != "Byron" || got.Phone != ada.Phone || !got.OptOut || got.OwnerID != importer.ID || got.ID != ada.ID {
			t.Errorf("Ada after re-import: %+v", got)
		}
		if got := cs["+12025550151"]; got.ID != phoneOnly.ID || got.OwnerID != bob.ID {
			t.Errorf("phone-only contact after re-import: %+v", got)
		}

		// A file with fewer columns changes only those; the admin importing
		// it does not take over Ada.
		res = importCSV(t, e, e.Key, "email,first_name\nada@example.org,Augusta\n")
		if res.Created != 0 || res.Updated != 1 {
			t.Fatalf("partial import: %+v", res)
		}
		got := check("partial import")["ada@example.org"]
		if got.FirstName != "Augusta" || got.LastName != "Byron" || got.Phone != "+12025550150" || !got.OptOut ||
			got.OwnerID != importer.ID || got.Fields["Student Type"] != "Future Student" {
			t.Errorf("a partial import cleared columns it does not have: %+v", got)
		}
		// Opt-out is changed only by an explicit value.
		importCSV(t, e, e.Key, "email,opt_out\nada@example.org,false\n")
		if got := check("opt-out cleared")["ada@example.org"]; got.OptOut {
			t.Errorf("opt_out false did not clear the flag: %+v", got)
		}
		// A phone-only row in another format matches the contact by phone.
		res = importCSV(t, e, e.Key, "phone,last_name\n+1 202 555 0151,Babbage\n")
		if res.Created != 0 || res.Updated != 1 {
			t.Fatalf("phone-only re-import: %+v", res)
		}
		if got := check("phone-only re-import")["+12025550151"]; got.LastName != "Babbage" || got.OwnerID != bob.ID {
			t.Errorf("phone-only contact: %+v", got)
		}
	})
}

// TestContactsImportRequiresAdmin: only a System Admin imports contacts.
func TestContactsImportRequiresAdmin(t *testing.T) {
	e := hubtest.New(t, store.SQLite)
	_, key := newUserKey(t, e, "inbox@example.org", sb.PermInbox)
	r := e.Do("POST", "/v1/contacts/import", key, []byte("email\nx@example.org\n"), "Content-Type", "text/csv")
	if r.Status != http.StatusForbidden {
		t.Fatalf("import by an Inbox user: %d %s", r.Status, r.Body)
	}
	if cs := contactsByKey(t, e); len(cs) != 0 {
		t.Fatalf("contacts imported by a non-admin: %v", cs)
	}
}
