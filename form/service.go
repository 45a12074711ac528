package form

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"time"
	"unicode/utf8"

	sb "github.com/switchboard/switchboard"
	"github.com/switchboard/switchboard/hub"
	"github.com/switchboard/switchboard/store"
)

// MaxNameChars bounds a form's name.
const MaxNameChars = 100

// How a session started.
const (
	StartedByMessage   = "message"
	StartedByQueryCode = "query_code"
)

// Service manages form templates and runs form sessions; it is both a
// hub.OutgoingHook (sends with form_id start sessions) and a
// hub.IncomingHook (replies answer them, query codes start them).
type Service struct {
	DB  *store.DB
	Hub *hub.Hub
	// Now is the clock of session timeouts (default: the store's). Tests
	// set a controllable one before any traffic.
	Now func() time.Time
	Log *slog.Logger
}

var (
	_ hub.OutgoingHook = (*Service)(nil)
	_ hub.IncomingHook = (*Service)(nil)
	_ hub.OptOutHook   = (*Service)(nil)
)

// Why sessions are cancelled.
const (
	detailOptedOut   = "The recipient opted out"
	detailNotOptedIn = "The recipient is not opted in"
)

// New returns the form service.
func New(db *store.DB, h *hub.Hub) *Service {
	return &Service{DB: db, Hub: h, Now: db.Now, Log: h.Log}
}

func (s *Service) now() time.Time { return s.Now().UTC() }

// CanManage reports whether u may create, edit and delete form templates:
// System Admin and Limited Access users may.
func CanManage(u *sb.User) bool { return u.IsAdmin() || u.Has(sb.PermLimitedAccess) }

func requireManage(u *sb.User) error {
	if CanManage(u) {
		return nil
	}
	return sb.Errorf(sb.EForbidden, "managing SMS forms needs the %q or %q permission set", sb.PermSystemAdmin, sb.PermLimitedAccess)
}

// Input creates or replaces a form template.
type Input struct {
	Name string `json:"name"`
	Definition
}

func toForm(f *store.Form, codes []store.FormQueryCode) (*Form, error) {
	var d Definition
	if err := json.Unmarshal([]byte(f.Definition), &d); err != nil {
		return nil, err
	}
	d.QueryCodes = []QueryCode{}
	for _, c := range codes {
		d.QueryCodes = append(d.QueryCodes, QueryCode(c))
	}
	return &Form{ID: f.ID, Name: f.Name, Version: f.Version, Definition: d, CreatedBy: f.CreatedBy, UpdatedBy: f.UpdatedBy,
		CreatedAt: f.CreatedAt, UpdatedAt: f.UpdatedAt}, nil
}

// gatewayKeywords returns the org's gateways' keywords, normalized, by
// gateway id.
func (s *Service) gatewayKeywords(ctx context.Context, orgID string) (map[string][]string, error) {
	gws, err := s.DB.Gateways(ctx, orgID)
	if err != nil {
		return nil, err
	}
	out := make(map[string][]string, len(gws))
	for _, g := range gws {
		var list []string
		for _, set := range [][]string{g.Keywords.OptOut, g.Keywords.OptIn, g.Keywords.Help} {
			for _, k := range set {
				list = append(list, sb.NormalizeKeyword(k))
			}
		}
		out[g.ID] = list
	}
	return out, nil
}

func (s *Service) check(ctx context.Context, user *sb.User, in *Input) ([]store.FormQueryCode, string, error) {
	in.Name = strings.TrimSpace(in.Name)
	if in.Name == "" {
		return nil, "", sb.FieldError("name", "name is required")
	}
	if n := utf8.RuneCountInString(in.Name); n > MaxNameChars {
		return nil, "", sb.FieldError("name", "name is %d characters; the most is %d", n, MaxNameChars)
	}
	kws, err := s.gatewayKeywords(ctx, user.OrgID)
	if err != nil {
		return nil, "", err
	}
	if err := in.Definition.Normalize(kws); err != nil {
		return nil, "", err
	}
	codes := make([]store.FormQueryCode, len(in.QueryCodes))
	for i, c := range in.QueryCodes {
		codes[i] = store.FormQueryCode(c)
	}
	d := in.Definition
	d.QueryCodes = nil // stored in their own table
	b, _ := json.Marshal(d)
	return codes, string(b), nil
}

// Create stores a new form template (System Admin, Limited Access).
func (s *Service) Create(ctx context.Context, user *sb.User, in Input) (*Form, error) {
	if err := requireManage(user); err != nil {
		return nil, err
	}
	codes, def, err := s.check(ctx, user, &in)
	if err != nil {
		return nil, err
	}
	f := &store.Form{OrgID: user.OrgID, Name: in.Name, Definition: def, CreatedBy: user.ID, UpdatedBy: user.ID}
	if err := s.DB.Tx(ctx, func(tx *store.Tx) error { return tx.CreateForm(ctx, f, codes) }); err != nil {
		return nil, err
	}
	return toForm(f, codes)
}

// Update replaces a form template with a new version (System Admin,
// Limited Access). Sessions already running finish on their version.
func (s *Service) Update(ctx context.Context, user *sb.User, id string, in Input) (*Form, error) {
	if err := requireManage(user); err != nil {
		return nil, err
	}
	codes, def, err := s.check(ctx, user, &in)
	if err != nil {
		return nil, err
	}
	var f *store.Form
	err = s.DB.Tx(ctx, func(tx *store.Tx) error {
		var err error
		if f, err = tx.Form(ctx, user.OrgID, id); err != nil {
			return err
		}
		f.Name, f.Definition, f.UpdatedBy = in.Name, def, user.ID
		return tx.UpdateForm(ctx, f, codes)
	})
	if err != nil {
		return nil, err
	}
	return toForm(f, codes)
}

// Delete deletes a form template (System Admin, Limited Access).
func (s *Service) Delete(ctx context.Context, user *sb.User, id string) error {
	if err := requireManage(user); err != nil {
		return err
	}
	return s.DB.Tx(ctx, func(tx *store.Tx) error { return tx.DeleteForm(ctx, user.OrgID, id) })
}

// Get returns a form template (any user may use forms).
func (s *Service) Get(ctx context.Context, user *sb.User, id string) (*Form, error) {
	f, err := s.DB.Form(ctx, user.OrgID, id)
	if err != nil {
		return nil, err
	}
	codes, err := s.DB.FormQueryCodes(ctx, f.ID)
	if err != nil {
		return nil, err
	}
	return toForm(f, codes)
}

// List returns the org's form templates.
func (s *Service) List(ctx context.Context, user *sb.User) ([]*Form, error) {
	fs, err := s.DB.Forms(ctx, user.OrgID)
	if err != nil {
		return nil, err
	}
	out := make([]*Form, 0, len(fs))
	for _, f := range fs {
		codes, err := s.DB.FormQueryCodes(ctx, f.ID)
		if err != nil {
			return nil, err
		}
		v, err := toForm(f, codes)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// Sessions lists a form's sessions, newest first: status and progress, no
// answers (those are in the CRM).
func (s *Service) Sessions(ctx context.Context, user *sb.User, formID string, limit int) ([]*store.FormSession, error) {
	if _, err := s.DB.Form(ctx, user.OrgID, formID); err != nil {
		return nil, err
	}
	return s.DB.FormSessions(ctx, user.OrgID, formID, limit)
}

// --- sessions ---

// loaded is a form version a session runs on.
type loaded struct {
	name string
	def  Definition
}

func loadVersion(ctx context.Context, tx *store.Tx, formID string, version int) (*loaded, error) {
	name, raw, err := tx.FormVersion(ctx, formID, version)
	if err != nil {
		return nil, err
	}
	l := &loaded{name: name}
	if err := json.Unmarshal([]byte(raw), &l.def); err != nil {
		return nil, err
	}
	return l, nil
}

// PrepareOutgoing implements hub.OutgoingHook: a message sent with form_id
// starts a session with its recipient; its body gets the form's first
// question (after the text given, if any). The session's form record is
// owned and created by the sending user, like the message.
func (s *Service) PrepareOutgoing(ctx context.Context, tx *store.Tx, org *sb.Org, gw *sb.Gateway, msgs []hub.Outgoing) error {
	now := s.now()
	forms := map[string]*store.Form{}
	defs := map[string]*Definition{}
	var sessions []*store.FormSession
	for _, o := range msgs {
		if o.FormID == "" || o.Msg == nil || o.Content == nil {
			continue
		}
		f, ok := forms[o.FormID]
		if !ok {
			var err error
			if f, err = tx.Form(ctx, org.ID, o.FormID); err != nil {
				if sb.IsCode(err, sb.ENotFound) {
					return &sb.Error{Code: sb.ENotFound, Field: "form_id", Message: "form " + o.FormID + " not found"}
				}
				return err
			}
			var d Definition
			if err := json.Unmarshal([]byte(f.Definition), &d); err != nil {
				return err
			}
			forms[o.FormID], defs[o.FormID] = f, &d
		}
		d := defs[o.FormID]
		if o.Content.Template != "" {
			return sb.FieldError("form_id", "a form cannot start with a WhatsApp template message: its body (the first question) is not sent")
		}
		first := d.Questions[0]
		body := strings.TrimSpace(o.Content.Body)
		if body == "" {
			body = first.Text
		} else if !strings.Contains(body, first.Text) {
			body += "\n" + first.Text
		}
		if n := utf8.RuneCountInString(body); n > hub.MaxBodyChars {
			return sb.FieldError("body", "with the form's first question the message is %d characters; the most is %d", n, hub.MaxBodyChars)
		}
		o.Content.Body = body
		sessions = append(sessions, &store.FormSession{
			OrgID: org.ID, FormID: f.ID, FormVersion: f.Version, GatewayID: gw.ID, PhoneHash: o.Msg.PhoneHash, Phone: o.Content.Phone,
			RecordID: o.Msg.RecordID, MessageID: o.Msg.ID, OwnerID: o.Msg.OwnerID, CreatedByID: o.Msg.CreatedByID,
			StartedBy: StartedByMessage, Question: first.Key, StartedAt: now, ExpiresAt: now.Add(d.TimeoutDuration()),
		})
	}
	if len(sessions) == 0 {
		return nil
	}
	if err := tx.StartFormSessions(ctx, sessions); err != nil {
		return err
	}
	tx.AddJobOnce(WritebackArgs{OrgID: org.ID}, writebackOpts())
	return nil
}

// OptedOut implements hub.OptOutHook: the open session of the number on
// the gateway is cancelled at once, and its form record is written as
// Cancelled. An opt-in later (START) does not resume it.
func (s *Service) OptedOut(ctx context.Context, tx *store.Tx, orgID, gatewayID string, phoneHash []byte) error {
	sess, err := tx.OpenFormSession(ctx, gatewayID, phoneHash)
	if err != nil || sess == nil {
		return err
	}
	if err := tx.EndFormSession(ctx, sess.ID, store.SessionCancelled, detailOptedOut, s.now()); err != nil {
		return err
	}
	tx.AddJobOnce(WritebackArgs{OrgID: orgID}, writebackOpts())
	return nil
}

// HandleIncoming implements hub.IncomingHook: a reply from a phone with an
// open session on the gateway answers its current question; otherwise a
// form's query code starts a session. The reply returned is the next
// question, a hint and the question again, or the closing message. A
// number that may not be texted on the gateway (opted out, or not opted in
// under mandatory opt-in) gets nothing: its session is cancelled and a
// query code starts none. An answer belongs to the form's owner and
// record, like the questions.
func (s *Service) HandleIncoming(ctx context.Context, tx *store.Tx, org *sb.Org, gw *sb.Gateway, msg *sb.Message, c *sb.Content) (string, error) {
	now := s.now()
	sess, err := tx.OpenFormSession(ctx, gw.ID, msg.PhoneHash)
	if err != nil {
		return "", err
	}
	if sess != nil && !sess.ExpiresAt.After(now) {
		// Timed out, and the periodic job has not closed it yet.
		if err := tx.EndFormSession(ctx, sess.ID, store.SessionExpired, "No answer before the timeout", sess.ExpiresAt); err != nil {
			return "", err
		}
		tx.AddJobOnce(WritebackArgs{OrgID: org.ID}, writebackOpts())
		sess = nil
	}
	sub, err := tx.Subscription(ctx, gw.ID, msg.PhoneHash)
	if err != nil {
		return "", err
	}
	status := sb.EffectiveStatus(sub, org.Settings.OptInMode)
	blocked := sb.BlockDebug(status) != ""
	if sess != nil {
		tx.AddJobOnce(WritebackArgs{OrgID: org.ID}, writebackOpts())
		if blocked {
			// Never text a number that may not be texted; the form ends here.
			detail := detailNotOptedIn
			if status == sb.OptedOut {
				detail = detailOptedOut
			}
			return "", tx.EndFormSession(ctx, sess.ID, store.SessionCancelled, detail, now)
		}
		if sess.OwnerID != "" {
			msg.OwnerID = sess.OwnerID
		}
		if sess.RecordID != "" {
			msg.RecordID = sess.RecordID
		}
		return s.answer(ctx, tx, org, sess, c.Body, now)
	}
	if blocked {
		return "", nil
	}
	f, err := tx.FormByQueryCode(ctx, gw.ID, sb.NormalizeKeyword(c.Body))
	if err != nil || f == nil {
		return "", err
	}
	var d Definition
	if err := json.Unmarshal([]byte(f.Definition), &d); err != nil {
		return "", err
	}
	first := d.Questions[0]
	// The form record of a session started by text: owned like the
	// incoming message (the owner of the last outgoing message to the
	// number, else the integration user), created by the integration user.
	ns := &store.FormSession{
		OrgID: org.ID, FormID: f.ID, FormVersion: f.Version, GatewayID: gw.ID, PhoneHash: msg.PhoneHash, Phone: c.Phone,
		RecordID: msg.RecordID, MessageID: msg.ID, OwnerID: msg.OwnerID, CreatedByID: org.Settings.IntegrationUserID,
		StartedBy: StartedByQueryCode, Question: first.Key, StartedAt: now, ExpiresAt: now.Add(d.TimeoutDuration()),
	}
	if err := tx.StartFormSessions(ctx, []*store.FormSession{ns}); err != nil {
		return "", err
	}
	tx.AddJobOnce(WritebackArgs{OrgID: org.ID}, writebackOpts())
	return first.Text, nil
}

// answer checks a reply against the session's question and moves on.
func (s *Service) answer(ctx context.Context, tx *store.Tx, org *sb.Org, sess *store.FormSession, reply string, now time.Time) (string, error) {
	l, err := loadVersion(ctx, tx, sess.FormID, sess.FormVersion)
	if err != nil {
		return "", err
	}
	q, _ := l.def.question(sess.Question)
	if q == nil {
		return "", tx.EndFormSession(ctx, sess.ID, store.SessionCancelled, "The form has no question "+sess.Question, now)
	}
	timeout := l.def.TimeoutDuration()
	value, hint := q.Check(reply, org.Settings.DefaultRegion)
	if hint != "" {
		return hint + " " + q.Text, tx.TouchFormSession(ctx, sess.ID, now, now.Add(timeout))
	}
	next := l.def.next(q, value)
	if err := tx.AnswerFormSession(ctx, sess, q.Key, value, next, store.SessionCompleted, now, now.Add(timeout)); err != nil {
		return "", err
	}
	if next == "" {
		return l.def.ClosingMessage, nil
	}
	nq, _ := l.def.question(next)
	return nq.Text, nil
}
