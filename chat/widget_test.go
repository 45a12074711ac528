package chat_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	sb "github.com/switchboard/switchboard"
	"github.com/switchboard/switchboard/chat"
	"github.com/switchboard/switchboard/hub/hubtest"
	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/store/storetest"
)

// visitor calls the public widget API.
func (e *env) visitor(method, path, token, visitorToken string, body any) *hubtest.Response {
	e.T.Helper()
	h := []string{"X-Chat-Token", token}
	if visitorToken != "" {
		h = append(h, "X-Visitor-Token", visitorToken)
	}
	return e.Do(method, "/chat/v1/conversations"+path, "", body, h...)
}

func TestWidget(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		_, staffKey := e.addUser("staff@example.org", "", sb.PermLimitedAccess)
		if r := e.Do("POST", "/v1/chat/widget-token", staffKey, nil); r.Status != http.StatusForbidden {
			t.Errorf("widget token as Limited Access: %d", r.Status)
		}
		var tok chat.WidgetToken
		e.call("POST", "/v1/chat/widget-token", nil, http.StatusCreated).JSON(t, &tok)
		if !strings.HasPrefix(tok.Token, "cw_") || !strings.Contains(tok.Embed, `data-token="`+tok.Token+`"`) {
			t.Fatalf("widget token %+v", tok)
		}
		var sv chat.SettingsView
		e.call("GET", "/v1/chat/export-settings", nil, http.StatusOK).JSON(t, &sv)
		if !sv.WidgetEnabled {
			t.Error("settings do not show the widget as enabled")
		}
		e.settings(map[string]any{"required_fields": []string{"email"}})

		// The script, the demo page, the CORS preflight.
		js := e.Do("GET", "/chat/widget.js", "", nil)
		if js.Status != http.StatusOK || !strings.HasPrefix(js.Header.Get("Content-Type"), "text/javascript") || !strings.Contains(string(js.Body), "X-Visitor-Token") {
			t.Errorf("widget.js: %d %s", js.Status, js.Header.Get("Content-Type"))
		}
		demo := e.Do("GET", "/chat/demo?token="+tok.Token, "", nil)
		if demo.Status != http.StatusOK || !strings.Contains(string(demo.Body), `<script src="/chat/widget.js" data-token="`+tok.Token+`" defer></script>`) {
			t.Errorf("demo page: %d %s", demo.Status, demo.Body)
		}
		evil := e.Do("GET", `/chat/demo?token=%22%3E%3Cscript%3Ealert(1)%3C/script%3E`, "", nil)
		if strings.Contains(string(evil.Body), "alert(1)") || strings.Contains(string(evil.Body), "data-token") {
			t.Errorf("the demo page echoes a bad token: %s", evil.Body)
		}
		pre := e.Do("OPTIONS", "/chat/v1/conversations/x/messages", "", nil)
		if pre.Status != http.StatusNoContent || pre.Header.Get("Access-Control-Allow-Origin") != "*" || !strings.Contains(pre.Header.Get("Access-Control-Allow-Headers"), "X-Visitor-Token") {
			t.Errorf("preflight: %d %v", pre.Status, pre.Header)
		}

		// A visitor starts, writes; an agent answers through the API.
		if r := e.visitor("POST", "", "cw_wrong", "", map[string]any{}); r.Status != http.StatusUnauthorized {
			t.Errorf("start with a bad token: %d", r.Status)
		}
		var sess chat.WidgetSession
		r := e.visitor("POST", "", tok.Token, "", map[string]any{"fields": map[string]string{"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.org"}})
		if r.Status != http.StatusCreated || r.Header.Get("Access-Control-Allow-Origin") != "*" {
			t.Fatalf("start: %d %s", r.Status, r.Body)
		}
		r.JSON(t, &sess)
		id, vt := sess.ConversationID, sess.VisitorToken
		if r := e.visitor("POST", "/"+id+"/messages", tok.Token, vt, map[string]any{"text": "Do you have evening classes?"}); r.Status != http.StatusCreated {
			t.Fatalf("visitor message: %d %s", r.Status, r.Body)
		}
		e.call("POST", "/v1/chat/conversations/"+id+"/messages", map[string]any{"speaker": "agent", "name": "Grace", "text": "Yes, on Tuesdays."}, http.StatusCreated)
		var poll chat.WidgetMessages
		e.visitor("GET", "/"+id+"/messages?after=1", tok.Token, vt, nil).JSON(t, &poll)
		if poll.State != "open" || len(poll.Messages) != 1 || poll.Messages[0].Seq != 2 || poll.Messages[0].Text != "Yes, on Tuesdays." || poll.Messages[0].Name != "Grace" {
			t.Errorf("poll: %+v", poll)
		}
		// Another visitor's token, or none, sees nothing.
		for _, bad := range []string{"", "cv_other"} {
			if r := e.visitor("GET", "/"+id+"/messages", tok.Token, bad, nil); r.Status != http.StatusNotFound {
				t.Errorf("poll with visitor token %q: %d", bad, r.Status)
			}
		}
		if r := e.visitor("PATCH", "/"+id, tok.Token, vt, map[string]any{"fields": map[string]string{"Student Type": "Future Student"}}); r.Status != http.StatusNoContent {
			t.Errorf("visitor fields: %d %s", r.Status, r.Body)
		}
		v := e.get(id)
		if v.Source != "widget" || v.Fields["Student Type"] != "Future Student" || len(v.Messages) != 2 || v.Messages[0].Speaker != "visitor" {
			t.Errorf("conversation as the API shows it: %+v %v", v.ChatConversation, v.Fields)
		}

		// The visitor ends the chat: it is exported like any other.
		if r := e.visitor("POST", "/"+id+"/close", tok.Token, vt, nil); r.Status != http.StatusOK {
			t.Fatalf("close: %d %s", r.Status, r.Body)
		}
		ex := e.waitExport(id, store.ChatExported)
		if ex.RequestedBy != "widget" || len(e.contacts("ada@example.org")) != 1 {
			t.Errorf("export of a widget conversation: %+v", ex)
		}
		if r := e.visitor("POST", "/"+id+"/messages", tok.Token, vt, map[string]any{"text": "one more"}); r.Status != http.StatusConflict {
			t.Errorf("message after close: %d", r.Status)
		}
		e.visitor("GET", "/"+id+"/messages", tok.Token, vt, nil).JSON(t, &poll)
		if poll.State != store.ChatExported {
			t.Errorf("state after close %q", poll.State)
		}

		// A new token retires the old one; deleting it turns the widget off.
		var tok2 chat.WidgetToken
		e.call("POST", "/v1/chat/widget-token", nil, http.StatusCreated).JSON(t, &tok2)
		if r := e.visitor("POST", "", tok.Token, "", map[string]any{}); r.Status != http.StatusUnauthorized {
			t.Errorf("old token after rotation: %d", r.Status)
		}
		e.call("DELETE", "/v1/chat/widget-token", nil, http.StatusNoContent)
		if r := e.visitor("POST", "", tok2.Token, "", map[string]any{}); r.Status != http.StatusUnauthorized {
			t.Errorf("token after the widget was turned off: %d", r.Status)
		}
	})
}

func TestWidgetRateLimit(t *testing.T) {
	storetest.Each(t, func(t *testing.T, d store.Dialect) {
		e := newEnv(t, d)
		var tok chat.WidgetToken
		e.call("POST", "/v1/chat/widget-token", nil, http.StatusCreated).JSON(t, &tok)
		limiter := chat.NewRateLimiter(1, 3)
		at := time.Date(2025, 3, 14, 9, 0, 0, 0, time.UTC)
		limiter.Now = func() time.Time { return at }
		e.svc.Widget = limiter
		for i := range 3 {
			if r := e.visitor("POST", "", tok.Token, "", map[string]any{}); r.Status != http.StatusCreated {
				t.Fatalf("request %d: %d %s", i+1, r.Status, r.Body)
			}
		}
		r := e.visitor("POST", "", tok.Token, "", map[string]any{})
		if r.Status != http.StatusTooManyRequests || r.Header.Get("Retry-After") != "1" || r.ErrorCode() != "rate_limited" {
			t.Errorf("fourth request at once: %d %s", r.Status, r.Body)
		}
	})
}
