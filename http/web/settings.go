package web

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	sb "github.com/switchboard/switchboard"
	sbhttp "github.com/switchboard/switchboard/http"
	"github.com/switchboard/switchboard/hub"
	"github.com/switchboard/switchboard/store"
)

// The setup assistant: the org's application settings as a list of steps,
// each showing whether it is done or needs action.

// Step ids, also the anchors of their sections.
const (
	stepAPIKey    = "api-key"
	stepCRM       = "crm"
	stepBulkAPI   = "bulk-api"
	stepIncoming  = "incoming"
	stepGateways  = "gateways"
	stepTestSend  = "test-send"
	stepOptInMode = "opt-in"
)

type stepState struct {
	ID    string
	Title string
	Done  bool
}

type providerInfo struct {
	Name  string
	Label string
}

var providerLabels = map[string]string{
	sb.ProviderSim:      "Simulated carrier",
	sb.ProviderTwilio:   "Twilio",
	sb.ProviderWhatsApp: "WhatsApp Cloud API",
	sb.ProviderSMPP:     "SMPP",
}

// gatewayForm holds the add-gateway form's values (kept when it is shown
// again with an error).
type gatewayForm struct {
	Name, Provider, Number, NumberType, Rate, RateUnit string
	OptOut, OptIn, Help, HelpText                      string
	Sandbox                                            bool
	Config                                             map[string]string
}

type settingsData struct {
	Org       *sb.Org
	Steps     []stepState
	APIKeys   int
	NewKey    string
	CRM       *hub.CRMConnection
	Gateways  []*hub.GatewayView
	Providers []providerInfo
	GW        gatewayForm
	Fields    []sb.ConfigField
	// Notices and errors by step id.
	Notice map[string]string
	Error  map[string]string
	// Operator users may switch the one-way toggles off.
	Operator bool
}

type stepResult struct {
	Step   string
	Notice string
	Err    error
	NewKey string
	GW     *gatewayForm
}

func (u *UI) settings(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	var res stepResult
	if r.URL.Query().Get("salesforce") == "connected" { // back from the OAuth callback
		res = stepResult{Step: stepCRM, Notice: "Salesforce authorized."}
	}
	u.renderSettings(w, r, rc, res)
}

func (u *UI) renderSettings(w http.ResponseWriter, r *http.Request, rc *reqCtx, res stepResult) {
	ctx := r.Context()
	org, err := u.d.DB.Org(ctx, rc.Org.ID) // fresh: an action may have changed it
	if err != nil {
		u.fail(w, r, rc, err)
		return
	}
	rc.Org = org
	d := settingsData{Org: org, NewKey: res.NewKey, Notice: map[string]string{}, Error: map[string]string{}, Operator: rc.User.Operator}
	if res.Notice != "" {
		d.Notice[res.Step] = res.Notice
	}
	status := http.StatusOK
	if res.Err != nil {
		d.Error[res.Step] = sb.ErrorMessage(res.Err)
		status = sbhttp.StatusOf(sb.ErrorCode(res.Err))
		if status >= 500 {
			u.d.Log.Error("ui settings action failed", "step", res.Step, "err", res.Err)
		}
	}
	keys, err := u.d.DB.APIKeys(ctx, org.ID)
	if err != nil {
		u.fail(w, r, rc, err)
		return
	}
	for _, k := range keys {
		if !k.Revoked {
			d.APIKeys++
		}
	}
	if d.CRM, err = u.d.Hub.CRMConnection(ctx, rc.User); err != nil {
		u.fail(w, r, rc, err)
		return
	}
	gws, err := u.d.DB.Gateways(ctx, org.ID)
	if err != nil {
		u.fail(w, r, rc, err)
		return
	}
	active := 0
	for _, g := range gws {
		d.Gateways = append(d.Gateways, u.d.Hub.View(g))
		if g.Active {
			active++
		}
	}
	for _, name := range u.d.Hub.Providers.Names() {
		label := providerLabels[name]
		if label == "" {
			label = name
		}
		d.Providers = append(d.Providers, providerInfo{Name: name, Label: label})
	}
	if res.GW != nil {
		d.GW = *res.GW
	} else {
		d.GW = gatewayForm{Provider: sb.ProviderSim, Config: map[string]string{}}
	}
	d.Fields = u.providerFields(d.GW.Provider)
	s := org.Settings
	d.Steps = []stepState{
		{stepAPIKey, "API key", d.APIKeys > 0},
		{stepCRM, "CRM connection", d.CRM.Connected && !d.CRM.Offline},
		{stepBulkAPI, "Messaging API for bulk sends", s.MessagingAPIForBulk},
		{stepIncoming, "Connected app for incoming messages", s.ConnectedAppForIncoming},
		{stepGateways, "Gateways", active > 0},
		{stepOptInMode, "Opt-in mode", true},
	}
	u.render(w, status, "settings", u.newPage(r, rc, "settings", "Application settings", d))
}

// step returns the state of a step by id.
func (d settingsData) Step(id string) stepState {
	for _, s := range d.Steps {
		if s.ID == id {
			return s
		}
	}
	return stepState{ID: id}
}

func (u *UI) providerFields(name string) []sb.ConfigField {
	p, err := u.d.Hub.Providers.Get(name)
	if err != nil {
		return nil
	}
	return p.ConfigFields()
}

func (u *UI) createAPIKey(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	var key string
	err := u.d.DB.Tx(r.Context(), func(tx *store.Tx) error {
		var err error
		_, key, err = tx.CreateAPIKey(r.Context(), rc.Org.ID, rc.User.ID, "Web UI: "+rc.User.Name)
		return err
	})
	if err != nil {
		u.renderSettings(w, r, rc, stepResult{Step: stepAPIKey, Err: err})
		return
	}
	u.d.Log.Info("ui api key created", "user", rc.User.ID)
	u.renderSettings(w, r, rc, stepResult{Step: stepAPIKey, NewKey: key, Notice: "API key created. It is shown once: copy it now."})
}

// toggle switches one of the one-way settings. An admin may switch them on;
// only a service operator may switch them off (the hub enforces it).
func (u *UI) toggle(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	name, on := r.PostFormValue("name"), r.PostFormValue("value") == "on"
	s := rc.Org.Settings
	step := stepBulkAPI
	switch name {
	case "messaging_api_for_bulk":
		s.MessagingAPIForBulk = on
	case "connected_app_for_incoming":
		step = stepIncoming
		s.ConnectedAppForIncoming = on
	default:
		u.renderSettings(w, r, rc, stepResult{Step: stepBulkAPI, Err: sb.FieldError("name", "unknown setting %q", name)})
		return
	}
	res, err := u.d.Hub.UpdateSettings(r.Context(), rc.User, s)
	if err != nil {
		u.renderSettings(w, r, rc, stepResult{Step: step, Err: err})
		return
	}
	verb := "enabled"
	if !on {
		verb = "disabled"
	}
	notice := "Setting " + verb + "."
	if regs := res.GatewayRegistrations; len(regs) > 0 {
		ok := 0
		var failed []string
		for _, g := range regs {
			if g.Registered {
				ok++
			} else if why := g.Error + g.Note; why != "" {
				failed = append(failed, g.GatewayID+": "+why)
			}
		}
		notice += fmt.Sprintf(" Webhook URLs registered at the partner for %d of %d production gateways.", ok, len(regs))
		if len(failed) > 0 {
			notice += " Not registered — " + strings.Join(failed, "; ") + "."
		}
	}
	u.renderSettings(w, r, rc, stepResult{Step: step, Notice: notice})
}

func (u *UI) saveOptIn(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	s := rc.Org.Settings
	s.OptInMode = sb.OptInMode(r.PostFormValue("mode"))
	s.CreateOptInOnIncoming = r.PostFormValue("create_opt_in") == "on"
	if _, err := u.d.Hub.UpdateSettings(r.Context(), rc.User, s); err != nil {
		u.renderSettings(w, r, rc, stepResult{Step: stepOptInMode, Err: err})
		return
	}
	u.renderSettings(w, r, rc, stepResult{Step: stepOptInMode, Notice: "Opt-in settings saved."})
}

// authorizeSalesforce starts the OAuth flow: the browser goes to
// Salesforce and comes back to this page through the service's callback.
func (u *UI) authorizeSalesforce(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	to, err := u.d.Hub.StartSalesforceAuthorization(r.Context(), rc.User, "/ui/settings#crm")
	if err != nil {
		u.renderSettings(w, r, rc, stepResult{Step: stepCRM, Err: err})
		return
	}
	if isHTMX(r) {
		w.Header().Set("HX-Redirect", to)
		w.WriteHeader(http.StatusNoContent)
		return
	}
	// Without htmx: a link, since a form may only lead back to this site.
	u.render(w, http.StatusOK, "authorize", u.newPage(r, rc, "settings", "Authorize Salesforce", to))
}

func (u *UI) revokeSalesforce(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	if err := u.d.Hub.RevokeSalesforce(r.Context(), rc.User); err != nil {
		u.renderSettings(w, r, rc, stepResult{Step: stepCRM, Err: err})
		return
	}
	u.renderSettings(w, r, rc, stepResult{Step: stepCRM, Notice: "Salesforce authorization revoked. Incoming messages and status updates are held until someone authorizes again."})
}

func (u *UI) checkCRM(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	c, err := u.d.Hub.CheckCRM(r.Context(), rc.User)
	if err != nil {
		u.renderSettings(w, r, rc, stepResult{Step: stepCRM, Err: err})
		return
	}
	msg := "Health check passed."
	if c.Health != nil && !c.Health.OK {
		msg = "Health check found problems; see below."
	} else if c.Health == nil {
		msg = "Nothing to check for this CRM."
	}
	u.renderSettings(w, r, rc, stepResult{Step: stepCRM, Notice: msg})
}

// gatewayFields answers the provider picker with that provider's settings.
func (u *UI) gatewayFields(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	name := r.URL.Query().Get("provider")
	if _, err := u.d.Hub.Providers.Get(name); err != nil {
		u.fail(w, r, rc, &sb.Error{Code: sb.EInvalid, Field: "provider", Message: sb.ErrorMessage(err)})
		return
	}
	u.renderFragment(w, http.StatusOK, "settings", "providerfields", map[string]any{"Fields": u.providerFields(name), "Config": map[string]string{}})
}

func (u *UI) addGateway(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	f := gatewayForm{
		Name: strings.TrimSpace(r.PostFormValue("name")), Provider: r.PostFormValue("provider"), Number: strings.TrimSpace(r.PostFormValue("number")),
		NumberType: r.PostFormValue("number_type"), Rate: strings.TrimSpace(r.PostFormValue("rate")), RateUnit: r.PostFormValue("rate_unit"),
		OptOut: r.PostFormValue("opt_out_keywords"), OptIn: r.PostFormValue("opt_in_keywords"), Help: r.PostFormValue("help_keywords"),
		HelpText: r.PostFormValue("help_text"), Sandbox: r.PostFormValue("sandbox") == "on", Config: map[string]string{},
	}
	for key, vals := range r.PostForm {
		if k, ok := strings.CutPrefix(key, "config."); ok && len(vals) > 0 {
			f.Config[k] = strings.TrimSpace(vals[0])
		}
	}
	req, err := f.request()
	if err == nil {
		var v *hub.GatewayView
		if v, err = u.d.Hub.CreateGateway(r.Context(), rc.User, req); err == nil {
			msg := fmt.Sprintf("Gateway %s added.", v.Name)
			if v.Registered {
				msg += " Its webhooks are registered with the provider."
			} else {
				msg += fmt.Sprintf(" Set its webhooks at the provider by hand: incoming %s, status %s.", v.Webhooks.Incoming, v.Webhooks.Status)
				if v.RegisterErr != "" {
					msg += " (Registration failed: " + v.RegisterErr + ")"
				}
			}
			u.renderSettings(w, r, rc, stepResult{Step: stepGateways, Notice: msg})
			return
		}
	}
	// Secrets are never sent back to the browser.
	for _, fld := range u.providerFields(f.Provider) {
		if fld.Secret {
			delete(f.Config, fld.Key)
		}
	}
	u.renderSettings(w, r, rc, stepResult{Step: stepGateways, Err: err, GW: &f})
}

// request turns the form into a gateway request; blank fields take the
// defaults.
func (f gatewayForm) request() (hub.GatewayRequest, error) {
	req := hub.GatewayRequest{Name: f.Name, Provider: f.Provider, Number: f.Number, NumberType: f.NumberType, RateUnit: f.RateUnit, Config: f.Config}
	if f.Rate != "" {
		v, err := strconv.ParseFloat(f.Rate, 64)
		if err != nil {
			return req, sb.FieldError("rate", "rate must be a number of messages per second")
		}
		req.Rate = &v
	}
	kw := sb.DefaultKeywords(f.Provider)
	changed := false
	for _, k := range []struct {
		text string
		dst  *[]string
	}{{f.OptOut, &kw.OptOut}, {f.OptIn, &kw.OptIn}, {f.Help, &kw.Help}} {
		if list := splitKeywords(k.text); list != nil {
			*k.dst, changed = list, true
		}
	}
	if changed {
		req.Keywords = &kw
	}
	if strings.TrimSpace(f.HelpText) != "" {
		h := strings.TrimSpace(f.HelpText)
		req.HelpText = &h
	}
	sandbox := f.Sandbox
	req.Sandbox = &sandbox
	return req, nil
}

// splitKeywords reads "STOP, END, quit" as a keyword list; blank is nil.
func splitKeywords(s string) []string {
	var out []string
	for _, k := range strings.Split(s, ",") {
		if k = strings.TrimSpace(k); k != "" {
			out = append(out, k)
		}
	}
	return out
}

func (u *UI) testSend(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	body := strings.TrimSpace(r.PostFormValue("body"))
	if body == "" {
		body = "Test message from Switchboard."
	}
	m, _, err := u.d.Hub.Send(r.Context(), rc.User, hub.SendRequest{GatewayID: r.PostFormValue("gateway"), To: r.PostFormValue("to"), Body: body, Mode: hub.ModeOneToOne})
	if err != nil {
		u.renderSettings(w, r, rc, stepResult{Step: stepTestSend, Err: err})
		return
	}
	u.renderSettings(w, r, rc, stepResult{Step: stepTestSend, Notice: fmt.Sprintf("Test message queued (message %s). Follow its status in the conversation view.", m.ID)})
}
