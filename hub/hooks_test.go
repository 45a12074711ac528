package hub_test

import (
	"context"
	"net/http"
	"testing"

	sb "github.com/switchboard/switchboard"
	"github.com/switchboard/switchboard/hub/hubtest"
	"github.com/switchboard/switchboard/store"
)

// echoHook answers every text it sees, and claims the texts of claimPhone
// for owner (as an SMS form claims its answers).
type echoHook struct {
	claimPhone, owner string
}

func (h echoHook) HandleIncoming(_ context.Context, _ *store.Tx, _ *sb.Org, _ *sb.Gateway, msg *sb.Message, c *sb.Content) (string, error) {
	if c.Phone == h.claimPhone {
		msg.OwnerID = h.owner
	}
	return "Got it: " + c.Body, nil
}

// TestIncomingHookReplies: a content feature's reply is an automation send
// created by the integration user and owned like the text it answers (or
// by whoever the hook claimed the text for); like any send it is never
// queued for a number that may not be texted — mandatory opt-in without an
// opt-in here — while a keyword confirmation still is.
func TestIncomingHookReplies(t *testing.T) {
	hubtest.Each(t, func(t *testing.T, e *hubtest.Env) {
		ctx := context.Background()
		staff := &sb.User{OrgID: e.Org.ID, Email: "staff@example.org", Name: "Staff", Permissions: []sb.Permission{sb.PermLimitedAccess}}
		if err := e.DB.Tx(ctx, func(tx *store.Tx) error { return tx.CreateUser(ctx, staff, "") }); err != nil {
			t.Fatal(err)
		}
		const claimed, plain = "+12025550171", "+12025550172"
		e.Hub.IncomingHooks = append(e.Hub.IncomingHooks, echoHook{claimPhone: claimed, owner: staff.ID})
		integration := e.Org.Settings.IntegrationUserID
		outgoing := func(phone string) []*sb.Message {
			ms, err := e.DB.Messages(ctx, e.Org.ID, store.MessageFilter{PhoneHash: e.DB.Hasher().Phone(phone), Limit: 100})
			if err != nil {
				t.Fatal(err)
			}
			var out []*sb.Message
			for _, m := range ms {
				if m.Direction == sb.Outgoing {
					out = append(out, m)
				}
			}
			return out
		}

		e.Text(plain, e.Gateway.Number, "hello")
		out := outgoing(plain)
		if len(out) != 1 || out[0].Source != sb.SourceAutomation || out[0].CreatedByID != integration || out[0].OwnerID != integration {
			t.Fatalf("reply to a plain text: %+v", out)
		}
		e.Text(claimed, e.Gateway.Number, "2")
		all, _ := e.DB.Messages(ctx, e.Org.ID, store.MessageFilter{PhoneHash: e.DB.Hasher().Phone(claimed), Limit: 100})
		if len(all) != 2 {
			t.Fatalf("claimed text and its reply: %d messages", len(all))
		}
		for _, m := range all {
			if m.OwnerID != staff.ID || m.CreatedByID != integration {
				t.Errorf("%s message of a claimed text: owner %s, created by %s; want %s, %s", m.Direction, m.OwnerID, m.CreatedByID, staff.ID, integration)
			}
		}

		// Mandatory opt-in: no reply to a number that has not opted in...
		if r := e.API("PATCH", "/v1/org/settings", map[string]any{"opt_in_mode": "mandatory"}); r.Status != http.StatusOK {
			t.Fatalf("mandatory mode: %d %s", r.Status, r.Body)
		}
		const stranger = "+12025550173"
		e.Text(stranger, e.Gateway.Number, "hello")
		if out := outgoing(stranger); len(out) != 0 {
			t.Fatalf("a hook's reply was queued for a number without opt-in: %+v", out)
		}
		// ... but the keyword confirmation goes, and after it the replies.
		e.Text(stranger, e.Gateway.Number, "START")
		if out := outgoing(stranger); len(out) != 1 || out[0].Source != sb.SourceSystem {
			t.Fatalf("opt-in confirmation: %+v", out)
		}
		e.Text(stranger, e.Gateway.Number, "hello again")
		if out := outgoing(stranger); len(out) != 2 {
			t.Fatalf("after opting in: %d outgoing messages, want 2", len(out))
		}
	})
}
