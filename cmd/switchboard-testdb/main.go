// Command switchboard-testdb makes sure the PostgreSQL database the tests
// use exists: it connects to the server's "postgres" database and creates
// the one named in the URL when it is missing. It fails, naming the URL,
// when the server cannot be reached — the PostgreSQL path is always tested.
package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: switchboard-testdb postgres://…/dbname")
		os.Exit(2)
	}
	if err := ensure(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "switchboard-testdb:", err)
		os.Exit(1)
	}
}

func ensure(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return fmt.Errorf("SWITCHBOARD_TEST_DATABASE_URL must be a postgres:// URL")
	}
	name := strings.TrimPrefix(u.Path, "/")
	if name == "" || strings.ContainsAny(name, `"/`) {
		return fmt.Errorf("SWITCHBOARD_TEST_DATABASE_URL must name a database")
	}
	admin := *u
	admin.Path = "/postgres"
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin.String())
	if err != nil {
		return fmt.Errorf("PostgreSQL at %s is not reachable: %w", u.Redacted(), err)
	}
	defer conn.Close(ctx)
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		return err
	}
	if !exists {
		if _, err := conn.Exec(ctx, `CREATE DATABASE "`+name+`"`); err != nil {
			return fmt.Errorf("create database %s: %w", name, err)
		}
	}
	return nil
}
