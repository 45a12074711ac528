package hub

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/riverqueue/river"

	sb "github.com/switchboard/switchboard"
	"github.com/switchboard/switchboard/crm/salesforce"
	"github.com/switchboard/switchboard/store"
)

// CRMConnection is the state of an org's CRM connection, as the setup
// assistant and the health banner show it.
type CRMConnection struct {
	CRM           string         `json:"crm"`
	Connected     bool           `json:"connected"`
	Offline       bool           `json:"offline"`
	OfflineReason string         `json:"offline_reason,omitempty"`
	Flow          string         `json:"flow,omitempty"`
	Username      string         `json:"username,omitempty"`
	InstanceURL   string         `json:"instance_url,omitempty"`
	AuthorizedAt  time.Time      `json:"authorized_at,omitzero"`
	Health        *HealthSummary `json:"health,omitempty"`
	APIUsed       int            `json:"api_used"`
	APIMax        int            `json:"api_max"`
	// Pending is how many message changes wait to be written (held while
	// the connection is offline).
	Pending int `json:"pending"`
	// SalesforceAvailable is false when the service has no connected app
	// configured (SALESFORCE_CLIENT_ID).
	SalesforceAvailable bool `json:"salesforce_available"`
}

// HealthSummary is the latest health check.
type HealthSummary struct {
	OK        bool         `json:"ok"`
	CheckedAt time.Time    `json:"checked_at"`
	Items     []HealthItem `json:"items"`
}

// HealthItem is one line of a health check.
type HealthItem struct {
	Name    string `json:"name"`
	OK      bool   `json:"ok"`
	Message string `json:"message"`
}

// CRMConnection returns the org's CRM connection state.
func (h *Hub) CRMConnection(ctx context.Context, user *sb.User) (*CRMConnection, error) {
	org, err := h.DB.Org(ctx, user.OrgID)
	if err != nil {
		return nil, err
	}
	out := &CRMConnection{CRM: org.Settings.CRM, SalesforceAvailable: h.Salesforce != nil && h.SalesforceOAuth}
	if out.Pending, err = h.DB.CRMPendingCount(ctx, org.ID); err != nil {
		return nil, err
	}
	if org.Settings.CRM == sb.CRMBuiltin {
		out.Connected = true
		return out, nil
	}
	if h.Salesforce == nil {
		out.Offline, out.OfflineReason = true, "Salesforce is selected but the service has no connected app configured"
		return out, nil
	}
	conn, err := SalesforceStore{h.DB}.LoadConnection(ctx, org.ID)
	switch {
	case sb.IsCode(err, sb.ENotFound):
		out.Offline, out.OfflineReason = true, "Salesforce has not been authorized yet"
	case err != nil:
		return nil, err
	default:
		out.Connected = !conn.Offline
		out.Offline, out.OfflineReason = conn.Offline, conn.OfflineReason
		out.Flow, out.Username, out.InstanceURL, out.AuthorizedAt = conn.Flow, conn.Username, conn.InstanceURL, conn.AuthorizedAt
	}
	out.APIUsed, out.APIMax = h.Salesforce.Usage(org.ID)
	checks, err := h.DB.HealthChecks(ctx, org.ID, 1)
	if err != nil {
		return nil, err
	}
	if len(checks) == 1 {
		var r salesforce.HealthReport
		if json.Unmarshal(checks[0].Report, &r) == nil {
			out.Health = summary(&r)
		}
	}
	return out, nil
}

func summary(r *salesforce.HealthReport) *HealthSummary {
	s := &HealthSummary{OK: r.OK, CheckedAt: r.Time}
	for _, it := range r.Items {
		s.Items = append(s.Items, HealthItem{Name: it.Name, OK: it.OK, Message: it.Message})
	}
	return s
}

type oauthPayload struct {
	Verifier string `json:"v"`
	ReturnTo string `json:"r"`
}

// StartSalesforceAuthorization begins the OAuth web-server flow with PKCE
// for the user's org (System Admin): it returns the Salesforce authorize URL
// to send the browser to. returnTo is a local path the callback ends at.
func (h *Hub) StartSalesforceAuthorization(ctx context.Context, user *sb.User, returnTo string) (string, error) {
	if err := user.Require(sb.PermSystemAdmin); err != nil {
		return "", err
	}
	if h.Salesforce == nil || !h.SalesforceOAuth {
		return "", sb.Errorf(sb.EUnavailable, "Salesforce is not configured on this service (set SALESFORCE_CLIENT_ID and SALESFORCE_CLIENT_SECRET)")
	}
	if returnTo == "" || !strings.HasPrefix(returnTo, "/") || strings.HasPrefix(returnTo, "//") {
		returnTo = "/ui/settings"
	}
	state, verifier := salesforce.NewState(), salesforce.NewCodeVerifier()
	b, _ := json.Marshal(oauthPayload{Verifier: verifier, ReturnTo: returnTo})
	if err := h.DB.SaveOAuthState(ctx, state, user.OrgID, user.ID, b, 15*time.Minute); err != nil {
		return "", err
	}
	return h.Salesforce.AuthCodeURL(state, verifier), nil
}

// CompleteSalesforceAuthorization finishes the flow at the callback: it
// exchanges the code, stores the tokens sealed, makes Salesforce the org's
// CRM with the authorizing user as its integration user (the connection uses
// the user who authorized most recently), and lets held write-backs flow.
func (h *Hub) CompleteSalesforceAuthorization(ctx context.Context, state, code string) (returnTo string, err error) {
	if h.Salesforce == nil {
		return "", sb.Errorf(sb.EUnavailable, "Salesforce is not configured on this service")
	}
	if state == "" || code == "" {
		return "", sb.Errorf(sb.EInvalid, "the callback lacks state or code")
	}
	orgID, userID, payload, err := h.DB.TakeOAuthState(ctx, state)
	if err != nil {
		return "", err
	}
	var p oauthPayload
	if err := json.Unmarshal(payload, &p); err != nil {
		return "", err
	}
	conn, err := h.Salesforce.Exchange(ctx, orgID, code, p.Verifier)
	if err != nil {
		return "", err
	}
	if err := h.afterConnect(ctx, orgID, userID, conn); err != nil {
		return "", err
	}
	return p.ReturnTo, nil
}

// ConnectSalesforceJWT connects the org with the JWT bearer flow (instance
// URL, client id, API username, private key).
func (h *Hub) ConnectSalesforceJWT(ctx context.Context, user *sb.User, s salesforce.JWTSettings) (*CRMConnection, error) {
	if err := user.Require(sb.PermSystemAdmin); err != nil {
		return nil, err
	}
	if h.Salesforce == nil {
		return nil, sb.Errorf(sb.EUnavailable, "Salesforce is not configured on this service")
	}
	conn, err := h.Salesforce.ConnectJWT(ctx, user.OrgID, s)
	if err != nil {
		return nil, err
	}
	if err := h.afterConnect(ctx, user.OrgID, user.ID, conn); err != nil {
		return nil, err
	}
	return h.CRMConnection(ctx, user)
}

func (h *Hub) afterConnect(ctx context.Context, orgID, userID string, conn *salesforce.Connection) error {
	org, err := h.DB.Org(ctx, orgID)
	if err != nil {
		return err
	}
	u, err := h.DB.User(ctx, orgID, userID)
	if err != nil {
		return err
	}
	err = h.DB.Tx(ctx, func(tx *store.Tx) error {
		if u.CRMUserID == "" && conn.UserID != "" {
			u.CRMUserID = conn.UserID
			if err := tx.UpdateUser(ctx, u); err != nil {
				return err
			}
		}
		s := org.Settings
		s.CRM, s.IntegrationUserID = sb.CRMSalesforce, u.ID
		return tx.UpdateOrgSettings(ctx, orgID, s)
	})
	if err != nil {
		return err
	}
	h.forgetOrg(orgID)
	h.Log.Info("Salesforce authorized", "org", orgID, "sf_user", conn.UserID)
	if org.Settings.ConnectedAppForIncoming {
		// Enabled before this authorization: the production gateways are
		// registered now that the instance is known.
		if org, err = h.DB.Org(ctx, orgID); err != nil {
			return err
		}
		regs, err := h.registerOrgGateways(ctx, org)
		if err != nil {
			return err
		}
		for _, r := range regs {
			if !r.Registered {
				h.Log.Warn("gateway webhooks not registered after authorizing Salesforce", "org", orgID, "gateway", r.GatewayID, "err", r.Error, "note", r.Note)
			}
		}
	}
	// Held write-backs flow again.
	return h.DB.TouchCRMJob(ctx, orgID)
}

// RevokeSalesforce revokes the org's Salesforce authorization (System
// Admin); write-backs are held until someone authorizes again.
func (h *Hub) RevokeSalesforce(ctx context.Context, user *sb.User) error {
	if err := user.Require(sb.PermSystemAdmin); err != nil {
		return err
	}
	if h.Salesforce == nil {
		return sb.Errorf(sb.EUnavailable, "Salesforce is not configured on this service")
	}
	return h.Salesforce.Revoke(ctx, user.OrgID)
}

// CheckCRM runs the org's CRM health check now (System Admin) and returns
// the connection state with its result.
func (h *Hub) CheckCRM(ctx context.Context, user *sb.User) (*CRMConnection, error) {
	if err := user.Require(sb.PermSystemAdmin); err != nil {
		return nil, err
	}
	org, err := h.DB.Org(ctx, user.OrgID)
	if err != nil {
		return nil, err
	}
	if _, err := h.checkOrg(ctx, org); err != nil {
		return nil, err
	}
	return h.CRMConnection(ctx, user)
}

// checkOrg runs one org's health check, stores it, and alerts the org's
// admins when its outcome changes (see alertEvent).
func (h *Hub) checkOrg(ctx context.Context, org *sb.Org) (*salesforce.HealthReport, error) {
	if org.Settings.CRM != sb.CRMSalesforce || h.Salesforce == nil {
		return nil, nil
	}
	// One check of an org at a time in this process (on demand and
	// periodic): an overlapping slower one would store an older outcome
	// after a newer one.
	mu, _ := h.checkMu.LoadOrStore(org.ID, &sync.Mutex{})
	mu.(*sync.Mutex).Lock()
	defer mu.(*sync.Mutex).Unlock()
	prev, err := h.lastHealth(ctx, org.ID)
	if err != nil {
		return nil, err
	}
	r := h.Salesforce.Check(ctx, org)
	if r == nil {
		return nil, nil
	}
	// Checks may run at once (on demand, the periodic job, other
	// processes): the one that moves the stored alert state alerts.
	now := strings.Join(failingNames(r), ",")
	for {
		was, err := h.DB.HealthAlertState(ctx, org.ID)
		if err != nil || was == now {
			return r, err
		}
		claimed, err := h.DB.ClaimHealthAlert(ctx, org.ID, was, now)
		if err != nil {
			return r, err
		}
		if claimed {
			h.alert(ctx, org, alertEvent(now), prev, r)
			return r, nil
		}
	}
}

// lastHealth returns the org's latest stored health report, or nil.
func (h *Hub) lastHealth(ctx context.Context, orgID string) (*salesforce.HealthReport, error) {
	checks, err := h.DB.HealthChecks(ctx, orgID, 1)
	if err != nil || len(checks) == 0 {
		return nil, err
	}
	var r salesforce.HealthReport
	if err := json.Unmarshal(checks[0].Report, &r); err != nil {
		return nil, nil // an unreadable old report counts as none
	}
	return &r, nil
}

// Alert events.
const (
	EventHealthFailed    = "crm.health_check_failed"
	EventHealthRecovered = "crm.health_check_recovered"
)

func failingNames(r *salesforce.HealthReport) []string {
	if r == nil {
		return nil
	}
	var out []string
	for _, it := range r.Failing() {
		out = append(out, it.Name)
	}
	if !r.OK && len(out) == 0 {
		out = []string{"connection"}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// alertEvent names the news a change of the failing items (as failingNames
// joins them) is to the admins: the check started failing, or fails on other
// items than before, or it recovered. A check that fails like the one before
// changes nothing and alerts nobody again.
func alertEvent(failing string) string {
	if failing == "" {
		return EventHealthRecovered
	}
	return EventHealthFailed
}

// alert tells an org's admins their CRM connection's health changed: a log
// line, the UI banner (from the stored report), a POST of the report to the
// org's alert webhook and an email to its alert address, when set.
func (h *Hub) alert(ctx context.Context, org *sb.Org, event string, prev, r *salesforce.HealthReport) {
	var failing []string
	for _, it := range r.Failing() {
		failing = append(failing, it.Name+": "+it.Message)
	}
	if event == EventHealthRecovered {
		h.Log.Info("CRM health check passes again", "org", org.ID)
	} else {
		h.Log.Warn("CRM health check failed", "org", org.ID, "failing", strings.Join(failing, "; "))
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if org.Settings.AlertWebhookURL != "" {
		h.postAlert(ctx, org, event, r)
	}
	if org.Settings.AlertEmail != "" {
		if h.Mailer == nil {
			h.Log.Warn("alert email not sent: the service has no SMTP server (SWITCHBOARD_SMTP_URL)", "org", org.ID)
			return
		}
		subject, body := alertEmail(org, event, prev, r, failing)
		if err := h.Mailer.Send(ctx, []string{org.Settings.AlertEmail}, subject, body); err != nil {
			h.Log.Warn("alert email failed", "org", org.ID, "err", err)
		}
	}
}

func (h *Hub) postAlert(ctx context.Context, org *sb.Org, event string, r *salesforce.HealthReport) {
	body, _ := json.Marshal(map[string]any{"event": event, "org_id": org.ID, "org_name": org.Name, "report": r})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, org.Settings.AlertWebhookURL, bytes.NewReader(body))
	if err != nil {
		return
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := h.HTTPClient.Do(req)
	if err != nil {
		h.Log.Warn("alert webhook failed", "org", org.ID, "err", err)
		return
	}
	resp.Body.Close()
}

// alertEmail writes an alert's subject and text.
func alertEmail(org *sb.Org, event string, prev, r *salesforce.HealthReport, failing []string) (string, string) {
	var b strings.Builder
	if event == EventHealthRecovered {
		fmt.Fprintf(&b, "The CRM health check of %s passes again (%s).\n", org.Name, r.Time.UTC().Format(time.RFC1123))
		if prev != nil {
			b.WriteString("\nIt was failing on:\n")
			for _, it := range prev.Failing() {
				fmt.Fprintf(&b, "- %s: %s\n", it.Name, it.Message)
			}
		}
		return "Switchboard: CRM health check of " + org.Name + " passes again", b.String()
	}
	fmt.Fprintf(&b, "The CRM health check of %s failed (%s):\n\n", org.Name, r.Time.UTC().Format(time.RFC1123))
	for _, f := range failing {
		fmt.Fprintf(&b, "- %s\n", f)
	}
	b.WriteString("\nIncoming messages and status updates may not reach the CRM until this is fixed. Open Settings in Switchboard to see the full check and run it again.\n")
	return "Switchboard: CRM health check of " + org.Name + " is failing", b.String()
}

// HealthCheckArgs is the periodic CRM health check of every org.
type HealthCheckArgs struct{}

// Kind implements river.JobArgs.
func (HealthCheckArgs) Kind() string { return "crm_health_check" }

// HealthCheckWorker runs the periodic health checks.
type HealthCheckWorker struct {
	river.WorkerDefaults[HealthCheckArgs]
	Hub *Hub
}

// Work checks every org connected to Salesforce.
func (w *HealthCheckWorker) Work(ctx context.Context, job *river.Job[HealthCheckArgs]) error {
	orgs, err := w.Hub.DB.Orgs(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, org := range orgs {
		if _, err := w.Hub.checkOrg(ctx, org); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// FindRecords looks CRM records up through the org's CRM (Inbox users and
// admins): by email, every record object with an email (Salesforce:
// contacts and leads by default), or by phone, every record object with a
// phone field. Exactly one of email and phone is given.
func (h *Hub) FindRecords(ctx context.Context, user *sb.User, email, phone string) ([]sb.CRMRecord, error) {
	if err := user.Require(sb.PermInbox); err != nil {
		return nil, err
	}
	if (email == "") == (phone == "") {
		return nil, sb.FieldError("email", "give either email or phone")
	}
	org, err := h.DB.Org(ctx, user.OrgID)
	if err != nil {
		return nil, err
	}
	crm, err := h.CRMs.For(ctx, org)
	if err != nil {
		return nil, sb.Wrap(err, sb.EUnavailable, "the org's CRM cannot be reached")
	}
	var recs []sb.CRMRecord
	if email != "" {
		recs, err = crm.FindByEmail(ctx, org, email)
	} else {
		var e164 string
		if e164, err = sb.ParsePhone(phone, org.Settings.DefaultRegion); err != nil {
			return nil, sb.FieldError("phone", "%s", sb.ErrorMessage(err))
		}
		recs, err = crm.FindByPhone(ctx, org, e164)
	}
	var ce *sb.CRMError
	if errors.As(err, &ce) {
		return nil, sb.Wrap(err, sb.EUnavailable, "the CRM lookup failed: %s", ce.Message)
	}
	if recs == nil {
		recs = []sb.CRMRecord{}
	}
	return recs, err
}

// SalesforceMapping returns the org's object and field mapping.
func (h *Hub) SalesforceMapping(ctx context.Context, user *sb.User) (salesforce.Mapping, error) {
	if err := user.Require(sb.PermSystemAdmin); err != nil {
		return salesforce.Mapping{}, err
	}
	conn, err := SalesforceStore{h.DB}.LoadConnection(ctx, user.OrgID)
	if sb.IsCode(err, sb.ENotFound) {
		return salesforce.DefaultMapping(), nil
	}
	if err != nil {
		return salesforce.Mapping{}, err
	}
	return conn.Mapping.WithDefaults(), nil
}

// SetSalesforceMapping changes the org's object and field mapping.
func (h *Hub) SetSalesforceMapping(ctx context.Context, user *sb.User, m salesforce.Mapping) error {
	if err := user.Require(sb.PermSystemAdmin); err != nil {
		return err
	}
	if h.Salesforce == nil {
		return sb.Errorf(sb.EUnavailable, "Salesforce is not configured on this service")
	}
	return h.Salesforce.SetMapping(ctx, user.OrgID, m)
}
