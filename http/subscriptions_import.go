package http

import (
	"net/http"
	"strings"

	sb "github.com/switchboard/switchboard"
	"github.com/switchboard/switchboard/hub"
)

func init() { routeSets = append(routeSets, (*Server).importRoutes) }

func (s *Server) importRoutes() []Route {
	return []Route{{"POST", "/v1/subscriptions/import", "key", s.importOptOuts}}
}

// importOptOuts migrates legacy opt-out flags: a CSV body, or JSON
// {"source": "crm"} to read the CRM records' global opt-out flags.
func (s *Server) importOptOuts(w http.ResponseWriter, r *http.Request) {
	var res *hub.ImportResult
	var err error
	switch ct := r.Header.Get("Content-Type"); {
	case strings.HasPrefix(ct, "text/csv"):
		body := http.MaxBytesReader(w, r.Body, MaxBulkBytes)
		res, err = s.Hub.ImportOptOutsCSV(r.Context(), UserFrom(r), body)
		var mbe *http.MaxBytesError
		if asMaxBytes(err, &mbe) {
			err = sb.Errorf(sb.ETooLarge, "CSV is larger than %d bytes", MaxBulkBytes)
		}
	default:
		var req struct {
			Source string `json:"source"`
		}
		if err := Decode(w, r, MaxBodyBytes, &req); err != nil {
			WriteError(w, err)
			return
		}
		if req.Source != "crm" {
			WriteError(w, sb.FieldError("source", `source must be "crm" (or send a text/csv body)`))
			return
		}
		res, err = s.Hub.ImportOptOutsFromCRM(r.Context(), UserFrom(r))
	}
	if err != nil {
		WriteError(w, err)
		return
	}
	WriteJSON(w, http.StatusOK, res)
}
