package template_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	sb "github.com/switchboard/switchboard"
	sbhttp "github.com/switchboard/switchboard/http"
	"github.com/switchboard/switchboard/hub/hubtest"
	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/template"
)

// wire plugs the template service into a running test Switchboard, as
// cmd/switchboard does.
func wire(e *hubtest.Env) *template.Service {
	svc := template.New(e.DB, e.Hub.CRMs)
	e.Hub.Renderer = svc
	e.HTTP.Content = &sbhttp.Content{Templates: svc}
	return svc
}

func addUser(t *testing.T, e *hubtest.Env, email string, perms ...sb.Permission) (*sb.User, string) {
	t.Helper()
	ctx := context.Background()
	u := &sb.User{OrgID: e.Org.ID, Email: email, Name: strings.Split(email, "@")[0], Permissions: perms}
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
		t.Fatal(err)
	}
	return u, key
}

func addContact(t *testing.T, e *hubtest.Env, c *sb.CRMRecord) *sb.CRMRecord {
	t.Helper()
	ctx := context.Background()
	if err := e.DB.Tx(ctx, func(tx *store.Tx) error { return tx.SaveContact(ctx, e.Org.ID, c) }); err != nil {
		t.Fatal(err)
	}
	return c
}

func createTemplate(t *testing.T, e *hubtest.Env, name, body string) template.View {
	t.Helper()
	r := e.API("POST", "/v1/templates", map[string]any{"name": name, "body": body})
	if r.Status != http.StatusCreated {
		t.Fatalf("create template: %d %s", r.Status, r.Body)
	}
	var v template.View
	r.JSON(t, &v)
	return v
}

func errorMessage(t *testing.T, r *hubtest.Response) string {
	t.Helper()
	var eb sbhttp.ErrorBody
	r.JSON(t, &eb)
	return eb.Error.Message
}

func TestTemplateCRUDAndPermissions(t *testing.T) {
	hubtest.Each(t, func(t *testing.T, e *hubtest.Env) {
		wire(e)
		_, limitedKey := addUser(t, e, "staff@example.org", sb.PermLimitedAccess)
		_, bulkKey := addUser(t, e, "sender@example.org", sb.PermBulkSMS)
		_, _, otherKey, err := e.Hub.CreateOrg(context.Background(), "Other Org", "other@example.org", "Other")
		if err != nil {
			t.Fatal(err)
		}

		v := createTemplate(t, e, "Welcome", "Hi {Contact.FirstName|there}, welcome to {Org.Name}!")
		if strings.Join(v.Fields, ",") != "Contact.FirstName,Org.Name" || v.CreatedBy != e.Admin.ID {
			t.Fatalf("created: %+v", v)
		}
		cases := []struct {
			name, method, path, key string
			body                    any
			status                  int
			msg                     string
		}{
			{"unknown field at save", "POST", "/v1/templates", e.Key, map[string]any{"name": "Bad", "body": "Hi {Contact.Nickname}"}, 400, "unknown merge field {Contact.Nickname}"},
			{"lone brace at save", "POST", "/v1/templates", e.Key, map[string]any{"name": "Bad", "body": "Hi :}"}, 400, "lone }"},
			{"missing name", "POST", "/v1/templates", e.Key, map[string]any{"body": "Hi"}, 400, "name is required"},
			{"missing body", "POST", "/v1/templates", e.Key, map[string]any{"name": "Empty"}, 400, "body is required"},
			{"too long without fields", "POST", "/v1/templates", e.Key, map[string]any{"name": "Long", "body": strings.Repeat("a", 1601)}, 400, "1601 characters"},
			{"duplicate name", "POST", "/v1/templates", e.Key, map[string]any{"name": "Welcome", "body": "Hi"}, 409, `"Welcome" exists already`},
			{"limited access may create", "POST", "/v1/templates", limitedKey, map[string]any{"name": "Staff", "body": "Hi {User.Name}"}, 201, ""},
			{"limited access may edit", "PATCH", "/v1/templates/" + v.ID, limitedKey, map[string]any{"body": "Hello {Contact.FirstName|there}"}, 200, ""},
			{"edit checks fields", "PATCH", "/v1/templates/" + v.ID, limitedKey, map[string]any{"body": "Hello {Contact.Age}"}, 400, "{Contact.Age}"},
			{"bulk-only user may not create", "POST", "/v1/templates", bulkKey, map[string]any{"name": "Nope", "body": "Hi"}, 403, "Limited Access"},
			{"bulk-only user may not delete", "DELETE", "/v1/templates/" + v.ID, bulkKey, nil, 403, "Limited Access"},
			{"anyone may read", "GET", "/v1/templates/" + v.ID, bulkKey, nil, 200, ""},
			{"anyone may list", "GET", "/v1/templates", bulkKey, nil, 200, ""},
			{"other org cannot read", "GET", "/v1/templates/" + v.ID, otherKey, nil, 404, "not found"},
			{"other org cannot edit", "PATCH", "/v1/templates/" + v.ID, otherKey, map[string]any{"body": "x"}, 404, "not found"},
			{"other org cannot delete", "DELETE", "/v1/templates/" + v.ID, otherKey, nil, 404, "not found"},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				r := e.Do(c.method, c.path, c.key, c.body)
				if r.Status != c.status {
					t.Fatalf("%d %s", r.Status, r.Body)
				}
				if c.msg != "" && !strings.Contains(errorMessage(t, r), c.msg) {
					t.Fatalf("message %s lacks %q", r.Body, c.msg)
				}
			})
		}
		r := e.API("GET", "/v1/templates/"+v.ID, nil)
		var got template.View
		r.JSON(t, &got)
		if got.Body != "Hello {Contact.FirstName|there}" || got.Name != "Welcome" {
			t.Fatalf("after edit: %+v", got)
		}
		var list struct{ Templates []template.View }
		e.Do("GET", "/v1/templates", otherKey, nil).JSON(t, &list)
		if len(list.Templates) != 0 {
			t.Fatalf("other org sees %d templates", len(list.Templates))
		}
		e.Do("GET", "/v1/templates", limitedKey, nil).JSON(t, &list)
		if len(list.Templates) != 2 || list.Templates[0].Name != "Staff" || list.Templates[1].Name != "Welcome" {
			t.Fatalf("list: %+v", list.Templates)
		}
		if r := e.Do("DELETE", "/v1/templates/"+v.ID, limitedKey, nil); r.Status != http.StatusNoContent {
			t.Fatalf("delete: %d %s", r.Status, r.Body)
		}
		if r := e.API("GET", "/v1/templates/"+v.ID, nil); r.Status != http.StatusNotFound {
			t.Fatalf("deleted template: %d", r.Status)
		}
	})
}

func TestTemplateSends(t *testing.T) {
	hubtest.Each(t, func(t *testing.T, e *hubtest.Env) {
		wire(e)
		_, senderKey := addUser(t, e, "sender@example.org", sb.PermBulkSMS)
		ada := addContact(t, e, &sb.CRMRecord{FirstName: "Ada", LastName: "Lovelace", Phone: "+12025550111", Fields: map[string]string{"Major": "Mathematics"}})
		bob := addContact(t, e, &sb.CRMRecord{FirstName: "", LastName: "Nofirst", Phone: "+12025550112"})
		cy := addContact(t, e, &sb.CRMRecord{FirstName: "Cy", Phone: "+12025550113"})
		greet := createTemplate(t, e, "Greeting", "Hi {Contact.FirstName|there}, this is {User.Name} at {Org.Name}.")
		major := createTemplate(t, e, "Major", "{Contact.FirstName}, your major: {Contact.Fields.Major}")

		t.Run("1:1 renders for the record", func(t *testing.T) {
			r := e.Do("POST", "/v1/messages", senderKey, map[string]any{"gateway_id": e.Gateway.ID, "to": ada.Phone, "record_id": ada.ID, "template_id": greet.ID})
			if r.Status != http.StatusCreated {
				t.Fatalf("send: %d %s", r.Status, r.Body)
			}
			var m sb.Message
			r.JSON(t, &m)
			e.WaitStatus(m.ID, sb.StatusDelivered)
			if got := e.Carrier.Inbox(ada.Phone); len(got) != 1 || got[0].Body != "Hi Ada, this is sender at Test College." {
				t.Fatalf("inbox: %+v", got)
			}
		})
		t.Run("automation renders too", func(t *testing.T) {
			r := e.API("POST", "/v1/messages", map[string]any{"gateway_id": e.Gateway.ID, "to": bob.Phone, "record_id": bob.ID, "template_id": greet.ID, "mode": "automation"})
			if r.Status != http.StatusCreated {
				t.Fatalf("send: %d %s", r.Status, r.Body)
			}
			var m sb.Message
			r.JSON(t, &m)
			if m.Source != sb.SourceAutomation {
				t.Fatalf("source %q", m.Source)
			}
			e.WaitStatus(m.ID, sb.StatusDelivered)
			if got := e.Carrier.Inbox(bob.Phone); len(got) != 1 || got[0].Body != "Hi there, this is Ada Admin at Test College." {
				t.Fatalf("inbox: %+v", got)
			}
		})
		for _, c := range []struct {
			name string
			req  map[string]any
			code int
			msg  string
		}{
			{"field the record lacks", map[string]any{"to": cy.Phone, "record_id": cy.ID, "template_id": major.ID}, 400, `unknown merge field {Contact.Fields.Major}: record ` + cy.ID + ` has no field "Major"`},
			{"record field without a record", map[string]any{"to": "+12025550119", "template_id": major.ID}, 400, "{Contact.FirstName} needs the recipient's CRM record"},
			{"automation: field the record lacks", map[string]any{"to": cy.Phone, "record_id": cy.ID, "template_id": major.ID, "mode": "automation"}, 400, "{Contact.Fields.Major}"},
			{"body and template", map[string]any{"to": cy.Phone, "body": "x", "template_id": greet.ID}, 400, "either body or template_id"},
			{"unknown template", map[string]any{"to": cy.Phone, "template_id": "nope"}, 404, "template nope not found"},
		} {
			t.Run(c.name, func(t *testing.T) {
				c.req["gateway_id"] = e.Gateway.ID
				r := e.API("POST", "/v1/messages", c.req)
				if r.Status != c.code || !strings.Contains(errorMessage(t, r), c.msg) {
					t.Fatalf("%d %s; want %d with %q", r.Status, r.Body, c.code, c.msg)
				}
			})
		}
		if got := e.Carrier.Inbox(cy.Phone); len(got) != 0 {
			t.Fatalf("a refused send reached the handset: %+v", got)
		}

		t.Run("bulk excludes recipients whose render fails", func(t *testing.T) {
			r := e.Do("POST", "/v1/bulk-sends", senderKey, map[string]any{"gateway_id": e.Gateway.ID, "template_id": major.ID,
				"recipients": []map[string]string{{"record_id": ada.ID}, {"record_id": cy.ID}, {"to": "+12025550118"}}})
			if r.Status != http.StatusAccepted {
				t.Fatalf("bulk: %d %s", r.Status, r.Body)
			}
			var res struct {
				BatchID  string `json:"batch_id"`
				Accepted int
				Excluded []struct {
					Index  int
					Reason string
				}
			}
			r.JSON(t, &res)
			if res.Accepted != 1 || len(res.Excluded) != 2 {
				t.Fatalf("bulk result: %s", r.Body)
			}
			if res.Excluded[0].Index != 1 || !strings.Contains(res.Excluded[0].Reason, "{Contact.Fields.Major}") ||
				res.Excluded[1].Index != 2 || !strings.Contains(res.Excluded[1].Reason, "needs the recipient's CRM record") {
				t.Fatalf("exclusions: %+v", res.Excluded)
			}
			e.WaitFor("bulk delivery", func() bool { return len(e.Carrier.Inbox(ada.Phone)) == 2 })
			if got := e.Carrier.Inbox(ada.Phone)[1].Body; got != "Ada, your major: Mathematics" {
				t.Fatalf("bulk body %q", got)
			}
		})
		t.Run("bulk with defaults renders per recipient", func(t *testing.T) {
			r := e.Do("POST", "/v1/bulk-sends", senderKey, map[string]any{"gateway_id": e.Gateway.ID, "template_id": greet.ID,
				"recipients": []map[string]string{{"record_id": cy.ID}, {"to": "+12025550117"}}})
			if r.Status != http.StatusAccepted {
				t.Fatalf("bulk: %d %s", r.Status, r.Body)
			}
			e.WaitFor("bulk delivery", func() bool {
				return len(e.Carrier.Inbox(cy.Phone)) == 1 && len(e.Carrier.Inbox("+12025550117")) == 1
			})
			if a, b := e.Carrier.Inbox(cy.Phone)[0].Body, e.Carrier.Inbox("+12025550117")[0].Body; a != "Hi Cy, this is sender at Test College." || b != "Hi there, this is sender at Test College." {
				t.Fatalf("bodies %q, %q", a, b)
			}
		})
		t.Run("bulk where every render fails", func(t *testing.T) {
			r := e.Do("POST", "/v1/bulk-sends", senderKey, map[string]any{"gateway_id": e.Gateway.ID, "template_id": major.ID,
				"recipients": []map[string]string{{"record_id": cy.ID}}})
			if r.Status != http.StatusBadRequest || !strings.Contains(errorMessage(t, r), "{Contact.Fields.Major}") {
				t.Fatalf("%d %s", r.Status, r.Body)
			}
		})
	})
}

func TestTemplatePreview(t *testing.T) {
	hubtest.Each(t, func(t *testing.T, e *hubtest.Env) {
		wire(e)
		ada := addContact(t, e, &sb.CRMRecord{FirstName: "Ada", Phone: "+12025550111", Fields: map[string]string{"Major": "Mathematics"}})
		v := createTemplate(t, e, "Major", "Hi {Contact.FirstName|there}: {Contact.Fields.Major|undeclared}")
		long := strings.Repeat("x", 158)
		cases := []struct {
			name, path string
			body       map[string]any
			status     int
			want       string
			segments   int
			encoding   string
		}{
			{"saved for a record", "/v1/templates/" + v.ID + "/preview", map[string]any{"record_id": ada.ID}, 200, "Hi Ada: Mathematics", 1, sb.EncodingGSM7},
			{"saved with samples", "/v1/templates/" + v.ID + "/preview", map[string]any{"sample": map[string]string{"Contact.FirstName": "Sam"}}, 200, "Hi Sam: undeclared", 1, sb.EncodingGSM7},
			{"saved with no samples shows defaults", "/v1/templates/" + v.ID + "/preview", map[string]any{}, 200, "Hi there: undeclared", 1, sb.EncodingGSM7},
			{"saved by id in body", "/v1/templates/preview", map[string]any{"template_id": v.ID, "record_id": ada.ID}, 200, "Hi Ada: Mathematics", 1, sb.EncodingGSM7},
			{"draft: two segments", "/v1/templates/preview", map[string]any{"body": long + " {Contact.FirstName}", "sample": map[string]string{"{Contact.FirstName}": "Ada"}}, 200, long + " Ada", 2, sb.EncodingGSM7},
			{"draft: unicode", "/v1/templates/preview", map[string]any{"body": "¡Hola {Contact.FirstName}! 🎉", "record_id": ada.ID}, 200, "¡Hola Ada! 🎉", 1, sb.EncodingUCS2},
			{"draft: unknown field", "/v1/templates/preview", map[string]any{"body": "Hi {Contact.Nick}"}, 400, "unknown merge field {Contact.Nick}", 0, ""},
			{"record without the field", "/v1/templates/preview", map[string]any{"body": "{Contact.Fields.Minor}", "record_id": ada.ID}, 400, "{Contact.Fields.Minor}", 0, ""},
			{"sample for a field not used", "/v1/templates/" + v.ID + "/preview", map[string]any{"sample": map[string]string{"Contact.Email": "x"}}, 400, `sample value for "Contact.Email"`, 0, ""},
			{"unknown record", "/v1/templates/" + v.ID + "/preview", map[string]any{"record_id": "003missing"}, 404, "not found", 0, ""},
			{"nothing to preview", "/v1/templates/preview", map[string]any{}, 400, "give a template_id or a body", 0, ""},
			{"body on a saved template", "/v1/templates/" + v.ID + "/preview", map[string]any{"body": "x"}, 400, "leave body out", 0, ""},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				r := e.API("POST", c.path, c.body)
				if r.Status != c.status {
					t.Fatalf("%d %s", r.Status, r.Body)
				}
				if c.status != 200 {
					if !strings.Contains(errorMessage(t, r), c.want) {
						t.Fatalf("message %s lacks %q", r.Body, c.want)
					}
					return
				}
				var p template.Preview
				r.JSON(t, &p)
				if p.Body != c.want || p.Segments.Segments != c.segments || p.Segments.Encoding != c.encoding {
					t.Fatalf("preview %+v; want %q in %d %s segments", p, c.want, c.segments, c.encoding)
				}
			})
		}
	})
}

// TestTemplatesNotWired: without the service the routes say so.
func TestTemplatesNotWired(t *testing.T) {
	e := hubtest.New(t, store.SQLite)
	r := e.API("GET", "/v1/templates", nil)
	if r.Status != http.StatusServiceUnavailable || r.ErrorCode() != sb.EUnavailable {
		t.Fatalf("%d %s", r.Status, r.Body)
	}
}
