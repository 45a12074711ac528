package store

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"

	sb "github.com/switchboard/switchboard"
)

// Tracked links (package link): per-org settings, short codes with their
// click counters, and the clicks on per-recipient links waiting to be written
// to the CRM. The IP address of a click is sealed and erased once written.

// LinkSettings are an org's tracked-link settings as stored.
type LinkSettings struct {
	OrgID     string
	Enabled   bool
	Mode      string
	BaseURL   string
	MinLength int
	UpdatedBy string
	UpdatedAt time.Time
}

// LinkSettings returns an org's stored link settings, or nil when it has
// none.
func (db *DB) LinkSettings(ctx context.Context, orgID string) (*LinkSettings, error) {
	return getLinkSettings(ctx, db.reader(), orgID)
}

// LinkSettings returns an org's stored link settings inside a transaction.
func (tx *Tx) LinkSettings(ctx context.Context, orgID string) (*LinkSettings, error) {
	return getLinkSettings(ctx, tx.q, orgID)
}

func getLinkSettings(ctx context.Context, q querier, orgID string) (*LinkSettings, error) {
	s := LinkSettings{OrgID: orgID}
	var at int64
	err := q.queryRow(ctx, `SELECT enabled, mode, base_url, min_length, updated_by, updated_at FROM link_settings WHERE org_id = $1`, orgID).
		Scan(&s.Enabled, &s.Mode, &s.BaseURL, &s.MinLength, &s.UpdatedBy, &at)
	if errors.Is(err, errNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	s.UpdatedAt = fromMicros(at)
	return &s, nil
}

// SaveLinkSettings stores an org's link settings.
func (tx *Tx) SaveLinkSettings(ctx context.Context, s *LinkSettings) error {
	s.UpdatedAt = tx.db.now().UTC()
	_, err := tx.q.exec(ctx, `INSERT INTO link_settings (org_id, enabled, mode, base_url, min_length, updated_by, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (org_id) DO UPDATE SET enabled = excluded.enabled, mode = excluded.mode, base_url = excluded.base_url,
			min_length = excluded.min_length, updated_by = excluded.updated_by, updated_at = excluded.updated_at`,
		s.OrgID, s.Enabled, s.Mode, s.BaseURL, s.MinLength, s.UpdatedBy, micros(s.UpdatedAt))
	return err
}

// Link is a short code and its target.
type Link struct {
	Code  string `json:"code"`
	OrgID string `json:"org_id"`
	URL   string `json:"url"`
	// Mode is "basic" (one code per URL per send) or "per_recipient".
	Mode string `json:"mode"`
	// MessageID is set for per-recipient links and basic links of a 1:1
	// send; BatchID for links of a bulk send.
	MessageID   string     `json:"message_id,omitempty"`
	BatchID     string     `json:"batch_id,omitempty"`
	Clicks      int64      `json:"clicks"`
	BotClicks   int64      `json:"bot_clicks"`
	LastClickAt *time.Time `json:"last_click_at,omitempty"`
	CreatedAt   time.Time  `json:"created_at"`
}

const linkCols = `code, org_id, url, mode, COALESCE(message_id, ''), COALESCE(batch_id, ''), clicks, bot_clicks, last_click_at, created_at`

func scanLink(r row) (*Link, error) {
	var l Link
	var last sql.NullInt64
	var created int64
	if err := r.Scan(&l.Code, &l.OrgID, &l.URL, &l.Mode, &l.MessageID, &l.BatchID, &l.Clicks, &l.BotClicks, &last, &created); err != nil {
		return nil, err
	}
	l.LastClickAt, l.CreatedAt = timePtr(last), fromMicros(created)
	return &l, nil
}

// InsertLinks stores new short codes.
func (tx *Tx) InsertLinks(ctx context.Context, links []Link) error {
	const cols = 7
	for start := 0; start < len(links); start += insertChunk {
		part := links[start:min(start+insertChunk, len(links))]
		var q strings.Builder
		q.WriteString(`INSERT INTO links (code, org_id, url, mode, message_id, batch_id, created_at) VALUES `)
		args := make([]any, 0, len(part)*cols)
		for i, l := range part {
			if i > 0 {
				q.WriteString(",")
			}
			q.WriteString(placeholders(len(args)+1, cols))
			args = append(args, l.Code, l.OrgID, l.URL, l.Mode, nullStr(l.MessageID), nullStr(l.BatchID), micros(l.CreatedAt))
		}
		if _, err := tx.q.exec(ctx, q.String(), args...); err != nil {
			return err
		}
	}
	return nil
}

// LinkByCode returns the link with a short code (of any org).
func (db *DB) LinkByCode(ctx context.Context, code string) (*Link, error) {
	l, err := scanLink(db.reader().queryRow(ctx, `SELECT `+linkCols+` FROM links WHERE code = $1`, code))
	if errors.Is(err, errNoRows) {
		return nil, sb.Errorf(sb.ENotFound, "short link not found")
	}
	return l, err
}

// LinkFilter selects an org's links.
type LinkFilter struct {
	MessageID, BatchID string
	Limit              int
}

// Links lists an org's links, newest first.
func (db *DB) Links(ctx context.Context, orgID string, f LinkFilter) ([]*Link, error) {
	where := []string{"org_id = $1"}
	args := []any{orgID}
	if f.MessageID != "" {
		args = append(args, f.MessageID)
		where = append(where, "message_id = $"+strconv.Itoa(len(args)))
	}
	if f.BatchID != "" {
		args = append(args, f.BatchID)
		where = append(where, "batch_id = $"+strconv.Itoa(len(args)))
	}
	if f.Limit <= 0 || f.Limit > 1000 {
		f.Limit = 100
	}
	args = append(args, f.Limit)
	rs, err := db.reader().query(ctx, `SELECT `+linkCols+` FROM links WHERE `+strings.Join(where, " AND ")+
		` ORDER BY created_at DESC, code LIMIT $`+strconv.Itoa(len(args)), args...)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	out := []*Link{}
	for rs.Next() {
		l, err := scanLink(rs)
		if err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	return out, rs.Err()
}

// Click is one request to a short link.
type Click struct {
	ID        string
	Code      string
	OrgID     string
	MessageID string
	At        time.Time
	// Bot marks preview fetchers and crawlers: counted apart, never written
	// to the CRM.
	Bot bool
	// Track keeps the click's details for the CRM (per-recipient links).
	Track   bool
	IP      string
	Domain  string
	Browser string
}

// RecordClicks adds clicks to their links' counters and stores the tracked
// ones (sealed IP) for the CRM. It returns the orgs that got tracked clicks.
func (tx *Tx) RecordClicks(ctx context.Context, clicks []Click) (orgs []string, err error) {
	type count struct {
		people, bots int64
		last         int64
	}
	counts := map[string]*count{}
	var codes []string
	for _, c := range clicks {
		n := counts[c.Code]
		if n == nil {
			n = &count{}
			counts[c.Code] = n
			codes = append(codes, c.Code)
		}
		if c.Bot {
			n.bots++
		} else {
			n.people++
		}
		n.last = max(n.last, micros(c.At))
	}
	for _, code := range codes {
		n := counts[code]
		if _, err := tx.q.exec(ctx, `UPDATE links SET clicks = clicks + $2, bot_clicks = bot_clicks + $3,
			last_click_at = CASE WHEN last_click_at IS NULL OR last_click_at < $4 THEN $4 ELSE last_click_at END WHERE code = $1`,
			code, n.people, n.bots, n.last); err != nil {
			return nil, err
		}
	}
	seen := map[string]bool{}
	var tracked []Click
	for _, c := range clicks {
		if c.Track && !c.Bot {
			tracked = append(tracked, c)
			if !seen[c.OrgID] {
				seen[c.OrgID] = true
				orgs = append(orgs, c.OrgID)
			}
		}
	}
	const cols = 8
	for start := 0; start < len(tracked); start += insertChunk {
		part := tracked[start:min(start+insertChunk, len(tracked))]
		var q strings.Builder
		q.WriteString(`INSERT INTO link_clicks (id, org_id, code, message_id, at, sealed_ip, domain, browser) VALUES `)
		args := make([]any, 0, len(part)*cols)
		for i, c := range part {
			if i > 0 {
				q.WriteString(",")
			}
			q.WriteString(placeholders(len(args)+1, cols))
			var ip any
			if c.IP != "" {
				ip = tx.db.keys.Seal("click:"+c.ID, []byte(c.IP))
			}
			args = append(args, c.ID, c.OrgID, c.Code, c.MessageID, micros(c.At), ip, c.Domain, c.Browser)
		}
		if _, err := tx.q.exec(ctx, q.String(), args...); err != nil {
			return nil, err
		}
	}
	return orgs, nil
}

// ClaimedClick is a tracked click leased for writing to the CRM; ShortURL
// is left for the caller to build from Code.
type ClaimedClick struct {
	sb.LinkClick
	Code string
}

// clickReady holds for a click (of link_clicks) that may be written to the
// CRM: its message's CRM record exists, or never will (the message's
// creation failed for good, or the message is unknown). A click waits
// while its message's record is still to be written, so that it is written
// once, linked to that record.
const clickReady = `NOT EXISTS (SELECT 1 FROM messages m WHERE m.id = link_clicks.message_id
	AND m.crm_message_id IS NULL AND m.version > m.crm_version)`

// ClaimClicks leases up to limit of an org's tracked clicks not yet in the
// CRM, oldest first, with their IP opened and their message's CRM ids.
// Clicks whose message is not in the CRM yet are left for later (see
// clickReady).
func (db *DB) ClaimClicks(ctx context.Context, orgID string, limit int, lease time.Duration) ([]ClaimedClick, error) {
	now := micros(db.now())
	until := micros(db.now().Add(lease))
	skip := ""
	if db.dialect == Postgres {
		skip = " FOR UPDATE SKIP LOCKED"
	}
	var out []ClaimedClick
	err := db.Tx(ctx, func(tx *Tx) error {
		out = out[:0]
		rs, err := tx.q.query(ctx, `UPDATE link_clicks SET lease_until = $3
			WHERE id IN (SELECT id FROM link_clicks WHERE org_id = $1 AND written_at IS NULL AND (lease_until IS NULL OR lease_until < $2)
				AND `+clickReady+` ORDER BY at LIMIT $4`+skip+`)
			AND written_at IS NULL AND (lease_until IS NULL OR lease_until < $2)
			RETURNING id, code, message_id, at, sealed_ip, domain, browser,
				COALESCE((SELECT url FROM links l WHERE l.code = link_clicks.code), ''),
				COALESCE((SELECT record_id FROM messages m WHERE m.id = link_clicks.message_id), ''),
				COALESCE((SELECT crm_message_id FROM messages m WHERE m.id = link_clicks.message_id), '')`,
			orgID, now, until, limit)
		if err != nil {
			return err
		}
		defer rs.Close()
		for rs.Next() {
			var c ClaimedClick
			var at int64
			var sealed []byte
			if err := rs.Scan(&c.ID, &c.Code, &c.MessageID, &at, &sealed, &c.Domain, &c.Browser, &c.URL, &c.RecordID, &c.CRMMessageID); err != nil {
				return err
			}
			c.At = fromMicros(at)
			if sealed != nil {
				ip, err := db.keys.Open("click:"+c.ID, sealed)
				if err != nil {
					return err
				}
				c.IP = string(ip)
			}
			out = append(out, c)
		}
		return rs.Err()
	})
	if err != nil {
		return nil, err
	}
	// RETURNING gives no order: oldest first, then by id.
	slices.SortFunc(out, func(a, b ClaimedClick) int {
		if c := a.At.Compare(b.At); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

// ClickOutcome is the result of writing one claimed click to the CRM.
type ClickOutcome struct {
	ID    string
	CRMID string
	// Err is a permanent failure; the click is not retried.
	Err string
	// Retry leaves the click pending; RetryAt keeps it leased until then.
	Retry   bool
	RetryAt time.Time
}

// FinishClicks records write-back outcomes: written clicks lose their IP.
func (tx *Tx) FinishClicks(ctx context.Context, outs []ClickOutcome) error {
	now := micros(tx.db.now())
	for _, o := range outs {
		var err error
		if o.Retry {
			_, err = tx.q.exec(ctx, `UPDATE link_clicks SET lease_until = $2 WHERE id = $1`, o.ID, nullMicros(o.RetryAt))
		} else {
			_, err = tx.q.exec(ctx, `UPDATE link_clicks SET written_at = $2, sealed_ip = NULL, lease_until = NULL, crm_id = $3, crm_error = $4 WHERE id = $1`,
				o.ID, now, nullStr(o.CRMID), o.Err)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// OrgsWithPendingClicks lists orgs with tracked clicks not yet in their CRM,
// not leased and ready to write (the periodic sweep).
func (db *DB) OrgsWithPendingClicks(ctx context.Context) ([]string, error) {
	rs, err := db.reader().query(ctx, `SELECT DISTINCT org_id FROM link_clicks WHERE written_at IS NULL AND (lease_until IS NULL OR lease_until < $1)
		AND `+clickReady, micros(db.now()))
	if err != nil {
		return nil, err
	}
	return scanStrings(rs)
}

// PendingClickCount returns how many tracked clicks of an org wait for the
// CRM.
func (db *DB) PendingClickCount(ctx context.Context, orgID string) (int, error) {
	var n int
	err := db.reader().queryRow(ctx, `SELECT COUNT(*) FROM link_clicks WHERE org_id = $1 AND written_at IS NULL`, orgID).Scan(&n)
	return n, err
}

// WriteCRMLinkClicks stores clicks in the built-in CRM, keyed by click id so
// a repeated write never makes a second record. It returns the record ids
// in order.
func (tx *Tx) WriteCRMLinkClicks(ctx context.Context, orgID string, clicks []sb.LinkClick) ([]string, error) {
	ids := make([]string, len(clicks))
	now := micros(tx.db.now())
	for i, c := range clicks {
		id := crmID("a0C")
		err := tx.q.queryRow(ctx, `INSERT INTO crm_link_clicks (id, org_id, click_id, message_id, crm_message_id, record_id, url, short_url, ip, domain, browser, clicked_at, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
			ON CONFLICT (click_id) DO UPDATE SET crm_message_id = excluded.crm_message_id
			RETURNING id`,
			id, orgID, c.ID, c.MessageID, c.CRMMessageID, c.RecordID, c.URL, c.ShortURL, c.IP, c.Domain, c.Browser, micros(c.At), now).Scan(&ids[i])
		if err != nil {
			return nil, err
		}
	}
	return ids, nil
}

// CRMLinkClick is a click record of the built-in CRM.
type CRMLinkClick struct {
	sb.LinkClick
	// CRMID is the click record's own id.
	CRMID string `json:"crm_id"`
}

// CRMLinkClicks lists the built-in CRM's click records of a record (all of
// the org's when recordID is empty), oldest first.
func (db *DB) CRMLinkClicks(ctx context.Context, orgID, recordID string) ([]CRMLinkClick, error) {
	q := `SELECT id, click_id, message_id, crm_message_id, record_id, url, short_url, ip, domain, browser, clicked_at FROM crm_link_clicks WHERE org_id = $1`
	args := []any{orgID}
	if recordID != "" {
		q += ` AND record_id = $2`
		args = append(args, recordID)
	}
	rs, err := db.reader().query(ctx, q+` ORDER BY clicked_at, id LIMIT 1000`, args...)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []CRMLinkClick
	for rs.Next() {
		var c CRMLinkClick
		var at int64
		if err := rs.Scan(&c.CRMID, &c.ID, &c.MessageID, &c.CRMMessageID, &c.RecordID, &c.URL, &c.ShortURL, &c.IP, &c.Domain, &c.Browser, &at); err != nil {
			return nil, err
		}
		c.At = fromMicros(at)
		out = append(out, c)
	}
	return out, rs.Err()
}
