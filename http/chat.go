package http

import (
	"net/http"
	"time"

	sb "github.com/switchboard/switchboard"
	"github.com/switchboard/switchboard/chat"
	"github.com/switchboard/switchboard/store"
)

// The chat routes: conversations held by a chat bot (API key), their
// export to the CRM (settings, log, re-export), and the public widget.

func init() { routeSets = append(routeSets, (*Server).chatRoutes) }

func (s *Server) chatRoutes() []Route {
	return []Route{
		{"POST", "/v1/chat/conversations", "key", s.chatCreate},
		{"GET", "/v1/chat/conversations", "key", s.chatList},
		{"GET", "/v1/chat/conversations/{id}", "key", s.chatGet},
		{"PATCH", "/v1/chat/conversations/{id}", "key", s.chatUpdate},
		{"POST", "/v1/chat/conversations/{id}/messages", "key", s.chatAddMessage},
		{"POST", "/v1/chat/conversations/{id}/close", "key", s.chatClose},
		{"POST", "/v1/chat/conversations/{id}/re-export", "key", s.chatReexport},
		{"GET", "/v1/chat/exports", "key", s.chatExports},
		{"GET", "/v1/chat/export-settings", "key", s.chatGetSettings},
		{"PUT", "/v1/chat/export-settings", "key", s.chatPutSettings},
	}
}

// chatService returns the chat service, or answers 503 when the server
// has none.
func (s *Server) chatService(w http.ResponseWriter) (*chat.Service, bool) {
	if s.Chat == nil {
		WriteError(w, sb.Errorf(sb.EUnavailable, "chat is not enabled on this server"))
		return nil, false
	}
	return s.Chat, true
}

// queryTime reads an RFC 3339 query parameter.
func queryTime(r *http.Request, name string) (time.Time, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, sb.FieldError(name, "%s must be an RFC 3339 time", name)
	}
	return t, nil
}

// ChatConversationList is a page of conversations.
type ChatConversationList struct {
	Conversations []*store.ChatConversation `json:"conversations"`
	// Next is the "before" value for the following page, empty at the end.
	Next string `json:"next,omitempty"`
}

// ChatExportList is a page of the export log.
type ChatExportList struct {
	Exports []*store.ChatExport `json:"exports"`
	// Next is the "before" value for the following page, empty at the end.
	Next string `json:"next,omitempty"`
}

func (s *Server) chatCreate(w http.ResponseWriter, r *http.Request) {
	c, ok := s.chatService(w)
	if !ok {
		return
	}
	var req chat.CreateRequest
	if err := Decode(w, r, MaxBodyBytes, &req); err != nil {
		WriteError(w, err)
		return
	}
	v, err := c.CreateConversation(r.Context(), UserFrom(r), req)
	if err != nil {
		WriteError(w, err)
		return
	}
	WriteJSON(w, http.StatusCreated, v)
}

func (s *Server) chatList(w http.ResponseWriter, r *http.Request) {
	c, ok := s.chatService(w)
	if !ok {
		return
	}
	before, err := queryTime(r, "before")
	if err != nil {
		WriteError(w, err)
		return
	}
	limit, err := QueryInt(r, "limit", 50)
	if err != nil {
		WriteError(w, err)
		return
	}
	f := store.ChatFilter{State: r.URL.Query().Get("state"), UserID: r.URL.Query().Get("user_id"), Before: before, Limit: min(max(limit, 1), 500)}
	list, err := c.Conversations(r.Context(), UserFrom(r), f)
	if err != nil {
		WriteError(w, err)
		return
	}
	out := ChatConversationList{Conversations: list}
	if len(list) > 0 && len(list) == f.Limit {
		out.Next = list[len(list)-1].CreatedAt.Format(time.RFC3339Nano)
	}
	WriteJSON(w, http.StatusOK, out)
}

func (s *Server) chatGet(w http.ResponseWriter, r *http.Request) {
	c, ok := s.chatService(w)
	if !ok {
		return
	}
	v, err := c.Conversation(r.Context(), UserFrom(r), r.PathValue("id"))
	if err != nil {
		WriteError(w, err)
		return
	}
	WriteJSON(w, http.StatusOK, v)
}

func (s *Server) chatUpdate(w http.ResponseWriter, r *http.Request) {
	c, ok := s.chatService(w)
	if !ok {
		return
	}
	var req chat.UpdateRequest
	if err := Decode(w, r, MaxBodyBytes, &req); err != nil {
		WriteError(w, err)
		return
	}
	v, err := c.UpdateConversation(r.Context(), UserFrom(r), r.PathValue("id"), req)
	if err != nil {
		WriteError(w, err)
		return
	}
	WriteJSON(w, http.StatusOK, v)
}

func (s *Server) chatAddMessage(w http.ResponseWriter, r *http.Request) {
	c, ok := s.chatService(w)
	if !ok {
		return
	}
	var req chat.MessageRequest
	if err := Decode(w, r, MaxBodyBytes, &req); err != nil {
		WriteError(w, err)
		return
	}
	m, err := c.AddMessage(r.Context(), UserFrom(r), r.PathValue("id"), req)
	if err != nil {
		WriteError(w, err)
		return
	}
	WriteJSON(w, http.StatusCreated, m)
}

func (s *Server) chatClose(w http.ResponseWriter, r *http.Request) {
	c, ok := s.chatService(w)
	if !ok {
		return
	}
	v, err := c.Close(r.Context(), UserFrom(r), r.PathValue("id"))
	if err != nil {
		WriteError(w, err)
		return
	}
	WriteJSON(w, http.StatusOK, v)
}

func (s *Server) chatReexport(w http.ResponseWriter, r *http.Request) {
	c, ok := s.chatService(w)
	if !ok {
		return
	}
	e, err := c.Reexport(r.Context(), UserFrom(r), r.PathValue("id"))
	if err != nil {
		WriteError(w, err)
		return
	}
	WriteJSON(w, http.StatusAccepted, e)
}

func (s *Server) chatExports(w http.ResponseWriter, r *http.Request) {
	c, ok := s.chatService(w)
	if !ok {
		return
	}
	before, err := queryTime(r, "before")
	if err != nil {
		WriteError(w, err)
		return
	}
	limit, err := QueryInt(r, "limit", 50)
	if err != nil {
		WriteError(w, err)
		return
	}
	q := r.URL.Query()
	f := store.ChatExportFilter{Status: q.Get("status"), ConversationID: q.Get("conversation_id"), Before: before, Limit: min(max(limit, 1), 500)}
	list, err := c.Exports(r.Context(), UserFrom(r), f)
	if err != nil {
		WriteError(w, err)
		return
	}
	out := ChatExportList{Exports: list}
	if len(list) > 0 && len(list) == f.Limit {
		out.Next = list[len(list)-1].CreatedAt.Format(time.RFC3339Nano)
	}
	WriteJSON(w, http.StatusOK, out)
}

func (s *Server) chatGetSettings(w http.ResponseWriter, r *http.Request) {
	c, ok := s.chatService(w)
	if !ok {
		return
	}
	v, err := c.Settings(r.Context(), UserFrom(r))
	if err != nil {
		WriteError(w, err)
		return
	}
	WriteJSON(w, http.StatusOK, v)
}

func (s *Server) chatPutSettings(w http.ResponseWriter, r *http.Request) {
	c, ok := s.chatService(w)
	if !ok {
		return
	}
	if err := UserFrom(r).Require(sb.PermSystemAdmin); err != nil {
		WriteError(w, err)
		return
	}
	var req chat.SettingsRequest
	if err := Decode(w, r, MaxBodyBytes, &req); err != nil {
		WriteError(w, err)
		return
	}
	v, err := c.PutSettings(r.Context(), UserFrom(r), req)
	if err != nil {
		WriteError(w, err)
		return
	}
	WriteJSON(w, http.StatusOK, v)
}
