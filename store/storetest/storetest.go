// Package storetest opens fresh stores for tests: a SQLite file in a temp
// folder, and — when SWITCHBOARD_TEST_DATABASE_URL names a PostgreSQL
// database — a schema of its own on that real server.
package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	sb "github.com/switchboard/switchboard"
	"github.com/switchboard/switchboard/store"
)

// EnvDatabaseURL names the PostgreSQL database tests use.
const EnvDatabaseURL = "SWITCHBOARD_TEST_DATABASE_URL"

// Dialects returns the engines to test: SQLite always, PostgreSQL when
// SWITCHBOARD_TEST_DATABASE_URL is set (CI always sets it).
func Dialects() []store.Dialect {
	if os.Getenv(EnvDatabaseURL) != "" {
		return []store.Dialect{store.SQLite, store.Postgres}
	}
	return []store.Dialect{store.SQLite}
}

// Each runs f as a subtest once per dialect.
func Each(t *testing.T, f func(t *testing.T, d store.Dialect)) {
	t.Helper()
	for _, d := range Dialects() {
		t.Run(string(d), func(t *testing.T) { f(t, d) })
	}
}

// Keys returns a fixed keyring and hasher for tests.
func Keys() (*sb.Keyring, *sb.Hasher) {
	ring, err := sb.ParseKeyring("test:" + "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")
	if err != nil {
		panic(err)
	}
	h, err := sb.NewHasher([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		panic(err)
	}
	return ring, h
}

// URL returns a database URL for a fresh, empty database of dialect d, and
// registers its removal with t.
func URL(t testing.TB, d store.Dialect) string {
	t.Helper()
	if d == store.SQLite {
		return "sqlite:" + filepath.Join(t.TempDir(), "test.db")
	}
	base := os.Getenv(EnvDatabaseURL)
	if base == "" {
		t.Skip(EnvDatabaseURL + " is not set: PostgreSQL tests skipped (make test sets it)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("PostgreSQL at %s is not reachable: %v", redact(base), err)
	}
	defer conn.Close(ctx)
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	schema := "t_" + hex.EncodeToString(b)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, base)
		if err != nil {
			return
		}
		defer c.Close(ctx)
		_, _ = c.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE")
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("%s: %v", EnvDatabaseURL, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// Open returns a fresh, migrated store of dialect d, closed at cleanup.
func Open(t testing.TB, d store.Dialect, opts ...func(*store.Options)) *store.DB {
	t.Helper()
	return OpenURL(t, URL(t, d), opts...)
}

// OpenURL opens (and migrates) the store at url, closed at cleanup: a second
// "process" on the same database.
func OpenURL(t testing.TB, url string, opts ...func(*store.Options)) *store.DB {
	t.Helper()
	ring, h := Keys()
	o := store.Options{Keyring: ring, Hasher: h}
	for _, f := range opts {
		f(&o)
	}
	ctx := context.Background()
	db, err := store.Open(ctx, url, o)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(ctx, nil); err != nil {
		t.Fatalf("migrate %s store: %v", db.Dialect(), err)
	}
	return db
}

func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparseable URL)"
	}
	return fmt.Sprint(u.Redacted())
}
