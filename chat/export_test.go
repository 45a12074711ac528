package chat_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sb "github.com/switchboard/switchboard"
	"github.com/switchboard/switchboard/chat/rules"
	"github.com/switchboard/switchboard/store"
)

func TestExportRules(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		owner, _ := e.addUser("owner@example.org", "")
		agent, _ := e.addUser("agent@example.org", "crm-agent-7")
		base := func() map[string]any {
			return map[string]any{"default_owner_id": owner.ID, "field_mapping": map[string]string{"Student Type": "Mongoose_Student_Type__c"}}
		}
		full := func(email string) map[string]string {
			return map[string]string{"first_name": "Ada", "last_name": "Lovelace", "email": email, "phone": "+12025550123", "Student Type": "Future Student"}
		}
		tests := []struct {
			name     string
			settings map[string]any
			fields   map[string]string
			existing []*sb.CRMRecord
			userID   string
			status   string
			reason   string
			action   string
			note     string
			check    func(t *testing.T, contact *sb.CRMRecord, task sb.CRMTask)
		}{
			{name: "export disabled", settings: map[string]any{"enabled": false}, fields: full("off@example.org"),
				status: store.ChatSkipped, reason: "chat export is not enabled for this org"},
			{name: "filter not met", settings: map[string]any{"filter": "student_type = 'Future Student'"},
				fields: map[string]string{"first_name": "A", "last_name": "B", "email": "alumni@example.org", "Student Type": "Alumni"},
				status: store.ChatSkipped, reason: "export filter not met: student_type = 'Future Student'"},
			{name: "filter group not met", settings: map[string]any{"filter": "student_type != 'Alumni' and (phone is set or email contains '@school.edu')"},
				fields: map[string]string{"first_name": "A", "last_name": "B", "email": "nophone@example.org"},
				status: store.ChatSkipped, reason: "export filter not met: (phone is set or email contains '@school.edu')"},
			{name: "filter with and/or met", settings: map[string]any{"filter": "student_type = 'future student' and (phone is set or email contains '@school.edu')"},
				fields: full("filtered@example.org"), status: store.ChatExported, action: "created"},
			{name: "required last name missing", fields: map[string]string{"first_name": "Ada", "email": "nolast@example.org"},
				status: store.ChatSkipped, reason: "missing required field(s): last_name"},
			{name: "required custom field missing", settings: map[string]any{"required_fields": []string{"email", "Student Type"}},
				fields: map[string]string{"email": "nocustom@example.org"}, status: store.ChatSkipped, reason: "missing required field(s): Student Type"},
			{name: "fewer required fields", settings: map[string]any{"required_fields": []string{"email", "last_name"}},
				fields: map[string]string{"last_name": "Only", "email": "few@example.org"}, status: store.ChatExported, action: "created"},
			{name: "no match creates the contact", fields: full("new@example.org"), status: store.ChatExported, action: "created",
				note: "no contact had the email; a new contact was created",
				check: func(t *testing.T, c *sb.CRMRecord, task sb.CRMTask) {
					if c.FirstName != "Ada" || c.LastName != "Lovelace" || c.Phone != "+12025550123" || c.OwnerID != owner.ID ||
						c.Fields["Mongoose_Student_Type__c"] != "Future Student" || len(c.Fields) != 1 {
						t.Errorf("new contact %+v", c)
					}
					if task.OwnerID != owner.ID {
						t.Errorf("task owner %q, want the new contact's owner %q", task.OwnerID, owner.ID)
					}
				}},
			{name: "one match is updated", fields: full("one@example.org"),
				existing: []*sb.CRMRecord{{FirstName: "Adaline", Email: "one@example.org", OwnerID: "crm-owner-x", Fields: map[string]string{"Legacy": "1", "Mongoose_Student_Type__c": "Old"}}},
				status:   store.ChatExported, action: "updated", note: "one contact had the email and was updated",
				check: func(t *testing.T, c *sb.CRMRecord, task sb.CRMTask) {
					// Names and phone are filled only where blank; mapped fields are written.
					if c.FirstName != "Adaline" || c.LastName != "Lovelace" || c.Phone != "+12025550123" || c.OwnerID != "crm-owner-x" ||
						c.Fields["Mongoose_Student_Type__c"] != "Future Student" || c.Fields["Legacy"] != "1" {
						t.Errorf("updated contact %+v", c)
					}
					if task.OwnerID != "crm-owner-x" {
						t.Errorf("task owner %q, want the contact's owner", task.OwnerID)
					}
				}},
			{name: "several matches: the first created", fields: full("dup@example.org"),
				existing: []*sb.CRMRecord{{LastName: "First", Email: "dup@example.org", OwnerID: "crm-1"}, {LastName: "Second", Email: "dup@example.org", OwnerID: "crm-2"}, {LastName: "Third", Email: "dup@example.org"}},
				status:   store.ChatExported, action: "updated", note: "3 contacts have the email; the one created first (",
				check: func(t *testing.T, c *sb.CRMRecord, task sb.CRMTask) {
					if c.LastName != "First" || task.OwnerID != "crm-1" {
						t.Errorf("chose %+v (task owner %s), want the first created", c, task.OwnerID)
					}
				}},
			{name: "chat user owns the task", settings: map[string]any{"user_assignment": "chat_user"}, fields: full("agent@example.org"), userID: agent.ID,
				status: store.ChatExported, action: "created", note: "the task was assigned to chat user " + agent.ID,
				check: func(t *testing.T, c *sb.CRMRecord, task sb.CRMTask) {
					if task.OwnerID != "crm-agent-7" || c.OwnerID != owner.ID {
						t.Errorf("task owner %q (want the agent's CRM id), contact owner %q (want the default owner)", task.OwnerID, c.OwnerID)
					}
				}},
			{name: "chat user rule without a user", settings: map[string]any{"user_assignment": "chat_user"}, fields: full("nouser@example.org"),
				status: store.ChatExported, action: "created", note: "no chat user handled the conversation; the task was assigned to the default owner",
				check: func(t *testing.T, c *sb.CRMRecord, task sb.CRMTask) {
					if task.OwnerID != owner.ID {
						t.Errorf("task owner %q, want the default owner", task.OwnerID)
					}
				}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				s := base()
				for k, v := range tt.settings {
					s[k] = v
				}
				e.settings(s)
				var existingIDs []string
				for _, c := range tt.existing {
					existingIDs = append(existingIDs, e.addContact(c).ID)
				}
				conv := e.start(tt.fields, map[string]any{"user_id": tt.userID})
				ex := e.export(conv.ID, tt.status)
				if !strings.Contains(ex.Reason, tt.reason) || (tt.reason == "") != (ex.Reason == "") {
					t.Errorf("reason %q, want %q", ex.Reason, tt.reason)
				}
				if ex.Attempts != 1 || ex.Round != 1 || ex.FinishedAt == nil || ex.RequestedBy != e.Admin.ID {
					t.Errorf("log entry %+v", ex)
				}
				if !strings.Contains(ex.Note, tt.note) {
					t.Errorf("note %q, want %q", ex.Note, tt.note)
				}
				email := tt.fields["email"]
				if tt.status != store.ChatExported {
					if ex.ContactID != "" || len(ex.TaskIDs) != 0 || len(e.contacts(email)) != len(tt.existing) {
						t.Errorf("a %s export wrote to the CRM: %+v", tt.status, ex)
					}
					if v := e.get(conv.ID); v.State != tt.status || len(v.Messages) != 2 || v.ContentPurgedAt() {
						t.Errorf("a %s conversation must keep its content: %+v", tt.status, v.ChatConversation)
					}
					return
				}
				if ex.ContactAction != tt.action || len(ex.TaskIDs) != 1 {
					t.Fatalf("log entry %+v, want contact %s and one task", ex, tt.action)
				}
				var contact *sb.CRMRecord
				for _, c := range e.contacts(email) {
					if c.ID == ex.ContactID {
						contact = c
					}
				}
				if contact == nil {
					t.Fatalf("contact %s of the log is not in the CRM", ex.ContactID)
				}
				if tt.action == "updated" && existingIDs[0] != contact.ID {
					t.Errorf("updated %s, want %s", contact.ID, existingIDs[0])
				}
				if n := len(e.contacts(email)); n != max(len(tt.existing), 1) {
					t.Errorf("%d contacts with the email, want %d", n, max(len(tt.existing), 1))
				}
				tasks := e.tasks(contact.ID)
				if len(tasks) != 1 || tasks[0].ID != ex.TaskIDs[0] {
					t.Fatalf("tasks %+v, want the one of the log", tasks)
				}
				task := tasks[0]
				v := e.get(conv.ID)
				date := v.ClosedAt.UTC().Format("2006-01-02")
				if task.Subject != "Chat transcript "+date || task.Status != "Completed" || task.ActivityDate != date || task.WhoID != contact.ID ||
					task.ExternalID != conv.ID+"-1" {
					t.Errorf("task %+v", task)
				}
				for _, want := range []string{"Chat conversation " + conv.ID, "Bot (bot): Hi! How can I help?", "(visitor): Tell me about admissions."} {
					if !strings.Contains(task.Description, want) {
						t.Errorf("transcript lacks %q:\n%s", want, task.Description)
					}
				}
				if v.State != store.ChatExported || v.ExportedAt == nil || v.PurgeAfter == nil {
					t.Errorf("exported conversation %+v", v.ChatConversation)
				}
				if tt.check != nil {
					tt.check(t, contact, task)
				}
			})
		}
	})
}

// ContentPurgedAt reports whether the content was purged.
func (v view) ContentPurgedAt() bool { return v.PurgedAt != nil }

func TestTranscriptSplitIntoTasks(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		e.settings(map[string]any{"time_zone": "America/New_York"})
		conv := e.start(map[string]string{"first_name": "Ada", "last_name": "Lovelace", "email": "long@example.org"})
		var words []string
		for i := range 10 {
			text := strings.Repeat(string(rune('a'+i)), 3999) + "!"
			words = append(words, text)
			e.call("POST", "/v1/chat/conversations/"+conv.ID+"/messages", map[string]any{"speaker": "visitor", "text": text}, http.StatusCreated)
		}
		ex := e.export(conv.ID, store.ChatExported)
		if len(ex.TaskIDs) != 2 || !strings.Contains(ex.Note, "the transcript was split into 2 tasks of at most 32000 characters") {
			t.Fatalf("log entry %+v", ex)
		}
		tasks := e.tasks(ex.ContactID)
		if len(tasks) != 2 {
			t.Fatalf("%d tasks, want 2", len(tasks))
		}
		v := e.get(conv.ID)
		ny, _ := time.LoadLocation("America/New_York")
		date := v.ClosedAt.In(ny).Format("2006-01-02")
		var all string
		for i, task := range tasks {
			n := i + 1
			if task.Subject != "Chat transcript "+date+" (part "+string(rune('0'+n))+" of 2)" || task.ExternalID != conv.ID+"-"+string(rune('0'+n)) || task.ActivityDate != date {
				t.Errorf("task %d: %+v", n, task)
			}
			if u := rules.Units(task.Description); u > rules.DescriptionLimit {
				t.Errorf("task %d description has %d characters", n, u)
			}
			all += task.Description
		}
		if !strings.HasSuffix(tasks[0].Description, "[continued in part 2 of 2]") || !strings.HasPrefix(tasks[1].Description, "[continued from part 2 of 2]\n") {
			t.Error("the parts lack their continuation markers")
		}
		for _, w := range words {
			if !strings.Contains(all, w) {
				t.Errorf("a message is missing from the tasks")
			}
		}
		if !strings.Contains(all, "EST] Ada Lovelace (visitor): ") && !strings.Contains(all, "EDT] Ada Lovelace (visitor): ") {
			t.Error("timestamps are not in the org's time zone")
		}
	})
}

func TestExportReliability(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		e.settings(map[string]any{})
		fields := func(email string) map[string]string {
			return map[string]string{"first_name": "Ada", "last_name": "Lovelace", "email": email}
		}
		var mu sync.Mutex
		calls := map[string]int{}
		count := func(k string) int {
			mu.Lock()
			defer mu.Unlock()
			calls[k]++
			return calls[k]
		}

		t.Run("answer lost after the CRM saved", func(t *testing.T) {
			e.crms.setWrap(func(c sb.CRM) sb.CRM {
				return crmFunc{CRM: c, save: func(ctx context.Context, org *sb.Org, rec *sb.CRMRecord, task *sb.CRMTask) (string, string, error) {
					cid, tid, err := c.SaveContactAndTask(ctx, org, rec, task)
					if err == nil && count("lost") == 1 {
						return "", "", &sb.CRMError{Code: "timeout", Message: "the CRM did not answer in time", Retryable: true}
					}
					return cid, tid, err
				}}
			})
			defer e.crms.setWrap(nil)
			conv := e.start(fields("lost@example.org"))
			ex := e.export(conv.ID, store.ChatExported)
			cs := e.contacts("lost@example.org")
			if ex.Attempts != 2 || len(cs) != 1 || len(e.tasks(cs[0].ID)) != 1 || ex.ContactAction != "updated" {
				t.Errorf("after a retried timeout: %+v; %d contacts; want 2 attempts, one contact, one task", ex, len(cs))
			}
		})

		t.Run("retryable errors give up after the last attempt", func(t *testing.T) {
			e.crms.setWrap(func(c sb.CRM) sb.CRM {
				return crmFunc{CRM: c, find: func(context.Context, *sb.Org, string) ([]sb.CRMRecord, error) {
					count("busy")
					return nil, &sb.CRMError{Code: "UNABLE_TO_LOCK_ROW", Message: "unable to obtain exclusive access to this record", Retryable: true}
				}}
			})
			conv := e.start(fields("busy@example.org"))
			ex := e.export(conv.ID, store.ChatFailed)
			e.crms.setWrap(nil)
			want := "gave up after 4 attempts: UNABLE_TO_LOCK_ROW: unable to obtain exclusive access to this record"
			if ex.Reason != want || ex.Attempts != maxAttempts || count("busy") != maxAttempts+1 {
				t.Errorf("log entry %+v, want %q after %d attempts", ex, want, maxAttempts)
			}
			// Once the CRM is fine, a re-export goes through.
			e.call("POST", "/v1/chat/conversations/"+conv.ID+"/re-export", nil, http.StatusAccepted)
			ex = e.waitExport(conv.ID, store.ChatExported)
			if ex.Round != 2 || ex.Attempts != 1 {
				t.Errorf("re-export %+v", ex)
			}
		})

		t.Run("the CRM refuses the data", func(t *testing.T) {
			e.crms.setWrap(func(c sb.CRM) sb.CRM {
				return crmFunc{CRM: c, save: func(context.Context, *sb.Org, *sb.CRMRecord, *sb.CRMTask) (string, string, error) {
					return "", "", &sb.CRMError{Code: "REQUIRED_FIELD_MISSING", Message: "Required fields are missing: [Department]", Fields: []string{"Department"}}
				}}
			})
			defer e.crms.setWrap(nil)
			conv := e.start(fields("refused@example.org"))
			ex := e.export(conv.ID, store.ChatFailed)
			if ex.Reason != "the CRM refused the export: REQUIRED_FIELD_MISSING: Required fields are missing: [Department]" || ex.Attempts != 1 {
				t.Errorf("log entry %+v", ex)
			}
		})

		t.Run("bad data found before the CRM call", func(t *testing.T) {
			e.crms.setWrap(func(c sb.CRM) sb.CRM {
				return crmFunc{CRM: c, save: func(context.Context, *sb.Org, *sb.CRMRecord, *sb.CRMTask) (string, string, error) {
					return "", "", sb.FieldError("contact.owner_id", "owner %q is not a Salesforce user id", "x")
				}}
			})
			defer e.crms.setWrap(nil)
			conv := e.start(fields("invalid@example.org"))
			if ex := e.export(conv.ID, store.ChatFailed); ex.Reason != `owner "x" is not a Salesforce user id` {
				t.Errorf("log entry %+v", ex)
			}
		})

		t.Run("an offline CRM holds the export", func(t *testing.T) {
			var offline atomic.Bool
			offline.Store(true)
			e.crms.setWrap(func(c sb.CRM) sb.CRM {
				return crmFunc{CRM: c, find: func(ctx context.Context, org *sb.Org, email string) ([]sb.CRMRecord, error) {
					if offline.Load() {
						return nil, &sb.CRMError{Code: "invalid_grant", Message: "the authorization was revoked", Offline: true}
					}
					return c.FindContactsByEmail(ctx, org, email)
				}}
			})
			defer e.crms.setWrap(nil)
			conv := e.start(fields("held@example.org"))
			ex := e.export(conv.ID, store.ChatHeld)
			if !strings.Contains(ex.Reason, "the CRM is offline") || !strings.Contains(ex.Reason, "invalid_grant: the authorization was revoked") || ex.Attempts != 0 {
				t.Errorf("held entry %+v", ex)
			}
			if v := e.get(conv.ID); v.State != store.ChatHeld {
				t.Errorf("conversation state %s, want held", v.State)
			}
			// Connected again: the held export goes through by itself.
			offline.Store(false)
			ex = e.waitExport(conv.ID, store.ChatExported)
			if ex.Attempts != 1 || len(e.contacts("held@example.org")) != 1 {
				t.Errorf("after the CRM came back: %+v", ex)
			}
		})

		t.Run("a rate limit snoozes without using an attempt", func(t *testing.T) {
			e.crms.setWrap(func(c sb.CRM) sb.CRM {
				return crmFunc{CRM: c, find: func(ctx context.Context, org *sb.Org, email string) ([]sb.CRMRecord, error) {
					if count("limit") == 1 {
						return nil, &sb.CRMError{Code: "REQUEST_LIMIT_EXCEEDED", Message: "TotalRequests Limit exceeded.", Retryable: true, RetryAfter: 10 * time.Millisecond}
					}
					return c.FindContactsByEmail(ctx, org, email)
				}}
			})
			defer e.crms.setWrap(nil)
			conv := e.start(fields("limit@example.org"))
			if ex := e.export(conv.ID, store.ChatExported); ex.Attempts != 2 {
				t.Errorf("log entry %+v", ex)
			}
		})
	})
}

func TestReexport(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		e.settings(map[string]any{"filter": "student_type = 'Future Student'"})
		conv := e.start(map[string]string{"first_name": "Ada", "last_name": "Lovelace", "email": "again@example.org", "Student Type": "Undecided"})
		e.export(conv.ID, store.ChatSkipped)
		_, staffKey := e.addUser("staff@example.org", "", sb.PermLimitedAccess)
		if r := e.Do("POST", "/v1/chat/conversations/"+conv.ID+"/re-export", staffKey, nil); r.Status != http.StatusForbidden {
			t.Errorf("re-export as Limited Access: %d", r.Status)
		}
		// The settings change; the skipped conversation is exported again.
		e.settings(map[string]any{"filter": "student_type is set"})
		var round store.ChatExport
		e.call("POST", "/v1/chat/conversations/"+conv.ID+"/re-export", nil, http.StatusAccepted).JSON(t, &round)
		if round.Round != 2 || round.Status != store.ChatPending {
			t.Errorf("new round %+v", round)
		}
		e.waitExport(conv.ID, store.ChatExported)
		log := e.exports(conv.ID)
		if len(log) != 2 || log[0].Round != 2 || log[0].Status != store.ChatExported || log[1].Round != 1 || log[1].Status != store.ChatSkipped {
			t.Errorf("export log %+v", log)
		}
		// Never twice; not while open; not unknown.
		open := e.start(map[string]string{"email": "open@example.org"})
		for _, c := range []struct {
			id     string
			status int
			msg    string
		}{
			{conv.ID, http.StatusConflict, "never exported twice"},
			{open.ID, http.StatusConflict, "still open"},
			{"nope", http.StatusNotFound, "not found"},
		} {
			r := e.API("POST", "/v1/chat/conversations/"+c.id+"/re-export", nil)
			if r.Status != c.status || !strings.Contains(string(r.Body), c.msg) {
				t.Errorf("re-export %s: %d %s", c.id, r.Status, r.Body)
			}
		}
		if n := len(e.tasks(log[0].ContactID)); n != 1 {
			t.Errorf("%d tasks after re-export, want 1", n)
		}
	})
}

func TestContentPurge(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		fields := func(email string) map[string]string {
			return map[string]string{"first_name": "Ada", "last_name": "Lovelace", "email": email}
		}
		e.settings(map[string]any{"retention_days": 0})
		now := e.start(fields("now@example.org"))
		nowEx := e.export(now.ID, store.ChatExported)
		skipped := e.start(map[string]string{"email": "skipped@example.org"})
		e.export(skipped.ID, store.ChatSkipped)
		e.settings(map[string]any{})
		week := e.start(fields("week@example.org"))
		e.export(week.ID, store.ChatExported)

		// The service's periodic purge may have run first: either way the
		// conversation with 0 days' retention, and only it, is purged.
		if n, err := e.svc.Purge(ctx); err != nil || n > 1 {
			t.Fatalf("purge: %d %v, want at most the conversation with 0 days retention", n, err)
		}
		v := e.get(now.ID)
		if v.PurgedAt == nil || len(v.Messages) != 0 || len(v.Fields) != 0 || v.State != store.ChatExported || v.MessageCount != 2 {
			t.Errorf("purged conversation %+v %v %v", v.ChatConversation, v.Fields, v.Messages)
		}
		if log := e.exports(now.ID); len(log) != 1 || log[0].ContactID != nowEx.ContactID || len(log[0].TaskIDs) != 1 {
			t.Errorf("the export log must stay: %+v", log)
		}
		if len(e.get(week.ID).Messages) != 2 {
			t.Error("a conversation in its retention period was purged")
		}
		// Seven days' retention: kept at six days, purged after seven.
		if n, _ := e.DB.PurgeChatContent(ctx, time.Now().Add(6*24*time.Hour)); n != 0 {
			t.Errorf("purged %d conversations after 6 days", n)
		}
		if n, _ := e.DB.PurgeChatContent(ctx, time.Now().Add(8*24*time.Hour)); n != 1 {
			t.Errorf("purged %d conversations after 8 days, want 1", n)
		}
		// Not exported: kept (it can be re-exported).
		if n, _ := e.DB.PurgeChatContent(ctx, time.Now().Add(1000*24*time.Hour)); n != 0 || len(e.get(skipped.ID).Messages) != 2 {
			t.Error("a skipped conversation lost its content")
		}
		if r := e.API("POST", "/v1/chat/conversations/"+now.ID+"/re-export", nil); r.Status != http.StatusConflict {
			t.Errorf("re-export of a purged conversation: %d", r.Status)
		}
	})
}
