// Package peers finds the real protocol peers and tools that tests run
// beside Switchboard: Node and the packages pinned in tools/node (Prism,
// the smpp server, playwright-core), and Debian's Chromium. A test that
// needs a peer that is missing is skipped — or fails, when
// SWITCHBOARD_REQUIRE_PEERS=1 (as `make test` and CI set it), so CI never
// passes by skipping.
package peers

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Chromium is where Debian's chromium package installs the browser.
const Chromium = "/usr/bin/chromium"

// Missing skips t with why and how to install the peers, or fails it when
// SWITCHBOARD_REQUIRE_PEERS=1.
func Missing(t testing.TB, why string) {
	t.Helper()
	msg := why + "; install the test peers with: npm ci --prefix tools/node (and, for browser tests, apt-get install -y chromium)"
	if os.Getenv("SWITCHBOARD_REQUIRE_PEERS") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// RepoRoot returns the folder holding go.mod above the test's directory.
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test directory")
		}
		dir = parent
	}
}

// NodeModules returns tools/node/node_modules, after checking each named
// package is installed there.
func NodeModules(t testing.TB, packages ...string) string {
	t.Helper()
	modules := filepath.Join(RepoRoot(t), "tools", "node", "node_modules")
	for _, p := range packages {
		if _, err := os.Stat(filepath.Join(modules, p, "package.json")); err != nil {
			Missing(t, "the npm package "+p+" is not installed under tools/node/node_modules")
		}
	}
	return modules
}

// Node returns the node binary.
func Node(t testing.TB) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		Missing(t, "node is not on PATH")
	}
	return node
}

// Browser checks Chromium and playwright-core are there and returns the repo
// root and node.
func Browser(t testing.TB) (root, node string) {
	t.Helper()
	NodeModules(t, "playwright-core")
	if _, err := os.Stat(Chromium); err != nil {
		Missing(t, "Chromium is not installed at "+Chromium)
	}
	return RepoRoot(t), Node(t)
}
