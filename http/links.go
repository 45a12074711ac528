package http

import (
	"net/http"

	"github.com/switchboard/switchboard/link"
	"github.com/switchboard/switchboard/store"
)

func init() { routeSets = append(routeSets, (*Server).linkRoutes) }

func (s *Server) linkRoutes() []Route {
	return []Route{
		{"GET", "/l/{code}", "", s.redirectLink},
		{"GET", "/v1/link-settings", "key", s.getLinkSettings},
		{"PUT", "/v1/link-settings", "key", s.putLinkSettings},
		{"GET", "/v1/links", "key", s.listLinks},
	}
}

// redirectLink serves a short link (GET and HEAD).
func (s *Server) redirectLink(w http.ResponseWriter, r *http.Request) {
	svc, err := s.links()
	if err != nil {
		WriteError(w, err)
		return
	}
	svc.ServeHTTP(w, r)
}

func (s *Server) getLinkSettings(w http.ResponseWriter, r *http.Request) {
	svc, err := s.links()
	if err != nil {
		WriteError(w, err)
		return
	}
	set, err := svc.Settings(r.Context(), UserFrom(r))
	writeResult(w, http.StatusOK, set, err)
}

func (s *Server) putLinkSettings(w http.ResponseWriter, r *http.Request) {
	svc, err := s.links()
	if err != nil {
		WriteError(w, err)
		return
	}
	var in link.Settings
	if err := Decode(w, r, MaxBodyBytes, &in); err != nil {
		WriteError(w, err)
		return
	}
	set, err := svc.SaveSettings(r.Context(), UserFrom(r), in)
	writeResult(w, http.StatusOK, set, err)
}

func (s *Server) listLinks(w http.ResponseWriter, r *http.Request) {
	svc, err := s.links()
	if err != nil {
		WriteError(w, err)
		return
	}
	limit, err := QueryInt(r, "limit", 100)
	if err != nil {
		WriteError(w, err)
		return
	}
	q := r.URL.Query()
	ls, err := svc.List(r.Context(), UserFrom(r), store.LinkFilter{MessageID: q.Get("message_id"), BatchID: q.Get("batch_id"), Limit: limit})
	writeResult(w, http.StatusOK, map[string]any{"links": ls}, err)
}
