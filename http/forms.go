package http

import (
	"net/http"

	"github.com/switchboard/switchboard/form"
)

func init() { routeSets = append(routeSets, (*Server).formRoutes) }

func (s *Server) formRoutes() []Route {
	return []Route{
		{"GET", "/v1/forms", "key", s.listForms},
		{"POST", "/v1/forms", "key", s.createForm},
		{"GET", "/v1/forms/{id}", "key", s.getForm},
		{"PUT", "/v1/forms/{id}", "key", s.updateForm},
		{"DELETE", "/v1/forms/{id}", "key", s.deleteForm},
		{"GET", "/v1/forms/{id}/sessions", "key", s.listFormSessions},
	}
}

func (s *Server) listForms(w http.ResponseWriter, r *http.Request) {
	svc, err := s.forms()
	if err != nil {
		WriteError(w, err)
		return
	}
	fs, err := svc.List(r.Context(), UserFrom(r))
	writeResult(w, http.StatusOK, map[string]any{"forms": fs}, err)
}

func (s *Server) createForm(w http.ResponseWriter, r *http.Request) {
	svc, err := s.forms()
	if err != nil {
		WriteError(w, err)
		return
	}
	var in form.Input
	if err := Decode(w, r, MaxBodyBytes, &in); err != nil {
		WriteError(w, err)
		return
	}
	f, err := svc.Create(r.Context(), UserFrom(r), in)
	writeResult(w, http.StatusCreated, f, err)
}

func (s *Server) getForm(w http.ResponseWriter, r *http.Request) {
	svc, err := s.forms()
	if err != nil {
		WriteError(w, err)
		return
	}
	f, err := svc.Get(r.Context(), UserFrom(r), r.PathValue("id"))
	writeResult(w, http.StatusOK, f, err)
}

func (s *Server) updateForm(w http.ResponseWriter, r *http.Request) {
	svc, err := s.forms()
	if err != nil {
		WriteError(w, err)
		return
	}
	var in form.Input
	if err := Decode(w, r, MaxBodyBytes, &in); err != nil {
		WriteError(w, err)
		return
	}
	f, err := svc.Update(r.Context(), UserFrom(r), r.PathValue("id"), in)
	writeResult(w, http.StatusOK, f, err)
}

func (s *Server) deleteForm(w http.ResponseWriter, r *http.Request) {
	svc, err := s.forms()
	if err != nil {
		WriteError(w, err)
		return
	}
	if err := svc.Delete(r.Context(), UserFrom(r), r.PathValue("id")); err != nil {
		WriteError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) listFormSessions(w http.ResponseWriter, r *http.Request) {
	svc, err := s.forms()
	if err != nil {
		WriteError(w, err)
		return
	}
	limit, err := QueryInt(r, "limit", 100)
	if err != nil {
		WriteError(w, err)
		return
	}
	ss, err := svc.Sessions(r.Context(), UserFrom(r), r.PathValue("id"), limit)
	writeResult(w, http.StatusOK, map[string]any{"sessions": ss}, err)
}
