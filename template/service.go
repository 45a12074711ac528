package template

import (
	"context"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	sb "github.com/switchboard/switchboard"
	"github.com/switchboard/switchboard/hub"
	"github.com/switchboard/switchboard/store"
)

// MaxNameChars bounds a template's name.
const MaxNameChars = 100

// cacheTTL bounds how stale a parsed template may be in this process (edits
// made by other processes show up within it; this process's own at once).
const cacheTTL = 5 * time.Second

// Service manages an org's templates and renders them; it implements
// hub.Renderer.
type Service struct {
	DB   *store.DB
	CRMs hub.CRMs

	mu    sync.Mutex
	cache map[string]cached
}

type cached struct {
	t      *store.Template
	parsed *Template
	at     time.Time
}

var _ hub.Renderer = (*Service)(nil)

// New returns the template service.
func New(db *store.DB, crms hub.CRMs) *Service {
	return &Service{DB: db, CRMs: crms, cache: map[string]cached{}}
}

// CanManage reports whether u may create, edit and delete templates: System
// Admin and Limited Access users may.
func CanManage(u *sb.User) bool { return u.IsAdmin() || u.Has(sb.PermLimitedAccess) }

func requireManage(u *sb.User) error {
	if CanManage(u) {
		return nil
	}
	return sb.Errorf(sb.EForbidden, "managing SMS templates needs the %q or %q permission set", sb.PermSystemAdmin, sb.PermLimitedAccess)
}

// View is a template as the API shows it: with its merge fields.
type View struct {
	*store.Template
	Fields []string `json:"fields"`
}

func view(t *store.Template, p *Template) *View {
	v := &View{Template: t, Fields: []string{}}
	for _, f := range p.Fields() {
		v.Fields = append(v.Fields, f.Key())
	}
	return v
}

// Input creates or edits a template; on edit nil fields are left as they
// are.
type Input struct {
	Name *string `json:"name"`
	Body *string `json:"body"`
}

// check validates a name and body and returns the parsed body.
func check(name, body string) (*Template, error) {
	name = strings.TrimSpace(name)
	if name == "" {
		return nil, sb.FieldError("name", "name is required")
	}
	if n := utf8.RuneCountInString(name); n > MaxNameChars {
		return nil, sb.FieldError("name", "name is %d characters; the most is %d", n, MaxNameChars)
	}
	if strings.TrimSpace(body) == "" {
		return nil, sb.FieldError("body", "body is required")
	}
	p, err := Parse(body)
	if err != nil {
		return nil, err
	}
	if n := utf8.RuneCountInString(p.Literal()); n > hub.MaxBodyChars {
		return nil, sb.FieldError("body", "the template's text is %d characters before any merge field is filled; a message has at most %d", n, hub.MaxBodyChars)
	}
	return p, nil
}

// List returns the org's templates (any user may use them).
func (s *Service) List(ctx context.Context, user *sb.User) ([]*View, error) {
	ts, err := s.DB.Templates(ctx, user.OrgID)
	if err != nil {
		return nil, err
	}
	out := make([]*View, 0, len(ts))
	for _, t := range ts {
		p, err := Parse(t.Body)
		if err != nil {
			// Stored before a rule changed: show it, with no fields.
			out = append(out, &View{Template: t, Fields: []string{}})
			continue
		}
		out = append(out, view(t, p))
	}
	return out, nil
}

// Get returns one template.
func (s *Service) Get(ctx context.Context, user *sb.User, id string) (*View, error) {
	t, err := s.DB.Template(ctx, user.OrgID, id)
	if err != nil {
		return nil, err
	}
	p, err := Parse(t.Body)
	if err != nil {
		return &View{Template: t, Fields: []string{}}, nil
	}
	return view(t, p), nil
}

// Create stores a new template (System Admin, Limited Access).
func (s *Service) Create(ctx context.Context, user *sb.User, in Input) (*View, error) {
	if err := requireManage(user); err != nil {
		return nil, err
	}
	var name, body string
	if in.Name != nil {
		name = strings.TrimSpace(*in.Name)
	}
	if in.Body != nil {
		body = *in.Body
	}
	p, err := check(name, body)
	if err != nil {
		return nil, err
	}
	t := &store.Template{OrgID: user.OrgID, Name: name, Body: body, CreatedBy: user.ID, UpdatedBy: user.ID}
	if err := s.DB.Tx(ctx, func(tx *store.Tx) error { return tx.CreateTemplate(ctx, t) }); err != nil {
		return nil, err
	}
	return view(t, p), nil
}

// Update edits a template (System Admin, Limited Access).
func (s *Service) Update(ctx context.Context, user *sb.User, id string, in Input) (*View, error) {
	if err := requireManage(user); err != nil {
		return nil, err
	}
	var t *store.Template
	var p *Template
	err := s.DB.Tx(ctx, func(tx *store.Tx) error {
		var err error
		if t, err = tx.Template(ctx, user.OrgID, id); err != nil {
			return err
		}
		if in.Name != nil {
			t.Name = strings.TrimSpace(*in.Name)
		}
		if in.Body != nil {
			t.Body = *in.Body
		}
		if p, err = check(t.Name, t.Body); err != nil {
			return err
		}
		t.UpdatedBy = user.ID
		return tx.UpdateTemplate(ctx, t)
	})
	if err != nil {
		return nil, err
	}
	s.forget(id)
	return view(t, p), nil
}

// Delete deletes a template (System Admin, Limited Access).
func (s *Service) Delete(ctx context.Context, user *sb.User, id string) error {
	if err := requireManage(user); err != nil {
		return err
	}
	err := s.DB.Tx(ctx, func(tx *store.Tx) error { return tx.DeleteTemplate(ctx, user.OrgID, id) })
	s.forget(id)
	return err
}

func (s *Service) forget(id string) {
	s.mu.Lock()
	delete(s.cache, id)
	s.mu.Unlock()
}

// load returns a template of the org, parsed, from a short-lived cache: a
// bulk send renders the same template for every recipient.
func (s *Service) load(ctx context.Context, orgID, id string) (*store.Template, *Template, error) {
	now := time.Now()
	s.mu.Lock()
	c, ok := s.cache[id]
	s.mu.Unlock()
	if ok && now.Sub(c.at) < cacheTTL && c.t.OrgID == orgID {
		return c.t, c.parsed, nil
	}
	t, err := s.DB.Template(ctx, orgID, id)
	if err != nil {
		if sb.IsCode(err, sb.ENotFound) {
			return nil, nil, &sb.Error{Code: sb.ENotFound, Field: "template_id", Message: "template " + id + " not found"}
		}
		return nil, nil, err
	}
	p, err := Parse(t.Body)
	if err != nil {
		return nil, nil, &sb.Error{Code: sb.EInvalid, Field: "template_id", Message: "template " + t.Name + ": " + sb.ErrorMessage(err)}
	}
	s.mu.Lock()
	if len(s.cache) > 10_000 {
		clear(s.cache)
	}
	s.cache[id] = cached{t: t, parsed: p, at: now}
	s.mu.Unlock()
	return t, p, nil
}

// Render implements hub.Renderer: the body of template templateID for the
// record rec sent by user. The result must be a sendable body: not blank
// and at most hub.MaxBodyChars characters.
func (s *Service) Render(ctx context.Context, org *sb.Org, user *sb.User, templateID string, rec *sb.CRMRecord) (string, error) {
	_, p, err := s.load(ctx, org.ID, templateID)
	if err != nil {
		return "", err
	}
	body, err := p.Render(Data{Record: rec, User: user, Org: org})
	if err != nil {
		return "", err
	}
	return body, checkRendered(body)
}

func checkRendered(body string) error {
	if strings.TrimSpace(body) == "" {
		return sb.FieldError("template_id", "the template renders an empty message for this recipient")
	}
	if n := utf8.RuneCountInString(body); n > hub.MaxBodyChars {
		return sb.FieldError("template_id", "the template renders %d characters for this recipient; a message has at most %d", n, hub.MaxBodyChars)
	}
	return nil
}

// PreviewRequest asks for a template rendered for one recipient: a saved
// template (TemplateID) or a draft (Body), for a CRM record (RecordID) or
// for sample values keyed by merge field ("Contact.FirstName": "Ada").
type PreviewRequest struct {
	TemplateID string            `json:"template_id,omitempty"`
	Body       string            `json:"body,omitempty"`
	RecordID   string            `json:"record_id,omitempty"`
	Sample     map[string]string `json:"sample,omitempty"`
}

// Preview is a rendered template with its SMS segments.
type Preview struct {
	Body     string         `json:"body"`
	Segments sb.SegmentInfo `json:"segments"`
	Fields   []string       `json:"fields"`
}

// Preview renders a template as a send would (with a record) or with sample
// values (fields given no sample are empty, so their default shows).
func (s *Service) Preview(ctx context.Context, user *sb.User, req PreviewRequest) (*Preview, error) {
	org, err := s.DB.Org(ctx, user.OrgID)
	if err != nil {
		return nil, err
	}
	var p *Template
	switch {
	case req.TemplateID != "" && req.Body != "":
		return nil, sb.FieldError("body", "give either template_id or body, not both")
	case req.TemplateID != "":
		if _, p, err = s.load(ctx, org.ID, req.TemplateID); err != nil {
			return nil, err
		}
	case strings.TrimSpace(req.Body) != "":
		if p, err = Parse(req.Body); err != nil {
			return nil, err
		}
	default:
		return nil, sb.FieldError("body", "give a template_id or a body to preview")
	}
	if req.RecordID != "" && len(req.Sample) > 0 {
		return nil, sb.FieldError("sample", "give either record_id or sample values, not both")
	}
	var rec *sb.CRMRecord
	if req.RecordID != "" {
		crm, err := s.CRMs.For(ctx, org)
		if err != nil {
			return nil, err
		}
		recs, err := crm.GetRecords(ctx, org, []string{req.RecordID})
		if err != nil {
			return nil, sb.Wrap(err, sb.EUnavailable, "the CRM could not be asked about record %s", req.RecordID)
		}
		if len(recs) == 0 {
			return nil, &sb.Error{Code: sb.ENotFound, Field: "record_id", Message: "CRM record " + req.RecordID + " not found"}
		}
		rec = &recs[0]
	} else {
		if rec, err = sampleRecord(p, req.Sample); err != nil {
			return nil, err
		}
	}
	body, err := p.Render(Data{Record: rec, User: user, Org: org})
	if err != nil {
		return nil, err
	}
	out := &Preview{Body: body, Segments: sb.CountSegments(body), Fields: []string{}}
	for _, f := range p.Fields() {
		out.Fields = append(out.Fields, f.Key())
	}
	return out, nil
}

// sampleRecord builds a stand-in record from sample values. Sample keys
// must be merge fields of the template's record object.
func sampleRecord(p *Template, sample map[string]string) (*sb.CRMRecord, error) {
	rec := &sb.CRMRecord{ID: "sample", Type: "Contact", Fields: map[string]string{}}
	byKey := map[string]Field{}
	for _, f := range p.Fields() {
		if f.recordObject() {
			byKey[strings.ToLower(f.Key())] = f
			if f.Custom {
				rec.Fields[f.Name] = ""
			}
		}
	}
	for k, v := range sample {
		f, ok := byKey[strings.ToLower(strings.TrimSpace(strings.Trim(k, "{}")))]
		if !ok {
			return nil, sb.FieldError("sample", "sample value for %q: the template has no such record merge field", k)
		}
		if f.Custom {
			rec.Fields[f.Name] = v
			continue
		}
		switch f.Name {
		case "Id":
			rec.ID = v
		case "FirstName":
			rec.FirstName = v
		case "LastName":
			rec.LastName = v
		case "Name":
			rec.FirstName, rec.LastName, _ = strings.Cut(v, " ")
		case "Email":
			rec.Email = v
		case "Phone":
			rec.Phone = v
		}
	}
	return rec, nil
}
