//go:build unix

package store_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"

	"github.com/riverqueue/river"

	sb "github.com/switchboard/switchboard"
	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/store/storetest"
)

type lockTestArgs struct{}

func (lockTestArgs) Kind() string { return "lock_test" }

// TestSharedOpenBesideServe: while a "serve" holds a SQLite file, a second
// locked open (another serve, or migrate) is refused, and a shared open (the
// admin commands) works and writes — rows and jobs the serving handle sees.
func TestSharedOpenBesideServe(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "switchboard.db")
	url := "sqlite:" + path
	ring, h := storetest.Keys()
	serving := storetest.OpenURL(t, url)

	_, err := store.Open(ctx, url, store.Options{Keyring: ring, Hasher: h})
	if err == nil || !strings.Contains(err.Error(), "another switchboard process is using this SQLite database") {
		t.Fatalf("second locked open while serve runs: %v, want refused", err)
	}

	admin := storetest.OpenURL(t, url, func(o *store.Options) { o.Shared = true })
	q, err := admin.NewQueue(&river.Config{})
	if err != nil {
		t.Fatal(err)
	}
	org := &sb.Org{Name: "Written beside serve"}
	if err := admin.Tx(ctx, func(tx *store.Tx) error { return tx.CreateOrg(ctx, org) }); err != nil {
		t.Fatalf("shared write: %v", err)
	}
	if err := q.Insert(ctx, lockTestArgs{}, nil); err != nil {
		t.Fatalf("shared job insert: %v", err)
	}
	if got, err := serving.Org(ctx, org.ID); err != nil || got.Name != org.Name {
		t.Fatalf("serve does not see the org written beside it: %v %+v", err, got)
	}
	if n, err := serving.CountRows(ctx, "river_job"); err != nil || n != 1 {
		t.Fatalf("serve sees %d jobs (err %v), want the 1 inserted beside it", n, err)
	}

	// A schema behind the binary is not migrated under a running serve.
	raw, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	var last int
	if err := raw.QueryRow(`SELECT MAX(version) FROM schema_migrations`).Scan(&last); err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec(`DELETE FROM schema_migrations WHERE version = ?`, last); err != nil {
		t.Fatal(err)
	}
	behind, err := store.Open(ctx, url, store.Options{Keyring: ring, Hasher: h, Shared: true})
	if err != nil {
		t.Fatal(err)
	}
	defer behind.Close()
	err = behind.Migrate(ctx, nil)
	if err == nil || !strings.Contains(err.Error(), "schema is behind") || !strings.Contains(err.Error(), "switchboard migrate") {
		t.Fatalf("shared migrate of a schema behind, serve running: %v, want refused naming the migration", err)
	}
	// Put the row back; with serve stopped a shared open may migrate, and
	// lets go of the lock afterwards.
	if _, err := raw.Exec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, 'restored', 0)`, last); err != nil {
		t.Fatal(err)
	}
	serving.Close()
	if err := behind.Migrate(ctx, nil); err != nil {
		t.Fatalf("shared migrate with nobody serving: %v", err)
	}
	again, err := store.Open(ctx, url, store.Options{Keyring: ring, Hasher: h})
	if err != nil {
		t.Fatalf("locked open after the shared migrate: %v", err)
	}
	again.Close()
}
