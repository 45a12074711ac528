package web

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	sb "github.com/switchboard/switchboard"
	sbhttp "github.com/switchboard/switchboard/http"
	"github.com/switchboard/switchboard/hub"
	"github.com/switchboard/switchboard/store"
)

// --- home: find a conversation ---

type homeData struct {
	Query    string
	Contacts []*sb.CRMRecord
	Builtin  bool
	Phone    string
	More     bool
}

const homeLimit = 50

func (u *UI) home(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	d := homeData{Query: strings.TrimSpace(r.URL.Query().Get("q")), Builtin: rc.Org.Settings.CRM == sb.CRMBuiltin}
	if d.Builtin {
		cs, err := u.d.DB.Contacts(r.Context(), rc.Org.ID, store.ContactFilter{Search: d.Query, Limit: homeLimit + 1})
		if err != nil {
			u.fail(w, r, rc, err)
			return
		}
		if len(cs) > homeLimit {
			cs, d.More = cs[:homeLimit], true
		}
		d.Contacts = cs
	}
	u.render(w, http.StatusOK, "home", u.newPage(r, rc, "home", "Conversations", d))
}

// --- the conversation view ---

// convTarget is whom a conversation is with: a CRM record, a phone number,
// or both.
type convTarget struct {
	RecordID string
	Record   *sb.CRMRecord
	// Phone is E.164; empty when the record has none.
	Phone string
	Name  string
	// Unreachable says why the record could not be read (the CRM cannot
	// be reached): the view shows what it can, and nothing can be sent.
	Unreachable string
}

// Query returns the URL query naming the target.
func (t *convTarget) Query() string {
	v := url.Values{}
	if t.RecordID != "" {
		v.Set("record", t.RecordID)
	} else {
		v.Set("phone", t.Phone)
	}
	return v.Encode()
}

// resolveTarget finds the conversation's record (through the org's CRM) or
// reads its phone number.
func (u *UI) resolveTarget(ctx context.Context, rc *reqCtx, recordID, phone string) (*convTarget, error) {
	recordID, phone = strings.TrimSpace(recordID), strings.TrimSpace(phone)
	if recordID == "" && phone == "" {
		return nil, sb.FieldError("phone", "name a contact or enter a phone number")
	}
	if recordID != "" {
		if len(recordID) > 64 {
			return nil, sb.FieldError("record", "record id is too long")
		}
		crm, err := u.crm(ctx, rc.Org)
		if err != nil {
			return nil, err
		}
		recs, err := crm.GetRecords(ctx, rc.Org, []string{recordID})
		if err != nil {
			return nil, sb.Wrap(err, sb.EUnavailable, "the CRM could not be asked about record %s: %s", recordID, crmReason(err))
		}
		if len(recs) == 0 {
			return nil, sb.Errorf(sb.ENotFound, "CRM record %s not found", recordID)
		}
		rec := recs[0]
		t := &convTarget{RecordID: rec.ID, Record: &rec, Phone: rec.Phone, Name: strings.TrimSpace(rec.FirstName + " " + rec.LastName)}
		if t.Phone != "" {
			if p, err := sb.ParsePhone(t.Phone, rc.Org.Settings.DefaultRegion); err == nil {
				t.Phone = p
			}
		}
		if t.Name == "" {
			t.Name = rec.Email
		}
		return t, nil
	}
	p, err := sb.ParsePhone(phone, rc.Org.Settings.DefaultRegion)
	if err != nil {
		return nil, err
	}
	return &convTarget{Phone: p}, nil
}

// crm returns the org's CRM: the built-in one, or the one the hub
// connects to.
func (u *UI) crm(ctx context.Context, org *sb.Org) (sb.CRM, error) {
	if org.Settings.CRM == sb.CRMBuiltin && u.d.Builtin != nil {
		return u.d.Builtin, nil
	}
	crm, err := u.d.Hub.CRMs.For(ctx, org)
	if err != nil {
		return nil, sb.Wrap(err, sb.EUnavailable, "the CRM is not reachable: %s", crmReason(err))
	}
	return crm, nil
}

// crmReason says why the CRM could not be used.
func crmReason(err error) string {
	var ce *sb.CRMError
	if errors.As(err, &ce) && ce.Message != "" {
		return ce.Message
	}
	return sb.ErrorMessage(err)
}

type threadMsg struct {
	store.CRMMessageRecord
	GatewayName string
}

type threadData struct {
	// Query names the conversation for the poll URL.
	Query    string
	Version  string
	Messages []threadMsg
	// Notice says why the thread could not be read (the org's CRM cannot
	// be reached); the rest of the view works on.
	Notice string
}

// threadKey names a conversation in the thread cache.
func threadKey(orgID string, t *convTarget) string {
	if t.RecordID != "" {
		return orgID + "\x00r\x00" + t.RecordID
	}
	return orgID + "\x00p\x00" + t.Phone
}

// loadThread reads the conversation's message records from the org's CRM,
// oldest first, leaving out those of gateways the user may not use, with a
// fingerprint that changes when any of them does. The built-in CRM is read
// at every call; an external CRM (Salesforce) at most once per ThreadTTL
// per conversation (the view polls). When the CRM cannot be reached the
// thread holds a notice saying so instead of failing.
func (u *UI) loadThread(ctx context.Context, rc *reqCtx, t *convTarget) (threadData, error) {
	d := threadData{Query: t.Query()}
	if t.RecordID == "" && t.Phone == "" {
		d.Version = "none"
		return d, nil
	}
	var recs []sb.CRMMessageRecord
	var err error
	if rc.Org.Settings.CRM == sb.CRMBuiltin {
		recs, err = u.d.DB.CRMMessagesFor(ctx, rc.Org.ID, t.RecordID, t.Phone, sb.MaxConversation)
	} else {
		recs, err = u.threads.get(ctx, threadKey(rc.Org.ID, t), func(ctx context.Context) ([]sb.CRMMessageRecord, error) {
			return u.d.Hub.CRMConversation(ctx, rc.Org, t.RecordID, t.Phone, sb.MaxConversation)
		})
	}
	if err != nil {
		if sb.ErrorCode(err) != sb.EUnavailable {
			return d, err
		}
		d.Notice = sb.ErrorMessage(err)
		sum := sha256.Sum256([]byte(d.Notice))
		d.Version = "unavailable-" + hex.EncodeToString(sum[:])[:8]
		return d, nil
	}
	if recs, err = u.d.Hub.VisibleThread(ctx, rc.Org, rc.User, recs); err != nil {
		return d, err
	}
	gws, err := u.gatewayNames(ctx, rc.Org.ID)
	if err != nil {
		return d, err
	}
	h := sha256.New()
	for _, m := range recs {
		fmt.Fprintf(h, "%s|%s|%s|%d|%d|%s\n", m.ID, m.GatewayID, m.Status, m.StatusAt.UnixMicro(), m.UpdatedAt.UnixMicro(), m.Debug)
		d.Messages = append(d.Messages, threadMsg{CRMMessageRecord: m, GatewayName: gws[m.GatewayID]})
	}
	d.Version = hex.EncodeToString(h.Sum(nil))[:16]
	return d, nil
}

func (u *UI) gatewayNames(ctx context.Context, orgID string) (map[string]string, error) {
	gws, err := u.d.DB.Gateways(ctx, orgID)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(gws))
	for _, g := range gws {
		out[g.ID] = g.Name
	}
	return out, nil
}

// thread answers the thread's live poll: 204 when nothing changed (htmx
// then leaves the page alone), else the fresh thread.
func (u *UI) thread(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	q := r.URL.Query()
	t := &convTarget{RecordID: strings.TrimSpace(q.Get("record"))}
	if t.RecordID == "" {
		p, err := sb.ParsePhone(q.Get("phone"), rc.Org.Settings.DefaultRegion)
		if err != nil {
			u.fail(w, r, rc, err)
			return
		}
		t.Phone = p
	}
	d, err := u.loadThread(r.Context(), rc, t)
	if err != nil {
		u.fail(w, r, rc, err)
		return
	}
	if q.Get("v") == d.Version {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	u.renderFragment(w, http.StatusOK, "conversation", "thread", d)
}

type convData struct {
	Target    *convTarget
	Gateways  []*sb.Gateway
	GatewayID string
	Subs      []hub.GatewaySubscription
	// Warning says why nothing can be sent on the selected gateway; the
	// compose fields are then disabled.
	Warning   string
	Thread    threadData
	Body      string
	Segments  sb.SegmentInfo
	Templates []Template
	// TemplateID is the picked template.
	TemplateID string
	IdemKey    string
	Focus      bool
	SendNotice string
	SendError  string
}

// convOpts carry the outcome of an action into the re-rendered view.
type convOpts struct {
	GatewayID  string
	Body       string
	TemplateID string
	IdemKey    string
	Focus      bool
	Notice     string
	Error      string
	Status     int
}

func (u *UI) conversation(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	q := r.URL.Query()
	t, err := u.resolveTarget(r.Context(), rc, q.Get("record"), q.Get("phone"))
	if err != nil && sb.IsCode(err, sb.EUnavailable) && q.Get("record") != "" && len(q.Get("record")) <= 64 {
		// The CRM is down: the page still opens, saying so.
		id := strings.TrimSpace(q.Get("record"))
		t, err = &convTarget{RecordID: id, Name: id, Unreachable: sb.ErrorMessage(err)}, nil
	}
	if err != nil {
		u.fail(w, r, rc, err)
		return
	}
	u.renderConversation(w, r, rc, t, convOpts{GatewayID: q.Get("gateway")})
}

func (u *UI) renderConversation(w http.ResponseWriter, r *http.Request, rc *reqCtx, t *convTarget, o convOpts) {
	ctx := r.Context()
	d := convData{Target: t, Body: o.Body, TemplateID: o.TemplateID, IdemKey: o.IdemKey, Focus: o.Focus, SendNotice: o.Notice, SendError: o.Error}
	if d.IdemKey == "" {
		d.IdemKey = "ui-" + newToken()[:24]
	}
	gws, err := u.d.DB.Gateways(ctx, rc.Org.ID)
	if err != nil {
		u.fail(w, r, rc, err)
		return
	}
	for _, g := range gws {
		if g.Active && rc.User.CanUseGateway(g.ID) {
			d.Gateways = append(d.Gateways, g)
		}
	}
	if d.Thread, err = u.loadThread(ctx, rc, t); err != nil {
		u.fail(w, r, rc, err)
		return
	}
	d.GatewayID = pickGateway(d.Gateways, o.GatewayID, d.Thread.Messages)
	if t.Phone != "" {
		if d.Subs, err = u.d.Hub.SubscriptionView(ctx, rc.User, t.Phone); err != nil {
			u.fail(w, r, rc, err)
			return
		}
	}
	d.Warning = sendWarning(t, d.GatewayID, d.Subs)
	d.Segments = sb.CountSegments(d.Body)
	if u.d.Templates != nil {
		if d.Templates, err = u.d.Templates.ListTemplates(ctx, rc.User); err != nil {
			u.d.Log.Warn("list templates", "err", err)
		}
	}
	title := t.Name
	if title == "" {
		title = t.Phone
	}
	status := o.Status
	if status == 0 {
		status = http.StatusOK
	}
	u.render(w, status, "conversation", u.newPage(r, rc, "home", "Conversation with "+title, d))
}

// pickGateway chooses the gateway the view selects: the one asked for,
// else the one of the latest message, else the first.
func pickGateway(gws []*sb.Gateway, asked string, thread []threadMsg) string {
	has := func(id string) bool {
		for _, g := range gws {
			if g.ID == id {
				return true
			}
		}
		return false
	}
	if asked != "" && has(asked) {
		return asked
	}
	for i := len(thread) - 1; i >= 0; i-- {
		if has(thread[i].GatewayID) {
			return thread[i].GatewayID
		}
	}
	if len(gws) > 0 {
		return gws[0].ID
	}
	return ""
}

// sendWarning says why no message can be sent to the target on the
// gateway, or "" when one can.
func sendWarning(t *convTarget, gatewayID string, subs []hub.GatewaySubscription) string {
	switch {
	case t.Unreachable != "":
		return t.Unreachable + ". No message can be sent until the record can be read."
	case t.Phone == "":
		return "This contact has no phone number, so no message can be sent."
	case gatewayID == "":
		return "No gateway is set up yet. A System Admin can add one in Settings."
	case t.Record != nil && t.Record.OptOut:
		return "This contact has the global opt-out flag set in the CRM: no message can be sent to them on any gateway."
	}
	for _, s := range subs {
		if s.GatewayID != gatewayID || s.CanSend {
			continue
		}
		detail := ""
		if s.Detail != "" {
			detail = " (" + s.Detail + ")"
		}
		if s.Status == sb.NoOptIn {
			return fmt.Sprintf("This number has not opted in on %s%s and the org requires an opt-in: no message can be sent on this gateway. Choose another gateway or record an opt-in.", s.GatewayName, detail)
		}
		how := "A user with the Manual Opt-In/Opt-Out permission can opt it back in."
		if s.Locked {
			how = "Only an opt-in keyword such as START texted from the phone can opt it back in."
		}
		return fmt.Sprintf("This number is opted out on %s%s: no message can be sent on this gateway. %s", s.GatewayName, detail, how)
	}
	return ""
}

func (u *UI) send(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	t, err := u.resolveTarget(r.Context(), rc, r.PostFormValue("record"), r.PostFormValue("phone"))
	if err != nil {
		u.fail(w, r, rc, err)
		return
	}
	o := convOpts{GatewayID: r.PostFormValue("gateway"), Body: r.PostFormValue("body"), TemplateID: r.PostFormValue("template_id"),
		IdemKey: r.PostFormValue("idem"), Focus: true}
	if len(o.IdemKey) > 64 {
		o.IdemKey = ""
	}
	req := hub.SendRequest{GatewayID: o.GatewayID, To: t.Phone, RecordID: t.RecordID, Body: o.Body, Mode: hub.ModeOneToOne, IdempotencyKey: o.IdemKey}
	if o.TemplateID != "" {
		req.Body, req.TemplateID = "", o.TemplateID
	}
	switch {
	case t.Phone == "":
		err = sb.FieldError("to", "this contact has no phone number")
	case o.GatewayID == "":
		err = sb.FieldError("gateway_id", "choose a gateway")
	default:
		_, _, err = u.d.Hub.Send(r.Context(), rc.User, req)
	}
	if err != nil {
		if sbhttp.StatusOf(sb.ErrorCode(err)) >= 500 {
			u.d.Log.Error("ui send failed", "err", err)
		}
		o.Error, o.Status = notSent(err), sbhttp.StatusOf(sb.ErrorCode(err))
		u.renderConversation(w, r, rc, t, o)
		return
	}
	u.threads.forget(threadKey(rc.Org.ID, t))
	u.renderConversation(w, r, rc, t, convOpts{GatewayID: o.GatewayID, Focus: true, Notice: "Message queued. Its status updates below."})
}

// notSent words a refused send for the user: "Not sent: <why>".
func notSent(err error) string {
	msg := sb.ErrorMessage(err)
	if rest, ok := strings.CutPrefix(msg, "not sent: "); ok {
		msg = rest
	}
	return "Not sent: " + msg
}

func (u *UI) setSubscription(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	t, err := u.resolveTarget(r.Context(), rc, r.PostFormValue("record"), r.PostFormValue("phone"))
	if err != nil {
		u.fail(w, r, rc, err)
		return
	}
	o := convOpts{GatewayID: r.PostFormValue("gateway")}
	if t.Phone == "" {
		u.fail(w, r, rc, sb.FieldError("phone", "this contact has no phone number"))
		return
	}
	status := sb.SubscriptionStatus(r.PostFormValue("status"))
	sub, err := u.d.Hub.SetSubscription(r.Context(), rc.User, hub.SubscriptionRequest{GatewayID: r.PostFormValue("sub_gateway"), Phone: t.Phone, Status: status})
	if err != nil {
		if sb.IsCode(err, sb.EForbidden) {
			u.fail(w, r, rc, err)
			return
		}
		o.Error, o.Status = sb.ErrorMessage(err), sbhttp.StatusOf(sb.ErrorCode(err))
		u.renderConversation(w, r, rc, t, o)
		return
	}
	o.Notice = fmt.Sprintf("Subscription changed: %s (%s).", sub.Status, sub.Detail)
	u.renderConversation(w, r, rc, t, o)
}

// segments answers the compose box's live counter.
func (u *UI) segments(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	// Counted as sent: long URLs become tracked links when they are on.
	body, err := u.d.Hub.PreviewBody(r.Context(), rc.User, r.PostFormValue("body"))
	if err != nil {
		u.fail(w, r, rc, err)
		return
	}
	u.renderFragment(w, http.StatusOK, "conversation", "segcount", sb.CountSegments(body))
}

// templatePreview shows the picked template: rendered for the
// conversation's record when the hub can render templates, else its text.
func (u *UI) templatePreview(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	q := r.URL.Query()
	id := q.Get("template_id")
	d := struct {
		Name, Body string
		Rendered   bool
		Segments   sb.SegmentInfo
		Err        string
	}{}
	if u.d.Templates == nil || id == "" {
		u.renderFragment(w, http.StatusOK, "conversation", "tplpreview", nil)
		return
	}
	list, err := u.d.Templates.ListTemplates(r.Context(), rc.User)
	if err != nil {
		u.fail(w, r, rc, err)
		return
	}
	found := false
	for _, t := range list {
		if t.ID == id {
			d.Name, d.Body, found = t.Name, t.Body, true
		}
	}
	if !found {
		u.fail(w, r, rc, sb.Errorf(sb.ENotFound, "template %s not found", id))
		return
	}
	if u.d.Hub.Renderer != nil {
		var rec *sb.CRMRecord
		if q.Get("record") != "" {
			t, err := u.resolveTarget(r.Context(), rc, q.Get("record"), "")
			if err != nil {
				u.fail(w, r, rc, err)
				return
			}
			rec = t.Record
		}
		body, err := u.d.Hub.Renderer.Render(r.Context(), rc.Org, rc.User, id, rec)
		if err != nil {
			d.Err = sb.ErrorMessage(err)
		} else {
			d.Body, d.Rendered = body, true
		}
	}
	d.Segments = sb.CountSegments(d.Body)
	u.renderFragment(w, http.StatusOK, "conversation", "tplpreview", d)
}
