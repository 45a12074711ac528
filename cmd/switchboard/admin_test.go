package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/store/storetest"
)

// TestAdminUserCreateGateways: "admin user create --gateway ID" (repeated)
// limits the user to those gateways; an id that is not a gateway of the org
// is refused by name.
func TestAdminUserCreateGateways(t *testing.T) {
	storetest.Each(t, func(t *testing.T, d store.Dialect) {
		db := []string{"--data", t.TempDir(), "--database-url", storetest.URL(t, d)}
		admin := func(args ...string) (string, error) {
			t.Helper()
			var out, errOut bytes.Buffer
			err := run(context.Background(), append(append([]string{"admin"}, args...), db...), &out, &errOut)
			return out.String(), err
		}
		if _, err := admin("org", "create", "--name", "College", "--admin-email", "admin@example.org"); err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, number := range []string{"+12025550100", "+12025550101"} {
			out, err := admin("gateway", "create", "--provider", "sim", "--number", number, "--sandbox")
			if err != nil {
				t.Fatal(err)
			}
			var gw struct{ ID string }
			if err := json.Unmarshal([]byte(out), &gw); err != nil || gw.ID == "" {
				t.Fatalf("gateway create: %v %s", err, out)
			}
			ids = append(ids, gw.ID)
		}
		out, err := admin("user", "create", "--email", "two@example.org", "--name", "Two", "--gateway", ids[0], "--gateway", ids[1])
		if err != nil {
			t.Fatal(err)
		}
		var u struct {
			GatewayIDs []string `json:"gateway_ids"`
		}
		if err := json.Unmarshal([]byte(out), &u); err != nil || len(u.GatewayIDs) != 2 || u.GatewayIDs[0] != ids[0] || u.GatewayIDs[1] != ids[1] {
			t.Fatalf("user create: %v %s", err, out)
		}
		out, _ = admin("user", "list")
		if !strings.Contains(out, `"gateway_ids": [`) || !strings.Contains(out, ids[1]) {
			t.Fatalf("user list: %s", out)
		}
		_, err = admin("user", "create", "--email", "bad@example.org", "--name", "Bad", "--gateway", "no-such-gateway")
		if err == nil || !strings.Contains(err.Error(), `gateway "no-such-gateway" is not a gateway of this org`) {
			t.Fatalf("unknown gateway: %v", err)
		}
	})
}

// TestAdminOrgSettingsToggles: whoever runs the binary is the service
// operator: "admin org settings" switches the one-way toggles on and —
// which an org admin cannot — off again.
func TestAdminOrgSettingsToggles(t *testing.T) {
	storetest.Each(t, func(t *testing.T, d store.Dialect) {
		ctx := context.Background()
		dir, dbURL := t.TempDir(), storetest.URL(t, d)
		run := func(args ...string) (string, error) {
			t.Helper()
			var out, errb bytes.Buffer
			err := admin(ctx, append(args, "--data", dir, "--database-url", dbURL), &out, &errb)
			return out.String(), err
		}
		out, err := run("org", "create", "--name", "Test College", "--admin-email", "admin@example.org")
		if err != nil {
			t.Fatal(err)
		}
		var created struct {
			OrgID string `json:"org_id"`
		}
		if err := json.Unmarshal([]byte(out), &created); err != nil || created.OrgID == "" {
			t.Fatalf("org create: %s %v", out, err)
		}
		settings := func(out string) map[string]any {
			t.Helper()
			var o struct {
				ID       string         `json:"id"`
				Settings map[string]any `json:"settings"`
			}
			if err := json.Unmarshal([]byte(out), &o); err != nil || o.ID != created.OrgID {
				t.Fatalf("org settings output: %s %v", out, err)
			}
			return o.Settings
		}

		out, err = run("org", "settings", "--org", created.OrgID, "--enable", "messaging_api_for_bulk", "--enable", "connected_app_for_incoming")
		if err != nil {
			t.Fatal(err)
		}
		if s := settings(out); s["messaging_api_for_bulk"] != true || s["connected_app_for_incoming"] != true {
			t.Fatalf("after enabling: %v", s)
		}
		out, err = run("org", "settings", "--org", created.OrgID, "--disable", "connected_app_for_incoming")
		if err != nil {
			t.Fatal(err)
		}
		if s := settings(out); s["messaging_api_for_bulk"] != true || s["connected_app_for_incoming"] != false {
			t.Fatalf("after disabling: %v", s)
		}
		// Without flags it shows the settings.
		if out, err = run("org", "settings", "--org", created.OrgID); err != nil || settings(out)["connected_app_for_incoming"] != false {
			t.Fatalf("show: %s %v", out, err)
		}
		if _, err := run("org", "settings", "--org", created.OrgID, "--disable", "opt_in_mode"); err == nil || !strings.Contains(err.Error(), `unknown one-way setting "opt_in_mode"`) {
			t.Fatalf("unknown setting: %v", err)
		}
	})
}
