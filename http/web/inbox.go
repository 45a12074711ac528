package web

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	sb "github.com/switchboard/switchboard"
	"github.com/switchboard/switchboard/hub"
	"github.com/switchboard/switchboard/store"
)

// inboxLimit is how many unread messages the inbox lists at once.
const inboxLimit = 100

type inboxItem struct {
	store.InboxItem
	GatewayName string
	// Who names the sender: the contact's name, else the number.
	Who string
	// Link opens the conversation.
	Link string
}

type inboxData struct {
	Items []inboxItem
	Total int
	// CRMNotice says why bodies and numbers are missing (the org's CRM
	// cannot be reached).
	CRMNotice string
}

// inboxCRMData is what an external CRM holds of an inbox page's messages:
// their records by message id and the names of their CRM records by id.
type inboxCRMData struct {
	recs  map[string]sb.CRMMessageRecord
	names map[string]string
}

// inboxFromCRM reads the message records of the items from an external CRM
// (Salesforce keeps the bodies and numbers Switchboard does not) in one
// batched call, and the names of their CRM records in another, at most
// once per ThreadTTL for the same items.
func (u *UI) inboxFromCRM(ctx context.Context, rc *reqCtx, items []store.InboxItem) (inboxCRMData, error) {
	ids := make([]string, len(items))
	for i, it := range items {
		ids[i] = it.MessageID
	}
	sorted := slices.Sorted(slices.Values(ids))
	sum := sha256.Sum256([]byte(strings.Join(sorted, ",")))
	key := rc.Org.ID + "\x00inbox\x00" + hex.EncodeToString(sum[:])
	return u.inboxCRM.get(ctx, key, func(ctx context.Context) (inboxCRMData, error) {
		d := inboxCRMData{names: map[string]string{}}
		crm, err := u.d.Hub.CRMs.For(ctx, rc.Org)
		if err != nil {
			return d, hub.CRMUnreachable(rc.Org, err)
		}
		reader, ok := crm.(sb.CRMMessageReader)
		if !ok {
			return d, nil
		}
		if d.recs, err = reader.MessagesByID(ctx, rc.Org, ids); err != nil {
			return d, hub.CRMUnreachable(rc.Org, err)
		}
		var recordIDs []string
		for _, it := range items {
			id := it.RecordID
			if id == "" {
				id = d.recs[it.MessageID].RecordID
			}
			if id != "" && !slices.Contains(recordIDs, id) {
				recordIDs = append(recordIDs, id)
			}
		}
		if len(recordIDs) == 0 {
			return d, nil
		}
		recs, err := crm.GetRecords(ctx, rc.Org, recordIDs)
		var ce *sb.CRMError
		if errors.As(err, &ce) {
			return d, hub.CRMUnreachable(rc.Org, err)
		}
		for _, r := range recs { // names are a nicety: other errors leave them out
			d.names[r.ID] = strings.TrimSpace(r.FirstName + " " + r.LastName)
		}
		return d, nil
	})
}

func (u *UI) inbox(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	u.renderInbox(w, r, rc, http.StatusOK, "", "")
}

func (u *UI) renderInbox(w http.ResponseWriter, r *http.Request, rc *reqCtx, status int, notice, errMsg string) {
	ctx := r.Context()
	items, total, err := u.d.DB.Inbox(ctx, rc.Org.ID, rc.User.VisibleGateways(), inboxLimit)
	if err != nil {
		u.fail(w, r, rc, err)
		return
	}
	names, err := u.gatewayNames(ctx, rc.Org.ID)
	if err != nil {
		u.fail(w, r, rc, err)
		return
	}
	contacts := map[string]string{}
	if rc.Org.Settings.CRM == sb.CRMBuiltin {
		var ids []string
		for _, it := range items {
			if it.RecordID != "" {
				ids = append(ids, it.RecordID)
			}
		}
		if len(ids) > 0 {
			cs, err := u.d.DB.ContactsByIDs(ctx, rc.Org.ID, ids)
			if err != nil {
				u.fail(w, r, rc, err)
				return
			}
			for _, c := range cs {
				contacts[c.ID] = strings.TrimSpace(c.FirstName + " " + c.LastName)
			}
		}
	}
	d := inboxData{Total: total}
	if rc.Org.Settings.CRM != sb.CRMBuiltin && len(items) > 0 {
		ext, err := u.inboxFromCRM(ctx, rc, items)
		if err != nil && !sb.IsCode(err, sb.EUnavailable) {
			u.fail(w, r, rc, err)
			return
		}
		if err != nil {
			d.CRMNotice = sb.ErrorMessage(err)
		}
		for i, it := range items {
			rec, ok := ext.recs[it.MessageID]
			if !ok {
				continue
			}
			if it.RecordID == "" {
				it.RecordID = rec.RecordID
			}
			it.Phone, it.Body = rec.Phone, rec.Body
			items[i] = it
		}
		contacts = ext.names
	}
	for _, it := range items {
		x := inboxItem{InboxItem: it, GatewayName: names[it.GatewayID], Who: contacts[it.RecordID]}
		if x.Who == "" {
			x.Who = it.Phone
		}
		switch {
		case it.RecordID != "":
			x.Link = "/ui/conversation?" + url.Values{"record": {it.RecordID}, "gateway": {it.GatewayID}}.Encode()
		case it.Phone != "":
			x.Link = "/ui/conversation?" + url.Values{"phone": {it.Phone}, "gateway": {it.GatewayID}}.Encode()
		}
		d.Items = append(d.Items, x)
	}
	p := u.newPage(r, rc, "inbox", "Inbox", d)
	p.Notice, p.Error = notice, errMsg
	u.render(w, status, "inbox", p)
}

// markRead marks the ticked messages read (or the one whose button was
// pressed).
func (u *UI) markRead(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	ids := r.PostForm["ids"]
	if one := r.PostFormValue("one"); one != "" {
		ids = []string{one}
	}
	if len(ids) == 0 {
		u.renderInbox(w, r, rc, http.StatusBadRequest, "", "Tick the messages to mark read first.")
		return
	}
	if len(ids) > inboxLimit {
		u.renderInbox(w, r, rc, http.StatusBadRequest, "", fmt.Sprintf("At most %d messages can be marked at once.", inboxLimit))
		return
	}
	var n int
	err := u.d.DB.Tx(r.Context(), func(tx *store.Tx) error {
		var err error
		n, err = tx.MarkRead(r.Context(), rc.Org.ID, rc.User.VisibleGateways(), ids)
		return err
	})
	if err != nil {
		u.fail(w, r, rc, err)
		return
	}
	u.renderInbox(w, r, rc, http.StatusOK, fmt.Sprintf("Marked %d message%s read.", n, plural(n)), "")
}
