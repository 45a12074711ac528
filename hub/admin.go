package hub

import (
	"context"
	"maps"
	"strings"

	sb "github.com/switchboard/switchboard"
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
// URLs at once.
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
	v.Registered, v.RegisterErr = h.registerWebhooks(ctx, p, g)
	return v, nil
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
	v.Registered, v.RegisterErr = h.registerWebhooks(ctx, p, g)
	return v, nil
}

// registerWebhooks points the partner at Switchboard's URLs for a
// non-sandbox gateway. Failure is reported, not fatal: the admin sees the
// URLs to set by hand.
func (h *Hub) registerWebhooks(ctx context.Context, p sb.Provider, g *sb.Gateway) (bool, string) {
	reg, ok := p.(sb.WebhookRegistrar)
	if !ok || g.Sandbox || !g.Active {
		return false, ""
	}
	if err := reg.RegisterWebhooks(ctx, g, h.WebhookURLs(g)); err != nil {
		h.Log.Warn("webhook registration failed", "gateway", g.ID, "provider", g.Provider, "err", err)
		return false, sb.ErrorMessage(err)
	}
	return true, ""
}

// RegisterAll registers the webhooks of every active non-sandbox gateway
// (at start, so a partner that forgot them — the simulated carrier — knows
// them again).
func (h *Hub) RegisterAll(ctx context.Context) {
	gws, err := h.DB.Gateways(ctx, "")
	if err != nil {
		h.Log.Warn("list gateways for registration", "err", err)
		return
	}
	for _, g := range gws {
		if p, err := h.Providers.Get(g.Provider); err == nil {
			h.registerWebhooks(ctx, p, g)
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

// UpdateSettings changes an org's settings (System Admin). The one-way
// toggles may be switched on by an admin but off only by a service operator.
func (h *Hub) UpdateSettings(ctx context.Context, user *sb.User, s sb.OrgSettings) (*sb.Org, error) {
	if err := user.Require(sb.PermSystemAdmin); err != nil {
		return nil, err
	}
	org, err := h.DB.Org(ctx, user.OrgID)
	if err != nil {
		return nil, err
	}
	if !user.Operator {
		if org.Settings.MessagingAPIForBulk && !s.MessagingAPIForBulk {
			return nil, sb.Errorf(sb.EForbidden, "\"Messaging API for bulk sends\" can only be disabled by a service operator")
		}
		if org.Settings.ConnectedAppForIncoming && !s.ConnectedAppForIncoming {
			return nil, sb.Errorf(sb.EForbidden, "\"Connected app for incoming messages\" can only be disabled by a service operator")
		}
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
	return h.DB.Org(ctx, org.ID)
}
