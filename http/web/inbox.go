package web

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"

	sb "github.com/switchboard/switchboard"
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
