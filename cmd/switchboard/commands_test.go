package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	sb "github.com/switchboard/switchboard"
	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/store/storetest"
)

// cli runs one switchboard command in-process and returns what it printed.
func cli(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), args, &stdout, &stderr)
	if err != nil && stderr.Len() > 0 {
		t.Logf("%s: %s", strings.Join(args[:min(len(args), 3)], " "), stderr.String())
	}
	return stdout.String(), err
}

// mustCLI runs a command that must succeed and decodes its JSON output into
// v (when v is not nil).
func mustCLI(t *testing.T, v any, args ...string) string {
	t.Helper()
	out, err := cli(t, args...)
	if err != nil {
		t.Fatalf("switchboard %s: %v", strings.Join(args, " "), err)
	}
	if v != nil {
		if err := json.Unmarshal([]byte(out), v); err != nil {
			t.Fatalf("switchboard %s printed %q: %v", strings.Join(args, " "), out, err)
		}
	}
	return out
}

// openCLIStore opens the store the commands use (same keys), shared, to
// check what they did.
func openCLIStore(t *testing.T, dbFlags []string) *store.DB {
	t.Helper()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	cfg, err := loadConfig(fs, dbFlags)
	if err != nil {
		t.Fatal(err)
	}
	db, err := openStore(context.Background(), cfg, nil, true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestMigrateCommand(t *testing.T) {
	storetest.Each(t, func(t *testing.T, d store.Dialect) {
		flags := []string{"--data", t.TempDir(), "--database-url", storetest.URL(t, d), "--log-format", "text"}
		for i := range 2 { // a second run finds nothing to do
			if _, err := cli(t, append([]string{"migrate"}, flags...)...); err != nil {
				t.Fatalf("migrate run %d: %v", i+1, err)
			}
		}
		db := openCLIStore(t, flags)
		cols, err := db.SchemaColumns(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, table := range []string{"orgs", "users", "gateways", "messages", "river_job", "schema_migrations"} {
			if len(cols[table]) == 0 {
				t.Errorf("migrate left no %s table", table)
			}
		}
	})
}

func TestAdminCommands(t *testing.T) {
	storetest.Each(t, func(t *testing.T, d store.Dialect) {
		ctx := context.Background()
		db := []string{"--data", t.TempDir(), "--database-url", storetest.URL(t, d)}
		admin := func(args ...string) []string { return append(append([]string{"admin"}, args...), db...) }

		var org struct{ OrgID, AdminUserID, APIKey string }
		var raw map[string]string
		mustCLI(t, &raw, admin("org", "create", "--name", "Acme College", "--admin-email", "ada@example.org", "--admin-name", "Ada")...)
		org.OrgID, org.AdminUserID, org.APIKey = raw["org_id"], raw["admin_user_id"], raw["api_key"]
		if org.OrgID == "" || org.AdminUserID == "" || !strings.HasPrefix(org.APIKey, "sb_") {
			t.Fatalf("org create printed %v", raw)
		}
		if _, err := cli(t, admin("org", "create", "--name", "Second", "--admin-email", "bob@example.org")...); err != nil {
			t.Fatal(err)
		}
		var orgs []sb.Org
		mustCLI(t, &orgs, admin("org", "list")...)
		if len(orgs) != 2 || !slices.ContainsFunc(orgs, func(o sb.Org) bool { return o.ID == org.OrgID && o.Name == "Acme College" }) {
			t.Fatalf("org list: %+v", orgs)
		}
		// With two orgs, a command must name one.
		if _, err := cli(t, admin("user", "list")...); err == nil || !strings.Contains(err.Error(), "name one with --org") {
			t.Fatalf("user list with two orgs and no --org: %v", err)
		}
		withOrg := func(args ...string) []string { return append(admin(args...), "--org", org.OrgID) }

		var u sb.User
		mustCLI(t, &u, withOrg("user", "create", "--email", "Cy@Example.org", "--name", "Cy", "--perm", "Feature: Inbox", "--perm", "Feature: Bulk SMS")...)
		if u.ID == "" || u.OrgID != org.OrgID || u.Email != "cy@example.org" ||
			!slices.Equal(u.Permissions, []sb.Permission{sb.PermInbox, sb.PermBulkSMS}) {
			t.Fatalf("user create printed %+v", u)
		}
		_, err := cli(t, withOrg("user", "create", "--email", "dee@example.org", "--name", "Dee", "--perm", "Superuser")...)
		if err == nil || !strings.Contains(err.Error(), `unknown permission set "Superuser"`) {
			t.Fatalf("bad permission: %v, want an error naming it", err)
		}
		var users []sb.User
		mustCLI(t, &users, withOrg("user", "list")...)
		emails := []string{}
		for _, x := range users {
			emails = append(emails, x.Email)
		}
		if slices.Sort(emails); !slices.Equal(emails, []string{"ada@example.org", "cy@example.org"}) {
			t.Fatalf("user list: %v, want Ada and Cy (Dee, with the bad permission, not created)", emails)
		}

		var key struct {
			ID     string `json:"id"`
			Key    string `json:"key"`
			UserID string `json:"user_id"`
		}
		mustCLI(t, &key, withOrg("key", "create", "--user", u.ID, "--name", "cy-laptop")...)
		if key.UserID != u.ID || !strings.HasPrefix(key.Key, "sb_") {
			t.Fatalf("key create printed %+v", key)
		}
		st := openCLIStore(t, db)
		if who, err := st.Authenticate(ctx, key.Key); err != nil || who.ID != u.ID {
			t.Fatalf("the new key does not authenticate Cy: %v %+v", err, who)
		}
		if _, err := cli(t, withOrg("key", "create", "--user", "no-such-user")...); sb.ErrorCode(err) != sb.ENotFound {
			t.Fatalf("key for an unknown user: %v", err)
		}
		if out := mustCLI(t, nil, withOrg("key", "revoke", "--id", key.ID)...); strings.TrimSpace(out) != "revoked" {
			t.Fatalf("key revoke printed %q", out)
		}
		if _, err := st.Authenticate(ctx, key.Key); sb.ErrorCode(err) != sb.EUnauthorized {
			t.Fatalf("revoked key still authenticates: %v", err)
		}

		var gw struct {
			ID, Number, Provider string
			Rate                 float64
		}
		mustCLI(t, &gw, withOrg("gateway", "create", "--provider", "sim", "--number", "+1 (202) 555-0177", "--name", "Front desk", "--rate", "2")...)
		if gw.ID == "" || gw.Number != "+12025550177" || gw.Provider != "sim" || gw.Rate != 2 {
			t.Fatalf("gateway create printed %+v", gw)
		}
		_, err = cli(t, withOrg("gateway", "create", "--provider", "sim", "--number", "+1 555 12")...)
		if sb.ErrorCode(err) != sb.EInvalid || !strings.Contains(err.Error(), "phone number") {
			t.Fatalf("bad gateway number: %v, want an error naming the number", err)
		}
		_, err = cli(t, withOrg("gateway", "create", "--provider", "pigeon", "--number", "+12025550178")...)
		if sb.ErrorCode(err) != sb.EInvalid || !strings.Contains(err.Error(), "pigeon") {
			t.Fatalf("unknown provider: %v, want an error naming it", err)
		}
		var gws []struct{ ID, Number string }
		mustCLI(t, &gws, withOrg("gateway", "list")...)
		if len(gws) != 1 || gws[0].ID != gw.ID {
			t.Fatalf("gateway list: %+v", gws)
		}

		var m sb.Message
		mustCLI(t, &m, withOrg("send", "--gateway", gw.ID, "--to", "+12025550123", "--body", "Your visit is confirmed")...)
		if m.ID == "" || m.Status != sb.StatusQueued || m.OwnerID != org.AdminUserID || m.Direction != sb.Outgoing {
			t.Fatalf("send printed %+v", m)
		}
		stored, err := st.Message(ctx, org.OrgID, m.ID)
		if err != nil || stored.Status != sb.StatusQueued {
			t.Fatalf("sent message stored: %v %+v", err, stored)
		}
		jobs, err := st.CountRows(ctx, "river_job")
		if err != nil || jobs == 0 {
			t.Fatalf("send enqueued %d jobs (err %v)", jobs, err)
		}
		if _, err := cli(t, withOrg("send", "--gateway", gw.ID, "--to", "not a number", "--body", "x")...); sb.ErrorCode(err) != sb.EInvalid {
			t.Fatalf("send to a bad number: %v", err)
		}
		if _, err := cli(t, admin("frobnicate")...); err == nil || !strings.Contains(err.Error(), `unknown admin command "frobnicate"`) {
			t.Fatalf("unknown admin command: %v", err)
		}
	})
}

// syncBuffer is a bytes.Buffer safe to write from one goroutine while
// another reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// served is a "switchboard serve" running in this process.
type served struct {
	base, key, gw string
	stdout        *syncBuffer
	stop          func() error
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// serveInProcess runs serve with the built-in carrier on dbFlags until the
// test ends.
func serveInProcess(t *testing.T, dbFlags []string) *served {
	t.Helper()
	addr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	s := &served{base: "http://" + addr, stdout: &syncBuffer{}}
	var stderr syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, append([]string{"--addr", addr, "--log-format", "text", "--log-level", "warn"}, dbFlags...), s.stdout, &stderr)
	}()
	var once sync.Once
	var stopErr error
	s.stop = func() error {
		once.Do(func() { cancel(); stopErr = <-done })
		return stopErr
	}
	t.Cleanup(func() { _ = s.stop() })
	keyRe := regexp.MustCompile(`(?m)^\s+(sb_\S+)\s*$`)
	gwRe := regexp.MustCompile(`Created simulated gateway (\S+) `)
	poll(t, "serve to start", func() bool {
		select {
		case err := <-done:
			t.Fatalf("serve ended: %v\n%s", err, stderr.String())
		default:
		}
		out := s.stdout.String()
		k, g := keyRe.FindStringSubmatch(out), gwRe.FindStringSubmatch(out)
		if k == nil || g == nil {
			return false
		}
		s.key, s.gw = k[1], g[1]
		resp, err := http.Get(s.base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return s
}

// poll waits for cond, failing after a generous deadline.
func poll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *served) get(t *testing.T, path string, v any) {
	t.Helper()
	req, _ := http.NewRequest("GET", s.base+path, nil)
	req.Header.Set("Authorization", "Bearer "+s.key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %s", path, resp.Status, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
}

// TestAdminAndSimBesideServe runs the admin and sim commands while serve runs
// on the same SQLite file: a message queued by "admin send" is sent by the
// serving process, the handset's inbox shows it, and "sim text" reaches the
// service as an incoming message.
func TestAdminAndSimBesideServe(t *testing.T) {
	dir := t.TempDir()
	db := []string{"--data", dir, "--database-url", "sqlite:" + filepath.Join(dir, "switchboard.db")}
	s := serveInProcess(t, db)

	// A second serve, and migrate, are refused while it runs.
	if _, err := cli(t, append([]string{"migrate"}, db...)...); err == nil || !strings.Contains(err.Error(), "another switchboard process is using this SQLite database") {
		t.Fatalf("migrate beside serve: %v, want refused", err)
	}

	const to, body = "+12025550123", "Sent from the command line"
	var m sb.Message
	mustCLI(t, &m, append([]string{"admin", "send", "--gateway", s.gw, "--to", to, "--body", body}, db...)...)
	poll(t, "the admin send to be delivered by serve", func() bool {
		var got sb.Message
		s.get(t, "/v1/messages/"+m.ID, &got)
		return got.Status == sb.StatusDelivered
	})

	sim := []string{"--sim-url", s.base + "/sim"}
	var inbox []struct{ From, Body string }
	mustCLI(t, &inbox, append([]string{"sim", "inbox", "--number", to}, sim...)...)
	if len(inbox) != 1 || inbox[0].Body != body || inbox[0].From != "+12025550100" {
		t.Fatalf("sim inbox: %+v", inbox)
	}

	mustCLI(t, nil, append([]string{"sim", "text", "--from", to, "--to", "+12025550100"}, append(sim, "Thanks,", "see you then")...)...)
	var list struct{ Messages []sb.Message }
	poll(t, "the handset's text to be received", func() bool {
		s.get(t, "/v1/messages?direction=incoming&phone="+to, &list)
		return len(list.Messages) == 1
	})
	if got := list.Messages[0]; got.Status != sb.StatusReceived || got.GatewayID != s.gw {
		t.Fatalf("incoming message: %+v", got)
	}
	var stats struct{ Accepted, Inbound int64 }
	mustCLI(t, &stats, append([]string{"sim", "stats"}, sim...)...)
	if stats.Accepted != 1 || stats.Inbound != 1 {
		t.Fatalf("sim stats: %+v", stats)
	}
	if _, err := cli(t, append([]string{"sim", "text", "--from", to}, sim...)...); err == nil || !strings.Contains(err.Error(), "usage: switchboard sim text") {
		t.Fatalf("sim text without --to: %v", err)
	}

	if err := s.stop(); err != nil {
		t.Fatalf("serve stopped with %v", err)
	}
	// With serve stopped, the lock is free again.
	if _, err := cli(t, append([]string{"migrate"}, db...)...); err != nil {
		t.Fatalf("migrate after serve stopped: %v", err)
	}
}
