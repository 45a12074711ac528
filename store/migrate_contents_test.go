package store_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"

	_ "modernc.org/sqlite"

	"github.com/switchboard/switchboard/store"
)

// TestContentsWithoutFKKeepsContent: migration 0047 rebuilds SQLite's
// message_contents without its foreign key; content in transit when it runs
// is kept, and content no longer needs a message row checked at insert.
func TestContentsWithoutFKKeepsContent(t *testing.T) {
	ctx := context.Background()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "m.db")+"?_pragma=foreign_keys(ON)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	migs, err := store.Migrations(store.SQLite)
	if err != nil {
		t.Fatal(err)
	}
	run := func(m store.Migration) {
		t.Helper()
		if _, err := db.ExecContext(ctx, m.SQL); err != nil {
			t.Fatalf("%s: %v", m.Name, err)
		}
	}
	var fk store.Migration
	for _, m := range migs {
		switch {
		case m.Version < 47:
			run(m)
		case m.Version == 47:
			fk = m
		}
	}
	if fk.Version != 47 || !strings.Contains(fk.Name, "contents_without_fk") {
		t.Fatalf("migration 47 is %q", fk.Name)
	}
	// Before: content must name an existing message.
	if _, err := db.ExecContext(ctx, `INSERT INTO message_contents (message_id, org_id, sealed, created_at) VALUES ('m1', 'o1', x'0102', 5)`); err == nil {
		t.Fatal("before 0047 content without its message was taken")
	}
	if _, err := db.ExecContext(ctx, `PRAGMA foreign_keys = OFF`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO message_contents (message_id, org_id, sealed, created_at) VALUES ('m1', 'o1', x'0102', 5), ('m2', 'o1', x'0304', 6)`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `PRAGMA foreign_keys = ON`); err != nil {
		t.Fatal(err)
	}
	run(fk)
	var n int
	var sealed []byte
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*), (SELECT sealed FROM message_contents WHERE message_id = 'm2') FROM message_contents`).Scan(&n, &sealed); err != nil {
		t.Fatal(err)
	}
	if n != 2 || string(sealed) != "\x03\x04" {
		t.Fatalf("after 0047: %d rows, m2 sealed %x", n, sealed)
	}
	var fks int
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM pragma_foreign_key_list('message_contents')`).Scan(&fks); err != nil || fks != 0 {
		t.Fatalf("foreign keys left on message_contents: %d %v", fks, err)
	}
	var idx int
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name = 'message_contents_created'`).Scan(&idx); err != nil || idx != 1 {
		t.Fatalf("index message_contents_created: %d %v", idx, err)
	}
}
