package http

import (
	"net/http"

	sb "github.com/switchboard/switchboard"
	"github.com/switchboard/switchboard/form"
	"github.com/switchboard/switchboard/link"
	"github.com/switchboard/switchboard/template"
)

// Content is the set of services that shape message content: SMS templates,
// tracked links and SMS forms. Each may be nil; its routes then answer
// "unavailable".
type Content struct {
	Templates *template.Service
	Links     *link.Service
	Forms     *form.Service
}

func (s *Server) templates() (*template.Service, error) {
	if s.Content == nil || s.Content.Templates == nil {
		return nil, sb.Errorf(sb.EUnavailable, "SMS templates are not enabled on this server")
	}
	return s.Content.Templates, nil
}

func (s *Server) links() (*link.Service, error) {
	if s.Content == nil || s.Content.Links == nil {
		return nil, sb.Errorf(sb.EUnavailable, "tracked links are not enabled on this server")
	}
	return s.Content.Links, nil
}

func (s *Server) forms() (*form.Service, error) {
	if s.Content == nil || s.Content.Forms == nil {
		return nil, sb.Errorf(sb.EUnavailable, "SMS forms are not enabled on this server")
	}
	return s.Content.Forms, nil
}

// writeResult writes v with status, or err.
func writeResult(w http.ResponseWriter, status int, v any, err error) {
	if err != nil {
		WriteError(w, err)
		return
	}
	WriteJSON(w, status, v)
}
