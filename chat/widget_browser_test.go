package chat_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/switchboard/switchboard/chat"
	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/store/storetest"
)

// chromiumPath is where Debian's chromium package installs the browser.
const chromiumPath = "/usr/bin/chromium"

// browserPeers returns the repo root and node, or skips the test when
// Node, playwright-core or Chromium is missing (fails under
// SWITCHBOARD_REQUIRE_PEERS=1).
func browserPeers(t *testing.T) (root, node string) {
	t.Helper()
	missing := func(why string) {
		msg := why + "; install the test peers with: npm ci --prefix tools/node (and apt-get install -y chromium)"
		if os.Getenv("SWITCHBOARD_REQUIRE_PEERS") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test directory")
		}
		dir = parent
	}
	if _, err := os.Stat(filepath.Join(dir, "tools", "node", "node_modules", "playwright-core", "package.json")); err != nil {
		missing("playwright-core is not installed under tools/node/node_modules")
	}
	if _, err := os.Stat(chromiumPath); err != nil {
		missing("Chromium is not installed at " + chromiumPath)
	}
	if node, err = exec.LookPath("node"); err != nil {
		missing("node is not on PATH")
	}
	return dir, node
}

// TestWidgetInBrowser drives the widget in headless Chromium: a visitor
// chats with an agent, ends the chat, and the conversation is exported.
func TestWidgetInBrowser(t *testing.T) {
	root, node := browserPeers(t)
	storetest.Each(t, func(t *testing.T, d store.Dialect) {
		e := newEnv(t, d)
		e.settings(map[string]any{})
		var tok chat.WidgetToken
		e.call("POST", "/v1/chat/widget-token", nil, http.StatusCreated).JSON(t, &tok)
		// The deadline only stops a hung browser; every step of the script
		// waits on a condition of the page.
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, node, filepath.Join("testdata", "widget.mjs"))
		cmd.Env = append(os.Environ(), "BASE_URL="+e.Server.URL, "WIDGET_TOKEN="+tok.Token, "API_KEY="+e.Key,
			"NODE_TOOLS="+filepath.Join(root, "tools", "node"), "CHROMIUM="+chromiumPath)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("widget in the browser: %v\n%s", err, out)
		}
		lines := bytes.Split(bytes.TrimSpace(out), []byte("\n"))
		var res struct {
			ConversationID string `json:"conversation_id"`
		}
		if err := json.Unmarshal(lines[len(lines)-1], &res); err != nil || res.ConversationID == "" {
			t.Fatalf("script output: %s", out)
		}
		ex := e.waitExport(res.ConversationID, store.ChatExported)
		v := e.get(res.ConversationID)
		if v.Source != "widget" || len(v.Messages) != 2 || v.Messages[0].Text != "Do you have <b>evening</b> classes?" || v.Messages[1].Name != "Grace" ||
			ex.ContactAction != "created" || len(e.contacts("ada@example.org")) != 1 {
			t.Errorf("conversation %+v, export %+v", v.ChatConversation, ex)
		}
	})
}
