package http

import (
	"net/http"
	"strings"
	"time"

	sb "github.com/switchboard/switchboard"
	"github.com/switchboard/switchboard/hub"
	"github.com/switchboard/switchboard/store"
)

// --- messages ---

func (s *Server) sendMessage(w http.ResponseWriter, r *http.Request) {
	var req hub.SendRequest
	if err := Decode(w, r, MaxBodyBytes, &req); err != nil {
		WriteError(w, err)
		return
	}
	req.IdempotencyKey = r.Header.Get("Idempotency-Key")
	m, created, err := s.Hub.Send(r.Context(), UserFrom(r), req)
	if err != nil {
		WriteError(w, err)
		return
	}
	status := http.StatusCreated
	if !created {
		status = http.StatusOK
	}
	WriteJSON(w, status, m)
}

func (s *Server) getMessage(w http.ResponseWriter, r *http.Request) {
	u := UserFrom(r)
	m, err := s.DB.Message(r.Context(), u.OrgID, r.PathValue("id"))
	if err != nil {
		WriteError(w, err)
		return
	}
	if !u.CanUseGateway(m.GatewayID) {
		WriteError(w, sb.Errorf(sb.EForbidden, "message %s is on gateway %s, which you do not have access to; a System Admin can add it to your gateways", m.ID, m.GatewayID))
		return
	}
	WriteJSON(w, http.StatusOK, m)
}

// MessageList is a page of messages.
type MessageList struct {
	Messages []*sb.Message `json:"messages"`
	// Next is the "before" value for the following page, empty at the end.
	Next string `json:"next,omitempty"`
}

func (s *Server) listMessages(w http.ResponseWriter, r *http.Request) {
	u := UserFrom(r)
	q := r.URL.Query()
	f := store.MessageFilter{RecordID: q.Get("record_id"), GatewayID: q.Get("gateway_id"), GatewayIDs: u.VisibleGateways(),
		BatchID: q.Get("batch_id"), Direction: sb.Direction(q.Get("direction"))}
	if f.GatewayID != "" && !u.CanUseGateway(f.GatewayID) {
		WriteError(w, sb.Errorf(sb.EForbidden, "you do not have access to gateway %s; a System Admin can add it to your gateways", f.GatewayID))
		return
	}
	if f.Direction != "" && !f.Direction.Valid() {
		WriteError(w, sb.FieldError("direction", "direction must be incoming or outgoing"))
		return
	}
	if phone := q.Get("phone"); phone != "" {
		org, err := s.DB.Org(r.Context(), u.OrgID)
		if err != nil {
			WriteError(w, err)
			return
		}
		p, err := sb.ParsePhone(phone, org.Settings.DefaultRegion)
		if err != nil {
			WriteError(w, err)
			return
		}
		f.PhoneHash = s.DB.Hasher().Phone(p)
	}
	if b := q.Get("before"); b != "" {
		t, err := time.Parse(time.RFC3339Nano, b)
		if err != nil {
			WriteError(w, sb.FieldError("before", "before must be an RFC 3339 time"))
			return
		}
		f.Before = t
	}
	limit, err := QueryInt(r, "limit", 50)
	if err != nil {
		WriteError(w, err)
		return
	}
	f.Limit = limit
	ms, err := s.DB.Messages(r.Context(), u.OrgID, f)
	if err != nil {
		WriteError(w, err)
		return
	}
	out := MessageList{Messages: ms}
	if out.Messages == nil {
		out.Messages = []*sb.Message{}
	}
	if len(ms) > 0 && len(ms) == f.Limit {
		out.Next = ms[len(ms)-1].CreatedAt.Format(time.RFC3339Nano)
	}
	WriteJSON(w, http.StatusOK, out)
}

func (s *Server) bulkSend(w http.ResponseWriter, r *http.Request) {
	var req hub.BulkRequest
	if err := Decode(w, r, MaxBulkBytes, &req); err != nil {
		WriteError(w, err)
		return
	}
	req.IdempotencyKey = r.Header.Get("Idempotency-Key")
	res, err := s.Hub.Bulk(r.Context(), UserFrom(r), req)
	if err != nil {
		WriteError(w, err)
		return
	}
	status := http.StatusAccepted
	if res.Replayed {
		status = http.StatusOK
	}
	WriteJSON(w, status, res)
}

func (s *Server) getBulkSend(w http.ResponseWriter, r *http.Request) {
	b, err := s.Hub.Batch(r.Context(), UserFrom(r), r.PathValue("id"))
	if err != nil {
		WriteError(w, err)
		return
	}
	WriteJSON(w, http.StatusOK, b)
}

func (s *Server) segments(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Body string `json:"body"`
	}
	if err := Decode(w, r, MaxBodyBytes, &req); err != nil {
		WriteError(w, err)
		return
	}
	WriteJSON(w, http.StatusOK, sb.CountSegments(req.Body))
}

// --- gateways ---

func (s *Server) listGateways(w http.ResponseWriter, r *http.Request) {
	gws, err := s.DB.Gateways(r.Context(), UserFrom(r).OrgID)
	if err != nil {
		WriteError(w, err)
		return
	}
	u := UserFrom(r)
	out := make([]*hub.GatewayView, 0, len(gws))
	for _, g := range gws {
		if u.CanUseGateway(g.ID) {
			out = append(out, s.Hub.View(g))
		}
	}
	WriteJSON(w, http.StatusOK, map[string]any{"gateways": out})
}

func (s *Server) createGateway(w http.ResponseWriter, r *http.Request) {
	var req hub.GatewayRequest
	if err := Decode(w, r, MaxBodyBytes, &req); err != nil {
		WriteError(w, err)
		return
	}
	v, err := s.Hub.CreateGateway(r.Context(), UserFrom(r), req)
	if err != nil {
		WriteError(w, err)
		return
	}
	WriteJSON(w, http.StatusCreated, v)
}

func (s *Server) getGateway(w http.ResponseWriter, r *http.Request) {
	u := UserFrom(r)
	g, err := s.DB.Gateway(r.Context(), u.OrgID, r.PathValue("id"))
	if err == nil {
		err = u.RequireGateway(g)
	}
	if err != nil {
		WriteError(w, err)
		return
	}
	WriteJSON(w, http.StatusOK, s.Hub.View(g))
}

func (s *Server) updateGateway(w http.ResponseWriter, r *http.Request) {
	var req hub.GatewayRequest
	if err := Decode(w, r, MaxBodyBytes, &req); err != nil {
		WriteError(w, err)
		return
	}
	v, err := s.Hub.UpdateGateway(r.Context(), UserFrom(r), r.PathValue("id"), req)
	if err != nil {
		WriteError(w, err)
		return
	}
	WriteJSON(w, http.StatusOK, v)
}

// --- org, users, keys ---

func (s *Server) getOrg(w http.ResponseWriter, r *http.Request) {
	org, err := s.DB.Org(r.Context(), UserFrom(r).OrgID)
	if err != nil {
		WriteError(w, err)
		return
	}
	WriteJSON(w, http.StatusOK, org)
}

func (s *Server) updateSettings(w http.ResponseWriter, r *http.Request) {
	u := UserFrom(r)
	org, err := s.DB.Org(r.Context(), u.OrgID)
	if err != nil {
		WriteError(w, err)
		return
	}
	// PATCH semantics: start from the current settings.
	settings := org.Settings
	if err := Decode(w, r, MaxBodyBytes, &settings); err != nil {
		WriteError(w, err)
		return
	}
	res, err := s.Hub.UpdateSettings(r.Context(), u, settings)
	if err != nil {
		WriteError(w, err)
		return
	}
	WriteJSON(w, http.StatusOK, res)
}

func (s *Server) me(w http.ResponseWriter, r *http.Request) {
	WriteJSON(w, http.StatusOK, UserFrom(r))
}

func (s *Server) listUsers(w http.ResponseWriter, r *http.Request) {
	us, err := s.DB.Users(r.Context(), UserFrom(r).OrgID)
	if err != nil {
		WriteError(w, err)
		return
	}
	WriteJSON(w, http.StatusOK, map[string]any{"users": us})
}

// UserRequest creates or edits a user.
type UserRequest struct {
	Email       string          `json:"email"`
	Name        string          `json:"name"`
	Permissions []sb.Permission `json:"permissions"`
	CRMUserID   string          `json:"crm_user_id"`
	Password    string          `json:"password,omitempty"`
	// GatewayIDs limits the user to these gateways ([]: every gateway;
	// absent on an update: unchanged).
	GatewayIDs *[]string `json:"gateway_ids"`
}

func (s *Server) createUser(w http.ResponseWriter, r *http.Request) {
	admin := UserFrom(r)
	if err := admin.Require(sb.PermSystemAdmin); err != nil {
		WriteError(w, err)
		return
	}
	var req UserRequest
	if err := Decode(w, r, MaxBodyBytes, &req); err != nil {
		WriteError(w, err)
		return
	}
	u := &sb.User{OrgID: admin.OrgID, Email: req.Email, Name: req.Name, Permissions: req.Permissions, CRMUserID: req.CRMUserID}
	if req.GatewayIDs != nil {
		u.GatewayIDs = *req.GatewayIDs
	}
	hash := ""
	if req.Password != "" {
		var err error
		if hash, err = HashPassword(req.Password); err != nil {
			WriteError(w, err)
			return
		}
	}
	if err := s.DB.Tx(r.Context(), func(tx *store.Tx) error { return tx.CreateUser(r.Context(), u, hash) }); err != nil {
		WriteError(w, err)
		return
	}
	WriteJSON(w, http.StatusCreated, u)
}

func (s *Server) updateUser(w http.ResponseWriter, r *http.Request) {
	admin := UserFrom(r)
	if err := admin.Require(sb.PermSystemAdmin); err != nil {
		WriteError(w, err)
		return
	}
	u, err := s.DB.User(r.Context(), admin.OrgID, r.PathValue("id"))
	if err != nil {
		WriteError(w, err)
		return
	}
	var req UserRequest
	if err := Decode(w, r, MaxBodyBytes, &req); err != nil {
		WriteError(w, err)
		return
	}
	if req.Email != "" && !strings.EqualFold(req.Email, u.Email) {
		WriteError(w, sb.FieldError("email", "a user's email cannot be changed"))
		return
	}
	if req.Name != "" {
		u.Name = req.Name
	}
	if req.Permissions != nil {
		u.Permissions = req.Permissions
	}
	if req.CRMUserID != "" {
		u.CRMUserID = req.CRMUserID
	}
	if req.GatewayIDs != nil {
		u.GatewayIDs = *req.GatewayIDs
	}
	// The password is hashed (bcrypt, deliberately slow) before the
	// transaction, which then holds the writer only to store it.
	hash := ""
	if req.Password != "" {
		if hash, err = HashPassword(req.Password); err != nil {
			WriteError(w, err)
			return
		}
	}
	err = s.DB.Tx(r.Context(), func(tx *store.Tx) error {
		if err := tx.UpdateUser(r.Context(), u); err != nil {
			return err
		}
		if hash != "" {
			return tx.SetPassword(r.Context(), u.ID, hash)
		}
		return nil
	})
	if err != nil {
		WriteError(w, err)
		return
	}
	WriteJSON(w, http.StatusOK, u)
}

func (s *Server) listAPIKeys(w http.ResponseWriter, r *http.Request) {
	u := UserFrom(r)
	if err := u.Require(sb.PermSystemAdmin); err != nil {
		WriteError(w, err)
		return
	}
	keys, err := s.DB.APIKeys(r.Context(), u.OrgID)
	if err != nil {
		WriteError(w, err)
		return
	}
	if keys == nil {
		keys = []store.APIKey{}
	}
	WriteJSON(w, http.StatusOK, map[string]any{"api_keys": keys})
}

func (s *Server) createAPIKey(w http.ResponseWriter, r *http.Request) {
	u := UserFrom(r)
	if err := u.Require(sb.PermSystemAdmin); err != nil {
		WriteError(w, err)
		return
	}
	var req struct {
		Name   string `json:"name"`
		UserID string `json:"user_id"`
	}
	if err := Decode(w, r, MaxBodyBytes, &req); err != nil {
		WriteError(w, err)
		return
	}
	owner := u.ID
	if req.UserID != "" {
		if _, err := s.DB.User(r.Context(), u.OrgID, req.UserID); err != nil {
			WriteError(w, err)
			return
		}
		owner = req.UserID
	}
	var id, key string
	err := s.DB.Tx(r.Context(), func(tx *store.Tx) error {
		var err error
		id, key, err = tx.CreateAPIKey(r.Context(), u.OrgID, owner, req.Name)
		return err
	})
	if err != nil {
		WriteError(w, err)
		return
	}
	WriteJSON(w, http.StatusCreated, map[string]string{"id": id, "key": key, "user_id": owner, "note": "the key is shown once; store it now"})
}

func (s *Server) revokeAPIKey(w http.ResponseWriter, r *http.Request) {
	u := UserFrom(r)
	if err := u.Require(sb.PermSystemAdmin); err != nil {
		WriteError(w, err)
		return
	}
	if err := s.DB.Tx(r.Context(), func(tx *store.Tx) error { return tx.RevokeAPIKey(r.Context(), u.OrgID, r.PathValue("id")) }); err != nil {
		WriteError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// --- subscriptions ---

func (s *Server) subscriptionView(w http.ResponseWriter, r *http.Request) {
	phone := r.URL.Query().Get("phone")
	if phone == "" {
		WriteError(w, sb.FieldError("phone", "phone is required"))
		return
	}
	rows, err := s.Hub.SubscriptionView(r.Context(), UserFrom(r), phone)
	if err != nil {
		WriteError(w, err)
		return
	}
	WriteJSON(w, http.StatusOK, map[string]any{"subscriptions": rows})
}

func (s *Server) setSubscription(w http.ResponseWriter, r *http.Request) {
	var req hub.SubscriptionRequest
	if err := Decode(w, r, MaxBodyBytes, &req); err != nil {
		WriteError(w, err)
		return
	}
	sub, err := s.Hub.SetSubscription(r.Context(), UserFrom(r), req)
	if err != nil {
		WriteError(w, err)
		return
	}
	WriteJSON(w, http.StatusOK, sub)
}

func (s *Server) subscriptionHistory(w http.ResponseWriter, r *http.Request) {
	phone := r.URL.Query().Get("phone")
	if phone == "" {
		WriteError(w, sb.FieldError("phone", "phone is required"))
		return
	}
	ev, err := s.Hub.SubscriptionHistory(r.Context(), UserFrom(r), phone)
	if err != nil {
		WriteError(w, err)
		return
	}
	if ev == nil {
		ev = []sb.SubscriptionEvent{}
	}
	WriteJSON(w, http.StatusOK, map[string]any{"history": ev})
}

// --- built-in CRM ---

func (s *Server) builtinOrg(w http.ResponseWriter, r *http.Request) (*sb.Org, bool) {
	org, err := s.DB.Org(r.Context(), UserFrom(r).OrgID)
	if err != nil {
		WriteError(w, err)
		return nil, false
	}
	if org.Settings.CRM != sb.CRMBuiltin {
		WriteError(w, sb.Errorf(sb.EConflict, "this org uses %s as its CRM; the built-in CRM's contacts are not in use", org.Settings.CRM))
		return nil, false
	}
	return org, true
}

// ContactRequest creates or edits a built-in CRM contact.
type ContactRequest struct {
	FirstName *string           `json:"first_name"`
	LastName  *string           `json:"last_name"`
	Email     *string           `json:"email"`
	Phone     *string           `json:"phone"`
	OwnerID   *string           `json:"owner_id"`
	OptOut    *bool             `json:"opt_out"`
	Fields    map[string]string `json:"fields"`
}

func (req ContactRequest) apply(org *sb.Org, c *sb.CRMRecord) error {
	set := func(dst *string, v *string) {
		if v != nil {
			*dst = strings.TrimSpace(*v)
		}
	}
	set(&c.FirstName, req.FirstName)
	set(&c.LastName, req.LastName)
	set(&c.Email, req.Email)
	set(&c.OwnerID, req.OwnerID)
	if req.Phone != nil {
		c.Phone = ""
		if strings.TrimSpace(*req.Phone) != "" {
			p, err := sb.ParsePhone(*req.Phone, org.Settings.DefaultRegion)
			if err != nil {
				return err
			}
			c.Phone = p
		}
	}
	if req.OptOut != nil {
		c.OptOut = *req.OptOut
	}
	if req.Fields != nil {
		c.Fields = req.Fields
	}
	if c.Email != "" && !strings.Contains(c.Email, "@") {
		return sb.FieldError("email", "email must be an email address")
	}
	if c.FirstName == "" && c.LastName == "" && c.Phone == "" && c.Email == "" {
		return sb.Errorf(sb.EInvalid, "a contact needs a name, phone or email")
	}
	return nil
}

func (s *Server) listContacts(w http.ResponseWriter, r *http.Request) {
	org, ok := s.builtinOrg(w, r)
	if !ok {
		return
	}
	limit, err := QueryInt(r, "limit", 100)
	if err != nil {
		WriteError(w, err)
		return
	}
	offset, err := QueryInt(r, "offset", 0)
	if err != nil {
		WriteError(w, err)
		return
	}
	f := store.ContactFilter{Search: r.URL.Query().Get("search"), Limit: min(limit, 1000), Offset: offset}
	if v := r.URL.Query().Get("opt_out"); v != "" {
		b := v == "true"
		f.OptOut = &b
	}
	cs, err := s.DB.Contacts(r.Context(), org.ID, f)
	if err != nil {
		WriteError(w, err)
		return
	}
	if cs == nil {
		cs = []*sb.CRMRecord{}
	}
	WriteJSON(w, http.StatusOK, map[string]any{"contacts": cs})
}

func (s *Server) createContact(w http.ResponseWriter, r *http.Request) {
	org, ok := s.builtinOrg(w, r)
	if !ok {
		return
	}
	var req ContactRequest
	if err := Decode(w, r, MaxBodyBytes, &req); err != nil {
		WriteError(w, err)
		return
	}
	c := &sb.CRMRecord{OwnerID: UserFrom(r).ID}
	if err := req.apply(org, c); err != nil {
		WriteError(w, err)
		return
	}
	if err := s.DB.Tx(r.Context(), func(tx *store.Tx) error { return tx.SaveContact(r.Context(), org.ID, c) }); err != nil {
		WriteError(w, err)
		return
	}
	WriteJSON(w, http.StatusCreated, c)
}

func (s *Server) contact(w http.ResponseWriter, r *http.Request, org *sb.Org) (*sb.CRMRecord, bool) {
	cs, err := s.DB.ContactsByIDs(r.Context(), org.ID, []string{r.PathValue("id")})
	if err != nil {
		WriteError(w, err)
		return nil, false
	}
	if len(cs) == 0 {
		WriteError(w, sb.Errorf(sb.ENotFound, "contact %s not found", r.PathValue("id")))
		return nil, false
	}
	return cs[0], true
}

func (s *Server) getContact(w http.ResponseWriter, r *http.Request) {
	org, ok := s.builtinOrg(w, r)
	if !ok {
		return
	}
	if c, ok := s.contact(w, r, org); ok {
		WriteJSON(w, http.StatusOK, c)
	}
}

func (s *Server) updateContact(w http.ResponseWriter, r *http.Request) {
	org, ok := s.builtinOrg(w, r)
	if !ok {
		return
	}
	c, ok := s.contact(w, r, org)
	if !ok {
		return
	}
	var req ContactRequest
	if err := Decode(w, r, MaxBodyBytes, &req); err != nil {
		WriteError(w, err)
		return
	}
	if err := req.apply(org, c); err != nil {
		WriteError(w, err)
		return
	}
	if err := s.DB.Tx(r.Context(), func(tx *store.Tx) error { return tx.SaveContact(r.Context(), org.ID, c) }); err != nil {
		WriteError(w, err)
		return
	}
	WriteJSON(w, http.StatusOK, c)
}

func (s *Server) deleteContact(w http.ResponseWriter, r *http.Request) {
	org, ok := s.builtinOrg(w, r)
	if !ok {
		return
	}
	if err := s.DB.Tx(r.Context(), func(tx *store.Tx) error { return tx.DeleteContact(r.Context(), org.ID, r.PathValue("id")) }); err != nil {
		WriteError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) importContacts(w http.ResponseWriter, r *http.Request) {
	org, ok := s.builtinOrg(w, r)
	if !ok {
		return
	}
	if err := UserFrom(r).Require(sb.PermSystemAdmin); err != nil {
		WriteError(w, err)
		return
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/csv") {
		WriteError(w, sb.Errorf(sb.EInvalid, "Content-Type must be text/csv, not %q", ct))
		return
	}
	body := http.MaxBytesReader(w, r.Body, MaxBulkBytes)
	res, err := s.Builtin.ImportCSV(r.Context(), org, UserFrom(r), body)
	if err != nil {
		var mbe *http.MaxBytesError
		if asMaxBytes(err, &mbe) {
			err = sb.Errorf(sb.ETooLarge, "CSV is larger than %d bytes", MaxBulkBytes)
		}
		WriteError(w, err)
		return
	}
	WriteJSON(w, http.StatusOK, res)
}

// conversation lists the message records of a CRM record or number as the
// org's CRM holds them (the built-in CRM or Salesforce), without those of
// gateways the user may not use.
func (s *Server) conversation(w http.ResponseWriter, r *http.Request) {
	user := UserFrom(r)
	org, err := s.DB.Org(r.Context(), user.OrgID)
	if err != nil {
		WriteError(w, err)
		return
	}
	q := r.URL.Query()
	record, phone := strings.TrimSpace(q.Get("record_id")), strings.TrimSpace(q.Get("phone"))
	if record == "" && phone == "" {
		WriteError(w, sb.Errorf(sb.EInvalid, "record_id or phone is required"))
		return
	}
	if phone != "" {
		p, err := sb.ParsePhone(phone, org.Settings.DefaultRegion)
		if err != nil {
			WriteError(w, err)
			return
		}
		phone = p
	}
	msgs, err := s.Hub.Conversation(r.Context(), org, user, record, phone, sb.MaxConversation)
	if err != nil {
		WriteError(w, err)
		return
	}
	WriteJSON(w, http.StatusOK, map[string]any{"messages": msgs})
}
