// Package reliability holds the tests that prove Switchboard keeps its
// promises when things go wrong: processes killed mid-way, partners and
// CRMs failing, the database going away, several processes sharing one
// PostgreSQL. They run real `switchboard` processes (built once per run)
// against the simulated carrier on loopback, bounded in time.
package reliability
