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
	"github.com/switchboard/switchboard/tools/peers"
)

// browserPeers returns the repo root and node, or skips the test when
// Node, playwright-core or Chromium is missing (fails under
// SWITCHBOARD_REQUIRE_PEERS=1).
func browserPeers(t *testing.T) (root, node string) { return peers.Browser(t) }

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
			"NODE_TOOLS="+filepath.Join(root, "tools", "node"), "CHROMIUM="+peers.Chromium)
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
