package hub_test

import (
	"context"
	"net/http"
	"net/url"
	"testing"

	sb "github.com/switchboard/switchboard"
	"github.com/switchboard/switchboard/hub"
	"github.com/switchboard/switchboard/hub/hubtest"
	"github.com/switchboard/switchboard/provider/sim"
)

// incoming returns the one incoming message from phone, through the API.
func incoming(t *testing.T, e *hubtest.Env, phone string) sb.Message {
	t.Helper()
	r := e.API("GET", "/v1/messages?direction=incoming&phone="+url.QueryEscape(phone), nil)
	var list struct{ Messages []sb.Message }
	r.JSON(t, &list)
	if r.Status != http.StatusOK || len(list.Messages) != 1 {
		t.Fatalf("incoming messages from %s: %d %s", phone, r.Status, r.Body)
	}
	return list.Messages[0]
}

// TestIncomingOwnershipRules tells the two ownership rules apart, with an
// integration user who is neither sender: a reply belongs to the sender of
// the last outgoing message to that number on that gateway (a later send
// on another gateway does not count; of several senders the latest wins);
// with none, the integration user owns it. The integration user creates
// every incoming message.
func TestIncomingOwnershipRules(t *testing.T) {
	hubtest.Each(t, func(t *testing.T, e *hubtest.Env) {
		ctx := context.Background()
		integration, _ := addUser(t, e, "integration@example.org", sb.PermSystemAdmin)
		settings := e.Org.Settings
		settings.IntegrationUserID = integration.ID
		if _, err := e.Hub.UpdateSettings(ctx, e.Admin, settings); err != nil {
			t.Fatal(err)
		}
		alice, aliceKey := addUser(t, e, "alice@example.org", sb.PermInbox)
		bob, bobKey := addUser(t, e, "bob@example.org", sb.PermInbox)
		v, err := e.Hub.CreateGateway(ctx, e.Admin, hub.GatewayRequest{Name: "Second", Provider: sb.ProviderSim, Number: "+12025550101"})
		if err != nil || !v.Registered {
			t.Fatalf("second gateway: %v %+v", err, v)
		}
		gw1, gw2 := e.Gateway, v.Gateway
		send := func(key, gatewayID, to string) {
			t.Helper()
			r := e.Do("POST", "/v1/messages", key, map[string]any{"gateway_id": gatewayID, "to": to, "body": "Hello from your advisor"})
			if r.Status != http.StatusCreated {
				t.Fatalf("send: %d %s", r.Status, r.Body)
			}
			var m sb.Message
			r.JSON(t, &m)
			e.WaitStatus(m.ID, sb.StatusDelivered)
		}
		const (
			stranger   = "+12025550141" // never texted
			otherGW    = "+12025550142" // Alice on gateway 1, then Bob on gateway 2
			twoSenders = "+12025550143" // Alice, then Bob, both on gateway 1
		)
		send(aliceKey, gw1.ID, otherGW)
		send(bobKey, gw2.ID, otherGW)
		send(aliceKey, gw1.ID, twoSenders)
		send(bobKey, gw1.ID, twoSenders)

		e.Text(stranger, gw1.Number, "Who is this?")
		e.Text(otherGW, gw1.Number, "Replying on the first number")
		e.Text(twoSenders, gw1.Number, "Replying to the latest")
		e.WaitCRMSynced()

		for _, c := range []struct {
			name, phone string
			owner       *sb.User
		}{
			{"no outgoing message: the integration user", stranger, integration},
			{"a later send on another gateway does not count", otherGW, alice},
			{"the latest sender on the gateway", twoSenders, bob},
		} {
			m := incoming(t, e, c.phone)
			if m.OwnerID != c.owner.ID || m.CreatedByID != integration.ID || m.GatewayID != gw1.ID {
				t.Errorf("%s: message owner %s, created by %s; want owner %s (%s), created by the integration user %s",
					c.name, m.OwnerID, m.CreatedByID, c.owner.ID, c.owner.Email, integration.ID)
			}
			recs := crmMessages(t, e, c.phone)
			var rec *struct{ owner, creator string }
			for _, r := range recs {
				if r.Direction == sb.Incoming {
					rec = &struct{ owner, creator string }{r.OwnerID, r.CreatedByID}
				}
			}
			if rec == nil || rec.owner != c.owner.ID || rec.creator != integration.ID {
				t.Errorf("%s: CRM record %+v; want owner %s, created by %s", c.name, rec, c.owner.ID, integration.ID)
			}
		}
	})
}

// TestStatusCallbacksThroughServer posts status callbacks to the real
// webhook route: a replayed callback changes nothing, a late "sent" never
// overwrites "delivered", and a badly signed callback is refused with 403
// and stores nothing.
func TestStatusCallbacksThroughServer(t *testing.T) {
	hubtest.Each(t, func(t *testing.T, e *hubtest.Env) {
		ctx := context.Background()
		secret := e.Gateway.Config[sim.KeySecret]
		m := e.Send(handset, "Your transcript is ready")
		delivered := e.WaitStatus(m.ID, sb.StatusDelivered)
		e.WaitCRMSynced()
		unmatched, _ := e.DB.CountRows(ctx, "unmatched_statuses")
		recs := crmMessages(t, e, handset)
		if len(recs) != 1 || recs[0].Status != sb.StatusDelivered {
			t.Fatalf("CRM record: %+v", recs)
		}

		same := func(stage string) {
			t.Helper()
			got := e.Message(m.ID)
			if got.Status != sb.StatusDelivered || !got.UpdatedAt.Equal(delivered.UpdatedAt) ||
				!got.SentAt.Equal(*delivered.SentAt) || !got.DeliveredAt.Equal(*delivered.DeliveredAt) || got.ProviderMessageID != delivered.ProviderMessageID {
				t.Fatalf("%s changed the message:\nbefore %+v\nafter  %+v", stage, delivered, got)
			}
			if n, err := e.DB.CRMPendingCount(ctx, e.Org.ID); err != nil || n != 0 {
				t.Fatalf("%s left %d CRM changes pending (err %v)", stage, n, err)
			}
			if n, _ := e.DB.CountRows(ctx, "unmatched_statuses"); n != unmatched {
				t.Fatalf("%s stored an unmatched status (%d, was %d)", stage, n, unmatched)
			}
			if now := crmMessages(t, e, handset); len(now) != 1 || now[0].Status != sb.StatusDelivered || !now[0].UpdatedAt.Equal(recs[0].UpdatedAt) {
				t.Fatalf("%s rewrote the CRM record: %+v, was %+v", stage, now, recs)
			}
		}
		ev := func(status string) sim.Event {
			return sim.Event{Type: "status", ID: delivered.ProviderMessageID, ClientRef: m.ID, Status: status}
		}
		for i := range 2 {
			if r := signedPost(t, e, "status", ev("delivered"), secret); r.Status != http.StatusOK {
				t.Fatalf("replayed delivered %d: %d %s", i, r.Status, r.Body)
			}
			same("a replayed delivered callback")
		}
		if r := signedPost(t, e, "status", ev("sent"), secret); r.Status != http.StatusOK {
			t.Fatalf("late sent: %d %s", r.Status, r.Body)
		}
		same("a late sent callback")
		for _, status := range []string{"failed", "undelivered"} {
			r := signedPost(t, e, "status", ev(status), "wrong-secret-wrong-secret")
			if r.Status != http.StatusForbidden || r.ErrorCode() != sb.EForbidden {
				t.Fatalf("badly signed %s callback: %d %s", status, r.Status, r.Body)
			}
			same("a badly signed " + status + " callback")
		}
		// Unsigned, for a message id of its own: refused, nothing stored.
		r := e.Do("POST", "/webhooks/sim/"+e.Gateway.ID+"/status", "",
			`{"type":"status","id":"SM-forged","client_ref":"forged","status":"delivered","at":"2026-11-23T10:00:00Z"}`)
		if r.Status != http.StatusForbidden {
			t.Fatalf("unsigned status callback: %d %s", r.Status, r.Body)
		}
		same("an unsigned callback")
	})
}
