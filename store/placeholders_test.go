package store

import "testing"

func TestSQLitePlaceholders(t *testing.T) {
	cases := map[string]string{
		`SELECT $1, $2, $3`:                    `SELECT ?, ?, ?`,
		`SELECT $1, $2, $1`:                    `SELECT ?1, ?2, ?1`,
		`SELECT $2, $1`:                        `SELECT ?2, ?1`,
		`SELECT '$1', $1 WHERE x = 'it''s $2'`: `SELECT '$1', ? WHERE x = 'it''s $2'`,
		`INSERT VALUES ($1,$2),($3,$4)`:        `INSERT VALUES (?,?),(?,?)`,
		`SELECT $10, $11`:                      `SELECT ?10, ?11`,
	}
	for in, want := range cases {
		if got := sqliteSQL(in); got != want {
			t.Errorf("sqliteSQL(%q) = %q, want %q", in, got, want)
		}
	}
}
