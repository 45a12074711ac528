package store

import (
	"fmt"
	"strings"
)

// rowCol is a column of rows handed to a set-based statement: its name and
// SQL type (text, integer, bigint).
type rowCol struct{ name, typ string }

// rowsCTE returns the common table expression "v (cols) AS (...)" holding
// rows, with its arguments numbered from $from. On PostgreSQL each column is
// one array argument, unnested: the statement's text is the same whatever
// the number of rows, so its prepared form and plan are kept instead of a
// statement of hundreds of parameters being parsed and planned on each
// call. On SQLite the rows are a VALUES list.
func (tx *Tx) rowsCTE(from int, cols []rowCol, rows [][]any) (string, []any) {
	var q strings.Builder
	q.WriteString("v (")
	for i, c := range cols {
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteString(c.name)
	}
	q.WriteString(") AS (")
	if tx.db.dialect == Postgres {
		args := make([]any, len(cols))
		q.WriteString("SELECT * FROM unnest(")
		for i, c := range cols {
			col := make([]any, len(rows))
			for j, r := range rows {
				col[j] = r[i]
			}
			args[i] = col
			if i > 0 {
				q.WriteString(", ")
			}
			fmt.Fprintf(&q, "$%d::%s[]", from+i, c.typ)
		}
		q.WriteString("))")
		return q.String(), args
	}
	args := make([]any, 0, len(rows)*len(cols))
	q.WriteString("VALUES ")
	for j, r := range rows {
		if j > 0 {
			q.WriteString(",")
		}
		q.WriteString("(")
		for i, c := range cols {
			if i > 0 {
				q.WriteString(", ")
			}
			n := from + len(args)
			if c.typ == "text" {
				fmt.Fprintf(&q, "$%d", n)
			} else {
				fmt.Fprintf(&q, "CAST($%d AS %s)", n, strings.ToUpper(c.typ))
			}
			args = append(args, r[i])
		}
		q.WriteString(")")
	}
	q.WriteString(")")
	return q.String(), args
}
