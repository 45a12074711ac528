package http

import (
	"net/http"

	sb "github.com/switchboard/switchboard"
	"github.com/switchboard/switchboard/template"
)

func init() { routeSets = append(routeSets, (*Server).templateRoutes) }

func (s *Server) templateRoutes() []Route {
	return []Route{
		{"GET", "/v1/templates", "key", s.listTemplates},
		{"POST", "/v1/templates", "key", s.createTemplate},
		{"POST", "/v1/templates/preview", "key", s.previewTemplate},
		{"GET", "/v1/templates/{id}", "key", s.getTemplate},
		{"PATCH", "/v1/templates/{id}", "key", s.updateTemplate},
		{"DELETE", "/v1/templates/{id}", "key", s.deleteTemplate},
		{"POST", "/v1/templates/{id}/preview", "key", s.previewSavedTemplate},
	}
}

func (s *Server) listTemplates(w http.ResponseWriter, r *http.Request) {
	svc, err := s.templates()
	if err != nil {
		WriteError(w, err)
		return
	}
	ts, err := svc.List(r.Context(), UserFrom(r))
	writeResult(w, http.StatusOK, map[string]any{"templates": ts}, err)
}

func (s *Server) createTemplate(w http.ResponseWriter, r *http.Request) {
	svc, err := s.templates()
	if err != nil {
		WriteError(w, err)
		return
	}
	var in template.Input
	if err := Decode(w, r, MaxBodyBytes, &in); err != nil {
		WriteError(w, err)
		return
	}
	t, err := svc.Create(r.Context(), UserFrom(r), in)
	writeResult(w, http.StatusCreated, t, err)
}

func (s *Server) getTemplate(w http.ResponseWriter, r *http.Request) {
	svc, err := s.templates()
	if err != nil {
		WriteError(w, err)
		return
	}
	t, err := svc.Get(r.Context(), UserFrom(r), r.PathValue("id"))
	writeResult(w, http.StatusOK, t, err)
}

func (s *Server) updateTemplate(w http.ResponseWriter, r *http.Request) {
	svc, err := s.templates()
	if err != nil {
		WriteError(w, err)
		return
	}
	var in template.Input
	if err := Decode(w, r, MaxBodyBytes, &in); err != nil {
		WriteError(w, err)
		return
	}
	t, err := svc.Update(r.Context(), UserFrom(r), r.PathValue("id"), in)
	writeResult(w, http.StatusOK, t, err)
}

func (s *Server) deleteTemplate(w http.ResponseWriter, r *http.Request) {
	svc, err := s.templates()
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

func (s *Server) previewTemplate(w http.ResponseWriter, r *http.Request) {
	s.preview(w, r, "")
}

func (s *Server) previewSavedTemplate(w http.ResponseWriter, r *http.Request) {
	s.preview(w, r, r.PathValue("id"))
}

func (s *Server) preview(w http.ResponseWriter, r *http.Request, id string) {
	svc, err := s.templates()
	if err != nil {
		WriteError(w, err)
		return
	}
	var req template.PreviewRequest
	if err := Decode(w, r, MaxBodyBytes, &req); err != nil {
		WriteError(w, err)
		return
	}
	if id != "" {
		if req.Body != "" {
			WriteError(w, sb.FieldError("body", "this previews a saved template: leave body out (or use POST /v1/templates/preview)"))
			return
		}
		req.TemplateID = id
	}
	p, err := svc.Preview(r.Context(), UserFrom(r), req)
	writeResult(w, http.StatusOK, p, err)
}
