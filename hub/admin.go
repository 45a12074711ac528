package hub

import (
	"context"
	"errors"
	"maps"
	"strings"

	sb "github.com/switchboard/switchboard"
	"github.com/switchboard/switchboard/crm/salesforce"
	"github.com/switchboard/switchboard/store"
)

// GatewayRequest creates or edits a gateway. Rate nil means the default for
// the number type.
type GatewayRequest struct {
	Name        string            `json:"name"`
	Provider    string            `json:"provider"`
	Number      string            `json:"number"`
	NumberType  string            `json:"number_type"`
	Rate        *float64          `json:"rate"`
	RateUnit    string            `json:"rate_unit"`
	Keywords    *sb.Keywords      `json:"keywords"`
	HelpText    *string           `json:"help_text"`
	OptOutReply *string           `json:"opt_out_reply"`
	OptInReply  *string           `json:"opt_in_reply"`
	Sandbox     *bool             `json:"sandbox"`
	Active      *bool             `json:"active"`
	Config      map[string]string `json:"config"`
}

// GatewayView is a gateway as the API shows it: secrets are masked and the
// webhook URLs to set by hand (sandbox) are included.
type GatewayView struct {
	*sb.Gateway
	Webhooks sb.WebhookURLs `json:"webhooks"`
	// Registered is false when the webhook URLs must be set at the partner
	// by hand (sandbox gateways, or providers that cannot register them).
	Registered  bool   `json:"registered"`
	RegisterErr string `json:"register_error,omitempty"`
	// RegisterNote says why registration was not attempted for an org on
	// Salesforce (see Hub.autoRegister).
	RegisterNote string `json:"register_note,omitempty"`
}

// View returns the API form of a gateway with secrets masked.
func (h *Hub) View(gw *sb.Gateway) *GatewayView {
	cp := *gw
	cp.Config = maps.Clone(gw.Config)
	if p, err := h.Providers.Get(gw.Provider); err == nil {
		for _, f := range p.ConfigFields() {
			if f.Secret && cp.Config[f.Key] != "" {
				cp.Config[f.Key] = "********"
			}
		}
	}
	return &GatewayView{Gateway: &cp, Webhooks: h.WebhookURLs(gw)}
}

func (req GatewayRequest) apply(g *sb.Gateway, creating bool) {
	if req.Name != "" {
		g.Name = req.Name
	}
	if req.Number != "" {
		g.Number = req.Number
	}
	if req.NumberType != "" {
		g.NumberType = req.NumberType
	}
	if req.RateUnit != "" {
		g.RateUnit = req.RateUnit
	}
	if req.Keywords != nil {
		g.Keywords = *req.Keywords
	}
	if req.HelpText != nil {
		g.HelpText = *req.HelpText
	}
	if req.OptOutReply != nil {
		g.OptOutReply = *req.OptOutReply
	}
	if req.OptInReply != nil {
		g.OptInReply = *req.OptInReply
	}
	if req.Sandbox != nil {
		g.Sandbox = *req.Sandbox
	}
	if req.Active != nil {
		g.Active = *req.Active
	}
	if g.Config == nil {
		g.Config = map[string]string{}
	}
	for k, v := range req.Config {
		if v == "********" && !creating {
			continue // the masked value sent back unchanged
		}
		if v == "" {
			delete(g.Config, k)
			continue
		}
		g.Config[k] = v
	}
}

// CreateGateway adds a gateway to the user's org (System Admin only). For a
// non-sandbox gateway whose provider can, the partner is told the webhook
// URLs at once; when the partner refuses (wrong credentials, a number the
// account does not hold, the partner down) the gateway is not created and
// the error says why.
func (h *Hub) CreateGateway(ctx context.Context, user *sb.User, req GatewayRequest) (*GatewayView, error) {
	if err := user.Require(sb.PermSystemAdmin); err != nil {
		return nil, err
	}
	org, err := h.DB.Org(ctx, user.OrgID)
	if err != nil {
		return nil, err
	}
	p, err := h.Providers.Get(strings.ToLower(strings.TrimSpace(req.Provider)))
	if err != nil {
		return nil, &sb.Error{Code: sb.EInvalid, Field: "provider", Message: sb.ErrorMessage(err)}
	}
	g := &sb.Gateway{OrgID: org.ID, Provider: p.Name(), Active: true, HelpText: sb.DefaultHelpText, OptOutReply: sb.DefaultOptOutReply, OptInReply: sb.DefaultOptInReply}
	req.apply(g, true)
	if req.Rate != nil {
		g.Rate = *req.Rate
	} else {
		g.Rate = sb.DefaultRate(sb.NumberTypeFor(g.Provider, g.NumberType))
	}
	if err := g.Normalize(org.Settings.DefaultRegion); err != nil {
		return nil, err
	}
	if err := p.ValidateConfig(g); err != nil {
		return nil, err
	}
	if err := h.DB.Tx(ctx, func(tx *store.Tx) error { return tx.CreateGateway(ctx, g) }); err != nil {
		return nil, err
	}
	v := h.View(g)
	registered, note, err := h.registerWebhooks(ctx, org, p, g)
	if err != nil {
		// Not left half set up: a production gateway whose partner does not
		// call it back would accept sends and never hear replies.
		if derr := h.DB.Tx(ctx, func(tx *store.Tx) error { return tx.DeleteNewGateway(ctx, g.OrgID, g.ID) }); derr != nil {
			h.Log.Error("a gateway whose webhook registration failed could not be removed", "gateway", g.ID, "err", derr)
			v.RegisterErr = sb.ErrorMessage(err)
			return v, nil
		}
		return nil, notCreated(err)
	}
	v.Registered, v.RegisterNote = registered, note
	return v, nil
}

// notCreated explains a failed webhook registration of a new gateway, with
// the partner's reason and field, and how to go on.
func notCreated(err error) error {
	e := &sb.Error{Code: sb.ErrorCode(err), Err: err}
	var cause *sb.Error
	if errors.As(err, &cause) {
		e.Field = cause.Field
	}
	if e.Code == sb.ENotFound {
		// The number is not in the partner account: the request is at
		// fault, not a missing resource of ours.
		e.Code = sb.EInvalid
		if e.Field == "" {
			e.Field = "number"
		}
	}
	e.Message = "gateway not created: setting its webhook URLs at the provider failed: " + sb.ErrorMessage(err) +
		". Fix the settings and try again, or create it as a sandbox gateway and set the webhook URLs at the provider by hand"
	return e
}

// UpdateGateway edits a gateway (System Admin only).
func (h *Hub) UpdateGateway(ctx context.Context, user *sb.User, id string, req GatewayRequest) (*GatewayView, error) {
	if err := user.Require(sb.PermSystemAdmin); err != nil {
		return nil, err
	}
	org, err := h.DB.Org(ctx, user.OrgID)
	if err != nil {
		return nil, err
	}
	g, err := h.DB.Gateway(ctx, org.ID, id)
	if err != nil {
		return nil, err
	}
	if req.Provider != "" && req.Provider != g.Provider {
		return nil, sb.FieldError("provider", "a gateway's provider cannot be changed; create a new gateway")
	}
	p, err := h.Providers.Get(g.Provider)
	if err != nil {
		return nil, err
	}
	req.apply(g, false)
	if req.Rate != nil {
		g.Rate = *req.Rate
	}
	if err := g.Normalize(org.Settings.DefaultRegion); err != nil {
		return nil, err
	}
	if err := p.ValidateConfig(g); err != nil {
		return nil, err
	}
	if err := h.DB.Tx(ctx, func(tx *store.Tx) error { return tx.UpdateGateway(ctx, g) }); err != nil {
		return nil, err
	}
	h.forgetGateway(g.ID)
	v := h.View(g)
	registered, note, err := h.registerWebhooks(ctx, org, p, g)
	v.Registered, v.RegisterNote, v.RegisterErr = registered, note, sb.ErrorMessage(err)
	return v, nil
}

// autoRegister reports whether the webhook URLs of an org's production
// gateways are registered at the partner automatically, and if not, why.
// Orgs on the built-in CRM always are. An org on Salesforce is from the
// moment "Connected app for incoming messages" is enabled, and only when
// its Salesforce org is a production instance: sandbox instances set the
// URLs by hand, as the product's connected-app setup describes.
func (h *Hub) autoRegister(ctx context.Context, org *sb.Org) (bool, string) {
	if org.Settings.CRM != sb.CRMSalesforce {
		return true, ""
	}
	if !org.Settings.ConnectedAppForIncoming {
		return false, "webhook URLs of an org on Salesforce are registered at the partner once \"Connected app for incoming messages\" is enabled; until then set them by hand"
	}
	conn, err := SalesforceStore{h.DB}.LoadConnection(ctx, org.ID)
	switch {
	case sb.IsCode(err, sb.ENotFound):
		return false, "authorize Salesforce first: webhook URLs are registered automatically for Salesforce production instances only"
	case err != nil:
		return false, "the Salesforce connection could not be read: " + sb.ErrorMessage(err)
	case salesforce.IsSandboxInstance(conn.InstanceURL):
		return false, "the org is connected to a Salesforce sandbox: set the webhook URLs at the partner by hand (automatic registration is for production instances only)"
	}
	return true, ""
}

// registerWebhooks points the partner at Switchboard's URLs for a
// non-sandbox gateway when the org's setup allows it (autoRegister).
// registered is false with a nil error when the URLs are to be set by hand
// (sandbox, inactive, a provider that cannot register them, or the org's
// setup: note says why).
func (h *Hub) registerWebhooks(ctx context.Context, org *sb.Org, p sb.Provider, g *sb.Gateway) (registered bool, note string, err error) {
	reg, ok := p.(sb.WebhookRegistrar)
	if !ok || g.Sandbox || !g.Active {
		return false, "", nil
	}
	if ok, why := h.autoRegister(ctx, org); !ok {
		return false, why, nil
	}
	if err := reg.RegisterWebhooks(ctx, g, h.WebhookURLs(g)); err != nil {
		var later *sb.RegisterLater
		if errors.As(err, &later) {
			return false, later.Reason, nil
		}
		h.Log.Warn("webhook registration failed", "gateway", g.ID, "provider", g.Provider, "err", err)
		return false, "", err
	}
	return true, "", nil
}

// GatewayRegistration is the outcome of registering one gateway's webhook
// URLs at its partner.
type GatewayRegistration struct {
	GatewayID  string `json:"gateway_id"`
	Registered bool   `json:"registered"`
	Error      string `json:"error,omitempty"`
	Note       string `json:"note,omitempty"`
}

// registerOrgGateways (re)registers the webhook URLs of an org's active
// production gateways at their partners.
func (h *Hub) registerOrgGateways(ctx context.Context, org *sb.Org) ([]GatewayRegistration, error) {
	gws, err := h.DB.Gateways(ctx, org.ID)
	if err != nil {
		return nil, err
	}
	var out []GatewayRegistration
	for _, g := range gws {
		p, err := h.Providers.Get(g.Provider)
		if err != nil || g.Sandbox || !g.Active {
			continue
		}
		if _, ok := p.(sb.WebhookRegistrar); !ok {
			continue
		}
		r := GatewayRegistration{GatewayID: g.ID}
		r.Registered, r.Note, err = h.registerWebhooks(ctx, org, p, g)
		r.Error = sb.ErrorMessage(err)
		out = append(out, r)
	}
	return out, nil
}

// RegisterAll registers the webhooks of every active non-sandbox gateway
// whose org's setup allows it (at start, so a partner that forgot them —
// the simulated carrier — knows them again).
func (h *Hub) RegisterAll(ctx context.Context) {
	gws, err := h.DB.Gateways(ctx, "")
	if err != nil {
		h.Log.Warn("list gateways for registration", "err", err)
		return
	}
	orgs := map[string]*sb.Org{}
	for _, g := range gws {
		org, ok := orgs[g.OrgID]
		if !ok {
			if org, err = h.DB.Org(ctx, g.OrgID); err != nil {
				h.Log.Warn("read org for registration", "org", g.OrgID, "err", err)
				continue
			}
			orgs[g.OrgID] = org
		}
		if p, err := h.Providers.Get(g.Provider); err == nil {
			h.registerWebhooks(ctx, org, p, g)
		}
	}
}

// Bootstrap creates the first org with an admin user and returns the
// admin's API key, when the store has no org yet. ok is false when there was
// already one.
func (h *Hub) Bootstrap(ctx context.Context, orgName, adminEmail, adminName string) (org *sb.Org, admin *sb.User, apiKey string, ok bool, err error) {
	orgs, err := h.DB.Orgs(ctx)
	if err != nil || len(orgs) > 0 {
		return nil, nil, "", false, err
	}
	org, admin, apiKey, err = h.CreateOrg(ctx, orgName, adminEmail, adminName)
	return org, admin, apiKey, err == nil, err
}

// CreateOrg creates an org, its admin user (also its integration user until
// a CRM authorization names another) and an API key for the admin.
func (h *Hub) CreateOrg(ctx context.Context, orgName, adminEmail, adminName string) (*sb.Org, *sb.User, string, error) {
	org := &sb.Org{Name: orgName}
	admin := &sb.User{Email: adminEmail, Name: adminName, Permissions: []sb.Permission{sb.PermSystemAdmin}}
	var key string
	err := h.DB.Tx(ctx, func(tx *store.Tx) error {
		if err := tx.CreateOrg(ctx, org); err != nil {
			return err
		}
		admin.OrgID = org.ID
		if err := tx.CreateUser(ctx, admin, ""); err != nil {
			return err
		}
		org.Settings.IntegrationUserID = admin.ID
		if err := tx.UpdateOrgSettings(ctx, org.ID, org.Settings); err != nil {
			return err
		}
		var err error
		_, key, err = tx.CreateAPIKey(ctx, org.ID, admin.ID, "admin")
		return err
	})
	if err != nil {
		return nil, nil, "", err
	}
	return org, admin, key, nil
}

// SettingsResult is an org after a settings change.
type SettingsResult struct {
	*sb.Org
	// GatewayRegistrations reports the webhook registration of the org's
	// production gateways when "Connected app for incoming messages" was
	// just enabled on an org connected to Salesforce.
	GatewayRegistrations []GatewayRegistration `json:"gateway_registrations,omitempty"`
}

// One-way toggles, by their setting names.
const (
	ToggleMessagingAPIForBulk     = "messaging_api_for_bulk"
	ToggleConnectedAppForIncoming = "connected_app_for_incoming"
)

// UpdateSettings changes an org's settings (System Admin). The one-way
// toggles may be switched on by an admin but off only by a service operator.
// Switching "Connected app for incoming messages" on for an org connected to
// Salesforce registers its production gateways' webhook URLs at their
// partners.
func (h *Hub) UpdateSettings(ctx context.Context, user *sb.User, s sb.OrgSettings) (*SettingsResult, error) {
	if err := user.Require(sb.PermSystemAdmin); err != nil {
		return nil, err
	}
	org, err := h.DB.Org(ctx, user.OrgID)
	if err != nil {
		return nil, err
	}
	if !user.Operator {
		if org.Settings.MessagingAPIForBulk && !s.MessagingAPIForBulk {
			return nil, sb.Errorf(sb.EForbidden, "\"Messaging API for bulk sends\" can only be disabled by a service operator (switchboard admin org settings --disable %s)", ToggleMessagingAPIForBulk)
		}
		if org.Settings.ConnectedAppForIncoming && !s.ConnectedAppForIncoming {
			return nil, sb.Errorf(sb.EForbidden, "\"Connected app for incoming messages\" can only be disabled by a service operator (switchboard admin org settings --disable %s)", ToggleConnectedAppForIncoming)
		}
	}
	// The setup assistant's order: the Messaging API for bulk sends is on
	// (before, or in the same change) when the connected app for incoming
	// messages is switched on.
	if !org.Settings.ConnectedAppForIncoming && s.ConnectedAppForIncoming && !s.MessagingAPIForBulk {
		return nil, &sb.Error{Code: sb.EConflict, Field: ToggleConnectedAppForIncoming,
			Message: "enable \"Messaging API for bulk sends\" (" + ToggleMessagingAPIForBulk + ") first, or in the same change, before \"Connected app for incoming messages\""}
	}
	if err := s.Normalize(); err != nil {
		return nil, err
	}
	if s.AlertEmail != "" && s.AlertEmail != org.Settings.AlertEmail && h.Mailer == nil {
		return nil, sb.FieldError("alert_email", "this service has no SMTP server to send alert emails (SWITCHBOARD_SMTP_URL); use alert_webhook_url")
	}
	if s.IntegrationUserID == "" {
		s.IntegrationUserID = org.Settings.IntegrationUserID
	} else if _, err := h.DB.User(ctx, org.ID, s.IntegrationUserID); err != nil {
		return nil, sb.FieldError("integration_user_id", "integration user %s is not a user of this org", s.IntegrationUserID)
	}
	if err := h.DB.Tx(ctx, func(tx *store.Tx) error { return tx.UpdateOrgSettings(ctx, org.ID, s) }); err != nil {
		return nil, err
	}
	h.forgetOrg(org.ID)
	if user.Operator {
		h.Log.Info("org settings changed by a service operator", "org", org.ID,
			ToggleMessagingAPIForBulk, s.MessagingAPIForBulk, ToggleConnectedAppForIncoming, s.ConnectedAppForIncoming)
	}
	after, err := h.DB.Org(ctx, org.ID)
	if err != nil {
		return nil, err
	}
	res := &SettingsResult{Org: after}
	if !org.Settings.ConnectedAppForIncoming && after.Settings.ConnectedAppForIncoming && after.Settings.CRM == sb.CRMSalesforce {
		if res.GatewayRegistrations, err = h.registerOrgGateways(ctx, after); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// OperatorSetToggle switches a one-way toggle of an org as the service
// operator (whoever runs "switchboard admin"), who may also switch them off.
func (h *Hub) OperatorSetToggle(ctx context.Context, orgID, name string, on bool) (*SettingsResult, error) {
	org, err := h.DB.Org(ctx, orgID)
	if err != nil {
		return nil, err
	}
	s := org.Settings
	switch name {
	case ToggleMessagingAPIForBulk:
		s.MessagingAPIForBulk = on
	case ToggleConnectedAppForIncoming:
		s.ConnectedAppForIncoming = on
	default:
		return nil, sb.FieldError("setting", "unknown one-way setting %q (%s or %s)", name, ToggleMessagingAPIForBulk, ToggleConnectedAppForIncoming)
	}
	op := &sb.User{OrgID: org.ID, Name: "service operator", Permissions: []sb.Permission{sb.PermSystemAdmin}, Operator: true}
	return h.UpdateSettings(ctx, op, s)
}
