// Package store keeps Switchboard's state in SQLite (the embedded default)
// or PostgreSQL (for scale-out). One set of queries serves both: they are
// written with $N placeholders, which are rewritten to SQLite's ?N form, and
// the few statements that differ between the two engines branch on the
// dialect. Both engines use the same logical schema, migrated from the two
// folders under migrations/ that are kept in lockstep.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	sb "github.com/switchboard/switchboard"
)

// Dialect names the database engine.
type Dialect string

const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// DB is an open store. It is safe for concurrent use.
type DB struct {
	dialect Dialect
	// SQLite: one writer connection and a pool of readers.
	sqlW, sqlR *sql.DB
	// PostgreSQL: one pool.
	pool *pgxpool.Pool
	// lock keeps other processes off a SQLite file.
	lock *os.File
	// shared: a SQLite file opened without the lock (admin commands).
	shared bool
	path   string

	keys   *sb.Keyring
	hasher *sb.Hasher
	now    func() time.Time

	queue   *Queue
	batcher *batcher
	onQuery func(string)
	// optOutHook runs in the transaction of every opt-out (SetOptOutHook).
	optOutHook func(ctx context.Context, tx *Tx, orgID, gatewayID string, phoneHash []byte) error

	wbMu   sync.Mutex
	wbLast map[string]time.Time
}

// Options configure Open.
type Options struct {
	// Keyring seals secrets and message content; required.
	Keyring *sb.Keyring
	// Hasher computes phone hashes; required.
	Hasher *sb.Hasher
	// Now is the clock; defaults to time.Now.
	Now func() time.Time
	// MaxConns caps PostgreSQL connections (default 10) and SQLite readers
	// (default 4).
	MaxConns int
	// Inspect opens a SQLite file another process holds, to read it
	// (diagnostics, tests); it must not be used to write.
	Inspect bool
	// OnQuery, when set, is called with the text of every statement run
	// through the store's queries (tests that count the statements a use
	// case makes; the job queue's own statements are not included).
	OnQuery func(query string)

	// Shared opens a SQLite file without the exclusive lock that "serve"
	// and "migrate" hold, for a process that runs no job workers (the admin
	// commands): it may run while "serve" does, and its writes wait for the
	// other process's through SQLite's busy timeout. Jobs it inserts are
	// worked by the serving process. Migrate on a shared store migrates
	// only when no other process holds the lock.
	Shared bool
}

// Open connects to the database named by url: "postgres://…" or
// "postgresql://…" for PostgreSQL, "sqlite:path" or a plain file path for
// SQLite. It does not migrate; call Migrate.
func Open(ctx context.Context, url string, opts Options) (*DB, error) {
	if opts.Keyring == nil || opts.Hasher == nil {
		return nil, errors.New("store: keyring and hasher are required")
	}
	db := &DB{keys: opts.Keyring, hasher: opts.Hasher, now: opts.Now, onQuery: opts.OnQuery}
	if db.now == nil {
		db.now = time.Now
	}
	var err error
	switch {
	case strings.HasPrefix(url, "postgres://") || strings.HasPrefix(url, "postgresql://"):
		err = db.openPostgres(ctx, url, opts.MaxConns)
	default:
		err = db.openSQLite(ctx, strings.TrimPrefix(url, "sqlite:"), opts.MaxConns, opts.Inspect || opts.Shared)
		db.shared = opts.Shared
	}
	if err != nil {
		return nil, err
	}
	db.batcher = newBatcher(db)
	return db, nil
}

func (db *DB) openPostgres(ctx context.Context, url string, maxConns int) error {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return fmt.Errorf("DATABASE_URL is not a valid PostgreSQL URL: %w", err)
	}
	if maxConns <= 0 {
		maxConns = 10
	}
	cfg.MaxConns = int32(maxConns)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return fmt.Errorf("connect to PostgreSQL at %s:%d: %w", cfg.ConnConfig.Host, cfg.ConnConfig.Port, err)
	}
	db.dialect, db.pool = Postgres, pool
	return nil
}

func (db *DB) openSQLite(ctx context.Context, path string, maxReaders int, unlocked bool) error {
	if path == "" {
		return errors.New("sqlite: empty database path")
	}
	if maxReaders <= 0 {
		maxReaders = 4
	}
	db.path = path
	if !unlocked && !inMemory(path) {
		lock, err := lockFile(path + ".lock")
		if err != nil {
			return err
		}
		db.lock = lock
	}
	// The writer gets a 32 MB page cache, each reader 4 MB: readers mostly
	// find what they need in the OS cache and the WAL.
	pragmas := "_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=busy_timeout(10000)&_pragma=foreign_keys(ON)"
	dsn := "file:" + path + "?" + pragmas + "&_pragma=cache_size(-32000)&_txlock=immediate"
	w, err := sql.Open("sqlite", dsn)
	if err != nil {
		return fmt.Errorf("open SQLite file %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	if err := w.PingContext(ctx); err != nil {
		w.Close()
		return fmt.Errorf("open SQLite file %s: %w", path, err)
	}
	r, err := sql.Open("sqlite", "file:"+path+"?"+pragmas+"&_pragma=cache_size(-4000)&_pragma=query_only(1)")
	if err != nil {
		w.Close()
		return err
	}
	r.SetMaxOpenConns(maxReaders)
	r.SetMaxIdleConns(maxReaders)
	db.dialect, db.sqlW, db.sqlR = SQLite, w, r
	return nil
}

func inMemory(path string) bool {
	return path == ":memory:" || strings.HasPrefix(path, "file::memory:")
}

// Dialect returns the engine in use.
func (db *DB) Dialect() Dialect { return db.dialect }

// Keyring returns the keyring the store seals with.
func (db *DB) Keyring() *sb.Keyring { return db.keys }

// Hasher returns the phone hasher.
func (db *DB) Hasher() *sb.Hasher { return db.hasher }

// Now returns the store's clock reading.
func (db *DB) Now() time.Time { return db.now() }

// Ping checks the database answers.
func (db *DB) Ping(ctx context.Context) error {
	if db.dialect == Postgres {
		return db.pool.Ping(ctx)
	}
	return db.sqlW.PingContext(ctx)
}

// Close stops the batcher and closes the connections.
func (db *DB) Close() error {
	db.batcher.close()
	if db.dialect == Postgres {
		db.pool.Close()
		return nil
	}
	db.sqlR.Close()
	err := db.sqlW.Close()
	if db.lock != nil {
		db.lock.Close()
	}
	return err
}

// querier is what queries run on: the database itself or a transaction.
type querier interface {
	exec(ctx context.Context, q string, args ...any) (int64, error)
	query(ctx context.Context, q string, args ...any) (rows, error)
	queryRow(ctx context.Context, q string, args ...any) row
}

type rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close()
}

type row interface{ Scan(dest ...any) error }

// reader returns the querier for reads outside a transaction.
func (db *DB) reader() querier {
	if db.dialect == Postgres {
		return db.observed(pgQ{db.pool})
	}
	return db.observed(sqlQ{db.sqlR})
}

// writer returns the querier for single writes outside a transaction.
func (db *DB) writer() querier {
	if db.dialect == Postgres {
		return db.observed(pgQ{db.pool})
	}
	return db.observed(sqlQ{db.sqlW})
}

// observed wraps q to report each statement to Options.OnQuery, if set.
func (db *DB) observed(q querier) querier {
	if db.onQuery == nil {
		return q
	}
	return observedQ{q, db.onQuery}
}

type observedQ struct {
	q  querier
	fn func(string)
}

func (o observedQ) exec(ctx context.Context, q string, args ...any) (int64, error) {
	o.fn(q)
	return o.q.exec(ctx, q, args...)
}

func (o observedQ) query(ctx context.Context, q string, args ...any) (rows, error) {
	o.fn(q)
	return o.q.query(ctx, q, args...)
}

func (o observedQ) queryRow(ctx context.Context, q string, args ...any) row {
	o.fn(q)
	return o.q.queryRow(ctx, q, args...)
}

// --- database/sql (SQLite) ---

type sqlRunner interface {
	ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
}

type sqlQ struct{ r sqlRunner }

func (s sqlQ) exec(ctx context.Context, q string, args ...any) (int64, error) {
	res, err := s.r.ExecContext(ctx, sqliteSQL(q), args...)
	if err != nil {
		return 0, mapErr(err)
	}
	return res.RowsAffected()
}

func (s sqlQ) query(ctx context.Context, q string, args ...any) (rows, error) {
	r, err := s.r.QueryContext(ctx, sqliteSQL(q), args...)
	if err != nil {
		return nil, mapErr(err)
	}
	return sqlRows{r}, nil
}

func (s sqlQ) queryRow(ctx context.Context, q string, args ...any) row {
	return errRow{s.r.QueryRowContext(ctx, sqliteSQL(q), args...)}
}

type sqlRows struct{ *sql.Rows }

func (r sqlRows) Close() { _ = r.Rows.Close() }

// --- pgx (PostgreSQL) ---

type pgRunner interface {
	Exec(ctx context.Context, q string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, q string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, q string, args ...any) pgx.Row
}

type pgQ struct{ r pgRunner }

func (p pgQ) exec(ctx context.Context, q string, args ...any) (int64, error) {
	tag, err := p.r.Exec(ctx, q, args...)
	if err != nil {
		return 0, mapErr(err)
	}
	return tag.RowsAffected(), nil
}

func (p pgQ) query(ctx context.Context, q string, args ...any) (rows, error) {
	r, err := p.r.Query(ctx, q, args...)
	if err != nil {
		return nil, mapErr(err)
	}
	return r, nil
}

func (p pgQ) queryRow(ctx context.Context, q string, args ...any) row {
	return errRow{p.r.QueryRow(ctx, q, args...)}
}

// errRow maps driver errors of Scan to store errors.
type errRow struct{ r row }

func (e errRow) Scan(dest ...any) error { return mapErr(e.r.Scan(dest...)) }

// errNoRows is returned by queryRow(...).Scan when nothing matched.
var errNoRows = errors.New("store: no rows")

// errUnique is returned when a unique constraint rejects a write.
var errUnique = errors.New("store: unique constraint violated")

func mapErr(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sql.ErrNoRows) || errors.Is(err, pgx.ErrNoRows) {
		return errNoRows
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		return fmt.Errorf("%w: %s", errUnique, pgErr.ConstraintName)
	}
	var sqErr *sqlite.Error
	if errors.As(err, &sqErr) {
		switch sqErr.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return fmt.Errorf("%w: %v", errUnique, err)
		}
	}
	return err
}

// sqliteSQL rewrites $N placeholders to SQLite's form, outside quoted
// literals: plain "?" when every parameter appears once and in order (the
// common case, and much cheaper for SQLite to bind in long multi-row
// statements), else "?N". Results are cached per query text.
func sqliteSQL(q string) string {
	if v, ok := sqliteCache.Load(q); ok {
		return v.(string)
	}
	var b strings.Builder
	b.Grow(len(q))
	inQuote := false
	inOrder, want := true, 1
	for i := 0; i < len(q); i++ {
		c := q[i]
		if c == '\'' {
			inQuote = !inQuote
		}
		if c == '$' && !inQuote && i+1 < len(q) && q[i+1] >= '0' && q[i+1] <= '9' {
			j := i + 1
			for j < len(q) && q[j] >= '0' && q[j] <= '9' {
				j++
			}
			n, _ := strconv.Atoi(q[i+1 : j])
			if n != want {
				inOrder = false
			}
			want++
			b.WriteByte('?')
			b.WriteString(q[i+1 : j])
			i = j - 1
			continue
		}
		b.WriteByte(c)
	}
	out := b.String()
	if inOrder {
		out = numbered.ReplaceAllString(out, "?")
	}
	sqliteCache.Store(q, out)
	return out
}

// numbered matches "?N" placeholders (never inside literals: the rewrite
// above only emits them outside quotes, and literals in our queries hold no
// "?").
var numbered = regexp.MustCompile(`\?[0-9]+`)

var sqliteCache sync.Map

// micros converts a time to the stored form (Unix microseconds).
func micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

// fromMicros converts a stored time back; 0 is the zero time.
func fromMicros(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMicro(v).UTC()
}

// nullMicros stores a possibly-zero time as NULL.
func nullMicros(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMicro()
}

// timePtr converts a nullable stored time to a pointer.
func timePtr(v sql.NullInt64) *time.Time {
	if !v.Valid || v.Int64 == 0 {
		return nil
	}
	t := fromMicros(v.Int64)
	return &t
}

// nullStr stores "" as NULL.
func nullStr(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// nullBytes stores an empty byte slice as NULL.
func nullBytes(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

// lockedError says another process holds a SQLite database's lock.
type lockedError struct{ path string }

func (e lockedError) Error() string {
	return fmt.Sprintf("another switchboard process is using this SQLite database (lock %s is held); stop it, or use PostgreSQL to run several processes", e.path)
}
