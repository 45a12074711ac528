package store

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"slices"
	"strconv"
	"strings"

	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"
)

//go:embed migrations/sqlite/*.sql migrations/postgres/*.sql
var migrationFS embed.FS

// Migration is one schema step.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// Migrations returns the dialect's migrations in order.
func Migrations(d Dialect) ([]Migration, error) {
	dir := "migrations/" + string(d)
	entries, err := fs.ReadDir(migrationFS, dir)
	if err != nil {
		return nil, err
	}
	var out []Migration
	for _, e := range entries {
		name := e.Name()
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || !strings.HasSuffix(name, ".sql") {
			return nil, fmt.Errorf("migration file %s: want NNNN_name.sql", name)
		}
		b, err := fs.ReadFile(migrationFS, dir+"/"+name)
		if err != nil {
			return nil, err
		}
		out = append(out, Migration{Version: v, Name: name, SQL: string(b)})
	}
	slices.SortFunc(out, func(a, b Migration) int { return a.Version - b.Version })
	for i := 1; i < len(out); i++ {
		if out[i].Version == out[i-1].Version {
			return nil, fmt.Errorf("migrations %s and %s have the same version %d", out[i-1].Name, out[i].Name, out[i].Version)
		}
	}
	return out, nil
}

// Migrate brings the schema (Switchboard's tables and the job queue's) up to
// date. It is safe to run from several processes at once on PostgreSQL (an
// advisory lock serialises them) and on every start.
func (db *DB) Migrate(ctx context.Context, log *slog.Logger) error {
	migs, err := Migrations(db.dialect)
	if err != nil {
		return err
	}
	if db.dialect == SQLite && db.shared && !inMemory(db.path) {
		// A shared open migrates only while it can hold the lock: a schema
		// change under a running "serve" would pull the tables from under
		// it. With serve running, the schema must already be current.
		lock, err := lockFile(db.path + ".lock")
		var locked lockedError
		switch {
		case errors.As(err, &locked):
			return db.checkMigrated(ctx, migs)
		case err != nil:
			return err
		}
		if lock != nil {
			defer lock.Close()
		}
	}
	if db.dialect == Postgres {
		// A session lock on a connection of its own serialises concurrent
		// starts across processes for both migrators.
		conn, err := db.pool.Acquire(ctx)
		if err != nil {
			return err
		}
		defer conn.Release()
		if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock(7301001)`); err != nil {
			return err
		}
		defer conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock(7301001)`)
	}
	err = db.Tx(ctx, func(tx *Tx) error {
		if _, err := tx.q.exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)`); err != nil {
			return fmt.Errorf("create schema_migrations: %w", err)
		}
		applied, err := appliedVersions(ctx, tx.q)
		if err != nil {
			return err
		}
		for _, m := range migs {
			if applied[m.Version] {
				continue
			}
			if err := tx.execScript(ctx, m.SQL); err != nil {
				return fmt.Errorf("migration %s: %w", m.Name, err)
			}
			if _, err := tx.q.exec(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)`, m.Version, m.Name, micros(db.now())); err != nil {
				return err
			}
			if log != nil {
				log.Info("migration applied", "migration", m.Name, "dialect", string(db.dialect))
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return db.migrateQueue(ctx)
}

// appliedVersions reads the versions of the migrations applied.
func appliedVersions(ctx context.Context, q querier) (map[int]bool, error) {
	rs, err := q.query(ctx, `SELECT version FROM schema_migrations`)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	applied := map[int]bool{}
	for rs.Next() {
		var v int
		if err := rs.Scan(&v); err != nil {
			return nil, err
		}
		applied[v] = true
	}
	return applied, rs.Err()
}

// checkMigrated returns an error naming the migrations not yet applied
// (Switchboard's and the job queue's).
func (db *DB) checkMigrated(ctx context.Context, migs []Migration) error {
	applied, err := appliedVersions(ctx, db.reader())
	if err != nil {
		return fmt.Errorf("the database has not been migrated yet and another switchboard process is using it; stop it and run \"switchboard migrate\": %w", err)
	}
	var pending []string
	for _, m := range migs {
		if !applied[m.Version] {
			pending = append(pending, m.Name)
		}
	}
	if len(pending) == 0 {
		m, err := rivermigrate.New(riversqlite.New(db.sqlR), nil)
		if err != nil {
			return err
		}
		res, err := m.Validate(ctx, nil)
		if err != nil {
			return err
		}
		pending = res.Messages
	}
	if len(pending) > 0 {
		return fmt.Errorf("the database schema is behind this switchboard (%s) and another switchboard process is using it; stop it and run \"switchboard migrate\"", strings.Join(pending, ", "))
	}
	return nil
}

// migrateQueue migrates River's tables with River's own migrator.
func (db *DB) migrateQueue(ctx context.Context) error {
	if db.dialect == Postgres {
		m, err := rivermigrate.New(riverpgxv5.New(db.pool), nil)
		if err != nil {
			return err
		}
		_, err = m.Migrate(ctx, rivermigrate.DirectionUp, nil)
		return err
	}
	m, err := rivermigrate.New(riversqlite.New(db.sqlW), nil)
	if err != nil {
		return err
	}
	_, err = m.Migrate(ctx, rivermigrate.DirectionUp, nil)
	return err
}

// execScript runs a multi-statement script: pgx sends a query without
// arguments as one simple-protocol query; SQLite's driver runs every
// statement of a script in turn.
func (tx *Tx) execScript(ctx context.Context, script string) error {
	_, err := tx.q.exec(ctx, script)
	return err
}
