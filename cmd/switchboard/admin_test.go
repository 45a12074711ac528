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
