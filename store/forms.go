package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	sb "github.com/switchboard/switchboard"
)

// SMS forms (package form): form templates with their versions and query
// codes, form sessions keyed by gateway and phone hash, and the answers —
// sealed, and deleted once their session has ended and is in the CRM.

// Form is a stored form template; Definition is the form package's JSON.
type Form struct {
	ID         string
	OrgID      string
	Name       string
	Version    int
	Definition string
	CreatedBy  string
	UpdatedBy  string
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// FormQueryCode is a keyword that starts a form when texted to a gateway.
type FormQueryCode struct {
	GatewayID string
	Keyword   string
}

const formCols = `id, org_id, name, version, definition, created_by, updated_by, created_at, updated_at`

func scanForm(r row) (*Form, error) {
	var f Form
	var created, updated int64
	if err := r.Scan(&f.ID, &f.OrgID, &f.Name, &f.Version, &f.Definition, &f.CreatedBy, &f.UpdatedBy, &created, &updated); err != nil {
		return nil, err
	}
	f.CreatedAt, f.UpdatedAt = fromMicros(created), fromMicros(updated)
	return &f, nil
}

func formConflict(err error, name string) error {
	if !errors.Is(err, errUnique) {
		return err
	}
	if strings.Contains(err.Error(), "form_query_codes") {
		return &sb.Error{Code: sb.EConflict, Field: "query_codes", Message: "a query code of this form is used by another form on the same gateway"}
	}
	return &sb.Error{Code: sb.EConflict, Field: "name", Message: fmt.Sprintf("a form named %q exists already", name)}
}

// CreateForm stores a new form (version 1) and its query codes.
func (tx *Tx) CreateForm(ctx context.Context, f *Form, codes []FormQueryCode) error {
	f.ID, f.Version = NewID(), 1
	f.CreatedAt = tx.db.now().UTC()
	f.UpdatedAt = f.CreatedAt
	if _, err := tx.q.exec(ctx, `INSERT INTO forms (id, org_id, name, version, definition, created_by, updated_by, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)`, f.ID, f.OrgID, f.Name, f.Version, f.Definition, f.CreatedBy, f.UpdatedBy, micros(f.CreatedAt)); err != nil {
		return formConflict(err, f.Name)
	}
	return tx.saveFormVersion(ctx, f, codes)
}

// UpdateForm stores a new version of a form and replaces its query codes.
// Sessions running on an earlier version finish on it.
func (tx *Tx) UpdateForm(ctx context.Context, f *Form, codes []FormQueryCode) error {
	f.UpdatedAt = tx.db.now().UTC()
	err := tx.q.queryRow(ctx, `UPDATE forms SET name = $3, definition = $4, updated_by = $5, updated_at = $6, version = version + 1
		WHERE id = $1 AND org_id = $2 AND deleted_at IS NULL RETURNING version`,
		f.ID, f.OrgID, f.Name, f.Definition, f.UpdatedBy, micros(f.UpdatedAt)).Scan(&f.Version)
	if errors.Is(err, errNoRows) {
		return sb.Errorf(sb.ENotFound, "form %s not found", f.ID)
	}
	if err != nil {
		return formConflict(err, f.Name)
	}
	if _, err := tx.q.exec(ctx, `DELETE FROM form_query_codes WHERE form_id = $1`, f.ID); err != nil {
		return err
	}
	return tx.saveFormVersion(ctx, f, codes)
}

func (tx *Tx) saveFormVersion(ctx context.Context, f *Form, codes []FormQueryCode) error {
	if _, err := tx.q.exec(ctx, `INSERT INTO form_versions (form_id, version, definition, created_at) VALUES ($1, $2, $3, $4)`,
		f.ID, f.Version, f.Definition, micros(f.UpdatedAt)); err != nil {
		return err
	}
	for _, c := range codes {
		if _, err := tx.q.exec(ctx, `INSERT INTO form_query_codes (gateway_id, keyword, org_id, form_id) VALUES ($1, $2, $3, $4)`,
			c.GatewayID, c.Keyword, f.OrgID, f.ID); err != nil {
			return formConflict(err, f.Name)
		}
	}
	return nil
}

// DeleteForm deletes a form: it no longer starts sessions and its query
// codes are freed; sessions already running finish on their version.
func (tx *Tx) DeleteForm(ctx context.Context, orgID, id string) error {
	n, err := tx.q.exec(ctx, `UPDATE forms SET deleted_at = $3 WHERE id = $1 AND org_id = $2 AND deleted_at IS NULL`, id, orgID, micros(tx.db.now()))
	if err != nil {
		return err
	}
	if n == 0 {
		return sb.Errorf(sb.ENotFound, "form %s not found", id)
	}
	_, err = tx.q.exec(ctx, `DELETE FROM form_query_codes WHERE form_id = $1`, id)
	return err
}

// Form returns a form of an org (not deleted).
func (db *DB) Form(ctx context.Context, orgID, id string) (*Form, error) {
	return getForm(ctx, db.reader(), orgID, id)
}

// Form returns a form of an org inside a transaction.
func (tx *Tx) Form(ctx context.Context, orgID, id string) (*Form, error) {
	return getForm(ctx, tx.q, orgID, id)
}

func getForm(ctx context.Context, q querier, orgID, id string) (*Form, error) {
	f, err := scanForm(q.queryRow(ctx, `SELECT `+formCols+` FROM forms WHERE id = $1 AND org_id = $2 AND deleted_at IS NULL`, id, orgID))
	if errors.Is(err, errNoRows) {
		return nil, sb.Errorf(sb.ENotFound, "form %s not found", id)
	}
	return f, err
}

// Forms lists an org's forms by name.
func (db *DB) Forms(ctx context.Context, orgID string) ([]*Form, error) {
	rs, err := db.reader().query(ctx, `SELECT `+formCols+` FROM forms WHERE org_id = $1 AND deleted_at IS NULL ORDER BY name, id`, orgID)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	out := []*Form{}
	for rs.Next() {
		f, err := scanForm(rs)
		if err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, rs.Err()
}

// FormVersion returns a form's definition at a version, and its name.
func (tx *Tx) FormVersion(ctx context.Context, formID string, version int) (name, definition string, err error) {
	err = tx.q.queryRow(ctx, `SELECT f.name, v.definition FROM form_versions v JOIN forms f ON f.id = v.form_id
		WHERE v.form_id = $1 AND v.version = $2`, formID, version).Scan(&name, &definition)
	if errors.Is(err, errNoRows) {
		return "", "", sb.Errorf(sb.ENotFound, "form %s version %d not found", formID, version)
	}
	return name, definition, err
}

// FormByQueryCode returns the form a keyword starts on a gateway, or nil.
func (tx *Tx) FormByQueryCode(ctx context.Context, gatewayID, keyword string) (*Form, error) {
	f, err := scanForm(tx.q.queryRow(ctx, `SELECT `+prefixCols("f.", formCols)+` FROM form_query_codes c JOIN forms f ON f.id = c.form_id
		WHERE c.gateway_id = $1 AND c.keyword = $2 AND f.deleted_at IS NULL`, gatewayID, keyword))
	if errors.Is(err, errNoRows) {
		return nil, nil
	}
	return f, err
}

// FormQueryCodes returns a form's query codes.
func (db *DB) FormQueryCodes(ctx context.Context, formID string) ([]FormQueryCode, error) {
	rs, err := db.reader().query(ctx, `SELECT gateway_id, keyword FROM form_query_codes WHERE form_id = $1 ORDER BY gateway_id, keyword`, formID)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []FormQueryCode
	for rs.Next() {
		var c FormQueryCode
		if err := rs.Scan(&c.GatewayID, &c.Keyword); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rs.Err()
}

func prefixCols(prefix, cols string) string {
	parts := strings.Split(cols, ",")
	for i, p := range parts {
		parts[i] = prefix + strings.TrimSpace(p)
	}
	return strings.Join(parts, ", ")
}

// Form session statuses.
const (
	SessionOpen      = "open"
	SessionCompleted = "completed"
	SessionExpired   = "expired"
	SessionCancelled = "cancelled"
)

// FormSession is one run of a form with one phone on one gateway.
type FormSession struct {
	ID          string     `json:"id"`
	OrgID       string     `json:"org_id"`
	FormID      string     `json:"form_id"`
	FormVersion int        `json:"form_version"`
	GatewayID   string     `json:"gateway_id"`
	PhoneHash   []byte     `json:"-"`
	RecordID    string     `json:"record_id,omitempty"`
	MessageID   string     `json:"message_id,omitempty"`
	OwnerID     string     `json:"owner_id,omitempty"`
	CreatedByID string     `json:"created_by_id,omitempty"`
	StartedBy   string     `json:"started_by"`
	Question    string     `json:"question,omitempty"`
	Status      string     `json:"status"`
	Detail      string     `json:"detail,omitempty"`
	StartedAt   time.Time  `json:"started_at"`
	UpdatedAt   time.Time  `json:"updated_at"`
	ExpiresAt   time.Time  `json:"expires_at"`
	EndedAt     *time.Time `json:"ended_at,omitempty"`
	CRMRecordID string     `json:"crm_record_id,omitempty"`
	// Phone is the readable number: sealed at rest, only to find the CRM
	// record of a session started by an unknown number.
	Phone string `json:"-"`
}

const sessionCols = `id, org_id, form_id, form_version, gateway_id, phone_hash, record_id, message_id, owner_id, created_by_id, started_by,
	question, status, detail, started_at, updated_at, expires_at, ended_at, COALESCE(crm_record_id, ''), sealed_phone`

func (db *DB) scanSession(r row, extra ...any) (*FormSession, error) {
	var s FormSession
	var started, updated, expires int64
	var ended sql.NullInt64
	var sealed []byte
	dest := []any{&s.ID, &s.OrgID, &s.FormID, &s.FormVersion, &s.GatewayID, &s.PhoneHash, &s.RecordID, &s.MessageID, &s.OwnerID,
		&s.CreatedByID, &s.StartedBy, &s.Question, &s.Status, &s.Detail, &started, &updated, &expires, &ended, &s.CRMRecordID, &sealed}
	if err := r.Scan(append(dest, extra...)...); err != nil {
		return nil, err
	}
	s.StartedAt, s.UpdatedAt, s.ExpiresAt, s.EndedAt = fromMicros(started), fromMicros(updated), fromMicros(expires), timePtr(ended)
	if sealed != nil {
		p, err := db.keys.Open("form_phone:"+s.ID, sealed)
		if err != nil {
			return nil, err
		}
		s.Phone = string(p)
	}
	return &s, nil
}

// StartFormSessions stores new open sessions. An open session of the same
// phone on the same gateway is cancelled first (a new form replaces it).
func (tx *Tx) StartFormSessions(ctx context.Context, ss []*FormSession) error {
	for start := 0; start < len(ss); start += insertChunk {
		part := ss[start:min(start+insertChunk, len(ss))]
		byGateway := map[string][]any{}
		var gws []string
		for _, s := range part {
			if _, ok := byGateway[s.GatewayID]; !ok {
				gws = append(gws, s.GatewayID)
			}
			byGateway[s.GatewayID] = append(byGateway[s.GatewayID], s.PhoneHash)
		}
		for _, gw := range gws {
			hashes := byGateway[gw]
			now := micros(part[0].StartedAt)
			args := append([]any{gw, now, "Replaced by a new form"}, hashes...)
			if _, err := tx.q.exec(ctx, `UPDATE form_sessions SET status = 'cancelled', detail = $3, ended_at = $2, updated_at = $2, version = version + 1
				WHERE gateway_id = $1 AND status = 'open' AND phone_hash IN `+inList(4, len(hashes)), args...); err != nil {
				return err
			}
		}
		const cols = 17
		var q strings.Builder
		q.WriteString(`INSERT INTO form_sessions (id, org_id, form_id, form_version, gateway_id, phone_hash, sealed_phone, record_id, message_id,
			owner_id, created_by_id, started_by, question, status, started_at, updated_at, expires_at) VALUES `)
		args := make([]any, 0, len(part)*cols)
		for i, s := range part {
			if s.ID == "" {
				s.ID = NewID()
			}
			if i > 0 {
				q.WriteString(",")
			}
			q.WriteString(placeholders(len(args)+1, cols))
			var sealed any
			if s.Phone != "" {
				sealed = tx.db.keys.Seal("form_phone:"+s.ID, []byte(s.Phone))
			}
			s.Status, s.UpdatedAt = SessionOpen, s.StartedAt
			args = append(args, s.ID, s.OrgID, s.FormID, s.FormVersion, s.GatewayID, s.PhoneHash, sealed, s.RecordID, s.MessageID,
				s.OwnerID, s.CreatedByID, s.StartedBy, s.Question, s.Status, micros(s.StartedAt), micros(s.StartedAt), micros(s.ExpiresAt))
		}
		if _, err := tx.q.exec(ctx, q.String(), args...); err != nil {
			return err
		}
	}
	return nil
}

// OpenFormSession returns the open session of a phone on a gateway, or nil.
func (tx *Tx) OpenFormSession(ctx context.Context, gatewayID string, phoneHash []byte) (*FormSession, error) {
	s, err := tx.db.scanSession(tx.q.queryRow(ctx, `SELECT `+sessionCols+` FROM form_sessions WHERE gateway_id = $1 AND phone_hash = $2 AND status = 'open'`,
		gatewayID, phoneHash))
	if errors.Is(err, errNoRows) {
		return nil, nil
	}
	return s, err
}

// FormSession returns a session of an org.
func (db *DB) FormSession(ctx context.Context, orgID, id string) (*FormSession, error) {
	s, err := db.scanSession(db.reader().queryRow(ctx, `SELECT `+sessionCols+` FROM form_sessions WHERE id = $1 AND org_id = $2`, id, orgID))
	if errors.Is(err, errNoRows) {
		return nil, sb.Errorf(sb.ENotFound, "form session %s not found", id)
	}
	return s, err
}

// FormSessions lists a form's sessions, newest first (no answers).
func (db *DB) FormSessions(ctx context.Context, orgID, formID string, limit int) ([]*FormSession, error) {
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	rs, err := db.reader().query(ctx, `SELECT `+sessionCols+` FROM form_sessions WHERE org_id = $1 AND form_id = $2 ORDER BY started_at DESC, id LIMIT $3`,
		orgID, formID, limit)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	out := []*FormSession{}
	for rs.Next() {
		s, err := db.scanSession(rs)
		if err != nil {
			return nil, err
		}
		s.Phone = ""
		out = append(out, s)
	}
	return out, rs.Err()
}

// AnswerFormSession stores a validated answer (sealed) and moves the
// session on: to question next, or — next empty — to status (completed).
func (tx *Tx) AnswerFormSession(ctx context.Context, s *FormSession, question, answer, next, status string, at, expires time.Time) error {
	id := NewID()
	var seq int
	if err := tx.q.queryRow(ctx, `SELECT COUNT(*) FROM form_answers WHERE session_id = $1`, s.ID).Scan(&seq); err != nil {
		return err
	}
	if _, err := tx.q.exec(ctx, `INSERT INTO form_answers (id, session_id, seq, question, sealed, at) VALUES ($1, $2, $3, $4, $5, $6)`,
		id, s.ID, seq+1, question, tx.db.keys.Seal("form_answer:"+id, []byte(answer)), micros(at)); err != nil {
		return err
	}
	if next != "" {
		s.Question, s.ExpiresAt = next, expires
		_, err := tx.q.exec(ctx, `UPDATE form_sessions SET question = $2, updated_at = $3, expires_at = $4, version = version + 1 WHERE id = $1`,
			s.ID, next, micros(at), micros(expires))
		return err
	}
	return tx.EndFormSession(ctx, s.ID, status, "", at)
}

// TouchFormSession extends an open session's timeout (a reply that did not
// answer the question).
func (tx *Tx) TouchFormSession(ctx context.Context, id string, at, expires time.Time) error {
	_, err := tx.q.exec(ctx, `UPDATE form_sessions SET updated_at = $2, expires_at = $3 WHERE id = $1 AND status = 'open'`, id, micros(at), micros(expires))
	return err
}

// EndFormSession ends an open session with a status and detail.
func (tx *Tx) EndFormSession(ctx context.Context, id, status, detail string, at time.Time) error {
	_, err := tx.q.exec(ctx, `UPDATE form_sessions SET status = $2, detail = $3, ended_at = $4, updated_at = $4, question = '', version = version + 1
		WHERE id = $1 AND status = 'open'`, id, status, detail, micros(at))
	return err
}

// ExpireFormSessions ends the open sessions whose timeout passed at now and
// returns the orgs they belong to.
func (db *DB) ExpireFormSessions(ctx context.Context, now time.Time) ([]string, error) {
	var orgs []string
	err := db.Tx(ctx, func(tx *Tx) error {
		rs, err := tx.q.query(ctx, `UPDATE form_sessions SET status = 'expired', detail = 'No answer before the timeout', ended_at = expires_at,
			updated_at = $1, question = '', version = version + 1 WHERE status = 'open' AND expires_at <= $1 RETURNING org_id`, micros(now))
		if err != nil {
			return err
		}
		all, err := scanStrings(rs)
		if err != nil {
			return err
		}
		seen := map[string]bool{}
		orgs = orgs[:0]
		for _, o := range all {
			if !seen[o] {
				seen[o] = true
				orgs = append(orgs, o)
			}
		}
		return nil
	})
	return orgs, err
}

// ClaimedSession is a session change leased for writing to the CRM, with
// its answers opened and its form's definition at the session's version.
type ClaimedSession struct {
	*FormSession
	Version    int64
	FormName   string
	Definition string
	Answers    []sb.FormAnswer
}

// ClaimFormSessions leases up to limit of an org's sessions whose latest
// change is not in the CRM yet.
func (db *DB) ClaimFormSessions(ctx context.Context, orgID string, limit int, lease time.Duration) ([]ClaimedSession, error) {
	now := micros(db.now())
	until := micros(db.now().Add(lease))
	skip := ""
	if db.dialect == Postgres {
		skip = " FOR UPDATE SKIP LOCKED"
	}
	var out []ClaimedSession
	err := db.Tx(ctx, func(tx *Tx) error {
		out = out[:0]
		rs, err := tx.q.query(ctx, `UPDATE form_sessions SET crm_lease_until = $3
			WHERE id IN (SELECT id FROM form_sessions WHERE org_id = $1 AND version > crm_version AND (crm_lease_until IS NULL OR crm_lease_until < $2)
				ORDER BY updated_at LIMIT $4`+skip+`)
			AND (crm_lease_until IS NULL OR crm_lease_until < $2)
			RETURNING `+sessionCols+`, version`, orgID, now, until, limit)
		if err != nil {
			return err
		}
		for rs.Next() {
			var c ClaimedSession
			s, err := db.scanSession(rs, &c.Version)
			if err != nil {
				rs.Close()
				return err
			}
			c.FormSession = s
			out = append(out, c)
		}
		rs.Close()
		if err := rs.Err(); err != nil {
			return err
		}
		for i := range out {
			c := &out[i]
			if c.FormName, c.Definition, err = tx.FormVersion(ctx, c.FormID, c.FormVersion); err != nil {
				return err
			}
			if c.Answers, err = tx.formAnswers(ctx, c.ID); err != nil {
				return err
			}
		}
		return nil
	})
	return out, err
}

func (tx *Tx) formAnswers(ctx context.Context, sessionID string) ([]sb.FormAnswer, error) {
	rs, err := tx.q.query(ctx, `SELECT id, question, sealed, at FROM form_answers WHERE session_id = $1 ORDER BY seq`, sessionID)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []sb.FormAnswer
	for rs.Next() {
		var id string
		var a sb.FormAnswer
		var sealed []byte
		var at int64
		if err := rs.Scan(&id, &a.Question, &sealed, &at); err != nil {
			return nil, err
		}
		v, err := tx.db.keys.Open("form_answer:"+id, sealed)
		if err != nil {
			return nil, err
		}
		a.Answer, a.At = string(v), fromMicros(at)
		out = append(out, a)
	}
	return out, rs.Err()
}

// FormOutcome is the result of writing one claimed session to the CRM.
type FormOutcome struct {
	SessionID   string
	Version     int64
	CRMRecordID string
	// Err is a permanent failure; the change is not retried.
	Err     string
	Retry   bool
	RetryAt time.Time
}

// FinishFormSessions records write-back outcomes. A session that has ended
// and is in the CRM loses its answers and its sealed number.
func (tx *Tx) FinishFormSessions(ctx context.Context, outs []FormOutcome) error {
	for _, o := range outs {
		if o.Retry {
			if _, err := tx.q.exec(ctx, `UPDATE form_sessions SET crm_lease_until = $2 WHERE id = $1`, o.SessionID, nullMicros(o.RetryAt)); err != nil {
				return err
			}
			continue
		}
		if _, err := tx.q.exec(ctx, `UPDATE form_sessions SET crm_version = $2, crm_record_id = COALESCE(crm_record_id, $3), crm_error = $4, crm_lease_until = NULL
			WHERE id = $1`, o.SessionID, o.Version, nullStr(o.CRMRecordID), o.Err); err != nil {
			return err
		}
		if _, err := tx.q.exec(ctx, `DELETE FROM form_answers WHERE session_id = $1 AND EXISTS
			(SELECT 1 FROM form_sessions s WHERE s.id = $1 AND s.status <> 'open' AND s.version = s.crm_version)`, o.SessionID); err != nil {
			return err
		}
		if _, err := tx.q.exec(ctx, `UPDATE form_sessions SET sealed_phone = NULL WHERE id = $1 AND status <> 'open' AND version = crm_version`, o.SessionID); err != nil {
			return err
		}
	}
	return nil
}

// OrgsWithFormPending lists orgs with session changes not yet in their CRM
// and not leased.
func (db *DB) OrgsWithFormPending(ctx context.Context) ([]string, error) {
	rs, err := db.reader().query(ctx, `SELECT DISTINCT org_id FROM form_sessions WHERE version > crm_version AND (crm_lease_until IS NULL OR crm_lease_until < $1)`, micros(db.now()))
	if err != nil {
		return nil, err
	}
	return scanStrings(rs)
}

// FormPendingCount returns how many session changes of an org wait for the
// CRM.
func (db *DB) FormPendingCount(ctx context.Context, orgID string) (int, error) {
	var n int
	err := db.reader().queryRow(ctx, `SELECT COUNT(*) FROM form_sessions WHERE org_id = $1 AND version > crm_version`, orgID).Scan(&n)
	return n, err
}

// WriteCRMFormResponses creates or updates built-in CRM form records, keyed
// by session id. It returns the record ids in order.
func (tx *Tx) WriteCRMFormResponses(ctx context.Context, orgID string, rs []sb.FormResponse) ([]string, error) {
	ids := make([]string, len(rs))
	now := micros(tx.db.now())
	for i, r := range rs {
		answers, _ := json.Marshal(r.Answers)
		if r.Answers == nil {
			answers = []byte("[]")
		}
		id := r.CRMFormID
		if id == "" {
			id = crmID("a0F")
		}
		err := tx.q.queryRow(ctx, `INSERT INTO crm_form_responses (id, org_id, session_id, form_id, form_name, record_id, status, owner_id, created_by_id,
			answers, started_at, ended_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
			ON CONFLICT (session_id) DO UPDATE SET status = excluded.status, answers = excluded.answers, ended_at = excluded.ended_at,
				updated_at = excluded.updated_at,
				record_id = CASE WHEN crm_form_responses.record_id = '' THEN excluded.record_id ELSE crm_form_responses.record_id END
			RETURNING id`,
			id, orgID, r.SessionID, r.FormID, r.FormName, r.RecordID, r.Status, r.OwnerID, r.CreatedByID, string(answers),
			micros(r.StartedAt), nullMicros(r.EndedAt), now).Scan(&ids[i])
		if err != nil {
			return nil, err
		}
	}
	return ids, nil
}

// CRMFormResponse is a form record of the built-in CRM.
type CRMFormResponse struct {
	sb.FormResponse
	// ID is the form record's own id.
	ID        string    `json:"id"`
	UpdatedAt time.Time `json:"updated_at"`
}

// CRMFormResponses lists the built-in CRM's form records of a record (all
// of the org's when recordID is empty), oldest first.
func (db *DB) CRMFormResponses(ctx context.Context, orgID, recordID string) ([]CRMFormResponse, error) {
	q := `SELECT id, session_id, form_id, form_name, record_id, status, owner_id, created_by_id, answers, started_at, ended_at, updated_at
		FROM crm_form_responses WHERE org_id = $1`
	args := []any{orgID}
	if recordID != "" {
		q += ` AND record_id = $2`
		args = append(args, recordID)
	}
	rs, err := db.reader().query(ctx, q+` ORDER BY started_at, id LIMIT 1000`, args...)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []CRMFormResponse
	for rs.Next() {
		var r CRMFormResponse
		var answers string
		var started, updated int64
		var ended sql.NullInt64
		if err := rs.Scan(&r.ID, &r.SessionID, &r.FormID, &r.FormName, &r.RecordID, &r.Status, &r.OwnerID, &r.CreatedByID, &answers,
			&started, &ended, &updated); err != nil {
			return nil, err
		}
		r.CRMFormID = r.ID
		_ = json.Unmarshal([]byte(answers), &r.Answers)
		r.StartedAt, r.UpdatedAt = fromMicros(started), fromMicros(updated)
		if ended.Valid {
			r.EndedAt = fromMicros(ended.Int64)
		}
		out = append(out, r)
	}
	return out, rs.Err()
}
