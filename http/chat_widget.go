package http

import (
	"bytes"
	"net"
	"net/http"
	"time"

	"github.com/switchboard/switchboard/chat"
)

// The chat widget's routes: the token admin (API key), the script and demo
// page, and the public API the script calls with the org's widget token
// (X-Chat-Token) and the visitor's token (X-Visitor-Token). The public API
// allows any origin (it uses no cookies) and is rate-limited per token and
// client address.

func init() { routeSets = append(routeSets, (*Server).chatWidgetRoutes) }

// MaxWidgetBodyBytes bounds the widget API's request bodies.
const MaxWidgetBodyBytes = 16 << 10

func (s *Server) chatWidgetRoutes() []Route {
	return []Route{
		{"POST", "/v1/chat/widget-token", "key", s.chatRotateWidget},
		{"DELETE", "/v1/chat/widget-token", "key", s.chatDisableWidget},
		{"GET", "/chat/widget.js", "", s.chatWidgetJS},
		{"GET", "/chat/demo", "", s.chatDemo},
		{"POST", "/chat/v1/conversations", "", s.widget(s.widgetStart)},
		{"GET", "/chat/v1/conversations/{id}/messages", "", s.widget(s.widgetPoll)},
		{"POST", "/chat/v1/conversations/{id}/messages", "", s.widget(s.widgetSay)},
		{"PATCH", "/chat/v1/conversations/{id}", "", s.widget(s.widgetFields)},
		{"POST", "/chat/v1/conversations/{id}/close", "", s.widget(s.widgetClose)},
		{"OPTIONS", "/chat/v1/{path...}", "", s.widgetPreflight},
	}
}

func (s *Server) chatRotateWidget(w http.ResponseWriter, r *http.Request) {
	c, ok := s.chatService(w)
	if !ok {
		return
	}
	t, err := c.RotateWidgetToken(r.Context(), UserFrom(r))
	if err != nil {
		WriteError(w, err)
		return
	}
	WriteJSON(w, http.StatusCreated, t)
}

func (s *Server) chatDisableWidget(w http.ResponseWriter, r *http.Request) {
	c, ok := s.chatService(w)
	if !ok {
		return
	}
	if err := c.DisableWidget(r.Context(), UserFrom(r)); err != nil {
		WriteError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) chatWidgetJS(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.chatService(w); !ok {
		return
	}
	w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.Header().Set("Access-Control-Allow-Origin", "*")
	http.ServeContent(w, r, "widget.js", chatAssetsTime, bytes.NewReader(chat.WidgetJS()))
}

func (s *Server) chatDemo(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.chatService(w); !ok {
		return
	}
	var b bytes.Buffer
	if err := chat.RenderDemo(&b, r.URL.Query().Get("token")); err != nil {
		WriteError(w, err)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'; connect-src 'self'")
	_, _ = w.Write(b.Bytes())
}

func setCORS(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Access-Control-Allow-Methods", "GET, POST, PATCH, OPTIONS")
	h.Set("Access-Control-Allow-Headers", "Content-Type, X-Chat-Token, X-Visitor-Token")
	h.Set("Access-Control-Max-Age", "600")
}

func (s *Server) widgetPreflight(w http.ResponseWriter, r *http.Request) {
	setCORS(w)
	w.WriteHeader(http.StatusNoContent)
}

// widgetHandler serves a widget API call with the chat service and the
// widget token.
type widgetHandler func(w http.ResponseWriter, r *http.Request, c *chat.Service, token string)

// widget wraps a widget API handler: CORS headers, the chat service and
// the rate limit (429 with Retry-After).
func (s *Server) widget(h widgetHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		setCORS(w)
		c, ok := s.chatService(w)
		if !ok {
			return
		}
		token := r.Header.Get("X-Chat-Token")
		client, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			client = r.RemoteAddr
		}
		if !c.AllowWidget(token, client) {
			w.Header().Set("Retry-After", "1")
			var body ErrorBody
			body.Error.Code = "rate_limited"
			body.Error.Message = "too many chat requests; wait a moment"
			WriteJSON(w, http.StatusTooManyRequests, body)
			return
		}
		h(w, r, c, token)
	}
}

func (s *Server) widgetStart(w http.ResponseWriter, r *http.Request, c *chat.Service, token string) {
	var req struct {
		Fields map[string]string `json:"fields"`
	}
	if err := Decode(w, r, MaxWidgetBodyBytes, &req); err != nil {
		WriteError(w, err)
		return
	}
	sess, err := c.WidgetStart(r.Context(), token, req.Fields)
	if err != nil {
		WriteError(w, err)
		return
	}
	WriteJSON(w, http.StatusCreated, sess)
}

func (s *Server) widgetPoll(w http.ResponseWriter, r *http.Request, c *chat.Service, token string) {
	after, err := QueryInt(r, "after", 0)
	if err != nil {
		WriteError(w, err)
		return
	}
	out, err := c.WidgetPoll(r.Context(), token, r.PathValue("id"), r.Header.Get("X-Visitor-Token"), after)
	if err != nil {
		WriteError(w, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	WriteJSON(w, http.StatusOK, out)
}

func (s *Server) widgetSay(w http.ResponseWriter, r *http.Request, c *chat.Service, token string) {
	var req struct {
		Text string `json:"text"`
	}
	if err := Decode(w, r, MaxWidgetBodyBytes, &req); err != nil {
		WriteError(w, err)
		return
	}
	m, err := c.WidgetSay(r.Context(), token, r.PathValue("id"), r.Header.Get("X-Visitor-Token"), req.Text)
	if err != nil {
		WriteError(w, err)
		return
	}
	WriteJSON(w, http.StatusCreated, map[string]any{"seq": m.Seq, "at": m.At})
}

func (s *Server) widgetFields(w http.ResponseWriter, r *http.Request, c *chat.Service, token string) {
	var req struct {
		Fields map[string]string `json:"fields"`
	}
	if err := Decode(w, r, MaxWidgetBodyBytes, &req); err != nil {
		WriteError(w, err)
		return
	}
	if err := c.WidgetFields(r.Context(), token, r.PathValue("id"), r.Header.Get("X-Visitor-Token"), req.Fields); err != nil {
		WriteError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) widgetClose(w http.ResponseWriter, r *http.Request, c *chat.Service, token string) {
	if err := c.WidgetClose(r.Context(), token, r.PathValue("id"), r.Header.Get("X-Visitor-Token")); err != nil {
		WriteError(w, err)
		return
	}
	WriteJSON(w, http.StatusOK, map[string]string{"state": "closed"})
}

// chatAssetsTime is the Last-Modified of the embedded widget script.
var chatAssetsTime = time.Now()
