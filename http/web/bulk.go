package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	sb "github.com/switchboard/switchboard"
	sbhttp "github.com/switchboard/switchboard/http"
	"github.com/switchboard/switchboard/hub"
	"github.com/switchboard/switchboard/store"
)

// bulkPageContacts bounds the contacts listed to pick from; larger sends
// use "every contact matching the filter" or a CSV file.
const bulkPageContacts = 500

// Recipient sources of a bulk send.
const (
	sourceSelected = "selected"
	sourceFilter   = "filter"
	sourceCSV      = "csv"
)

type bulkForm struct {
	Source     string
	Query      string
	Field      string
	Records    map[string]bool
	Body       string
	TemplateID string
	FormID     string
	GatewayID  string
	Price      string
	// SelectAll ticks every listed contact ("Select all").
	SelectAll bool
}

type bulkData struct {
	Form     bulkForm
	Builtin  bool
	Contacts []*sb.CRMRecord
	More     bool
	// FilterError says what is wrong with the contact filter.
	FilterError string
	Gateways    []*sb.Gateway
	Templates   []Template
	Forms       []Form
	Segments    sb.SegmentInfo
	Currency    string
	Outcome     *bulkOutcome
}

// bulkOutcome is what the preview or the send produced.
type bulkOutcome struct {
	Error    string
	Preview  *bulkPreview
	Result   *hub.BulkResult
	Progress *progressData
}

// maxListed bounds the recipients a preview or result lists by name; the
// counts cover them all.
const maxListed = 200

// bulkLine is one recipient left out or blocked, with the reason.
type bulkLine struct {
	Who    string
	Reason string
}

// bulkPreview is a bulk send worked out without sending: who would get a
// message, who is left out and why, and what it costs.
type bulkPreview struct {
	GatewayName string
	Recipients  int
	ToSend      int
	// Blocked recipients get a message record with Status Error and reach
	// no provider (opted out, or no opt-in in mandatory mode). At most
	// maxListed are listed; BlockedN counts them all.
	Blocked  []bulkLine
	BlockedN int
	// Excluded recipients get nothing (global opt-out, no or bad number,
	// duplicates, unknown records).
	Excluded    []bulkLine
	ExcludedN   int
	SegmentsPer int
	Encoding    string
	Template    bool
	// Sample is a message as it will be sent — short links in place, the
	// form's first question appended — for SampleFor when a template
	// makes messages differ.
	Sample        string
	SampleFor     string
	TotalSegments int
	Price         float64
	Cost          string
	Currency      string
}

func (u *UI) bulkPage(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	q := r.URL.Query()
	f := bulkForm{Source: sourceSelected, Query: strings.TrimSpace(q.Get("q")), Field: strings.TrimSpace(q.Get("field")), Price: q.Get("price"),
		Body: q.Get("body"), GatewayID: q.Get("gateway"), TemplateID: q.Get("template_id"), FormID: q.Get("form_id"), Records: map[string]bool{}}
	// A refreshed list keeps the ticks; "Select all" ticks every listed
	// contact, "Clear" none.
	switch q.Get("select") {
	case "all":
		f.SelectAll = true
	case "none":
	default:
		for _, id := range q["record"] {
			f.Records[id] = true
		}
	}
	if isHTMX(r) && r.Header.Get("HX-Target") == "contacts" {
		d, err := u.bulkData(r.Context(), rc, f)
		if err != nil {
			u.fail(w, r, rc, err)
			return
		}
		u.renderFragment(w, http.StatusOK, "bulk", "contacts", d)
		return
	}
	u.renderBulk(w, r, rc, f, nil, http.StatusOK)
}

func (u *UI) bulkData(ctx context.Context, rc *reqCtx, f bulkForm) (*bulkData, error) {
	if f.Price == "" {
		f.Price = strconv.FormatFloat(u.d.PricePerSegment, 'f', -1, 64)
	}
	d := &bulkData{Form: f, Builtin: rc.Org.Settings.CRM == sb.CRMBuiltin, Currency: u.d.Currency, Segments: sb.CountSegments(f.Body)}
	gws, err := u.d.DB.Gateways(ctx, rc.Org.ID)
	if err != nil {
		return nil, err
	}
	for _, g := range gws {
		if g.Active && rc.User.CanUseGateway(g.ID) {
			d.Gateways = append(d.Gateways, g)
		}
	}
	if d.Builtin {
		cs, err := u.matchingContacts(ctx, rc.Org.ID, f, bulkPageContacts+1)
		if sb.IsCode(err, sb.EInvalid) {
			d.FilterError = sb.ErrorMessage(err)
		} else if err != nil {
			return nil, err
		}
		if len(cs) > bulkPageContacts {
			cs, d.More = cs[:bulkPageContacts], true
		}
		d.Contacts = cs
		// Contacts start unticked: a send to everyone listed takes "Select
		// all" first.
		if d.Form.Records == nil {
			d.Form.Records = map[string]bool{}
		}
		if f.SelectAll {
			for _, c := range cs {
				d.Form.Records[c.ID] = true
			}
		}
	}
	if u.d.Templates != nil {
		d.Templates, _ = u.d.Templates.ListTemplates(ctx, rc.User)
	}
	if u.d.Forms != nil {
		if d.Forms, err = u.d.Forms.ListForms(ctx, rc.User); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// matchingContacts returns up to limit contacts with a phone number that
// match the form's filter: a search text and an optional custom field
// "Name=Value" (compared here, page by page, as the store keeps custom
// fields as a document).
func (u *UI) matchingContacts(ctx context.Context, orgID string, f bulkForm, limit int) ([]*sb.CRMRecord, error) {
	var name, value string
	if f.Field != "" {
		n, v, ok := strings.Cut(f.Field, "=")
		if !ok || strings.TrimSpace(n) == "" {
			return nil, sb.FieldError("field", "the field filter must look like Name=Value")
		}
		name, value = strings.TrimSpace(n), strings.TrimSpace(v)
	}
	const page = 1000
	cf := store.ContactFilter{Search: f.Query, HasPhone: true, Limit: page}
	var out []*sb.CRMRecord
	for {
		cs, err := u.d.DB.Contacts(ctx, orgID, cf)
		if err != nil {
			return nil, err
		}
		for _, c := range cs {
			if name == "" || c.Fields[name] == value {
				out = append(out, c)
				if len(out) == limit {
					return out, nil
				}
			}
		}
		if len(cs) < page {
			return out, nil
		}
		cf.Offset += page
	}
}

func (u *UI) renderBulk(w http.ResponseWriter, r *http.Request, rc *reqCtx, f bulkForm, out *bulkOutcome, status int) {
	if isHTMX(r) && out != nil {
		// htmx swaps the outcome only; the form stays as it is.
		u.renderFragment(w, status, "bulk", "outcome", &bulkData{Outcome: out})
		return
	}
	d, err := u.bulkData(r.Context(), rc, f)
	if err != nil {
		u.fail(w, r, rc, err)
		return
	}
	d.Outcome = out
	u.render(w, status, "bulk", u.newPage(r, rc, "bulk", "Bulk SMS", d))
}

// readBulkForm reads the posted form.
func readBulkForm(r *http.Request) bulkForm {
	f := bulkForm{Source: r.PostFormValue("source"), Query: strings.TrimSpace(r.PostFormValue("q")), Field: strings.TrimSpace(r.PostFormValue("field")),
		Body: r.PostFormValue("body"), TemplateID: r.PostFormValue("template_id"), FormID: r.PostFormValue("form_id"), GatewayID: r.PostFormValue("gateway"),
		Price: strings.TrimSpace(r.PostFormValue("price")), Records: map[string]bool{}}
	for _, id := range r.PostForm["record"] {
		f.Records[id] = true
	}
	return f
}

// labeled is a recipient with how to name it in the preview.
type labeled struct {
	hub.Recipient
	Line int
}

// recipients gathers the recipients the form names.
func (u *UI) recipients(ctx context.Context, rc *reqCtx, r *http.Request, f bulkForm) ([]labeled, error) {
	var out []labeled
	switch f.Source {
	case sourceSelected:
		for _, id := range r.PostForm["record"] {
			if id = strings.TrimSpace(id); id != "" {
				out = append(out, labeled{Recipient: hub.Recipient{RecordID: id}})
			}
		}
		if len(out) == 0 {
			return nil, sb.FieldError("record", "tick at least one contact, or choose another source of recipients")
		}
		if len(out) > hub.MaxBulkRecipients {
			return nil, sb.FieldError("record", "a bulk send has at most %d recipients", hub.MaxBulkRecipients)
		}
	case sourceFilter:
		if rc.Org.Settings.CRM != sb.CRMBuiltin {
			return nil, sb.FieldError("source", "contact filters need the built-in CRM; upload a CSV file instead")
		}
		cs, err := u.matchingContacts(ctx, rc.Org.ID, f, hub.MaxBulkRecipients+1)
		if err != nil {
			return nil, err
		}
		if len(cs) > hub.MaxBulkRecipients {
			return nil, sb.FieldError("q", "more than %d contacts match; narrow the filter", hub.MaxBulkRecipients)
		}
		for _, c := range cs {
			out = append(out, labeled{Recipient: hub.Recipient{RecordID: c.ID}})
		}
		if len(out) == 0 {
			return nil, sb.FieldError("q", "no contact with a phone number matches the filter")
		}
	case sourceCSV:
		file, _, err := r.FormFile("csv")
		if err != nil {
			return nil, sb.FieldError("csv", "choose a CSV file to upload")
		}
		defer file.Close()
		rows, err := parseRecipientsCSV(file, hub.MaxBulkRecipients)
		if err != nil {
			return nil, err
		}
		for _, row := range rows {
			out = append(out, labeled{Recipient: row.Recipient, Line: row.Line})
		}
	default:
		return nil, sb.FieldError("source", "choose where the recipients come from")
	}
	return out, nil
}

func (u *UI) bulkPreview(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	f := readBulkForm(r)
	p, err := u.preview(r.Context(), rc, r, f)
	if err != nil {
		u.renderBulk(w, r, rc, f, &bulkOutcome{Error: sb.ErrorMessage(err)}, sbhttp.StatusOf(sb.ErrorCode(err)))
		return
	}
	u.renderBulk(w, r, rc, f, &bulkOutcome{Preview: p}, http.StatusOK)
}

// preview works a bulk send out without sending it, with the same rules as
// hub.Bulk: records with the global opt-out flag (also found by a number
// given alone), missing, invalid and
// duplicate numbers are left out; numbers opted out on the gateway (or not
// opted in, in mandatory mode) are blocked. Subscriptions are read in one
// set-based query. Segments are counted on the bodies as they will be sent:
// the send's own content hooks (tracked links, the form's first question)
// run on them (hub.PreviewBulkBodies).
func (u *UI) preview(ctx context.Context, rc *reqCtx, r *http.Request, f bulkForm) (*bulkPreview, error) {
	org := rc.Org
	gw, err := u.bulkGateway(ctx, rc, f)
	if err != nil {
		return nil, err
	}
	price, err := parsePrice(f.Price)
	if err != nil {
		return nil, err
	}
	if f.TemplateID == "" && f.FormID == "" && strings.TrimSpace(f.Body) == "" {
		return nil, sb.FieldError("body", "write the message, pick a template, or attach an SMS form")
	}
	recips, err := u.recipients(ctx, rc, r, f)
	if err != nil {
		return nil, err
	}
	p := &bulkPreview{GatewayName: gw.Name, Recipients: len(recips), Price: price, Currency: u.d.Currency, Template: f.TemplateID != ""}
	// The distinct bodies as written, and which one each recipient sent to
	// gets.
	var bodies []string
	index := map[string]int{}
	body := func(b string) int {
		i, ok := index[b]
		if !ok {
			i = len(bodies)
			index[b] = i
			bodies = append(bodies, b)
		}
		return i
	}
	if f.TemplateID == "" {
		body(f.Body)
	}
	var sent []int
	sampleFor := ""

	records := map[string]sb.CRMRecord{}
	var ids []string
	for _, in := range recips {
		if in.RecordID != "" {
			ids = append(ids, in.RecordID)
		}
	}
	// Numbers without a record: the records that have them (global
	// opt-out), in one set-based lookup.
	var phoneOnly []string
	for _, in := range recips {
		if in.RecordID == "" && in.To != "" {
			if phone, err := sb.ParsePhone(in.To, org.Settings.DefaultRegion); err == nil {
				phoneOnly = append(phoneOnly, phone)
			}
		}
	}
	var byPhone map[string][]sb.CRMRecord
	if len(ids) > 0 || len(phoneOnly) > 0 {
		crm, err := u.crm(ctx, org)
		if err != nil {
			return nil, err
		}
		if len(ids) > 0 {
			recs, err := crm.GetRecords(ctx, org, ids)
			if err != nil {
				return nil, sb.Wrap(err, sb.EUnavailable, "the CRM could not be asked about the recipients' records")
			}
			for _, rec := range recs {
				records[rec.ID] = rec
			}
		}
		if len(phoneOnly) > 0 {
			// As hub.Bulk: while the CRM is offline no record can be read.
			if byPhone, err = crm.FindByPhones(ctx, org, phoneOnly); err != nil && !sb.CRMOffline(err) {
				return nil, sb.Wrap(err, sb.EUnavailable, "the CRM could not be asked which records have the recipients' numbers (their global opt-out flags)")
			}
		}
	}
	type target struct {
		who  string
		hash []byte
		rec  *sb.CRMRecord
	}
	var targets []target
	seen := map[string]bool{}
	for _, in := range recips {
		who := recipientLabel(in, records)
		to := in.To
		var rec *sb.CRMRecord
		if in.RecordID != "" {
			found, ok := records[in.RecordID]
			if !ok {
				p.exclude(who, "CRM record not found")
				continue
			}
			if found.OptOut {
				p.exclude(who, "Global opt-out")
				continue
			}
			rec = &found
			if to == "" {
				to = found.Phone
			}
		}
		if to == "" {
			p.exclude(who, "No phone number")
			continue
		}
		phone, err := sb.ParsePhone(to, org.Settings.DefaultRegion)
		if err != nil {
			p.exclude(who, "Invalid phone number: "+sb.ErrorMessage(err))
			continue
		}
		if seen[phone] {
			p.exclude(who+" "+sb.MaskPhone(phone), "Duplicate phone number")
			continue
		}
		seen[phone] = true
		if in.RecordID == "" {
			who += " " + sb.MaskPhone(phone)
			recs := byPhone[phone]
			if slices.ContainsFunc(recs, func(r sb.CRMRecord) bool { return r.OptOut }) {
				p.exclude(who, "Global opt-out")
				continue
			}
			if len(recs) == 1 {
				rec = &recs[0]
			}
		}
		targets = append(targets, target{who: who, hash: u.d.DB.Hasher().Phone(phone), rec: rec})
	}
	hashes := make([][]byte, len(targets))
	for i, t := range targets {
		hashes[i] = t.hash
	}
	statuses, err := u.d.DB.StoredSubscriptionStatuses(ctx, gw.ID, hashes)
	if err != nil {
		return nil, err
	}
	for _, t := range targets {
		var sub *sb.Subscription
		if st, ok := statuses[string(t.hash)]; ok {
			sub = &sb.Subscription{Status: st}
		}
		switch st := sb.EffectiveStatus(sub, org.Settings.OptInMode); st {
		case sb.OptedOut:
			p.block(t.who, "Opted out on "+gw.Name+": recorded with Status Error, Debug “"+sb.DebugPreviousOptOut+"”")
			continue
		case sb.NoOptIn:
			p.block(t.who, "No opt-in on "+gw.Name+" (mandatory opt-in): recorded with Status Error, Debug “"+sb.DebugNoOptIn+"”")
			continue
		}
		text := f.Body
		if f.TemplateID != "" && u.d.Hub.Renderer != nil {
			rendered, err := u.d.Hub.Renderer.Render(ctx, org, rc.User, f.TemplateID, t.rec)
			if err != nil {
				if !sb.IsCode(err, sb.EInvalid) {
					return nil, err
				}
				p.exclude(t.who, "Template: "+sb.ErrorMessage(err))
				continue
			}
			text = rendered
		}
		if len(sent) == 0 {
			sampleFor = t.who
		}
		p.ToSend++
		sent = append(sent, body(text))
	}
	final, err := u.d.Hub.PreviewBulkBodies(ctx, rc.User, gw, f.FormID, bodies)
	if err != nil {
		return nil, err
	}
	segs := make([]sb.SegmentInfo, len(final))
	for i, b := range final {
		segs[i] = sb.CountSegments(b)
	}
	if f.TemplateID == "" {
		p.SegmentsPer, p.Encoding, p.Sample = segs[0].Segments, segs[0].Encoding, final[0]
	} else if len(sent) > 0 {
		p.Sample, p.SampleFor = final[sent[0]], sampleFor
	}
	for _, i := range sent {
		p.TotalSegments += segs[i].Segments
	}
	p.Cost = fmt.Sprintf("%.2f", float64(p.TotalSegments)*price)
	return p, nil
}

func (p *bulkPreview) exclude(who, reason string) {
	p.ExcludedN++
	if len(p.Excluded) < maxListed {
		p.Excluded = append(p.Excluded, bulkLine{who, reason})
	}
}

func (p *bulkPreview) block(who, reason string) {
	p.BlockedN++
	if len(p.Blocked) < maxListed {
		p.Blocked = append(p.Blocked, bulkLine{who, reason})
	}
}

func recipientLabel(in labeled, records map[string]sb.CRMRecord) string {
	if in.RecordID != "" {
		if r, ok := records[in.RecordID]; ok {
			if name := strings.TrimSpace(r.FirstName + " " + r.LastName); name != "" {
				return name
			}
		}
		return "Record " + in.RecordID
	}
	if in.Line > 0 {
		return fmt.Sprintf("CSV line %d", in.Line)
	}
	return "Recipient"
}

func parsePrice(s string) (float64, error) {
	if s == "" {
		return 0, nil
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v < 0 || v > 100 || v != v {
		return 0, sb.FieldError("price", "the price per segment must be a number from 0 to 100")
	}
	return v, nil
}

func (u *UI) bulkGateway(ctx context.Context, rc *reqCtx, f bulkForm) (*sb.Gateway, error) {
	if f.GatewayID == "" {
		return nil, sb.FieldError("gateway", "choose a gateway")
	}
	gw, err := u.d.DB.Gateway(ctx, rc.Org.ID, f.GatewayID)
	if err != nil {
		return nil, err
	}
	if err := rc.User.RequireGateway(gw); err != nil {
		return nil, err
	}
	if !gw.Active {
		return nil, sb.Errorf(sb.EConflict, "gateway %s is inactive", gw.Name)
	}
	return gw, nil
}

func (u *UI) bulkSend(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	ctx := r.Context()
	f := readBulkForm(r)
	fail := func(err error) {
		u.renderBulk(w, r, rc, f, &bulkOutcome{Error: notSent(err)}, sbhttp.StatusOf(sb.ErrorCode(err)))
	}
	if _, err := u.bulkGateway(ctx, rc, f); err != nil {
		fail(err)
		return
	}
	recips, err := u.recipients(ctx, rc, r, f)
	if err != nil {
		fail(err)
		return
	}
	req := hub.BulkRequest{GatewayID: f.GatewayID, Body: f.Body, TemplateID: f.TemplateID, FormID: f.FormID, Recipients: make([]hub.Recipient, len(recips))}
	if req.TemplateID != "" {
		req.Body = ""
	}
	for i, in := range recips {
		req.Recipients[i] = in.Recipient
	}
	res, err := u.d.Hub.Bulk(ctx, rc.User, req)
	if err != nil {
		if sbhttp.StatusOf(sb.ErrorCode(err)) >= 500 {
			u.d.Log.Error("ui bulk send failed", "err", err)
		}
		fail(err)
		return
	}
	prog, err := u.progress(ctx, rc, res.BatchID)
	if err != nil {
		u.fail(w, r, rc, err)
		return
	}
	u.renderBulk(w, r, rc, bulkForm{Source: sourceSelected, GatewayID: f.GatewayID, Price: f.Price}, &bulkOutcome{Result: res, Progress: prog}, http.StatusAccepted)
}

// progressData is a bulk send's progress and results by status.
type progressData struct {
	ID       string
	Gateway  string
	Total    int
	Done     int
	Finished bool
	Counts   []statusCount
	// Excluded lists at most maxListed of the ExcludedN recipients left out.
	Excluded  []bulkLine
	ExcludedN int
}

type statusCount struct {
	Status sb.Status
	N      int
}

func (u *UI) progress(ctx context.Context, rc *reqCtx, id string) (*progressData, error) {
	b, err := u.d.Hub.Batch(ctx, rc.User, id)
	if err != nil {
		return nil, err
	}
	p := &progressData{ID: b.ID, Finished: b.Done}
	if gw, err := u.d.DB.Gateway(ctx, rc.Org.ID, b.GatewayID); err == nil {
		p.Gateway = gw.Name
	}
	for _, st := range sb.Statuses {
		if n := b.Counts[st]; n > 0 {
			p.Counts = append(p.Counts, statusCount{st, n})
			p.Total += n
			if st != sb.StatusQueued {
				p.Done += n
			}
		}
	}
	var excl []hub.Excluded
	if len(b.Exclusions) > 0 {
		_ = json.Unmarshal(b.Exclusions, &excl)
	}
	p.ExcludedN = len(excl)
	excl = excl[:min(len(excl), maxListed)]
	names := map[string]string{}
	if rc.Org.Settings.CRM == sb.CRMBuiltin {
		var ids []string
		for _, x := range excl {
			if x.RecordID != "" {
				ids = append(ids, x.RecordID)
			}
		}
		if len(ids) > 0 {
			cs, err := u.d.DB.ContactsByIDs(ctx, rc.Org.ID, ids)
			if err != nil {
				return nil, err
			}
			for _, c := range cs {
				names[c.ID] = strings.TrimSpace(c.FirstName + " " + c.LastName)
			}
		}
	}
	for _, x := range excl {
		who := names[x.RecordID]
		switch {
		case who != "":
		case x.RecordID != "":
			who = "Record " + x.RecordID
		default:
			who = fmt.Sprintf("Recipient %d", x.Index+1)
		}
		if x.To != "" {
			who += " " + x.To
		}
		p.Excluded = append(p.Excluded, bulkLine{Who: who, Reason: x.Reason})
	}
	return p, nil
}

func (u *UI) batchPage(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	p, err := u.progress(r.Context(), rc, r.PathValue("id"))
	if err != nil {
		u.fail(w, r, rc, err)
		return
	}
	u.render(w, http.StatusOK, "batch", u.newPage(r, rc, "bulk", "Bulk send", p))
}

// batchProgress answers the progress bar's poll.
func (u *UI) batchProgress(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	p, err := u.progress(r.Context(), rc, r.PathValue("id"))
	if err != nil {
		u.fail(w, r, rc, err)
		return
	}
	u.renderFragment(w, http.StatusOK, "batch", "progress", p)
}
