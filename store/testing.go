package store

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

var tableName = regexp.MustCompile(`^[a-z_]+$`)

// CountRows returns the number of rows in a table (tests, diagnostics).
func (db *DB) CountRows(ctx context.Context, table string) (int, error) {
	if !tableName.MatchString(table) {
		return 0, fmt.Errorf("bad table name %q", table)
	}
	var n int
	err := db.reader().queryRow(ctx, `SELECT COUNT(*) FROM `+table).Scan(&n)
	return n, err
}

// RawScan returns every value of every row of a table concatenated as
// bytes, as they are stored — for tests that look for data that must not
// be there in readable form.
func (db *DB) RawScan(ctx context.Context, table string) ([]byte, error) {
	if !tableName.MatchString(table) {
		return nil, fmt.Errorf("bad table name %q", table)
	}
	cols, err := db.SchemaColumns(ctx)
	if err != nil {
		return nil, err
	}
	names := cols[table]
	if len(names) == 0 {
		return nil, fmt.Errorf("no table %s", table)
	}
	exprs := make([]string, len(names))
	for i, c := range names {
		exprs[i] = "CAST(" + c + " AS TEXT)"
		if db.dialect == Postgres {
			exprs[i] = c + "::text"
		}
	}
	rs, err := db.reader().query(ctx, `SELECT `+strings.Join(exprs, ", ")+` FROM `+table)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []byte
	vals := make([]any, len(names))
	ptrs := make([]*string, len(names))
	for i := range vals {
		var s *string
		ptrs[i] = s
		vals[i] = &ptrs[i]
	}
	for rs.Next() {
		if err := rs.Scan(vals...); err != nil {
			return nil, err
		}
		for _, p := range ptrs {
			if p != nil {
				out = append(out, *p...)
				out = append(out, 0)
			}
		}
	}
	return out, rs.Err()
}

// SchemaColumns returns each table's column names, sorted.
func (db *DB) SchemaColumns(ctx context.Context) (map[string][]string, error) {
	q := `SELECT m.name, p.name FROM sqlite_master m, pragma_table_info(m.name) p WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%'`
	if db.dialect == Postgres {
		q = `SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = current_schema()`
	}
	rs, err := db.reader().query(ctx, q)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	out := map[string][]string{}
	for rs.Next() {
		var t, c string
		if err := rs.Scan(&t, &c); err != nil {
			return nil, err
		}
		out[t] = append(out[t], c)
	}
	for t := range out {
		slices.Sort(out[t])
	}
	return out, rs.Err()
}

// JobInfo is a job queue row as tests and diagnostics see it.
type JobInfo struct {
	ID      int64
	Kind    string
	State   string
	Attempt int
	// Errors is the job's recorded errors (JSON), empty when there are none.
	Errors string
}

// Jobs returns the job queue's rows of a kind (every kind when kind is
// empty), oldest first.
func (db *DB) Jobs(ctx context.Context, kind string) ([]JobInfo, error) {
	state, errs := `state`, `COALESCE(CAST(errors AS TEXT), '')`
	if db.dialect == Postgres {
		state, errs = `state::text`, `COALESCE(array_to_json(errors)::text, '')`
	}
	rs, err := db.reader().query(ctx, `SELECT id, kind, `+state+`, attempt, `+errs+` FROM river_job WHERE $1 = '' OR kind = $1 ORDER BY id`, kind)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []JobInfo
	for rs.Next() {
		var j JobInfo
		if err := rs.Scan(&j.ID, &j.Kind, &j.State, &j.Attempt, &j.Errors); err != nil {
			return nil, err
		}
		if j.Errors == "[]" || j.Errors == "null" {
			j.Errors = ""
		}
		out = append(out, j)
	}
	return out, rs.Err()
}
