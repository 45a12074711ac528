package web

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/store/storetest"
	sbtemplate "github.com/switchboard/switchboard/template"
	"github.com/switchboard/switchboard/tools/peers"
)

// The browser test drives the UI in Debian's headless Chromium with
// Playwright (playwright-core, pinned in tools/node): testdata/browser.mjs
// walks through every page as users with each permission set would, and
// saves a screenshot of each under test-artifacts/ui/ at the repo root.

// browserPeers returns the repo root and node, or skips the test when
// Node, playwright-core or Chromium is missing (fails under
// SWITCHBOARD_REQUIRE_PEERS=1).
func browserPeers(t *testing.T) (root, node string) { return peers.Browser(t) }

// browserSeed is what the script needs to know about the seeded org.
type browserSeed struct {
	Password string            `json:"password"`
	Users    map[string]string `json:"users"` // role → email
	Gateway  struct {
		ID     string `json:"id"`
		Number string `json:"number"`
	} `json:"gateway"`
	Contacts map[string]struct {
		ID    string `json:"id"`
		Phone string `json:"phone"`
	} `json:"contacts"`
	// Chat conversations closed before the export was enabled (so skipped),
	// by key; KeyFile is a PEM private key to upload.
	Chats   map[string]string `json:"chats"`
	KeyFile string            `json:"key_file"`
}

func TestBrowser(t *testing.T) {
	root, node := browserPeers(t)
	storetest.Each(t, func(t *testing.T, d store.Dialect) {
		e := newTestEnv(t, d)
		seed := browserSeed{Password: testPassword, Users: map[string]string{}}
		for role, u := range e.Users {
			seed.Users[role] = u.Email
		}
		seed.Gateway.ID, seed.Gateway.Number = e.Gateway.ID, e.Gateway.Number
		seed.Contacts = map[string]struct {
			ID    string `json:"id"`
			Phone string `json:"phone"`
		}{}
		for _, c := range []struct {
			key, first, last, phone string
			optOut                  bool
		}{
			{"ana", "Ana", "Lopez", "+12025550111", false},
			{"ben", "Ben", "Okafor", "+12025550112", true},
			{"cy", "Cy", "Tran", "+12025550113", false},
		} {
			rec := e.contact(c.first, c.last, c.phone, c.optOut)
			seed.Contacts[c.key] = struct {
				ID    string `json:"id"`
				Phone string `json:"phone"`
			}{rec.ID, c.phone}
		}
		name, body := "Reminder", "Hi {Contact.FirstName|there}, this is {User.Name} from {Org.Name}."
		if _, err := e.Templates.Create(context.Background(), e.Admin, sbtemplate.Input{Name: &name, Body: &body}); err != nil {
			t.Fatal(err)
		}
		seed.Chats = map[string]string{
			"future": e.chatConv(t, map[string]string{"first_name": "Fay", "last_name": "Future", "email": "fay@example.org", "Student Type": "Future Student"}),
			"alumni": e.chatConv(t, map[string]string{"first_name": "Al", "last_name": "Umni", "email": "al@example.org", "Student Type": "Alumni"}),
		}
		for _, id := range seed.Chats {
			e.waitChat(t, id, store.ChatSkipped)
		}
		seed.KeyFile = filepath.Join(t.TempDir(), "switchboard-jwt.pem")
		if err := os.WriteFile(seed.KeyFile, testKeyPEM(t), 0o600); err != nil {
			t.Fatal(err)
		}
		seedJSON, err := json.Marshal(seed)
		if err != nil {
			t.Fatal(err)
		}
		artifacts := filepath.Join(root, "test-artifacts", "ui", string(d))
		if err := os.RemoveAll(artifacts); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(artifacts, 0o755); err != nil {
			t.Fatal(err)
		}
		// The deadline only stops a hung browser; every step inside the
		// script waits on a condition of the page.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, node, filepath.Join("testdata", "browser.mjs"))
		cmd.Env = append(os.Environ(),
			"BASE_URL="+e.Srv.URL,
			"ARTIFACTS="+artifacts,
			"SEED="+string(seedJSON),
			"NODE_TOOLS="+filepath.Join(root, "tools", "node"),
			"CHROMIUM="+peers.Chromium,
		)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("browser scenarios failed: %v\n%s", err, out)
		}
		t.Logf("browser scenarios passed; screenshots in %s\n%s", artifacts, out)
	})
}
