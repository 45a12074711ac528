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
