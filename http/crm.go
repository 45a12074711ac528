package http

import (
	"encoding/json"
	"net/http"
	"net/url"

	sb "github.com/switchboard/switchboard"
	"github.com/switchboard/switchboard/crm/salesforce"
)

func init() { routeSets = append(routeSets, (*Server).crmRoutes) }

func (s *Server) crmRoutes() []Route {
	return []Route{
		{"GET", "/v1/crm", "key", s.crmConnection},
		{"POST", "/v1/crm/check", "key", s.crmCheck},
		{"GET", "/v1/crm/health", "key", s.crmHealth},
		{"GET", "/v1/crm/records", "key", s.crmRecords},
		{"POST", "/v1/crm/salesforce/authorize", "key", s.salesforceAuthorize},
		{"POST", "/v1/crm/salesforce/jwt", "key", s.salesforceJWT},
		{"POST", "/v1/crm/salesforce/revoke", "key", s.salesforceRevoke},
		{"GET", "/v1/crm/salesforce/mapping", "key", s.salesforceMapping},
		{"PUT", "/v1/crm/salesforce/mapping", "key", s.salesforceSetMapping},
		{"GET", "/oauth/salesforce/callback", "", s.salesforceCallback},
	}
}

func (s *Server) crmConnection(w http.ResponseWriter, r *http.Request) {
	c, err := s.Hub.CRMConnection(r.Context(), UserFrom(r))
	if err != nil {
		WriteError(w, err)
		return
	}
	WriteJSON(w, http.StatusOK, c)
}

func (s *Server) crmRecords(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	recs, err := s.Hub.FindRecords(r.Context(), UserFrom(r), q.Get("email"), q.Get("phone"))
	if err != nil {
		WriteError(w, err)
		return
	}
	WriteJSON(w, http.StatusOK, map[string]any{"records": recs})
}

func (s *Server) crmCheck(w http.ResponseWriter, r *http.Request) {
	c, err := s.Hub.CheckCRM(r.Context(), UserFrom(r))
	if err != nil {
		WriteError(w, err)
		return
	}
	WriteJSON(w, http.StatusOK, c)
}

func (s *Server) crmHealth(w http.ResponseWriter, r *http.Request) {
	u := UserFrom(r)
	if err := u.Require(sb.PermSystemAdmin); err != nil {
		WriteError(w, err)
		return
	}
	limit, err := QueryInt(r, "limit", 20)
	if err != nil {
		WriteError(w, err)
		return
	}
	checks, err := s.DB.HealthChecks(r.Context(), u.OrgID, min(max(limit, 1), 500))
	if err != nil {
		WriteError(w, err)
		return
	}
	type item struct {
		ID     string          `json:"id"`
		OK     bool            `json:"ok"`
		At     string          `json:"at"`
		Report json.RawMessage `json:"report"`
	}
	out := make([]item, len(checks))
	for i, c := range checks {
		out[i] = item{ID: c.ID, OK: c.OK, At: c.At.Format("2006-01-02T15:04:05Z07:00"), Report: c.Report}
	}
	WriteJSON(w, http.StatusOK, map[string]any{"checks": out})
}

func (s *Server) salesforceAuthorize(w http.ResponseWriter, r *http.Request) {
	var req struct {
		ReturnTo string `json:"return_to"`
	}
	if err := Decode(w, r, MaxBodyBytes, &req); err != nil {
		WriteError(w, err)
		return
	}
	u, err := s.Hub.StartSalesforceAuthorization(r.Context(), UserFrom(r), req.ReturnTo)
	if err != nil {
		WriteError(w, err)
		return
	}
	WriteJSON(w, http.StatusOK, map[string]string{"authorize_url": u})
}

func (s *Server) salesforceJWT(w http.ResponseWriter, r *http.Request) {
	var req salesforce.JWTSettings
	if err := Decode(w, r, MaxBodyBytes, &req); err != nil {
		WriteError(w, err)
		return
	}
	c, err := s.Hub.ConnectSalesforceJWT(r.Context(), UserFrom(r), req)
	if err != nil {
		WriteError(w, err)
		return
	}
	WriteJSON(w, http.StatusOK, c)
}

func (s *Server) salesforceRevoke(w http.ResponseWriter, r *http.Request) {
	if err := s.Hub.RevokeSalesforce(r.Context(), UserFrom(r)); err != nil {
		WriteError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) salesforceMapping(w http.ResponseWriter, r *http.Request) {
	m, err := s.Hub.SalesforceMapping(r.Context(), UserFrom(r))
	if err != nil {
		WriteError(w, err)
		return
	}
	WriteJSON(w, http.StatusOK, m)
}

func (s *Server) salesforceSetMapping(w http.ResponseWriter, r *http.Request) {
	var m salesforce.Mapping
	if err := Decode(w, r, MaxBodyBytes, &m); err != nil {
		WriteError(w, err)
		return
	}
	if err := s.Hub.SetSalesforceMapping(r.Context(), UserFrom(r), m); err != nil {
		WriteError(w, err)
		return
	}
	WriteJSON(w, http.StatusOK, m)
}

// salesforceCallback ends the OAuth web-server flow: Salesforce redirects
// the admin's browser here with code and state.
func (s *Server) salesforceCallback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if e := q.Get("error"); e != "" {
		WriteError(w, sb.Errorf(sb.EForbidden, "Salesforce did not authorize: %s", q.Get("error_description")))
		return
	}
	back, err := s.Hub.CompleteSalesforceAuthorization(r.Context(), q.Get("state"), q.Get("code"))
	if err != nil {
		WriteError(w, err)
		return
	}
	u, _ := url.Parse(back)
	v := u.Query()
	v.Set("salesforce", "connected")
	u.RawQuery = v.Encode()
	http.Redirect(w, r, u.String(), http.StatusSeeOther)
}
